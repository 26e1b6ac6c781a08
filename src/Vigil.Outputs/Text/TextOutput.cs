using System.Text;

namespace Vigil.Outputs.Text;

/// <summary>Where an output goes: a file or a stream the CLI hands in (standard output). Outputs
/// never touch Console; tests give a MemoryStream. Use either <see cref="Stream"/> (binary and JSON
/// sinks) or <see cref="Writer"/> (text sinks) for one output, not both: the writer buffers.</summary>
public sealed class TextOutput : IDisposable
{
    /// <summary>UTF-8 without a byte-order mark: a BOM would corrupt JSON lines and pipes.</summary>
    public static readonly Encoding Utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

    private readonly bool _leaveOpen;
    private StreamWriter? _writer;

    public Stream Stream { get; }

    /// <summary>A buffered UTF-8 writer with "\n" line ends, created on first use.</summary>
    public TextWriter Writer => _writer ??= new StreamWriter(Stream, Utf8, bufferSize: 64 * 1024, leaveOpen: true) { NewLine = "\n", AutoFlush = false };

    private TextOutput(Stream stream, bool leaveOpen)
    {
        Stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <summary>Wraps a stream the caller owns (e.g. Console.OpenStandardOutput()).</summary>
    public static TextOutput ForStream(Stream stream, bool leaveOpen = true) => new(stream, leaveOpen);

    /// <summary>Creates or truncates a file.</summary>
    public static TextOutput CreateFile(string path) =>
        new(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 64 * 1024), leaveOpen: false);

    /// <summary>"-" means <paramref name="standardOutput"/>; anything else is a file path.</summary>
    public static TextOutput Open(string pathOrDash, Func<Stream> standardOutput) =>
        pathOrDash == "-" ? ForStream(standardOutput()) : CreateFile(pathOrDash);

    public void Flush()
    {
        _writer?.Flush();
        Stream.Flush();
    }

    public void Dispose()
    {
        Flush();
        _writer?.Dispose();
        if (!_leaveOpen) Stream.Dispose();
    }
}
