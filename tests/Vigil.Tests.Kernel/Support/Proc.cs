using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Vigil.Tests.Kernel.Support;

/// <summary>Runs real programs (ip, tcpdump, tshark, curl, the vigil binary) for end-to-end tests.</summary>
public static partial class Proc
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public Result EnsureSuccess(string what) =>
            ExitCode == 0 ? this : throw new InvalidOperationException($"{what} failed ({ExitCode}): {Stderr.Trim()} {Stdout.Trim()}");
    }

    public static Result Run(string file, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null)
    {
        using var p = Start(file, args, redirectStdin: stdin is not null);
        if (stdin is not null)
        {
            p.Process.StandardInput.Write(stdin);
            p.Process.StandardInput.Close();
        }
        if (!p.Process.WaitForExit(timeout ?? TimeSpan.FromSeconds(30)))
        {
            p.Process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }
        p.Process.WaitForExit();
        return new Result(p.Process.ExitCode, p.Stdout, p.Stderr);
    }

    public static Result Run(string file, params string[] args) => Run(file, (IEnumerable<string>)args);

    public static Running Start(string file, IEnumerable<string> args, bool redirectStdin = false, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectStdin,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        return new Running(process);
    }

    /// <summary>A started process whose output is collected as it comes.</summary>
    public sealed class Running : IDisposable
    {
        private readonly StringBuilder _out = new(), _err = new();
        private readonly object _lock = new();
        public Process Process { get; }

        public Running(Process process)
        {
            Process = process;
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_lock) _out.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_lock) _err.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public string Stdout { get { lock (_lock) return _out.ToString(); } }
        public string Stderr { get { lock (_lock) return _err.ToString(); } }

        /// <summary>Waits until stderr or stdout contains <paramref name="text"/>; throws with the output on timeout or exit.</summary>
        public void WaitFor(string text, TimeSpan timeout)
        {
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < timeout)
            {
                if (Stderr.Contains(text) || Stdout.Contains(text)) return;
                if (Process.HasExited)
                {
                    Process.WaitForExit();
                    if (Stderr.Contains(text) || Stdout.Contains(text)) return;
                    throw new InvalidOperationException($"process exited ({Process.ExitCode}) before printing '{text}': {Stderr}");
                }
                Thread.Sleep(20);
            }
            throw new TimeoutException($"no '{text}' within {timeout}: stderr={Stderr}");
        }

        /// <summary>Sends SIGINT (as Ctrl-C would) and waits for the process to exit.</summary>
        public int Interrupt(TimeSpan timeout)
        {
            if (!Process.HasExited) kill(Process.Id, 2);
            if (!Process.WaitForExit(timeout))
            {
                Process.Kill(entireProcessTree: true);
                throw new TimeoutException("process did not exit after SIGINT");
            }
            Process.WaitForExit(); // flush async output readers
            return Process.ExitCode;
        }

        /// <summary>Sends a signal (SIGHUP = 1, SIGINT = 2, ...).</summary>
        public void Signal(int signal) => kill(Process.Id, signal);

        public void Dispose()
        {
            try { if (!Process.HasExited) Process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            Process.Dispose();
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
