using System.CommandLine;
using Vigil.Cli.Policy;
using Vigil.Core.Policy;

namespace Vigil.Cli.Commands;

/// <summary><c>vigil policy check FILE</c> and <c>vigil policy show [FILE]</c> (docs/policy.md).</summary>
public static class PolicyCommand
{
    public static Command Create()
    {
        var policy = new Command("policy", "Check and show guard policies (docs/policy.md)");
        policy.Subcommands.Add(CreateCheck());
        policy.Subcommands.Add(CreateShow());
        policy.Subcommands.Add(CreateApply());
        return policy;
    }

    private static Command CreateApply()
    {
        var file = new Argument<string>("FILE") { Description = "the policy file (YAML)" };
        var pinDir = GuardCommand.PinDirOption();
        var apply = new Command("apply", "Validate a policy and swap it into the running (pinned) guard in one atomic step; " +
            "an invalid policy changes nothing (exit 2 with every error)") { file, pinDir };
        apply.SetAction(parse => Apply(parse.GetValue(file)!, parse.GetValue(pinDir), new SystemHostPrincipals(), Console.Out, Console.Error));
        return apply;
    }

    public static int Apply(string path, string? pinDir, IHostPrincipals host, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            // Validated before anything in the kernel is looked at.
            var result = PolicyLoader.LoadFile(path, host);
            if (result.Policy is null) { Report(result, stderr); return ExitCodes.Usage; }
            using var pins = Vigil.Sensors.Guard.GuardPins.Open(GuardCommand.ResolvePinDir(pinDir));
            if (pins.TcInterfaces().Count > 0) result = PacketEnforcerLimits.Apply(result); // what the pinned enforcer can judge
            if (Report(result, stderr) is not { } policy) return ExitCodes.Usage;
            var compiled = PolicyCompiler.Compile(policy);
            var contents = GuardWatch.ToMapContents(policy, compiled, $"vigil policy apply (pid {Environment.ProcessId})");
            Vigil.Interop.LibbpfRuntime.EnsureLoaded();
            using var obj = pins.OpenMaps();
            uint generation = new Vigil.Sensors.Guard.GuardMaps(obj, pins).Swap(contents);
            stdout.WriteLine($"vigil: applied {policy.Source} to the guard pinned in {pins.Directory}: generation {generation}, " +
                             $"{compiled.Rules.Count} rule{(compiled.Rules.Count == 1 ? "" : "s")} ({string.Join(", ", compiled.Rules.Select(r => $"{r.Name}: {PolicyText.ModeName(r.Mode)}"))})");
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e, stderr);
        }
    }

    private static Command CreateCheck()
    {
        var file = new Argument<string>("FILE") { Description = "the policy file (YAML)" };
        var check = new Command("check", "Validate a policy file and show what it compiles to; changes nothing. " +
            "Exit 0 when valid, 2 with every error (file:line:col: field: message) when not") { file };
        check.SetAction(parse => Check(parse.GetValue(file)!, new SystemHostPrincipals(), Console.Out, Console.Error));
        return check;
    }

    private static Command CreateShow()
    {
        var file = new Argument<string?>("FILE") { Description = "the policy file (default: the embedded default policy)", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string>("--output", "-o") { Description = "yaml (with resolved names in comments) or json (one object)", DefaultValueFactory = _ => "yaml" };
        output.AcceptOnlyFromAmong("yaml", "json");
        var show = new Command("show", "Print the effective policy: the file's, or the embedded default when no file is given") { file, output };
        show.SetAction(parse => Show(parse.GetValue(file), parse.GetValue(output) ?? "yaml", new SystemHostPrincipals(), Console.Out, Console.Error));
        return show;
    }

    public static int Check(string path, IHostPrincipals host, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var result = PolicyLoader.LoadFile(path, host);
            if (Report(result, stderr) is not { } policy) return ExitCodes.Usage;
            stdout.Write(PolicySummary.Describe(policy, PolicyCompiler.Compile(policy)));
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e, stderr);
        }
    }

    public static int Show(string? path, string output, IHostPrincipals host, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var result = path is null ? DefaultPolicy.Load(host) : PolicyLoader.LoadFile(path, host);
            if (Report(result, stderr) is not { } policy) return ExitCodes.Usage;
            if (output == "json") stdout.WriteLine(PolicyText.ToJson(policy));
            else stdout.Write(PolicyText.ToYaml(policy));
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            return ExitCodes.Report(e, stderr);
        }
    }

    /// <summary>Writes every warning and error, one per line; returns the policy when there was no error.</summary>
    private static GuardPolicy? Report(PolicyLoadResult result, TextWriter stderr)
    {
        foreach (var d in result.Diagnostics) stderr.WriteLine(d.ToString());
        return result.Policy;
    }
}
