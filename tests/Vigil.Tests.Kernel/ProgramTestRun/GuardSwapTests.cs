using Vigil.Sensors.Guard;
using Vigil.Wire;

namespace Vigil.Tests.Kernel.TestRun;

/// <summary>The double-buffered policy maps of a loaded (unattached) guard: each swap fills the inactive
/// slot, flips the active index, keeps the previous policy whole and clears the one before it.</summary>
public class GuardSwapTests
{
    private static unsafe GuardMapContents Policy(byte lastOctet, int principals, string text)
    {
        var key = new LpmKey { Family = 4, Prefixlen = 8 + 96 + 32 };
        key.Addr[10] = 0xff; key.Addr[11] = 0xff; key.Addr[12] = 169; key.Addr[13] = 254; key.Addr[14] = 169; key.Addr[15] = lastOctet;
        var allow = Enumerable.Range(0, principals)
            .Select(i => (new GuardPrincipalKey(GuardPrincipalKind.Uid, (ulong)(1000 + i)), new GuardAllowValue(1, 0, 0))).ToList();
        return new GuardMapContents(new GuardConfig { Rules = 1, EnforceRules = 1, AnyPortTcp = 1, UidRules = 1 },
            [(key, new GuardRules(1))], [], allow, System.Text.Encoding.UTF8.GetBytes(text));
    }

    [Fact]
    public void EachSwapFillsTheInactiveSlotFlipsAndClearsTheSlotBeforeLast()
    {
        using var sensor = GuardSensor.Start(new GuardSensorOptions { Policy = Policy(254, 3, "first"), LoadOnly = true });
        var maps = sensor.Maps;
        var s = maps.ReadState();
        Assert.Equal(1u, s.Active); // the first swap goes to slot 1 (slot 0 starts empty)
        Assert.Equal(1u, s.Slot1.Generation);
        Assert.Equal(0UL, s.Slot0.Rules);
        Assert.Equal((1, 0, 3), maps.Count(1));
        Assert.Equal((0, 0, 0), maps.Count(0));

        Assert.Equal(2u, maps.Swap(Policy(253, 5, "second")));
        s = maps.ReadState();
        Assert.Equal(0u, s.Active);
        Assert.Equal((1, 0, 5), maps.Count(0));
        Assert.Equal((1, 0, 3), maps.Count(1)); // the previous policy stays whole until the next swap
        Assert.Equal("second", System.Text.Encoding.UTF8.GetString(maps.ActiveText()!));
        Assert.Equal((1u, "first"), (maps.ReadText(1).Generation, System.Text.Encoding.UTF8.GetString(maps.ReadText(1).Text)));

        Assert.Equal(3u, maps.Swap(Policy(252, 1, "third")));
        Assert.Equal(1u, maps.ReadState().Active);
        Assert.Equal((1, 0, 1), maps.Count(1)); // slot 1 cleared of "first" and refilled
        Assert.Equal((1, 0, 5), maps.Count(0));
        Assert.Equal(3u, sensor.Generation);
        Assert.Equal(1UL, maps.ActiveConfig().EnforceRules);
    }

    [Fact]
    public void APolicyTooLargeForASlotIsRefusedBeforeAnythingChanges()
    {
        using var sensor = GuardSensor.Start(new GuardSensorOptions { Policy = Policy(254, 3, "first"), LoadOnly = true });
        var e = Assert.Throws<ArgumentException>(() => sensor.Maps.Swap(Policy(253, GuardMaps.MaxAllow + 1, "huge")));
        Assert.Contains($"the policy compiles to {GuardMaps.MaxAllow + 1} allow entries; the guard holds at most {GuardMaps.MaxAllow}", e.Message);
        Assert.Equal(1u, sensor.Generation);
        Assert.Equal((0, 0, 0), sensor.Maps.Count(0));
    }
}
