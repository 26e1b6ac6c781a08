using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Vigil.Core.Net;
using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Core.Guard;

/// <summary>Bytes → <see cref="GuardDecision"/>. Checks every length before reading; never throws on bad input.</summary>
public static class GuardEventDecoder
{
    public static readonly int HeaderSize = Unsafe.SizeOf<EventHeader>();
    public static readonly int EventSize = Unsafe.SizeOf<GuardEvent>();

    public static unsafe DecodeResult TryDecode(ReadOnlySpan<byte> record, out GuardDecision decision)
    {
        decision = default;
        if (record.Length < HeaderSize) return DecodeResult.Truncated;
        var hdr = MemoryMarshal.Read<EventHeader>(record);
        if (hdr.Kind != (ushort)EventKind.Guard) return DecodeResult.UnknownKind;
        if (hdr.Version != WireConstants.Version) return DecodeResult.UnsupportedVersion;
        if (record.Length < EventSize || hdr.Size < EventSize || hdr.Size > record.Length) return DecodeResult.Truncated;
        var ev = MemoryMarshal.Read<GuardEvent>(record);

        decision.TimestampNs = ev.Hdr.TsNs;
        decision.Verdict = (GuardVerdict)ev.Verdict;
        decision.Hook = (GuardHook)ev.Hook;
        decision.Pid = ev.Pid;
        decision.Tgid = ev.Tgid;
        decision.Uid = ev.Uid == GuardConstants.UnknownId ? null : ev.Uid;
        decision.Gid = ev.Gid == GuardConstants.UnknownId ? null : ev.Gid;
        new ReadOnlySpan<byte>(ev.Comm, 16).CopyTo(decision.Comm);
        decision.ExeInode = ev.ExeIno;
        decision.ExeDev = ev.ExeDev;
        decision.CgroupId = ev.CgroupId;
        decision.Destination = IpAddress16.From(new ReadOnlySpan<byte>(ev.Daddr, 16));
        decision.Family = ev.Family;
        decision.Port = ev.Dport;
        decision.Protocol = ev.Protocol;
        decision.Rule = ev.Rule;
        decision.Violated = ev.Violated;
        decision.Generation = ev.Generation;
        decision.Suppressed = ev.Suppressed;
        return DecodeResult.Ok;
    }
}
