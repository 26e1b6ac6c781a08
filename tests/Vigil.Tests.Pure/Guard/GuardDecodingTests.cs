using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Vigil.Core.Guard;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Outputs.Guard;
using Vigil.Wire;

namespace Vigil.Tests.Pure.Guard;

public class GuardEventDecoderTests
{
    /// <summary>A deny event of connect6; <paramref name="egress"/>: of the egress backstop (no task, no gid);
    /// <paramref name="unowned"/>: of the TC enforcer for a forwarded packet (no task, no owner at all).</summary>
    internal static unsafe byte[] Record(ushort kind = 2, ushort version = 1, uint? size = null, bool egress = false, bool unowned = false)
    {
        var buf = new byte[GuardEventDecoder.EventSize];
        bool packet = egress || unowned;
        var ev = new GuardEvent
        {
            CgroupId = unowned ? 0UL : 2761, ExeIno = packet ? 0UL : 248092UL, ExeDev = packet ? 0 : (254u << 20) | 1, Violated = 0b1010,
            Pid = packet ? 0u : 5803u, Tgid = packet ? 0u : 5802u, Uid = unowned ? GuardConstants.UnknownId : 4242,
            Gid = packet ? GuardConstants.UnknownId : 4243, Generation = 3, Suppressed = 17,
            Dport = 80, Family = 4, Protocol = 6, Verdict = (byte)GuardVerdict.Deny,
            Hook = (byte)(unowned ? GuardHook.TcEgress : egress ? GuardHook.Egress : GuardHook.Connect6), Rule = 1,
        };
        ev.Hdr = new EventHeader { Kind = kind, Version = version, Size = size ?? (uint)buf.Length, TsNs = 1_000_000_000 };
        byte[] addr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 169, 254, 169, 254];
        for (int i = 0; i < 16; i++) ev.Daddr[i] = addr[i];
        if (!packet) { var comm = "python3"u8; for (int i = 0; i < comm.Length; i++) ev.Comm[i] = comm[i]; }
        MemoryMarshal.Write(buf, in ev);
        return buf;
    }

    [Fact]
    public void DecodesEveryField()
    {
        Assert.Equal(DecodeResult.Ok, GuardEventDecoder.TryDecode(Record(), out var d));
        Assert.Equal(GuardVerdict.Deny, d.Verdict);
        Assert.Equal(GuardHook.Connect6, d.Hook);
        Assert.Equal(5802u, d.Tgid);
        Assert.Equal(5803u, d.Pid);
        Assert.Equal(4242u, d.Uid);
        Assert.Equal(4243u, d.Gid);
        Assert.Equal("python3", d.Comm.ToString());
        Assert.Equal(248092ul, d.ExeInode);
        Assert.Equal(254u, d.ExeDevMajor);
        Assert.Equal(1u, d.ExeDevMinor);
        Assert.Equal(2761ul, d.CgroupId);
        Assert.Equal("169.254.169.254", d.Destination.ToString());
        Assert.Equal(80, d.Port);
        Assert.Equal(1, d.Rule);
        Assert.Equal(0b1010ul, d.Violated);
        Assert.Equal(3u, d.Generation);
        Assert.Equal(17u, d.Suppressed);
    }

    [Fact]
    public void EgressRecordsHaveNoTaskAndNoGid()
    {
        Assert.Equal(DecodeResult.Ok, GuardEventDecoder.TryDecode(Record(egress: true), out var d));
        Assert.False(d.TaskKnown);
        Assert.Null(d.Gid);
    }

    [Fact]
    public void UnownedRecordsHaveNoUidNoGidAndNoCgroup()
    {
        Assert.Equal(DecodeResult.Ok, GuardEventDecoder.TryDecode(Record(unowned: true), out var d));
        Assert.Equal(GuardHook.TcEgress, d.Hook);
        Assert.False(d.TaskKnown);
        Assert.Null(d.Uid);
        Assert.Null(d.Gid);
        Assert.Equal(0ul, d.CgroupId);
    }

    [Fact]
    public void TruncatedAndForeignRecordsAreRejectedNotThrown()
    {
        var full = Record();
        Assert.Equal(DecodeResult.Truncated, GuardEventDecoder.TryDecode(full.AsSpan(0, 8), out _));
        Assert.Equal(DecodeResult.Truncated, GuardEventDecoder.TryDecode(full.AsSpan(0, full.Length - 1), out _));
        Assert.Equal(DecodeResult.UnknownKind, GuardEventDecoder.TryDecode(Record(kind: 1), out _));
        Assert.Equal(DecodeResult.UnsupportedVersion, GuardEventDecoder.TryDecode(Record(version: 9), out _));
        Assert.Equal(DecodeResult.Truncated, GuardEventDecoder.TryDecode(Record(size: 4096), out _));
        Assert.Equal(DecodeResult.Truncated, GuardEventDecoder.TryDecode(Record(size: 16), out _));
    }
}

public class ContainerIdTests
{
    private const string Id = "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";

    [Theory]
    [InlineData("/system.slice/docker-" + Id + ".scope", Id, "docker")]
    [InlineData("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-" + Id + ".scope", Id, "containerd")]
    [InlineData("/kubepods.slice/kubepods-pod99.slice/crio-" + Id + ".scope", Id, "crio")]
    [InlineData("/machine.slice/libpod-" + Id + ".scope", Id, "podman")]
    [InlineData("/docker/" + Id, Id, "docker")]
    [InlineData("/kubepods/besteffort/pod0a1b/" + Id, Id, "kubernetes")]
    public void FindsTheIdTheRuntimeNamedTheCgroupAfter(string path, string id, string runtime)
    {
        Assert.Equal(id, ContainerId.FromCgroupPath(path));
        Assert.Equal(runtime, ContainerId.RuntimeOf(path));
    }

    [Theory]
    [InlineData("/")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("/system.slice/ssh.service")]
    [InlineData("/user.slice/user-1000.slice/session-3.scope")]
    [InlineData("/" + Id)]                                     // 64 hex digits outside a runtime's tree: not a container
    [InlineData("/system.slice/docker-" + "abc" + ".scope")]   // too short
    [InlineData("/system.slice/docker.service")]
    public void OtherPathsRevealNoContainer(string? path) => Assert.Null(ContainerId.FromCgroupPath(path));
}

public class GuardJsonSinkTests
{
    internal sealed class Names : IGuardNames
    {
        public string? RuleName(int rule) => rule == 1 ? "metadata-root-only" : null;
        public string? CgroupPath(ulong cgroupId) => cgroupId == 2761 ? "/system.slice/docker-" + new string('a', 64) + ".scope" : null;
        public string? ExecutablePath(in GuardDecision d) => d.ExeInode == 248092 ? "/usr/bin/python3.11" : null;
        public string? UserName(uint uid) => uid == 4242 ? "builder" : null;
        public string CommText(in Comm16 comm) => comm.ToString();
    }

    private static JsonElement Write(byte[] record)
    {
        Assert.Equal(DecodeResult.Ok, GuardEventDecoder.TryDecode(record, out var d));
        var stream = new MemoryStream();
        using (var sink = new GuardJsonSink(stream, new TimeBase(0), new Names())) sink.Write(in d);
        var text = Encoding.UTF8.GetString(stream.ToArray());
        Assert.EndsWith("}\n", text);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public void WritesOneObjectWithTheDocumentedFieldsInOrder()
    {
        var e = Write(GuardEventDecoderTests.Record());
        Assert.Equal(
            ["time", "verdict", "hook", "rule_id", "rule", "violated", "policy_generation", "pid", "tid", "comm", "uid", "user", "gid",
             "exe", "exe_inode", "exe_dev", "cgroup_id", "cgroup", "container_id", "family", "protocol", "daddr", "dport", "suppressed"],
            e.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.Equal("1970-01-01T00:00:01.000000000Z", e.GetProperty("time").GetString());
        Assert.Equal("deny", e.GetProperty("verdict").GetString());
        Assert.Equal("connect6", e.GetProperty("hook").GetString());
        Assert.Equal("metadata-root-only", e.GetProperty("rule").GetString());
        Assert.Equal([1, 3], e.GetProperty("violated").EnumerateArray().Select(v => v.GetInt32()).ToArray());
        Assert.Equal(5802, e.GetProperty("pid").GetInt32());
        Assert.Equal(5803, e.GetProperty("tid").GetInt32());
        Assert.Equal("builder", e.GetProperty("user").GetString());
        Assert.Equal("/usr/bin/python3.11", e.GetProperty("exe").GetString());
        Assert.Equal("254:1", e.GetProperty("exe_dev").GetString());
        Assert.Equal(new string('a', 64), e.GetProperty("container_id").GetString());
        Assert.Equal("tcp", e.GetProperty("protocol").GetString());
        Assert.Equal("169.254.169.254", e.GetProperty("daddr").GetString());
        Assert.Equal(17, e.GetProperty("suppressed").GetInt32());
    }

    [Fact]
    public void UnknownsAreNullNotGuessed()
    {
        var e = Write(GuardEventDecoderTests.Record(egress: true));
        Assert.Equal("egress", e.GetProperty("hook").GetString());
        foreach (var field in new[] { "pid", "tid", "comm", "gid", "exe", "exe_inode", "exe_dev" })
            Assert.Equal(JsonValueKind.Null, e.GetProperty(field).ValueKind);
        Assert.Equal(4242, e.GetProperty("uid").GetInt32());
    }

    [Fact]
    public void AForwardedPacketHasNoOwnerAtAll()
    {
        var e = Write(GuardEventDecoderTests.Record(unowned: true));
        Assert.Equal("tc-egress", e.GetProperty("hook").GetString());
        foreach (var field in new[] { "pid", "tid", "comm", "uid", "user", "gid", "exe", "exe_inode", "exe_dev", "cgroup_id", "cgroup", "container_id" })
            Assert.Equal(JsonValueKind.Null, e.GetProperty(field).ValueKind);
        Assert.Equal("169.254.169.254", e.GetProperty("daddr").GetString());
    }
}

public class GuardTableSinkTests
{
    private static string Table(params byte[][] records)
    {
        var output = new StringWriter { NewLine = "\n" };
        var sink = new GuardTableSink(output, new TimeBase(0), new GuardJsonSinkTests.Names());
        foreach (var r in records)
        {
            Assert.Equal(DecodeResult.Ok, GuardEventDecoder.TryDecode(r, out var d));
            sink.Write(in d);
        }
        return output.ToString();
    }

    [Fact]
    public void OneRowPerDecisionWithFixedColumnsAndDashesForUnknowns()
    {
        var lines = Table(GuardEventDecoderTests.Record(), GuardEventDecoderTests.Record(egress: true), GuardEventDecoderTests.Record(unowned: true)).Split('\n');
        Assert.Equal("TIME(UTC)        VERDICT HOOK          PID COMM            USER       DESTINATION                    PROTO RULE                 SUPPR CGROUP / EXE", lines[0]);
        var container = "/system.slice/docker-" + new string('a', 64) + ".scope (container aaaaaaaaaaaa)";
        Assert.Equal("00:00:01.000000  deny    connect6     5802 python3         builder    169.254.169.254:80             tcp   metadata-root-only      17 " + container + " /usr/bin/python3.11", lines[1]);
        Assert.Equal("00:00:01.000000  deny    egress          - -               builder    169.254.169.254:80             tcp   metadata-root-only      17 " + container, lines[2]);
        Assert.Equal("00:00:01.000000  deny    tc-egress       - -               -          169.254.169.254:80             tcp   metadata-root-only      17 -", lines[3]);
        Assert.Equal("", lines[4]);
    }
}
