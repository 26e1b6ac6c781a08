using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vigil.Wire;

namespace Vigil.Core.Policy;

/// <summary>Writes a loaded policy back out in canonical form: defaults made explicit, prefixes
/// normalised (::ffff:a.b.c.d written as IPv4), keys in schema order. Both forms load again as the same
/// policy; the YAML form also shows in comments what each name resolved to.</summary>
public static partial class PolicyText
{
    public static string ToYaml(GuardPolicy policy)
    {
        var w = new StringBuilder();
        w.Append("# effective policy from ").Append(policy.Source).Append('\n');
        w.Append("version: ").Append(policy.Version.ToString(CultureInfo.InvariantCulture)).Append('\n');
        w.Append("endpoint_sets:\n");
        foreach (var set in policy.EndpointSets)
        {
            w.Append("  - name: ").Append(Scalar(set.Name)).Append('\n');
            if (set.Description is not null) w.Append("    description: ").Append(Scalar(set.Description)).Append('\n');
            w.Append("    addresses:\n");
            foreach (var a in set.Addresses) w.Append("      - ").Append(Scalar(PrefixText(a.Prefix))).Append('\n');
            if (set.Ports is null) w.Append("    # ports: every port\n");
            else w.Append("    ports: [").AppendJoin(", ", set.Ports.Select(p => p.ToString(CultureInfo.InvariantCulture))).Append("]\n");
            w.Append("    protocols: [").AppendJoin(", ", ProtocolNames(set.Protocols)).Append("]\n");
        }
        w.Append("rules:\n");
        foreach (var rule in policy.Rules)
        {
            w.Append("  - name: ").Append(Scalar(rule.Name)).Append("  # rule id ").Append(rule.Id.ToString(CultureInfo.InvariantCulture)).Append('\n');
            if (rule.Description is not null) w.Append("    description: ").Append(Scalar(rule.Description)).Append('\n');
            w.Append("    endpoint_set: ").Append(Scalar(rule.EndpointSetName)).Append('\n');
            w.Append("    mode: ").Append(ModeName(rule.Mode)).Append('\n');
            var allow = rule.Allow;
            if (allow.Count == 0)
            {
                w.Append("    allow: {}  # nobody\n");
                continue;
            }
            w.Append("    allow:\n");
            Principals(w, "users", allow.Users, u => (u.Written, u.Written == u.Uid.ToString(CultureInfo.InvariantCulture) ? null : $"uid {u.Uid}"));
            Principals(w, "groups", allow.Groups, g => (g.Written, g.Written == g.Gid.ToString(CultureInfo.InvariantCulture) ? null : $"gid {g.Gid}"));
            Principals(w, "executables", allow.Executables, e =>
            {
                var id = e.Identity;
                var note = $"{(id.ResolvedPath != e.Path ? id.ResolvedPath + ", " : "")}device {id.DevMajor}:{id.DevMinor} inode {id.Inode}"
                    + (id.Generation is { } g ? $" generation {g}" : "");
                return (e.Path, note);
            });
            Principals(w, "cgroups", allow.Cgroups, c => (c.Path, c.Id is { } id ? $"cgroup id {id}" : "does not exist now"));
        }
        return w.ToString();
    }

    private static void Principals<T>(StringBuilder w, string key, IReadOnlyList<T> items, Func<T, (string Text, string? Note)> describe)
    {
        if (items.Count == 0) return;
        w.Append("      ").Append(key).Append(":\n");
        foreach (var item in items)
        {
            var (text, note) = describe(item);
            w.Append("        - ").Append(Digits().IsMatch(text) ? text : Scalar(text));
            if (note is not null) w.Append("  # ").Append(note);
            w.Append('\n');
        }
    }

    /// <summary>One JSON object (JSON is YAML too: the output loads as a policy file).</summary>
    public static string ToJson(GuardPolicy policy, bool indented = false)
    {
        using var stream = new MemoryStream();
        using (var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = indented }))
        {
            j.WriteStartObject();
            j.WriteNumber("version", policy.Version);
            j.WriteStartArray("endpoint_sets");
            foreach (var set in policy.EndpointSets)
            {
                j.WriteStartObject();
                j.WriteString("name", set.Name);
                if (set.Description is not null) j.WriteString("description", set.Description);
                j.WriteStartArray("addresses");
                foreach (var a in set.Addresses) j.WriteStringValue(PrefixText(a.Prefix));
                j.WriteEndArray();
                if (set.Ports is not null)
                {
                    j.WriteStartArray("ports");
                    foreach (var p in set.Ports) j.WriteNumberValue(p);
                    j.WriteEndArray();
                }
                j.WriteStartArray("protocols");
                foreach (var p in ProtocolNames(set.Protocols)) j.WriteStringValue(p);
                j.WriteEndArray();
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteStartArray("rules");
            foreach (var rule in policy.Rules)
            {
                j.WriteStartObject();
                j.WriteString("name", rule.Name);
                if (rule.Description is not null) j.WriteString("description", rule.Description);
                j.WriteString("endpoint_set", rule.EndpointSetName);
                j.WriteString("mode", ModeName(rule.Mode));
                j.WriteStartObject("allow");
                if (rule.Allow.Users.Count > 0) Accounts(j, "users", rule.Allow.Users.Select(u => (u.Written, u.Uid)));
                if (rule.Allow.Groups.Count > 0) Accounts(j, "groups", rule.Allow.Groups.Select(g => (g.Written, g.Gid)));
                if (rule.Allow.Executables.Count > 0) Strings(j, "executables", rule.Allow.Executables.Select(e => e.Path));
                if (rule.Allow.Cgroups.Count > 0) Strings(j, "cgroups", rule.Allow.Cgroups.Select(c => c.Path));
                j.WriteEndObject();
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Accounts(Utf8JsonWriter j, string key, IEnumerable<(string Written, uint Id)> items)
    {
        j.WriteStartArray(key);
        foreach (var (written, id) in items)
        {
            if (Digits().IsMatch(written)) j.WriteNumberValue(id);
            else j.WriteStringValue(written);
        }
        j.WriteEndArray();
    }

    private static void Strings(Utf8JsonWriter j, string key, IEnumerable<string> items)
    {
        j.WriteStartArray(key);
        foreach (var s in items) j.WriteStringValue(s);
        j.WriteEndArray();
    }

    /// <summary>"a.b.c.d" or "v6" for single addresses, else "network/length".</summary>
    public static string PrefixText(IpPrefix prefix) =>
        prefix.Length == prefix.MaxLength ? prefix.Network.ToString() : prefix.ToString();

    public static IEnumerable<string> ProtocolNames(GuardProtocols protocols)
    {
        if ((protocols & GuardProtocols.Tcp) != 0) yield return "tcp";
        if ((protocols & GuardProtocols.Udp) != 0) yield return "udp";
    }

    public static string ModeName(GuardMode mode) => mode == GuardMode.Enforce ? "enforce" : "audit";

    /// <summary>A plain scalar when it reads back as the same string, else a double-quoted one.</summary>
    private static string Scalar(string text) =>
        PlainSafe().IsMatch(text) && !text.Contains(": ") && !text.Contains(" #")
        && YamlScalar.Resolve(text, YamlDotNet.Core.ScalarStyle.Plain, null) == YamlKind.String
            ? text
            : JsonSerializer.Serialize(text);

    [GeneratedRegex(@"^[A-Za-z0-9/_.@+(][A-Za-z0-9/_.@+:,;() -]*[A-Za-z0-9/_.@+)]$|^[A-Za-z0-9]$")]
    private static partial Regex PlainSafe();

    [GeneratedRegex(@"^[0-9]+$")]
    private static partial Regex Digits();
}

/// <summary>The few lines <c>vigil policy check</c> prints for a valid policy: what it guards and what it compiles to.</summary>
public static class PolicySummary
{
    public static string Describe(GuardPolicy policy, CompiledGuardPolicy compiled)
    {
        var w = new StringBuilder();
        int enforce = policy.Rules.Count(r => r.Mode == GuardMode.Enforce);
        w.Append(policy.Source).Append(": valid: ")
            .Append(Count(policy.EndpointSets.Count, "endpoint set")).Append(", ")
            .Append(Count(policy.Rules.Count, "rule")).Append($" ({policy.Rules.Count - enforce} audit, {enforce} enforce)\n");
        foreach (var rule in policy.Rules)
        {
            var set = policy.EndpointSet(rule.EndpointSetName);
            w.Append($"  rule {rule.Id} {rule.Name}: {PolicyText.ModeName(rule.Mode)} {set.Name} (")
                .Append(Count(set.Addresses.Count, "address", "addresses")).Append(", ")
                .Append(set.Ports is null ? "every port" : "ports " + string.Join(",", set.Ports))
                .Append(", ").Append(string.Join("+", PolicyText.ProtocolNames(set.Protocols))).Append("); allows ");
            var allowed = new List<string>();
            allowed.AddRange(rule.Allow.Users.Select(u => u.Written == u.Uid.ToString(CultureInfo.InvariantCulture) ? $"uid {u.Uid}" : $"user {u.Written} (uid {u.Uid})"));
            allowed.AddRange(rule.Allow.Groups.Select(g => g.Written == g.Gid.ToString(CultureInfo.InvariantCulture) ? $"gid {g.Gid}" : $"group {g.Written} (gid {g.Gid})"));
            allowed.AddRange(rule.Allow.Executables.Select(e => $"executable {e.Path}"));
            allowed.AddRange(rule.Allow.Cgroups.Select(c => $"cgroup {c.Path}{(c.Id is null ? " (absent now)" : "")}"));
            w.Append(allowed.Count == 0 ? "nobody" : string.Join(", ", allowed)).Append('\n');
        }
        int v4 = compiled.Destinations.Count(d => d.Key.Family == 4);
        w.Append("  compiles to: ")
            .Append(Count(compiled.Destinations.Count, "destination prefix", "destination prefixes")).Append($" ({v4} IPv4, {compiled.Destinations.Count - v4} IPv6), ")
            .Append(Count(compiled.Ports.Count, "port entry", "port entries")).Append(", ")
            .Append(Count(compiled.Allow.Count, "allow entry", "allow entries"))
            .Append($" ({compiled.AllowCount(GuardPrincipalKind.Uid)} uid, {compiled.AllowCount(GuardPrincipalKind.Gid)} gid, ")
            .Append($"{compiled.AllowCount(GuardPrincipalKind.Exe)} executable, {compiled.AllowCount(GuardPrincipalKind.Cgroup)} cgroup)\n");
        return w.ToString();
    }

    private static string Count(int n, string one, string? many = null) =>
        $"{n} {(n == 1 ? one : many ?? one + "s")}";
}
