using System.Text.Json;
using Vigil.Wire;

namespace Vigil.Core.Policy;

/// <summary>What is kept in the kernel with each policy slot (vigil_guard_policy, UTF-8 JSON), so that a
/// process that did not compile the policy — a restarted agent, `vigil guard status`, an agent whose policy
/// `vigil policy apply` replaced — can name the rules of the events it reads and say what is enforced.
/// Rule names and modes always fit; the canonical YAML is left out when the whole would not.</summary>
public sealed record AppliedPolicy(string Source, string AppliedBy, DateTimeOffset AppliedAt, IReadOnlyList<CompiledRule> Rules, string? Yaml)
{
    public const int Version = 1;

    public static AppliedPolicy Describe(GuardPolicy policy, CompiledGuardPolicy compiled, string appliedBy, DateTimeOffset now) =>
        new(policy.Source, appliedBy, now, compiled.Rules, PolicyText.ToYaml(policy));

    /// <summary>The JSON, at most <paramref name="maxBytes"/> (the YAML is dropped first, then rule descriptions would not fit: throws).</summary>
    public byte[] ToUtf8(int maxBytes = GuardConstants.PolicyTextMax)
    {
        var bytes = Write(Yaml);
        if (bytes.Length > maxBytes) bytes = Write(null);
        if (bytes.Length > maxBytes) throw new ArgumentException($"the policy's rule list takes {bytes.Length} bytes; at most {maxBytes} are kept in the kernel");
        return bytes;
    }

    private byte[] Write(string? yaml)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("version", Version);
            w.WriteString("source", Source);
            w.WriteString("applied_by", AppliedBy);
            w.WriteString("applied_at", AppliedAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
            WriteRules(w, Rules);
            if (yaml is null) w.WriteNull("yaml");
            else w.WriteString("yaml", yaml);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>"rules": [{id, name, endpoint_set, mode}, ...] — also how `vigil guard status -o json` lists them.</summary>
    public static void WriteRules(Utf8JsonWriter w, IEnumerable<CompiledRule> rules)
    {
        w.WriteStartArray("rules");
        foreach (var r in rules)
        {
            w.WriteStartObject();
            w.WriteNumber("id", r.Id);
            w.WriteString("name", r.Name);
            w.WriteString("endpoint_set", r.EndpointSet);
            w.WriteString("mode", PolicyText.ModeName(r.Mode));
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>Reads what <see cref="ToUtf8"/> wrote; null for empty, foreign or damaged text (never throws:
    /// the text comes from a map anyone with CAP_BPF could write).</summary>
    public static AppliedPolicy? Parse(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty) return null;
        try
        {
            using var doc = JsonDocument.Parse(utf8.ToArray());
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("version", out var v) || v.GetInt32() != Version) return null;
            var rules = new List<CompiledRule>();
            foreach (var r in root.GetProperty("rules").EnumerateArray())
                rules.Add(new CompiledRule(
                    r.GetProperty("id").GetInt32(),
                    r.GetProperty("name").GetString() ?? "",
                    r.GetProperty("endpoint_set").GetString() ?? "",
                    r.GetProperty("mode").GetString() == "enforce" ? GuardMode.Enforce : GuardMode.Audit));
            var yaml = root.TryGetProperty("yaml", out var y) && y.ValueKind == JsonValueKind.String ? y.GetString() : null;
            return new AppliedPolicy(
                root.GetProperty("source").GetString() ?? "",
                root.GetProperty("applied_by").GetString() ?? "",
                DateTimeOffset.Parse(root.GetProperty("applied_at").GetString() ?? "", System.Globalization.CultureInfo.InvariantCulture),
                rules, yaml);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            return null;
        }
    }
}
