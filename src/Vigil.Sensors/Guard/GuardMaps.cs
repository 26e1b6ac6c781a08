using System.Runtime.InteropServices;
using Vigil.Interop;
using Vigil.Interop.Bpf;
using Vigil.Wire;

namespace Vigil.Sensors.Guard;

/// <summary>The guard's policy maps, double-buffered (bpf/include/vigil/guard.h): a swap writes the whole
/// new policy into the inactive slot and then flips the active index, so every decision sees one
/// complete policy, old or new. Works on a guard this process loaded or on pinned maps opened by another
/// process (`vigil policy apply`).</summary>
public sealed class GuardMaps(BpfObject obj, GuardPins? pins)
{
    // Per slot; the maps in bpf/guard.bpf.c hold two slots of these.
    public const int MaxDestinations = 4096, MaxPorts = 4096, MaxAllow = 8192;

    private BpfMap State => obj.Map(GuardNames.MapState);

    /// <summary>Refuses a policy that does not fit a slot before anything is written.</summary>
    public static void CheckCapacity(GuardMapContents policy)
    {
        Check(policy.Destinations.Count, MaxDestinations, "destination prefixes");
        Check(policy.Ports.Count, MaxPorts, "port entries");
        Check(policy.Allow.Count, MaxAllow, "allow entries");
        if (policy.Description is { Length: > GuardConstants.PolicyTextMax } d)
            throw new ArgumentException($"the policy description is {d.Length} bytes; a slot holds at most {GuardConstants.PolicyTextMax}");

        static void Check(int count, int max, string what)
        {
            if (count > max) throw new ArgumentException($"the policy compiles to {count} {what}; the guard holds at most {max}");
        }
    }

    public GuardState ReadState() => State.TryLookup(0u, out GuardState s) ? s : default;

    /// <summary>The config the programs use now (all zero = idle: no policy loaded).</summary>
    public GuardConfig ActiveConfig()
    {
        var s = ReadState();
        return s.Slot((int)(s.Active & 1));
    }

    /// <summary>Installs <paramref name="policy"/> as a new generation: clears the inactive slot (what the
    /// swap before last left), writes the policy's entries and its text there, then its config, then flips
    /// the active index — one byte changes, so no decision sees a torn state. The previous policy stays
    /// in its slot until the next swap, so a decision that read the old index just before the flip still
    /// finds all it looks up. Returns the new generation. Nothing the programs use changes before the flip,
    /// so a failure part-way leaves the running policy in force.</summary>
    public uint Swap(GuardMapContents policy)
    {
        CheckCapacity(policy);
        using var reloadLock = pins?.LockReload();
        var state = ReadState();
        int active = (int)(state.Active & 1);
        byte next = (byte)(active ^ 1);
        uint generation = Math.Max(state.Slot0.Generation, state.Slot1.Generation) + 1;

        ClearSlot(next);
        var dst = obj.Map(GuardNames.MapDst);
        var ports = obj.Map(GuardNames.MapPorts);
        var allow = obj.Map(GuardNames.MapAllow);
        foreach (var (k, v) in policy.Allow) allow.Update(k with { Slot = next }, v);
        foreach (var (k, v) in policy.Ports) ports.Update(k with { Slot = next }, v);
        foreach (var (k, v) in policy.Destinations) dst.Update(GuardDstKey.InSlot(k, next), v);
        WriteText(next, generation, policy.Description ?? []);

        var config = policy.Config;
        config.Generation = generation;
        state.SetSlot(next, config);
        State.Update(0u, state); // the active slot's bytes are rewritten unchanged
        state.Active = next;
        State.Update(0u, state); // the flip
        return generation;
    }

    /// <summary>Deletes every entry of <paramref name="slot"/> from the three policy maps.</summary>
    private void ClearSlot(byte slot)
    {
        var dst = obj.Map(GuardNames.MapDst);
        foreach (var k in dst.Keys<GuardDstKey>()) if (k.Slot == slot) dst.Delete(k);
        var ports = obj.Map(GuardNames.MapPorts);
        foreach (var k in ports.Keys<GuardPortKey>()) if (k.Slot == slot) ports.Delete(k);
        var allow = obj.Map(GuardNames.MapAllow);
        foreach (var k in allow.Keys<GuardPrincipalKey>()) if (k.Slot == slot) allow.Delete(k);
    }

    /// <summary>Entries per slot now in the maps: (destinations, ports, allow).</summary>
    public (int Destinations, int Ports, int Allow) Count(int slot) => (
        obj.Map(GuardNames.MapDst).Keys<GuardDstKey>().Count(k => k.Slot == slot),
        obj.Map(GuardNames.MapPorts).Keys<GuardPortKey>().Count(k => k.Slot == slot),
        obj.Map(GuardNames.MapAllow).Keys<GuardPrincipalKey>().Count(k => k.Slot == slot));

    private unsafe void WriteText(byte slot, uint generation, ReadOnlySpan<byte> text)
    {
        var value = new GuardPolicyText { Length = (uint)text.Length, Generation = generation };
        text.CopyTo(new Span<byte>(value.Text, GuardConstants.PolicyTextMax));
        obj.Map(GuardNames.MapPolicy).Update((uint)slot, value);
    }

    /// <summary>The text kept with a slot and the generation it describes (empty when none).</summary>
    public unsafe (uint Generation, byte[] Text) ReadText(int slot)
    {
        if (!obj.Map(GuardNames.MapPolicy).TryLookup((uint)slot, out GuardPolicyText value)) return (0, []);
        int length = (int)Math.Min(value.Length, (uint)GuardConstants.PolicyTextMax);
        return (value.Generation, new ReadOnlySpan<byte>(value.Text, length).ToArray());
    }

    /// <summary>The active slot's text, if it describes the active generation.</summary>
    public byte[]? ActiveText()
    {
        var state = ReadState();
        int slot = (int)(state.Active & 1);
        var (generation, text) = ReadText(slot);
        return generation == state.Slot(slot).Generation && text.Length > 0 ? text : null;
    }

    /// <summary>Kernel counters summed over CPUs, indexed by <see cref="GuardStat"/>.</summary>
    public ulong[] ReadCounters() => obj.Map(GuardNames.MapStats).SumPerCpuCounters(0, (int)GuardStat.Count);
}
