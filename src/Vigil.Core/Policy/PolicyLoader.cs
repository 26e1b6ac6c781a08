using System.Globalization;
using System.Text.RegularExpressions;
using Vigil.Wire;

namespace Vigil.Core.Policy;

/// <summary>The keys a policy file may use, per object. The loader accepts exactly these, and a test
/// keeps schemas/policy.schema.json in step with them.</summary>
public static class PolicyKeys
{
    public static readonly IReadOnlyList<string> Root = ["version", "endpoint_sets", "rules"];
    public static readonly IReadOnlyList<string> EndpointSet = ["name", "description", "addresses", "ports", "protocols"];
    public static readonly IReadOnlyList<string> Rule = ["name", "description", "endpoint_set", "mode", "allow"];
    public static readonly IReadOnlyList<string> Allow = ["users", "groups", "executables", "cgroups"];
    public static readonly IReadOnlyList<string> Protocols = ["tcp", "udp"];
    public static readonly IReadOnlyList<string> Modes = ["audit", "enforce"];
    public const int Version = 1;
}

/// <summary>Reads a policy file into a <see cref="GuardPolicy"/>: YAML syntax, shape (unknown keys, wrong
/// types, missing fields), values (addresses, ports, names) and references (endpoint sets, users, groups,
/// executables, cgroups). Every problem is reported with file, line, column and field; a policy is
/// returned only when there is no error.</summary>
public static partial class PolicyLoader
{
    /// <summary>Reads and loads a policy file. <paramref name="displayName"/> is the name errors use
    /// (by default the path as given).</summary>
    public static PolicyLoadResult LoadFile(string path, IHostPrincipals host, string? displayName = null)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read policy '{path}': {e.Message}");
        }
        return Load(text, displayName ?? path, host);
    }

    public static PolicyLoadResult Load(string text, string file, IHostPrincipals host)
    {
        var reader = new Reader(file, host);
        var policy = reader.Read(text);
        var diagnostics = reader.Diagnostics
            .OrderBy(d => d.Position.Line).ThenBy(d => d.Position.Column).ThenBy(d => d.Severity)
            .ToList();
        return new PolicyLoadResult(diagnostics.Any(d => d.IsError) ? null : policy, diagnostics);
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^[0-9]+$")]
    private static partial Regex Digits();

    private sealed class Reader(string file, IHostPrincipals host)
    {
        public List<PolicyDiagnostic> Diagnostics { get; } = [];

        private void Error(SourcePosition at, string field, string message) =>
            Diagnostics.Add(new PolicyDiagnostic(file, at, field, message));

        private void Warn(SourcePosition at, string field, string message) =>
            Diagnostics.Add(new PolicyDiagnostic(file, at, field, message, DiagnosticSeverity.Warning));

        private static string Child(string parent, string key) => parent.Length == 0 ? key : $"{parent}.{key}";
        private static string Item(string parent, int index) => $"{parent}[{index}]";

        public GuardPolicy? Read(string text)
        {
            var problems = new List<YamlProblem>();
            var root = YamlTree.Parse(text, problems);
            foreach (var p in problems) Error(p.Position, "(yaml)", p.Message);
            if (root is null) return null;

            var map = Mapping(root, "", PolicyKeys.Root, "a policy");
            if (map is null) return null;

            var versionEntry = Required(map, "version", "");
            if (versionEntry is not null)
            {
                var v = Int(versionEntry.Value, "version");
                if (v is not null && v != PolicyKeys.Version)
                    Error(versionEntry.Value.Position, "version", $"unsupported version {v}: this vigil reads version {PolicyKeys.Version}");
            }

            var sets = new List<EndpointSet>();
            var setNames = new Dictionary<string, SourcePosition>(StringComparer.Ordinal);
            var setsEntry = Required(map, "endpoint_sets", "");
            if (setsEntry is not null && List(setsEntry.Value, "endpoint_sets", "define at least one endpoint set") is { } setList)
                for (int i = 0; i < setList.Items.Count; i++)
                    if (ReadEndpointSet(setList.Items[i], Item("endpoint_sets", i), setNames) is { } set) sets.Add(set);

            var rules = new List<GuardRule>();
            var guarded = new Dictionary<string, (SourcePosition At, string Rule)>(StringComparer.Ordinal);
            var ruleNames = new Dictionary<string, SourcePosition>(StringComparer.Ordinal);
            var rulesEntry = Required(map, "rules", "");
            if (rulesEntry is not null && List(rulesEntry.Value, "rules", "a policy without rules guards nothing") is { } ruleList)
            {
                for (int i = 0; i < ruleList.Items.Count; i++)
                {
                    if (i == GuardConstants.MaxRules)
                    {
                        Error(ruleList.Items[i].Position, Item("rules", i), $"too many rules: at most {GuardConstants.MaxRules}");
                        break;
                    }
                    if (ReadRule(ruleList.Items[i], i, Item("rules", i), setNames, ruleNames, guarded) is { } rule) rules.Add(rule);
                }
            }

            foreach (var set in sets.Where(s => !guarded.ContainsKey(s.Name)))
                Warn(set.Location.Position, set.Location.Field, $"endpoint set '{set.Name}' is not guarded by any rule");

            return new GuardPolicy(file, PolicyKeys.Version, sets, rules);
        }

        private EndpointSet? ReadEndpointSet(YamlNode node, string field, Dictionary<string, SourcePosition> names)
        {
            var map = Mapping(node, field, PolicyKeys.EndpointSet, "an endpoint set");
            if (map is null) return null;
            int errors = ErrorCount;

            var name = ReadName(map, field, names, "endpoint set");
            var description = Optional(map, "description") is { } d ? Str(d.Value, Child(field, "description")) : null;

            var addresses = new List<PolicyPrefix>();
            var addrEntry = Required(map, "addresses", field);
            if (addrEntry is not null && List(addrEntry.Value, Child(field, "addresses"), "list at least one address or prefix") is { } list)
            {
                var seen = new Dictionary<IpPrefix, SourcePosition>();
                for (int i = 0; i < list.Items.Count; i++)
                {
                    var itemField = Item(Child(field, "addresses"), i);
                    var item = list.Items[i];
                    if (Str(item, itemField, "an address or prefix (e.g. 169.254.169.254 or fd00:ec2::254/128)") is not { } text) continue;
                    var prefix = IpPrefixParser.Parse(text, out var error, out var warning);
                    if (prefix is null) { Error(item.Position, itemField, error!); continue; }
                    if (warning is not null) Warn(item.Position, itemField, warning);
                    if (seen.TryGetValue(prefix.Value, out var first))
                        Warn(item.Position, itemField, $"{prefix.Value} is listed twice (first at line {first.Line})");
                    else seen[prefix.Value] = item.Position;
                    addresses.Add(new PolicyPrefix(text, prefix.Value, new PolicyLocation(item.Position, itemField)));
                }
            }

            List<ushort>? ports = null;
            if (Optional(map, "ports") is { } portsEntry
                && List(portsEntry.Value, Child(field, "ports"), "leave 'ports' out to guard every port") is { } portList)
            {
                ports = [];
                var seen = new Dictionary<ushort, SourcePosition>();
                for (int i = 0; i < portList.Items.Count; i++)
                {
                    var itemField = Item(Child(field, "ports"), i);
                    var item = portList.Items[i];
                    if (Int(item, itemField, "a port number") is not { } p) continue;
                    if (p is < 1 or > 65535) { Error(item.Position, itemField, $"port {p} out of range (1-65535)"); continue; }
                    if (seen.TryGetValue((ushort)p, out var first)) Warn(item.Position, itemField, $"port {p} is listed twice (first at line {first.Line})");
                    else { seen[(ushort)p] = item.Position; ports.Add((ushort)p); }
                }
            }

            var protocols = GuardProtocols.All;
            if (Optional(map, "protocols") is { } protoEntry
                && List(protoEntry.Value, Child(field, "protocols"), "leave 'protocols' out to guard tcp and udp") is { } protoList)
            {
                protocols = GuardProtocols.None;
                for (int i = 0; i < protoList.Items.Count; i++)
                {
                    var itemField = Item(Child(field, "protocols"), i);
                    var item = protoList.Items[i];
                    if (Str(item, itemField, "a protocol (tcp or udp)") is not { } p) continue;
                    var flag = p switch { "tcp" => GuardProtocols.Tcp, "udp" => GuardProtocols.Udp, _ => GuardProtocols.None };
                    if (flag == GuardProtocols.None) Error(item.Position, itemField, $"unknown protocol '{p}' (expected tcp or udp)");
                    else if ((protocols & flag) != 0) Warn(item.Position, itemField, $"protocol {p} is listed twice");
                    protocols |= flag;
                }
            }

            if (name is null || ErrorCount > errors) return null;
            return new EndpointSet(name, description, addresses, ports, protocols, new PolicyLocation(map.Position, field));
        }

        private GuardRule? ReadRule(YamlNode node, int id, string field, Dictionary<string, SourcePosition> setNames,
            Dictionary<string, SourcePosition> ruleNames, Dictionary<string, (SourcePosition At, string Rule)> guarded)
        {
            var map = Mapping(node, field, PolicyKeys.Rule, "a rule");
            if (map is null) return null;
            int errors = ErrorCount;

            var name = ReadName(map, field, ruleNames, "rule");
            var description = Optional(map, "description") is { } d ? Str(d.Value, Child(field, "description")) : null;

            string? setName = null;
            if (Required(map, "endpoint_set", field) is { } setEntry
                && Str(setEntry.Value, Child(field, "endpoint_set"), "the name of an endpoint set") is { } s)
            {
                if (!setNames.ContainsKey(s))
                    Error(setEntry.Value.Position, Child(field, "endpoint_set"), $"unknown endpoint set '{s}'{Suggest(s, setNames.Keys)}");
                else if (guarded.TryGetValue(s, out var other))
                    Error(setEntry.Value.Position, Child(field, "endpoint_set"),
                        $"endpoint set '{s}' is already guarded by rule '{other.Rule}' (line {other.At.Line}); a destination must satisfy every rule that guards it, so merge their allow lists into one rule");
                else
                    guarded[s] = (setEntry.Value.Position, name ?? Item("rules", id));
                setName = s;
            }

            GuardMode? mode = null;
            if (Required(map, "mode", field) is { } modeEntry && Str(modeEntry.Value, Child(field, "mode"), "audit or enforce") is { } m)
            {
                mode = m switch { "audit" => GuardMode.Audit, "enforce" => GuardMode.Enforce, _ => null };
                if (mode is null) Error(modeEntry.Value.Position, Child(field, "mode"), $"unknown mode '{m}' (expected audit or enforce)");
            }

            AllowList? allow = null;
            var allowEntry = map.Find("allow");
            if (allowEntry is null)
                Error(map.Position, Child(field, "allow"), "missing required field 'allow' (write 'allow: {}' to allow nobody)");
            else
                allow = ReadAllow(allowEntry.Value, Child(field, "allow"));

            if (name is null || setName is null || mode is null || allow is null || ErrorCount > errors) return null;
            return new GuardRule(id, name, description, setName, mode.Value, allow, new PolicyLocation(map.Position, field));
        }

        private AllowList? ReadAllow(YamlNode node, string field)
        {
            var map = Mapping(node, field, PolicyKeys.Allow, "an allow list (users, groups, executables, cgroups)");
            if (map is null) return null;

            var users = ReadPrincipals(map, field, "users", (item, itemField) => ReadAccount(item, itemField, "user", host.FindUser)
                is { } r ? new UserPrincipal(r.Written, r.Id, new PolicyLocation(item.Position, itemField)) : null, p => p.Uid);
            var groups = ReadPrincipals(map, field, "groups", (item, itemField) => ReadAccount(item, itemField, "group", host.FindGroup)
                is { } r ? new GroupPrincipal(r.Written, r.Id, new PolicyLocation(item.Position, itemField)) : null, p => p.Gid);
            var exes = ReadPrincipals(map, field, "executables", ReadExecutable, p => (p.Identity.KernelDev, p.Identity.Inode));
            var cgroups = ReadPrincipals(map, field, "cgroups", ReadCgroup, p => p.Path);
            return new AllowList(users, groups, exes, cgroups);
        }

        private List<T> ReadPrincipals<T, TKey>(YamlMapping map, string field, string key, Func<YamlNode, string, T?> read, Func<T, TKey> identity)
            where T : class where TKey : notnull
        {
            var result = new List<T>();
            if (Optional(map, key) is not { } entry) return result;
            var listField = Child(field, key);
            if (List(entry.Value, listField, $"leave '{key}' out instead of an empty list") is not { } list) return result;
            var seen = new Dictionary<TKey, SourcePosition>();
            for (int i = 0; i < list.Items.Count; i++)
            {
                var itemField = Item(listField, i);
                if (read(list.Items[i], itemField) is not { } principal) continue;
                var id = identity(principal);
                if (seen.TryGetValue(id, out var first))
                    Warn(list.Items[i].Position, itemField, $"already allowed at line {first.Line}");
                else seen[id] = list.Items[i].Position;
                result.Add(principal);
            }
            return result;
        }

        private (string Written, uint Id)? ReadAccount(YamlNode item, string field, string what, Func<string, uint?> find)
        {
            string idName = what == "user" ? "uid" : "gid";
            if (item is YamlScalar { Kind: YamlKind.Int } number)
            {
                var v = number.AsInt64();
                if (v is null or < 0 or > uint.MaxValue - 1)
                {
                    Error(item.Position, field, $"{idName} {number.Value} out of range (0-{uint.MaxValue - 1})");
                    return null;
                }
                return (number.Value, (uint)v.Value);
            }
            if (Str(item, field, $"a {what} name or {idName}") is not { } text) return null;
            if (Digits().IsMatch(text))
            {
                if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id != uint.MaxValue) return (text, id);
                Error(item.Position, field, $"{idName} {text} out of range (0-{uint.MaxValue - 1})");
                return null;
            }
            var found = find(text);
            if (found is null)
            {
                Error(item.Position, field, $"unknown {what} '{text}'");
                return null;
            }
            return (text, found.Value);
        }

        private ExecutablePrincipal? ReadExecutable(YamlNode item, string field)
        {
            if (Str(item, field, "an absolute path to an executable") is not { } path) return null;
            if (!path.StartsWith('/') || path.Contains('\0'))
            {
                Error(item.Position, field, $"'{path}' is not an absolute path");
                return null;
            }
            var lookup = host.FindExecutable(path);
            if (lookup.Identity is null)
            {
                Error(item.Position, field, $"executable '{path}': {lookup.Problem}");
                return null;
            }
            if (lookup.ScriptInterpreter is { } interpreter)
            {
                // exec() of a script runs its interpreter: the kernel never sees the script as the executable.
                Error(item.Position, field, $"'{path}' is a script run by {interpreter}: its processes run {interpreter}, so this entry would never match; allow the interpreter, a user or a cgroup instead");
                return null;
            }
            return new ExecutablePrincipal(path, lookup.Identity, new PolicyLocation(item.Position, field));
        }

        private CgroupPrincipal? ReadCgroup(YamlNode item, string field)
        {
            if (Str(item, field, "a cgroup path such as /system.slice/cloud-init.service") is not { } path) return null;
            if (path == "/")
            {
                Error(item.Position, field, "cgroup '/' holds every process: allowing it allows everyone");
                return null;
            }
            var parts = path.Split('/');
            if (!path.StartsWith('/') || path.EndsWith('/') || parts.Skip(1).Any(p => p is "" or "." or ".."))
            {
                Error(item.Position, field, $"'{path}' is not a cgroup path: write it from the cgroup v2 root, e.g. /system.slice/cloud-init.service (no '.', '..', '//' or trailing '/')");
                return null;
            }
            int level = parts.Length - 1;
            if (level > GuardConstants.MaxCgroupLevel)
            {
                Error(item.Position, field, $"cgroup '{path}' is {level} levels deep; at most {GuardConstants.MaxCgroupLevel}");
                return null;
            }
            var lookup = host.FindCgroup(path);
            if (lookup.Id is null)
                Warn(item.Position, field, $"cgroup '{path}' does not exist now ({lookup.Note}); it gets an allow entry when the policy is applied after it exists");
            return new CgroupPrincipal(path, level, lookup.Id, new PolicyLocation(item.Position, field));
        }

        private string? ReadName(YamlMapping map, string field, Dictionary<string, SourcePosition> names, string what)
        {
            if (Required(map, "name", field) is not { } entry) return null;
            var nameField = Child(field, "name");
            if (Str(entry.Value, nameField, "a name") is not { } name) return null;
            if (names.TryGetValue(name, out var first))
            {
                Error(entry.Value.Position, nameField, $"duplicate {what} name '{name}' (first at line {first.Line})");
                return null;
            }
            // Registered even when invalid, so references to it report no second, consequential error.
            names[name] = entry.Value.Position;
            if (!NamePattern().IsMatch(name))
            {
                Error(entry.Value.Position, nameField, $"invalid {what} name '{name}': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
                return null;
            }
            return name;
        }

        private int ErrorCount => Diagnostics.Count(d => d.IsError);

        // ---- shape helpers ----

        private YamlMapping? Mapping(YamlNode node, string field, IReadOnlyList<string> keys, string what)
        {
            if (node is not YamlMapping map)
            {
                Error(node.Position, field.Length == 0 ? "(policy)" : field, $"expected {what} (a mapping), got {YamlNode.KindName(node.Kind)}");
                return null;
            }
            foreach (var entry in map.Entries.Where(e => !keys.Contains(e.Key.Value)))
                Error(entry.Key.Position, Child(field, entry.Key.Value), $"unknown field '{entry.Key.Value}'{Suggest(entry.Key.Value, keys)} (expected {string.Join(", ", keys)})");
            return map;
        }

        private YamlEntry? Required(YamlMapping map, string key, string field)
        {
            var entry = map.Find(key);
            if (entry is null) Error(map.Position, Child(field, key), $"missing required field '{key}'");
            return entry;
        }

        private static YamlEntry? Optional(YamlMapping map, string key) => map.Find(key);

        private YamlSequence? List(YamlNode node, string field, string whenEmpty)
        {
            if (node is not YamlSequence seq)
            {
                Error(node.Position, field, $"expected a list, got {YamlNode.KindName(node.Kind)}");
                return null;
            }
            if (seq.Items.Count == 0)
            {
                Error(node.Position, field, $"empty list: {whenEmpty}");
                return null;
            }
            return seq;
        }

        private string? Str(YamlNode node, string field, string what = "a string")
        {
            if (node is YamlScalar { Kind: YamlKind.String } s) return s.Value;
            Error(node.Position, field, $"expected {what}, got {YamlNode.KindName(node.Kind)}{(node is YamlScalar sc && sc.Kind != YamlKind.Null ? $" ('{sc.Value}')" : "")}");
            return null;
        }

        private long? Int(YamlNode node, string field, string what = "an integer")
        {
            if (node is YamlScalar { Kind: YamlKind.Int } s && s.AsInt64() is { } v) return v;
            Error(node.Position, field, $"expected {what}, got {YamlNode.KindName(node.Kind)}{(node is YamlScalar sc && sc.Kind != YamlKind.Null ? $" ('{sc.Value}')" : "")}");
            return null;
        }
    }

    /// <summary>" (did you mean 'x'?)" for a near miss (edit distance at most 2), else "".</summary>
    internal static string Suggest(string written, IEnumerable<string> candidates)
    {
        var best = candidates.Select(c => (c, d: Distance(written, c))).Where(x => x.d <= 2 && x.d < written.Length).OrderBy(x => x.d).FirstOrDefault();
        return best.c is null ? "" : $" (did you mean '{best.c}'?)";
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
