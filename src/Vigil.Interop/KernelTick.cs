using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop;

/// <summary>The kernel's tick rate (CONFIG_HZ), the unit of jiffies: CLOCK_MONOTONIC_COARSE advances once
/// per tick, so its resolution is one tick (the kernel's config file is often not readable or not there).</summary>
public static unsafe class KernelTick
{
    private static uint? _hz;

    public static uint Hz => _hz ??= Read();

    private static uint Read()
    {
        Libc.Timespec res;
        if (Libc.clock_getres(Libc.CLOCK_MONOTONIC_COARSE, &res) < 0)
            throw Errno.FromErrno("reading the resolution of CLOCK_MONOTONIC_COARSE", Marshal.GetLastSystemError());
        long ns = res.Seconds * 1_000_000_000 + res.Nanoseconds;
        if (ns <= 0 || ns > 1_000_000_000)
            throw new InvalidOperationException($"CLOCK_MONOTONIC_COARSE reports a resolution of {ns} ns: cannot derive the tick rate");
        return (uint)Math.Round(1e9 / ns);
    }
}
