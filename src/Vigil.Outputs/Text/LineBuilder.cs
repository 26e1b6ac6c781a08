namespace Vigil.Outputs.Text;

/// <summary>Builds one line of fixed-width columns in a caller-supplied buffer (stack memory in
/// hot paths). Columns are separated by one space.</summary>
internal ref struct LineBuilder
{
    private readonly Span<char> _buffer;
    private int _length;

    public LineBuilder(Span<char> buffer)
    {
        _buffer = buffer;
        _length = 0;
    }

    public readonly ReadOnlySpan<char> Text => _buffer[.._length];

    /// <summary>Appends text as is.</summary>
    public void Append(scoped ReadOnlySpan<char> text)
    {
        text.CopyTo(_buffer[_length..]);
        _length += text.Length;
    }

    public void Append(char c) => _buffer[_length++] = c;

    /// <summary>Left-aligned column; text longer than the width is kept whole (the row widens).</summary>
    public void Left(scoped ReadOnlySpan<char> text, int width)
    {
        Append(text);
        Pad(width - text.Length);
        Append(' ');
    }

    /// <summary>Left-aligned column that never widens: longer text is cut and ends in '+', as ps does.</summary>
    public void LeftTruncated(scoped ReadOnlySpan<char> text, int width)
    {
        if (text.Length > width) { Append(text[..(width - 1)]); Append('+'); Append(' '); }
        else Left(text, width);
    }

    /// <summary>Right-aligned column.</summary>
    public void Right(scoped ReadOnlySpan<char> text, int width)
    {
        Pad(width - text.Length);
        Append(text);
        Append(' ');
    }

    public void Right(ulong value, int width)
    {
        Span<char> digits = stackalloc char[20];
        value.TryFormat(digits, out int n);
        Right(digits[..n], width);
    }

    /// <summary>Drops trailing spaces and ends the line with '\n'.</summary>
    public void EndLine()
    {
        while (_length > 0 && _buffer[_length - 1] == ' ') _length--;
        Append('\n');
    }

    private void Pad(int count)
    {
        for (int i = 0; i < count; i++) _buffer[_length++] = ' ';
    }
}
