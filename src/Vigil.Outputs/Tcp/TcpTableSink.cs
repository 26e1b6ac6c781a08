using Vigil.Core.Naming;
using Vigil.Core.Pipeline;
using Vigil.Core.Tcp;
using Vigil.Outputs.Text;
using Vigil.Wire;

namespace Vigil.Outputs.Tcp;

/// <summary>A live table for people, one row per packet, times of day in UTC with microseconds.
/// Flags are compact as in tcpdump: F=FIN S=SYN R=RST P=PSH .=ACK U=URG E=ECE W=CWR ("S." is a
/// SYN-ACK, "none" no flag at all). "-" marks an unknown owner, and the ACK column shows "-" when
/// the ACK flag is not set (the field is meaningless then). The header is written before the
/// first row or flush. Each row is built in stack memory and written with one call: no
/// allocation per packet once the names are cached.</summary>
public sealed class TcpTableSink : ITcpPacketSink
{
    public const int TimeWidth = TimeText.ClockMicrosLength;
    public const int IfaceWidth = 15;  // IFNAMSIZ - 1: never cut
    public const int PidWidth = 7;     // pid_max is at most 4194304
    public const int CommWidth = 15;   // TASK_COMM_LEN - 1: never cut
    public const int UserWidth = 10;   // longer names end in '+'
    public const int FlagsWidth = TcpFlagText.MaxCompactLength;
    public const int SeqWidth = 10;
    public const int WindowWidth = 5;
    public const int LengthWidth = 5;
    /// <summary>Fits "255.255.255.255:65535". Longer IPv6 endpoints widen their row (addresses are
    /// never cut); pass a larger width when IPv6 traffic is expected.</summary>
    public const int DefaultEndpointWidth = 21;

    private readonly TextWriter _output;
    private readonly TimeBase _time;
    private readonly HostNames _names;
    private readonly int _endpointWidth;
    private bool _headerWritten;

    public TcpTableSink(TextWriter output, TimeBase time, HostNames names, int endpointWidth = DefaultEndpointWidth)
    {
        _output = output;
        _time = time;
        _names = names;
        _endpointWidth = Math.Clamp(endpointWidth, 8, AddressText.MaxEndpointLength);
    }

    private int LineCapacity => 160 + 2 * AddressText.MaxEndpointLength + 4 * 64;

    public void WriteHeader()
    {
        Span<char> buffer = stackalloc char[LineCapacity];
        var line = new LineBuilder(buffer);
        line.Left("TIME(UTC)", TimeWidth);
        line.Left("IFACE", IfaceWidth);
        line.Left("PID", PidWidth);
        line.Left("COMM", CommWidth);
        line.Left("USER", UserWidth);
        line.Left("SADDR:SPORT", _endpointWidth);
        line.Append("-> ");
        line.Left("DADDR:DPORT", _endpointWidth);
        line.Left("FLAGS", FlagsWidth);
        line.Right("SEQ", SeqWidth);
        line.Right("ACK", SeqWidth);
        line.Right("WIN", WindowWidth);
        line.Right("LEN", LengthWidth);
        line.EndLine();
        _output.Write(line.Text);
        _headerWritten = true;
    }

    public void Write(in TcpPacket packet, ReadOnlySpan<byte> captured)
    {
        if (!_headerWritten) WriteHeader();
        // Names are at most 15 characters for ifaces and comms; users are cut to their column.
        Span<char> buffer = stackalloc char[LineCapacity];
        var line = new LineBuilder(buffer);

        Span<char> field = stackalloc char[AddressText.MaxEndpointLength];
        int n = TimeText.ClockMicros(_time.ToUnixNanoseconds(packet.TimestampNs), field);
        line.Left(field[..n], TimeWidth);
        line.LeftTruncated(_names.InterfaceName(packet.Ifindex), IfaceWidth);

        ref readonly var owner = ref packet.Owner;
        if (owner.Known)
        {
            owner.Pid.TryFormat(field, out n);
            line.Left(field[..n], PidWidth);
            line.LeftTruncated(_names.CommText(in owner.Comm), CommWidth);
            line.LeftTruncated(_names.UserName(owner.Uid), UserWidth);
        }
        else
        {
            line.Left("-", PidWidth);
            line.Left("-", CommWidth);
            line.Left("-", UserWidth);
        }

        n = AddressText.FormatEndpoint(in packet.Source, packet.Family, packet.SourcePort, field);
        line.Left(field[..n], _endpointWidth);
        line.Append("-> ");
        n = AddressText.FormatEndpoint(in packet.Destination, packet.Family, packet.DestinationPort, field);
        line.Left(field[..n], _endpointWidth);

        n = TcpFlagText.Compact(packet.Flags, field);
        line.Left(field[..n], FlagsWidth);
        line.Right(packet.Seq, SeqWidth);
        if ((packet.Flags & TcpFlags.Ack) != 0) line.Right(packet.Ack, SeqWidth);
        else line.Right("-", SeqWidth);
        line.Right(packet.Window, WindowWidth);
        line.Right(packet.PayloadLength, LengthWidth);
        line.EndLine();
        _output.Write(line.Text);
    }

    public void Flush()
    {
        if (!_headerWritten) WriteHeader();
        _output.Flush();
    }
}
