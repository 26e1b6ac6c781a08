namespace Vigil.Tests.Kernel.Support;

/// <summary>Two network namespaces joined by a veth pair, created for one test and always removed.
/// The veth is created inside the server namespace with its peer moved into the client namespace,
/// so no interface ever appears in the host's namespace.</summary>
public sealed class TestNetwork : IDisposable
{
    private static int _counter;

    public string Server { get; }
    public string Client { get; }
    public const string Interface = "veth0";
    public string ServerV4 { get; }
    public string ClientV4 { get; }
    public string ServerV6 { get; }
    public string ClientV6 { get; }

    public TestNetwork()
    {
        int n = Interlocked.Increment(ref _counter);
        int pid = Environment.ProcessId;
        Server = $"vgt{pid}x{n}s";
        Client = $"vgt{pid}x{n}c";
        // Addresses only ever exist inside these namespaces.
        int b = 100 + (pid + n) % 100;
        ServerV4 = $"10.{b}.{n % 250}.1";
        ClientV4 = $"10.{b}.{n % 250}.2";
        ServerV6 = $"fd00:{b}:{n % 250}::1";
        ClientV6 = $"fd00:{b}:{n % 250}::2";
        try
        {
            Ip("netns", "add", Server);
            Ip("netns", "add", Client);
            Ip("-n", Server, "link", "add", Interface, "type", "veth", "peer", "name", Interface, "netns", Client);
            foreach (var (ns, v4, v6) in new[] { (Server, ServerV4, ServerV6), (Client, ClientV4, ClientV6) })
            {
                Ip("-n", ns, "addr", "add", v4 + "/24", "dev", Interface);
                Ip("-n", ns, "addr", "add", v6 + "/64", "dev", Interface, "nodad");
                Ip("-n", ns, "link", "set", "lo", "up");
                Ip("-n", ns, "link", "set", Interface, "up");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private static void Ip(params string[] args) => Proc.Run("ip", args).EnsureSuccess("ip " + string.Join(' ', args));

    /// <summary>Runs a command inside a namespace (ip netns exec).</summary>
    public static Proc.Result Exec(string ns, params string[] command) =>
        Proc.Run("ip", new[] { "netns", "exec", ns }.Concat(command), TimeSpan.FromSeconds(60));

    public static Proc.Running StartIn(string ns, params string[] command) =>
        Proc.Start("ip", new[] { "netns", "exec", ns }.Concat(command));

    public void Dispose()
    {
        // Deleting a namespace removes its veth end, and with it the peer.
        foreach (var ns in new[] { Server, Client })
            Proc.Run("ip", "netns", "delete", ns);
    }
}
