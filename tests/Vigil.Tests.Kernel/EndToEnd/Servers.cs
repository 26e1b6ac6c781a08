using System.Diagnostics;
using Vigil.Tests.Kernel.Support;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>Real servers and clients for the end-to-end tests, run inside test namespaces.</summary>
public static class Servers
{
    public const int Nobody = 65534;

    /// <summary>Directory served by the HTTP server: a small index and a 256 KiB file.</summary>
    public static string WebRoot { get; } = CreateWebRoot();

    private static string CreateWebRoot()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"vigil-e2e-www-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "index.html"), "<p>vigil</p>\n");
        File.WriteAllBytes(Path.Combine(dir, "big.bin"), Enumerable.Range(0, 256 * 1024).Select(i => (byte)i).ToArray());
        File.SetUnixFileMode(dir, (UnixFileMode)0x1ED); // 0755: readable by the unprivileged server
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(dir, recursive: true);
        return dir;
    }

    /// <summary>python3 http.server, dual-stack on [::]:port, optionally as uid nobody (setpriv execs, so the pid is the server's).</summary>
    public static Proc.Running Http(string ns, int port, bool asNobody = true, string? cgroupProcs = null)
    {
        var cmd = new List<string>();
        if (asNobody) cmd.AddRange(["setpriv", "--reuid", $"{Nobody}", "--regid", $"{Nobody}", "--clear-groups"]);
        cmd.AddRange(["/usr/bin/python3", "-u", "-m", "http.server", "--bind", "::", "--directory", WebRoot, $"{port}"]);
        var p = StartIn(ns, cgroupProcs, cmd.ToArray());
        WaitListening(ns, port);
        return p;
    }

    /// <summary>Starts a command in a namespace, optionally inside a cgroup (given by its cgroup.procs file).
    /// The cgroup is joined first: `ip netns exec` remounts /sys and hides cgroup2. Every step execs, so the
    /// returned process id is the command's.</summary>
    public static Proc.Running StartIn(string ns, string? cgroupProcs, params string[] command)
    {
        if (cgroupProcs is null) return TestNetwork.StartIn(ns, command);
        var line = string.Join(' ', new[] { "ip", "netns", "exec", ns }.Concat(command).Select(a => $"'{a}'"));
        return Proc.Start("/bin/sh", ["-c", $"echo $$ > '{cgroupProcs}' && exec {line}"]);
    }

    /// <summary>netcat (openbsd) listening on IPv4 port, printing what it receives.</summary>
    public static Proc.Running Netcat(string ns, int port)
    {
        var p = TestNetwork.StartIn(ns, "nc", "-l", $"{port}");
        WaitListening(ns, port);
        return p;
    }

    public static void WaitListening(string ns, int port)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(15))
        {
            var r = TestNetwork.Exec(ns, "ss", "-Hltn", $"sport = :{port}");
            if (r.Stdout.Trim().Length > 0) return;
            Thread.Sleep(50);
        }
        throw new TimeoutException($"nothing listens on port {port} in {ns}");
    }

    public static void Curl(string ns, string url) =>
        TestNetwork.Exec(ns, "curl", "-sS", "-g", "-o", "/dev/null", "--max-time", "10", url).EnsureSuccess("curl " + url);

    public static void NetcatSend(string ns, string host, int port, string text) =>
        Proc.Run("ip", ["netns", "exec", ns, "nc", "-N", "-w", "5", host, $"{port}"], TimeSpan.FromSeconds(15), stdin: text)
            .EnsureSuccess("nc " + host);

    public static void PythonRequest(string ns, string host, int port)
    {
        var script = $"import socket\ns=socket.create_connection(('{host}',{port}),timeout=10)\n" +
                     "s.sendall(b'GET /index.html HTTP/1.0\\r\\n\\r\\n')\n" +
                     "while s.recv(65536): pass\ns.close()\n";
        TestNetwork.Exec(ns, "/usr/bin/python3", "-c", script).EnsureSuccess("python client");
    }

    private static int _port = 20000 + Environment.ProcessId % 20000;
    public static int NextPort() => Interlocked.Increment(ref _port);
}
