using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Vigil.Core.Policy;

namespace Vigil.Tests.Pure.Policy;

/// <summary>schemas/policy.schema.json, the loader and docs/policy.md must agree.</summary>
public partial class PolicySchemaTests
{
    private static readonly string RepoCopy = Path.Combine(AppContext.BaseDirectory, "repo");
    private static readonly Lazy<MiniJsonSchema> Schema = new(() => MiniJsonSchema.Load(Path.Combine(RepoCopy, "schemas", "policy.schema.json")));

    /// <summary>Users, groups and files that docs/policy.md's examples name, on top of the fake machine.</summary>
    private static FakeHostPrincipals DocsHost()
    {
        var host = new FakeHostPrincipals();
        host.Executables["/usr/bin/google_metadata_script_runner"] = ExecutableLookup.Found(new ExecutableIdentity("/usr/bin/google_metadata_script_runner", 254, 1, 4000, 1));
        host.Executables["/usr/bin/amazon-ssm-agent"] = ExecutableLookup.Found(new ExecutableIdentity("/usr/bin/amazon-ssm-agent", 254, 1, 4001, 2));
        host.Cgroups["/system.slice/amazon-ssm-agent.service"] = 8001;
        return host;
    }

    private static IEnumerable<string> Properties(JsonObject schema) => schema["properties"]!.AsObject().Select(p => p.Key);

    private static JsonObject Def(string name) => Schema.Value.Root["$defs"]![name]!.AsObject();

    [Fact]
    public void SchemaPropertiesAreExactlyTheKeysTheLoaderAccepts()
    {
        Assert.Equal(PolicyKeys.Root, Properties(Schema.Value.Root));
        Assert.Equal(PolicyKeys.EndpointSet, Properties(Def("endpoint_set")));
        Assert.Equal(PolicyKeys.Rule, Properties(Def("rule")));
        Assert.Equal(PolicyKeys.Allow, Properties(Def("allow")));
        Assert.Equal(PolicyKeys.Protocols, Def("endpoint_set")["properties"]!["protocols"]!["items"]!["enum"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(PolicyKeys.Modes, Def("rule")["properties"]!["mode"]!["enum"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(PolicyKeys.Version, Schema.Value.Root["properties"]!["version"]!["const"]!.GetValue<int>());
        Assert.Equal(Vigil.Wire.GuardConstants.MaxRules, Schema.Value.Root["properties"]!["rules"]!["maxItems"]!.GetValue<int>());
    }

    [Fact]
    public void TheEmbeddedDefaultValidatesAgainstTheSchema() =>
        Assert.Empty(Schema.Value.Validate(MiniJsonSchema.FromYaml(DefaultPolicy.Text)));

    public static TheoryData<int, string> DocExamples()
    {
        var text = File.ReadAllText(Path.Combine(RepoCopy, "docs", "policy.md"));
        var data = new TheoryData<int, string>();
        foreach (Match m in YamlBlock().Matches(text))
            data.Add(text[..m.Index].Count(c => c == '\n') + 2, m.Groups[1].Value);
        return data;
    }

    [Theory]
    [MemberData(nameof(DocExamples))]
    public void EveryYamlExampleInTheDocsLoadsAndValidatesAgainstTheSchema(int line, string yaml)
    {
        var result = PolicyLoader.Load(yaml, $"docs/policy.md:{line}", DocsHost());
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        Assert.Empty(result.Warnings);
        Assert.Empty(Schema.Value.Validate(MiniJsonSchema.FromYaml(yaml)));
    }

    [Fact]
    public void TheDocsHaveExamples() => Assert.True(DocExamples().Count >= 4);

    [Theory]
    [InlineData("unknown key", "version: 1\nendpoint_sets: [{name: a, addresses: [1.2.3.4], colour: red}]\nrules: [{name: r, endpoint_set: a, mode: audit, allow: {}}]")]
    [InlineData("port out of range", "version: 1\nendpoint_sets: [{name: a, addresses: [1.2.3.4], ports: [70000]}]\nrules: [{name: r, endpoint_set: a, mode: audit, allow: {}}]")]
    [InlineData("port as string", "version: 1\nendpoint_sets: [{name: a, addresses: [1.2.3.4], ports: [\"80\"]}]\nrules: [{name: r, endpoint_set: a, mode: audit, allow: {}}]")]
    [InlineData("empty users", "version: 1\nendpoint_sets: [{name: a, addresses: [1.2.3.4]}]\nrules: [{name: r, endpoint_set: a, mode: audit, allow: {users: []}}]")]
    [InlineData("missing mode", "version: 1\nendpoint_sets: [{name: a, addresses: [1.2.3.4]}]\nrules: [{name: r, endpoint_set: a, allow: {}}]")]
    [InlineData("unknown mode", "version: 1\nendpoint_sets: [{name: a, addresses: [1.2.3.4]}]\nrules: [{name: r, endpoint_set: a, mode: block, allow: {}}]")]
    [InlineData("host name", "version: 1\nendpoint_sets: [{name: a, addresses: [metadata.google.internal]}]\nrules: [{name: r, endpoint_set: a, mode: audit, allow: {}}]")]
    [InlineData("relative executable", "version: 1\nendpoint_sets: [{name: a, addresses: [1.2.3.4]}]\nrules: [{name: r, endpoint_set: a, mode: audit, allow: {executables: [bin/x]}}]")]
    [InlineData("version 2", "version: 2\nendpoint_sets: [{name: a, addresses: [1.2.3.4]}]\nrules: [{name: r, endpoint_set: a, mode: audit, allow: {}}]")]
    [InlineData("missing allow", "version: 1\nendpoint_sets: [{name: a, addresses: [1.2.3.4]}]\nrules: [{name: r, endpoint_set: a, mode: audit}]")]
    public void ShapeErrorsAreRejectedByBothTheLoaderAndTheSchema(string name, string yaml)
    {
        Assert.False(PolicyLoader.Load(yaml, "p.yaml", new FakeHostPrincipals()).IsValid, name);
        Assert.NotEmpty(Schema.Value.Validate(MiniJsonSchema.FromYaml(yaml)));
    }

    [Fact]
    public void ShowOutputLoadsBackAsTheSamePolicyAndTheJsonFormValidates()
    {
        var host = DocsHost();
        const string source = """
            version: 1
            endpoint_sets:
              - name: meta
                description: "quotes \" and: colons # and hashes"
                addresses: ["::ffff:169.254.169.254", fd00:ec2::254, 10.0.0.0/8, "fe80::"]
                ports: [80, 443]
                protocols: [tcp]
              - name: "123"
                addresses: [169.254.170.23]
            rules:
              - name: r
                endpoint_set: meta
                mode: enforce
                allow:
                  users: [root, 1000]
                  groups: [adm]
                  executables: [/usr/bin/python3]
                  cgroups: [/system.slice/cloud-init.service]
              - name: "true"
                endpoint_set: "123"
                mode: audit
                allow: {}
            """;
        var policy = PolicyLoader.Load(source, "p.yaml", host).Policy!;
        var expected = PolicyCompiler.Compile(policy);
        foreach (var text in new[] { PolicyText.ToYaml(policy), PolicyText.ToJson(policy) })
        {
            var again = PolicyLoader.Load(text, "shown", host);
            Assert.True(again.IsValid, text + "\n" + string.Join("\n", again.Errors));
            var compiled = PolicyCompiler.Compile(again.Policy!);
            Assert.Equal(expected.Config, compiled.Config);
            Assert.Equal(expected.Destinations, compiled.Destinations);
            Assert.Equal(expected.Ports, compiled.Ports);
            Assert.Equal(expected.Allow, compiled.Allow);
            Assert.Equal(expected.Rules, compiled.Rules);
            Assert.Equal(policy.EndpointSets[0].Description, again.Policy!.EndpointSets[0].Description);
        }
        Assert.Empty(Schema.Value.Validate(JsonNode.Parse(PolicyText.ToJson(policy))));
        Assert.Contains("- 169.254.169.254\n", PolicyText.ToYaml(policy)); // the mapped form is shown as the IPv4 it is judged as
    }

    [GeneratedRegex(@"```yaml\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex YamlBlock();
}

public class DefaultPolicyDocsTests
{
    [Fact]
    public void DocsShowTheEmbeddedDefaultVerbatim()
    {
        var docs = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "repo", "docs", "policy.md"));
        var body = DefaultPolicy.Text[DefaultPolicy.Text.IndexOf("version: 1", StringComparison.Ordinal)..];
        Assert.Contains("```yaml\n" + body + "```", docs);
    }
}
