using System.Runtime.InteropServices;
using Vigil.Wire;

namespace Vigil.Sensors.Tcp;

/// <summary>In flows-only mode each CPU adds up the packets of the flow it saw last in a slot and
/// moves them into the shared flow map only when another flow arrives (see struct vigil_flow_pending):
/// a reader of the map adds the slots in, or it would miss up to one flow's latest packets per CPU.</summary>
internal static class FlowSlots
{
    /// <summary>Adds every non-empty slot into <paramref name="flows"/> (a flow only in a slot is appended).
    /// Read the map first and the slots second: a flush in between then shows the packets one refresh
    /// late, never twice.</summary>
    public static void Merge(List<(FlowKey Key, FlowValue Value)> flows, ReadOnlySpan<FlowPending> slots)
    {
        foreach (ref readonly var slot in slots)
        {
            if (slot.Value.Packets == 0) continue;
            int i = IndexOf(flows, in slot.Key);
            if (i < 0)
            {
                flows.Add((slot.Key, slot.Value));
                continue;
            }
            var (key, v) = flows[i];
            var p = slot.Value;
            v.Packets += p.Packets;
            v.Bytes += p.Bytes;
            v.FlagsSeen |= p.FlagsSeen;
            v.FirstJiffies = Math.Min(v.FirstJiffies, p.FirstJiffies);
            if (p.LastJiffies >= v.LastJiffies)
            {
                v.LastJiffies = p.LastJiffies;
                v.LastSeq = p.LastSeq;
            }
            flows[i] = (key, v);
        }
    }

    private static int IndexOf(List<(FlowKey Key, FlowValue Value)> flows, in FlowKey key)
    {
        var wanted = MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in key));
        var span = CollectionsMarshal.AsSpan(flows);
        for (int i = 0; i < span.Length; i++)
            if (MemoryMarshal.AsBytes(new ReadOnlySpan<FlowKey>(in span[i].Key)).SequenceEqual(wanted))
                return i;
        return -1;
    }
}
