using System.Text.Json;

namespace Vigil.Tests.Kernel.Support;

/// <summary>A running `vigil watch tcp -o json`, and what it printed once stopped.</summary>
public sealed class VigilRun : IDisposable
{
    private readonly Proc.Running _proc;
    public const string Ready = "vigil: watching incoming TCP";

    private VigilRun(Proc.Running proc) => _proc = proc;

    /// <summary>Starts vigil (optionally through a launcher such as `ip netns exec NS setpriv …`) and waits until it is attached.</summary>
    public static VigilRun Start(IEnumerable<string> vigilArgs, IEnumerable<string>? launcher = null)
    {
        var all = (launcher ?? []).Concat([Repo.Vigil, "watch", "tcp", "-o", "json"]).Concat(vigilArgs).ToList();
        var proc = Proc.Start(all[0], all.Skip(1));
        var run = new VigilRun(proc);
        try
        {
            proc.WaitFor(Ready, TimeSpan.FromSeconds(30));
            proc.WaitFor("vigil: owners", TimeSpan.FromSeconds(10));
        }
        catch
        {
            run.Dispose();
            throw;
        }
        return run;
    }

    public IReadOnlyList<JsonElement> Events { get; private set; } = [];
    public JsonElement Stats { get; private set; }
    public string Stderr => _proc.Stderr;
    public int ExitCode { get; private set; }

    /// <summary>Lets the reader catch up (its poll timeout is 50 ms), stops vigil with SIGINT and parses its output.</summary>
    public VigilRun Stop()
    {
        Thread.Sleep(300);
        ExitCode = _proc.Interrupt(TimeSpan.FromSeconds(20));
        Events = _proc.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        var statsLine = _proc.Stderr.Split('\n').LastOrDefault(l => l.StartsWith("{\"kernel\"", StringComparison.Ordinal))
            ?? throw new InvalidOperationException("vigil printed no stats JSON on exit: " + _proc.Stderr);
        Stats = JsonDocument.Parse(statsLine).RootElement.Clone();
        return this;
    }

    public long Kernel(string name) => Stats.GetProperty("kernel").GetProperty(name).GetInt64();
    public long User(string name) => Stats.GetProperty("user").GetProperty(name).GetInt64();

    public void Dispose() => _proc.Dispose();
}
