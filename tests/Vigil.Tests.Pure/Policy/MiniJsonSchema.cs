using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Vigil.Core.Policy;

namespace Vigil.Tests.Pure.Policy;

/// <summary>A JSON Schema (2020-12) validator for exactly the keywords schemas/policy.schema.json uses
/// (no validator package resolves from the mirror). An unknown keyword fails loudly, so the schema
/// cannot grow a rule this test would silently ignore.</summary>
internal sealed class MiniJsonSchema(JsonObject root)
{
    private static readonly HashSet<string> Annotations = ["$schema", "$id", "title", "description", "$defs"];

    public static MiniJsonSchema Load(string path) => new(JsonNode.Parse(File.ReadAllText(path))!.AsObject());

    public JsonObject Root => root;

    public List<string> Validate(JsonNode? value)
    {
        var errors = new List<string>();
        Check(root, value, "$", errors);
        return errors;
    }

    private void Check(JsonObject schema, JsonNode? value, string at, List<string> errors)
    {
        foreach (var (keyword, arg) in schema)
        {
            switch (keyword)
            {
                case var k when Annotations.Contains(k): break;
                case "$ref":
                    var name = arg!.GetValue<string>();
                    if (!name.StartsWith("#/$defs/", StringComparison.Ordinal)) throw new NotSupportedException($"$ref {name}");
                    Check(root["$defs"]![name["#/$defs/".Length..]]!.AsObject(), value, at, errors);
                    break;
                case "type":
                    if (!HasType(value, arg!.GetValue<string>())) errors.Add($"{at}: expected {arg}");
                    break;
                case "const":
                    if (!JsonNode.DeepEquals(value, arg)) errors.Add($"{at}: must be {arg!.ToJsonString()}");
                    break;
                case "enum":
                    if (!arg!.AsArray().Any(e => JsonNode.DeepEquals(e, value))) errors.Add($"{at}: not one of {arg.ToJsonString()}");
                    break;
                case "properties":
                    if (value is JsonObject o)
                        foreach (var (p, s) in arg!.AsObject())
                            if (o.TryGetPropertyValue(p, out var v)) Check(s!.AsObject(), v, $"{at}.{p}", errors);
                    break;
                case "additionalProperties":
                    if (arg!.GetValue<bool>()) break;
                    if (value is JsonObject obj)
                    {
                        var known = schema["properties"]?.AsObject().Select(p => p.Key).ToHashSet() ?? [];
                        foreach (var (p, _) in obj.Where(p => !known.Contains(p.Key))) errors.Add($"{at}.{p}: not allowed");
                    }
                    break;
                case "required":
                    if (value is JsonObject r)
                        foreach (var p in arg!.AsArray().Select(n => n!.GetValue<string>()).Where(p => !r.ContainsKey(p)))
                            errors.Add($"{at}.{p}: required");
                    break;
                case "items":
                    if (value is JsonArray items)
                        for (int i = 0; i < items.Count; i++) Check(arg!.AsObject(), items[i], $"{at}[{i}]", errors);
                    break;
                case "minItems":
                    if (value is JsonArray a1 && a1.Count < arg!.GetValue<int>()) errors.Add($"{at}: fewer than {arg} items");
                    break;
                case "maxItems":
                    if (value is JsonArray a2 && a2.Count > arg!.GetValue<int>()) errors.Add($"{at}: more than {arg} items");
                    break;
                case "minLength":
                    if (value is JsonValue s1 && s1.TryGetValue<string>(out var str1) && str1.Length < arg!.GetValue<int>()) errors.Add($"{at}: shorter than {arg}");
                    break;
                case "pattern":
                    if (value is JsonValue s2 && s2.TryGetValue<string>(out var str2) && !Regex.IsMatch(str2, arg!.GetValue<string>())) errors.Add($"{at}: does not match {arg}");
                    break;
                case "minimum":
                    if (value is JsonValue n1 && n1.TryGetValue<long>(out var l1) && l1 < arg!.GetValue<long>()) errors.Add($"{at}: less than {arg}");
                    break;
                case "maximum":
                    if (value is JsonValue n2 && n2.TryGetValue<long>(out var l2) && l2 > arg!.GetValue<long>()) errors.Add($"{at}: more than {arg}");
                    break;
                case "anyOf":
                    if (!arg!.AsArray().Any(s => { var e = new List<string>(); Check(s!.AsObject(), value, at, e); return e.Count == 0; }))
                        errors.Add($"{at}: matches none of anyOf");
                    break;
                default:
                    throw new NotSupportedException($"schema keyword '{keyword}' is not implemented by this test's validator");
            }
        }
    }

    private static bool HasType(JsonNode? value, string type) => type switch
    {
        "object" => value is JsonObject,
        "array" => value is JsonArray,
        "string" => value is JsonValue v && v.TryGetValue<string>(out _),
        "integer" => value is JsonValue v && v.TryGetValue<long>(out _),
        "boolean" => value is JsonValue v && v.TryGetValue<bool>(out _),
        _ => throw new NotSupportedException($"type {type}"),
    };

    /// <summary>The JSON value of a YAML document, with YAML's scalar types (as the policy loader reads them).</summary>
    public static JsonNode? FromYaml(string yaml)
    {
        var problems = new List<YamlProblem>();
        var node = YamlTree.Parse(yaml, problems);
        Assert.True(problems.Count == 0, string.Join("; ", problems));
        return ToJson(node!);
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMapping m => new JsonObject(m.Entries.Select(e => KeyValuePair.Create(e.Key.Value, ToJson(e.Value)))),
        YamlSequence s => new JsonArray(s.Items.Select(ToJson).ToArray()),
        YamlScalar { Kind: YamlKind.Null } => null,
        YamlScalar { Kind: YamlKind.Int } i => JsonValue.Create(i.AsInt64()!.Value),
        YamlScalar { Kind: YamlKind.Bool } b => JsonValue.Create(b.Value.Equals("true", StringComparison.OrdinalIgnoreCase)),
        YamlScalar { Kind: YamlKind.Float } f => JsonValue.Create(double.Parse(f.Value, System.Globalization.CultureInfo.InvariantCulture)),
        YamlScalar s => JsonValue.Create(s.Value),
        _ => throw new InvalidOperationException(),
    };
}
