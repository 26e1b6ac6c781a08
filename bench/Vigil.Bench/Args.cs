namespace Vigil.Bench;

/// <summary>Tiny "--name value" parser: the bench is driven by a script, not typed by people.</summary>
public sealed class Args
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    private Args(IEnumerable<string> args)
    {
        string? name = null;
        foreach (var a in args)
        {
            if (a.StartsWith("--", StringComparison.Ordinal)) { name = a[2..]; _values[name] = "true"; }
            else if (name is not null) { _values[name] = a; name = null; }
            else throw new ArgumentException($"unexpected argument '{a}'");
        }
    }

    public string Get(string name, string fallback) => _values.TryGetValue(name, out var v) ? v : fallback;
    public string Require(string name) => _values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"--{name} is required");
    public long Long(string name, long fallback) => _values.TryGetValue(name, out var v) ? long.Parse(v) : fallback;
    public int Int(string name, int fallback) => (int)Long(name, fallback);

    public static int Run(string[] args, Func<string, Func<Args, int>?> verbs)
    {
        const string usage = "usage: Vigil.Bench ring|tc-cost|sensor|guard-cost [--option value]... (see eng/bench.sh)";
        if (args.Length == 0) { Console.Error.WriteLine(usage); return 1; }
        var verb = verbs(args[0]);
        if (verb is null) { Console.Error.WriteLine(usage); return 1; }
        try
        {
            return verb(new Args(args.Skip(1)));
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
