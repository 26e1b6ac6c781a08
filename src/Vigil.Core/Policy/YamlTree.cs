using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Vigil.Core.Policy;

/// <summary>Where a node starts in the policy file (1-based, as editors count).</summary>
public readonly record struct SourcePosition(int Line, int Column)
{
    public override string ToString() => $"{Line}:{Column}";
}

/// <summary>The YAML type of a node, resolved as YAML 1.2's core schema does for plain scalars.</summary>
public enum YamlKind { Null, Bool, Int, Float, String, Sequence, Mapping }

/// <summary>A YAML node with its position. Built from YamlDotNet's parser events (not its
/// representation model) so that every node keeps its line and column and duplicate keys are
/// reported, not thrown.</summary>
public abstract record YamlNode(SourcePosition Position)
{
    public abstract YamlKind Kind { get; }

    public static string KindName(YamlKind kind) => kind switch
    {
        YamlKind.Null => "nothing (null)",
        YamlKind.Bool => "a boolean",
        YamlKind.Int => "an integer",
        YamlKind.Float => "a number",
        YamlKind.String => "a string",
        YamlKind.Sequence => "a list",
        _ => "a mapping",
    };
}

public sealed partial record YamlScalar(string Value, YamlKind ScalarKind, SourcePosition Position) : YamlNode(Position)
{
    public override YamlKind Kind => ScalarKind;

    /// <summary>Plain scalars get their type from their text (YAML 1.2 core schema); quoted ones are strings.</summary>
    public static YamlKind Resolve(string value, ScalarStyle style, string? tag)
    {
        if (tag is "tag:yaml.org,2002:str" or "!!str") return YamlKind.String;
        if (style != ScalarStyle.Plain) return YamlKind.String;
        if (value is "" or "~" or "null" or "Null" or "NULL") return YamlKind.Null;
        if (value is "true" or "True" or "TRUE" or "false" or "False" or "FALSE") return YamlKind.Bool;
        if (IntPattern().IsMatch(value)) return YamlKind.Int;
        if (FloatPattern().IsMatch(value)) return YamlKind.Float;
        return YamlKind.String;
    }

    /// <summary>The value of an integer scalar, or null when it does not fit in a long.</summary>
    public long? AsInt64()
    {
        if (ScalarKind != YamlKind.Int) return null;
        var v = Value;
        if (v.StartsWith("0x", StringComparison.Ordinal))
            return long.TryParse(v.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var h) ? h : null;
        if (v.StartsWith("0o", StringComparison.Ordinal))
        {
            try { return Convert.ToInt64(v[2..], 8); }
            catch (Exception e) when (e is OverflowException or FormatException) { return null; }
        }
        return long.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var d) ? d : null;
    }

    [GeneratedRegex(@"^([-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")]
    private static partial Regex IntPattern();

    [GeneratedRegex(@"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$")]
    private static partial Regex FloatPattern();
}

public sealed record YamlSequence(IReadOnlyList<YamlNode> Items, SourcePosition Position) : YamlNode(Position)
{
    public override YamlKind Kind => YamlKind.Sequence;
}

public sealed record YamlEntry(YamlScalar Key, YamlNode Value);

public sealed record YamlMapping(IReadOnlyList<YamlEntry> Entries, SourcePosition Position) : YamlNode(Position)
{
    public override YamlKind Kind => YamlKind.Mapping;

    public YamlEntry? Find(string key) => Entries.FirstOrDefault(e => e.Key.Value == key);
}

/// <summary>A problem found while reading YAML, before the policy's own rules apply.</summary>
public sealed record YamlProblem(SourcePosition Position, string Message);

public static class YamlTree
{
    /// <summary>Parses one YAML document. Returns null (and the problem) on a syntax error, an empty
    /// file, several documents, or a construct a policy does not use (non-scalar keys, unknown tags);
    /// duplicate keys are reported in <paramref name="problems"/> and the first one is kept.</summary>
    public static YamlNode? Parse(string text, List<YamlProblem> problems)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        try
        {
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
            {
                problems.Add(new YamlProblem(new SourcePosition(1, 1), "the file is empty"));
                return null;
            }
            parser.Consume<DocumentStart>();
            var root = ReadNode(parser, anchors, problems);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                problems.Add(new YamlProblem(At(second.Start), "a policy file holds one YAML document; found a second one"));
                return null;
            }
            return root;
        }
        catch (YamlException e)
        {
            problems.Add(new YamlProblem(At(e.Start), FirstLine(e.Message)));
            return null;
        }
        catch (UnsupportedYamlException e)
        {
            problems.Add(new YamlProblem(e.Position, e.Message));
            return null;
        }
    }

    private sealed class UnsupportedYamlException(SourcePosition position, string message) : Exception(message)
    {
        public SourcePosition Position { get; } = position;
    }

    private static YamlNode ReadNode(IParser parser, Dictionary<string, YamlNode> anchors, List<YamlProblem> problems)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
            return anchors.TryGetValue(alias.Value.Value, out var target)
                ? target
                : throw new UnsupportedYamlException(At(alias.Start), $"alias '*{alias.Value.Value}' names no anchor defined before it");

        YamlNode node;
        string? anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            CheckTag(scalar.Tag.IsEmpty ? null : scalar.Tag.Value, At(scalar.Start), allowed: ["tag:yaml.org,2002:str", "!!str"]);
            node = new YamlScalar(scalar.Value, YamlScalar.Resolve(scalar.Value, scalar.Style, scalar.Tag.IsEmpty ? null : scalar.Tag.Value), At(scalar.Start));
            anchor = scalar.Anchor.IsEmpty ? null : scalar.Anchor.Value;
        }
        else if (parser.TryConsume<SequenceStart>(out var seqStart))
        {
            CheckTag(seqStart.Tag.IsEmpty ? null : seqStart.Tag.Value, At(seqStart.Start), allowed: ["tag:yaml.org,2002:seq", "!!seq"]);
            var items = new List<YamlNode>();
            while (!parser.TryConsume<SequenceEnd>(out _)) items.Add(ReadNode(parser, anchors, problems));
            node = new YamlSequence(items, At(seqStart.Start));
            anchor = seqStart.Anchor.IsEmpty ? null : seqStart.Anchor.Value;
        }
        else if (parser.TryConsume<MappingStart>(out var mapStart))
        {
            CheckTag(mapStart.Tag.IsEmpty ? null : mapStart.Tag.Value, At(mapStart.Start), allowed: ["tag:yaml.org,2002:map", "!!map"]);
            var entries = new List<YamlEntry>();
            var seen = new Dictionary<string, SourcePosition>(StringComparer.Ordinal);
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                var key = ReadNode(parser, anchors, problems);
                var value = ReadNode(parser, anchors, problems);
                if (key is not YamlScalar k || k.Kind is not (YamlKind.String or YamlKind.Int or YamlKind.Bool or YamlKind.Null or YamlKind.Float))
                    throw new UnsupportedYamlException(key.Position, "mapping keys must be plain words");
                if (seen.TryGetValue(k.Value, out var first))
                {
                    problems.Add(new YamlProblem(k.Position, $"duplicate key '{k.Value}' (first at line {first.Line})"));
                    continue;
                }
                seen[k.Value] = k.Position;
                entries.Add(new YamlEntry(k, value));
            }
            node = new YamlMapping(entries, At(mapStart.Start));
            anchor = mapStart.Anchor.IsEmpty ? null : mapStart.Anchor.Value;
        }
        else
        {
            var current = parser.Current;
            throw new UnsupportedYamlException(current is null ? new SourcePosition(1, 1) : At(current.Start), "unexpected YAML event");
        }
        if (anchor is not null) anchors[anchor] = node;
        return node;
    }

    private static void CheckTag(string? tag, SourcePosition at, string[] allowed)
    {
        if (tag is not null && tag != "?" && tag != "!" && !allowed.Contains(tag))
            throw new UnsupportedYamlException(at, $"unsupported YAML tag '{tag}'");
    }

    private static SourcePosition At(Mark mark) => new((int)mark.Line, (int)mark.Column);

    private static string FirstLine(string message)
    {
        // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; the position is reported separately.
        var text = message.Split('\n')[0];
        int marker = text.LastIndexOf("): ", StringComparison.Ordinal);
        return (marker >= 0 ? text[(marker + 3)..] : text).Trim();
    }
}
