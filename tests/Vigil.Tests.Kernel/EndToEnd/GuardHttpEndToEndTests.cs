using System.Text.Json;
using Vigil.Tests.Kernel.Support;
using static Vigil.Tests.Kernel.Support.GuardBed;

namespace Vigil.Tests.Kernel.EndToEnd;

/// <summary>HTTP audit in `vigil watch guard`: requests of real clients (curl IMDSv1, curl's IMDSv2 PUT +
/// GET, python urllib) to a fake IMDS in a test namespace are captured at cgroup egress with the identity
/// connect saw, parsed, classified, and written with every token redacted.</summary>
public class GuardHttpEndToEndTests
{
    private const int AllowedUid = 47001, AuditedUid = 47002, Gid = 47100;
    private const string Python = "/usr/bin/python3";

    private static string Policy(string mode = "audit") => $"""
        version: 1
        endpoint_sets:
          - name: metadata
            addresses: [{MetadataV4}, {MetadataV6}]
            ports: [80]
        rules:
          - name: imds
            endpoint_set: metadata
            mode: {mode}
            allow:
              users: [{AllowedUid}]
        """;

    private const string UrllibClient = """
        import os, sys, time, urllib.request
        print(f"pid={os.getpid()}", flush=True)
        req = urllib.request.Request(sys.argv[1], headers={"Metadata": "true", "X-Forwarded-For": "10.0.0.1"})
        print(urllib.request.urlopen(req, timeout=5).status, flush=True)
        time.sleep(1)  # vigil names the executable from /proc/PID/exe while the process lives
        """;

    private static string Url(string host, string path) => host.Contains(':') ? $"http://[{host}]{path}" : $"http://{host}{path}";

    /// <summary>IMDSv2 as the AWS docs write it: PUT for a token, then GET with it.</summary>
    private static string Imdsv2Script(string host) =>
        $"TOKEN=$(curl -sS -g -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' '{Url(host, "/latest/api/token")}') && " +
        $"curl -sS -g -H \"X-aws-ec2-metadata-token: $TOKEN\" '{Url(host, "/latest/meta-data/iam/security-credentials/role")}'";

    /// <summary>Runs a shell script as <paramref name="who"/> (a file: the bed quotes every argument).</summary>
    private static Proc.Result Sh(GuardBed bed, As who, string script)
    {
        var path = Path.Combine(bed.Dir, $"script-{Guid.NewGuid():N}.sh");
        File.WriteAllText(path, script + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0x1A4);
        return bed.Run(who, "/bin/sh", path);
    }

    private static List<JsonElement> Where(List<JsonElement> events, string method, string path, string daddr) =>
        events.Where(e => e.GetProperty("method").GetString() == method && e.GetProperty("path").GetString() == path &&
                          e.GetProperty("daddr").GetString() == daddr).ToList();

    private static string[] Classes(JsonElement e) => e.GetProperty("classes").EnumerateArray().Select(c => c.GetString()!).ToArray();

    [Fact]
    [Trait("Matrix", "true")] // socket storage in connect4/6 and the payload copy at cgroup_skb egress, on every kernel
    [Trait(MatrixHooks.Trait, "guard/http-capture")] // a row of docs/kernels.md: sk_storage from sock_addr + payload copy at egress
    public void CurlAndPythonRequestsAreClassifiedWithTheClientsIdentityAndTokensNeverAppear()
    {
        using var bed = new GuardBed(imds: true);
        var urllib = Path.Combine(bed.Dir, "urllib_client.py");
        File.WriteAllText(urllib, UrllibClient);
        File.SetUnixFileMode(urllib, (UnixFileMode)0x1A4);
        bed.StartVigil(bed.WritePolicy(Policy()));

        var audited = new As(AuditedUid, Gid);
        var allowed = new As(AllowedUid, Gid);
        var pythonPids = new Dictionary<string, int>();
        foreach (var host in new[] { MetadataV4, MetadataV6 })
        {
            var v1 = bed.Run(audited, "curl", "-sS", "-g", "-o", "/dev/null", "-w", "%{http_code}", Url(host, "/latest/meta-data/"));
            Assert.True(v1.Stdout.Trim() == "200", $"IMDSv1 to {host}: {v1.Stdout} {v1.Stderr}");
            var v2 = Sh(bed, allowed, Imdsv2Script(host));
            Assert.True(v2.Stdout.Contains("SecretAccessKey"), $"IMDSv2 to {host}: {v2.Stdout} {v2.Stderr}");
            var py = bed.Run(audited, Python, urllib, Url(host, "/latest/user-data"));
            Assert.True(py.Stdout.Split('\n')[1].Trim() == "200", $"urllib to {host}: {py.Stdout} {py.Stderr}");
            pythonPids[host] = int.Parse(py.Stdout.Split('\n')[0]["pid=".Length..]);
        }

        var (guard, stats) = bed.StopVigil();
        var http = bed.HttpEvents;
        // The token the server issued reached curl (the GET succeeded with it) but no output of vigil.
        Assert.DoesNotContain(bed.ImdsToken, bed.LastStdout + bed.LastStderr);
        Assert.True(http.Count == 8, $"{http.Count} requests; stats {stats}"); // per family: IMDSv1 GET, token PUT, IMDSv2 GET, urllib GET
        Assert.All(http, e => Assert.Equal("cgroup", e.GetProperty("capture").GetString()));
        Assert.All(http, e => Assert.Equal(bed.CgroupRelative, e.GetProperty("cgroup").GetString()));
        Assert.All(http, e => Assert.False(e.GetProperty("truncated").GetBoolean()));

        foreach (var host in new[] { MetadataV4, MetadataV6 })
        {
            var hook = host == MetadataV4 ? "connect4" : "connect6";
            var v1 = Assert.Single(Where(http, "GET", "/latest/meta-data/", host));
            Assert.Equal(["imdsv1"], Classes(v1));
            Assert.Equal("audit", v1.GetProperty("verdict").GetString());
            Assert.Equal(AuditedUid, v1.GetProperty("uid").GetInt32());
            Assert.Equal("curl", v1.GetProperty("comm").GetString());
            Assert.Equal(hook, v1.GetProperty("hook").GetString());
            Assert.Equal("imds", v1.GetProperty("rule").GetString());

            var put = Assert.Single(Where(http, "PUT", "/latest/api/token", host));
            Assert.Equal(["aws_token_request"], Classes(put));
            Assert.Equal("allowed", put.GetProperty("verdict").GetString());
            Assert.Equal(AllowedUid, put.GetProperty("uid").GetInt32());
            var ttl = put.GetProperty("headers").EnumerateArray().Single(h => h.GetProperty("name").GetString() == "X-aws-ec2-metadata-token-ttl-seconds");
            Assert.Equal("60", ttl.GetProperty("value").GetString()); // a TTL is not a secret

            var v2 = Assert.Single(Where(http, "GET", "/latest/meta-data/iam/security-credentials/role", host));
            Assert.Equal(["imdsv2", "sensitive_path"], Classes(v2));
            Assert.Equal("aws_credentials", v2.GetProperty("sensitive_path").GetString());
            Assert.Equal("curl", v2.GetProperty("comm").GetString());
            var token = v2.GetProperty("headers").EnumerateArray().Single(h => h.GetProperty("name").GetString() == "X-aws-ec2-metadata-token");
            Assert.Equal("[redacted]", token.GetProperty("value").GetString());
            Assert.True(token.GetProperty("redacted").GetBoolean());

            var py = Assert.Single(Where(http, "GET", "/latest/user-data", host));
            Assert.Equal(["imdsv1", "azure", "sensitive_path", "x_forwarded_for"], Classes(py));
            Assert.Equal("aws_user_data", py.GetProperty("sensitive_path").GetString());
            Assert.Equal(pythonPids[host], py.GetProperty("pid").GetInt32());
            Assert.Equal("python3", py.GetProperty("comm").GetString());
            Assert.Equal(Proc.Run("readlink", "-f", Python).Stdout.Trim(), py.GetProperty("exe").GetString());
            Assert.Equal(AuditedUid, py.GetProperty("uid").GetInt32());
            Assert.Equal(Gid, py.GetProperty("gid").GetInt32());
            Assert.Equal(host.Contains(':') ? $"[{host}]" : host, py.GetProperty("host").GetString());
        }

        // Audit decisions are still reported as guard events (the audited uid's connects), and the counters add up.
        Assert.All(guard, e => Assert.Equal(AuditedUid, e.GetProperty("uid").GetInt32()));
        var k = stats.GetProperty("kernel");
        Assert.Equal(k.GetProperty("allowed").GetUInt64() + k.GetProperty("audited").GetUInt64(),
                     k.GetProperty("http_tracked").GetUInt64() + k.GetProperty("http_no_storage").GetUInt64());
        Assert.Equal(0UL, k.GetProperty("http_lost").GetUInt64());
        Assert.Equal(8, stats.GetProperty("http").GetProperty("requests").GetInt32());
        Assert.Equal(k.GetProperty("http_records").GetUInt64(), stats.GetProperty("http").GetProperty("records").GetUInt64());
    }

    [Fact]
    public void TheTableShowsRequestsWithTheTokenRedacted()
    {
        using var bed = new GuardBed(imds: true);
        var policy = bed.WritePolicy(Policy());
        var proc = Proc.Start(Repo.Vigil, ["watch", "guard", "-o", "table", "--policy", policy, "--cgroup", bed.Cgroup, "--no-pin"]);
        try
        {
            proc.WaitFor("vigil: guarding", TimeSpan.FromSeconds(30));
            var r = Sh(bed, new As(AuditedUid, Gid), Imdsv2Script(MetadataV4) + "; curl -sS -o /dev/null " +
                            $"'http://{MetadataV4}/latest/meta-data/?access_token=VIGILQUERYSECRET'");
            Assert.Contains("SecretAccessKey", r.Stdout);
            Thread.Sleep(300);
            Assert.Equal(0, proc.Interrupt(TimeSpan.FromSeconds(20)));
            var lines = proc.Stdout.Split('\n');
            Assert.Contains(lines, l => l.Contains(" http ") && l.Contains("PUT /latest/api/token") && l.Contains("[aws_token_request]"));
            Assert.Contains(lines, l => l.Contains(" http ") && l.Contains("GET /latest/meta-data/iam/security-credentials/role") &&
                                        l.Contains("[imdsv2,sensitive_path]") && l.Contains("X-aws-ec2-metadata-token"));
            Assert.Contains(lines, l => l.Contains("GET /latest/meta-data/?access_token=[redacted]"));
            Assert.DoesNotContain(bed.ImdsToken, proc.Stdout + proc.Stderr);
            Assert.DoesNotContain("VIGILQUERYSECRET", proc.Stdout + proc.Stderr);
        }
        finally
        {
            proc.Dispose();
        }
    }

    [Fact]
    public void CapturesWithCapBpfCapPerfmonAndCapNetAdminOnly()
    {
        using var bed = new GuardBed(imds: true);
        const string caps = "-all,+bpf,+perfmon,+net_admin";
        string[] launcher = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
            $"--inh-caps={caps}", $"--ambient-caps={caps}", $"--bounding-set={caps}"];
        bed.StartVigil(bed.WritePolicy(Policy()), launcher: launcher, vigil: PrivilegeAndHookTests.WorldReadableVigil());
        var r = Sh(bed, new As(AuditedUid, Gid), Imdsv2Script(MetadataV6));
        Assert.Contains("SecretAccessKey", r.Stdout);
        bed.StopVigil();
        Assert.Equal(["PUT", "GET"], bed.HttpEvents.Select(e => e.GetProperty("method").GetString()!).ToArray());
        Assert.Equal(["aws_token_request"], Classes(bed.HttpEvents[0]));
        Assert.DoesNotContain(bed.ImdsToken, bed.LastStdout + bed.LastStderr);
    }

    [Fact]
    public void DeniedConnectsCaptureNothingAndHttpBytesZeroTurnsCaptureOff()
    {
        using var bed = new GuardBed(imds: true);
        bed.StartVigil(bed.WritePolicy(Policy("enforce")), extra: ["--http-bytes", "0"]);
        Assert.Equal("200", bed.Run(new As(AllowedUid, Gid), "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", Url(MetadataV4, "/latest/meta-data/")).Stdout.Trim());
        Assert.Equal(7, bed.Run(new As(AuditedUid, Gid), "curl", "-sS", "-o", "/dev/null", Url(MetadataV4, "/latest/meta-data/")).ExitCode);
        var (guard, stats) = bed.StopVigil();
        Assert.Single(guard);
        Assert.Empty(bed.HttpEvents);
        Assert.Equal(0UL, stats.GetProperty("kernel").GetProperty("http_tracked").GetUInt64());
    }
}

/// <summary>`vigil watch http --iface lo` run inside the bed's namespace (ip netns exec): the socket filter
/// passes curl's requests to the fake IMDS, user space parses and classifies them, tokens redacted.</summary>
public class WatchHttpEndToEndTests
{
    private static string Policy(GuardBed bed) => bed.WritePolicy($"""
        version: 1
        endpoint_sets:
          - name: metadata
            addresses: [{MetadataV4}, {MetadataV6}]
            ports: [80]
        rules:
          - name: imds
            endpoint_set: metadata
            mode: audit
            allow:
              users: [0]
        """);

    [Fact]
    public void ClassifiesCurlsRequestsOnLoopbackWithoutIdentityAndRedactsTheToken()
    {
        using var bed = new GuardBed(imds: true);
        var vigil = Proc.Start("ip", ["netns", "exec", bed.Netns, Repo.Vigil, "watch", "http", "--iface", "lo", "-o", "json", "--policy", Policy(bed)]);
        try
        {
            vigil.WaitFor("vigil: watching HTTP", TimeSpan.FromSeconds(30));
            foreach (var host in new[] { MetadataV4, $"[{MetadataV6}]" })
            {
                var token = TestNetwork.Exec(bed.Netns, "curl", "-sS", "-g", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", $"http://{host}/latest/api/token").Stdout.Trim();
                Assert.Equal(bed.ImdsToken, token);
                var creds = TestNetwork.Exec(bed.Netns, "curl", "-sS", "-g", "-H", $"X-aws-ec2-metadata-token: {token}", $"http://{host}/latest/meta-data/iam/security-credentials/r");
                Assert.Contains("SecretAccessKey", creds.Stdout);
                TestNetwork.Exec(bed.Netns, "curl", "-sS", "-g", "-o", "/dev/null", $"http://{host}:81/"); // unguarded port: refused, and not shown
            }
            Thread.Sleep(300);
            Assert.Equal(0, vigil.Interrupt(TimeSpan.FromSeconds(20)));
            Assert.DoesNotContain(bed.ImdsToken, vigil.Stdout + vigil.Stderr);
            var events = vigil.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(4, events.Count);
            Assert.All(events, e => Assert.Equal("packet", e.GetProperty("capture").GetString()));
            Assert.All(events, e => Assert.Equal(JsonValueKind.Null, e.GetProperty("pid").ValueKind));
            Assert.All(events, e => Assert.Equal(JsonValueKind.Null, e.GetProperty("uid").ValueKind));
            Assert.All(events, e => Assert.Equal(80, e.GetProperty("dport").GetInt32()));
            Assert.Equal(["aws_token_request", "imdsv2,sensitive_path", "aws_token_request", "imdsv2,sensitive_path"],
                events.Select(e => string.Join(',', e.GetProperty("classes").EnumerateArray().Select(c => c.GetString()))).ToArray());
            Assert.Equal([4, 4, 6, 6], events.Select(e => e.GetProperty("family").GetInt32()).ToArray());
            var tokenHeader = events[1].GetProperty("headers").EnumerateArray().Single(h => h.GetProperty("name").GetString() == "X-aws-ec2-metadata-token");
            Assert.Equal("[redacted]", tokenHeader.GetProperty("value").GetString());
            var stats = JsonDocument.Parse(vigil.Stderr.Split('\n').Last(l => l.StartsWith("{\"kernel\"", StringComparison.Ordinal))).RootElement;
            Assert.True(stats.GetProperty("kernel").GetProperty("unguarded").GetUInt64() > 0); // the port-81 attempts and the server's replies, dropped in the kernel
        }
        finally
        {
            vigil.Dispose();
        }
    }

    [Fact]
    public void WithoutCapNetRawItSaysSoAndExitsOne()
    {
        using var bed = new GuardBed();
        const string caps = "-all,+bpf,+perfmon,+net_admin";
        var r = Proc.Run("ip", ["netns", "exec", bed.Netns, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
            $"--inh-caps={caps}", $"--ambient-caps={caps}", $"--bounding-set={caps}",
            PrivilegeAndHookTests.WorldReadableVigil(), "watch", "http", "--iface", "lo", "--policy", Policy(bed)], TimeSpan.FromSeconds(30));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("needs CAP_NET_RAW", r.Stderr);
    }
}
