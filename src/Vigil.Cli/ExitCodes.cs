using Vigil.Core;
using Vigil.Interop;

namespace Vigil.Cli;

/// <summary>Exit codes and the one place errors become a single line on stderr (no stack traces).</summary>
public static class ExitCodes
{
    public const int Ok = 0, Failure = 1, Usage = 2;

    public static int Report(Exception e, TextWriter stderr)
    {
        switch (e)
        {
            case UsageException or ArgumentException:
                stderr.WriteLine($"vigil: {e.Message}");
                return Usage;
            case BpfVerifierException v:
                stderr.WriteLine($"vigil: {v.Message}");
                return Failure;
            case BpfException b:
                stderr.WriteLine($"vigil: {b.Message.Split('\n')[0]}");
                return Failure;
            case UnauthorizedAccessException u:
                stderr.WriteLine($"vigil: {u.Message} (run as root or grant CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)");
                return Failure;
            default:
                stderr.WriteLine($"vigil: {e.GetType().Name}: {e.Message}");
                return Failure;
        }
    }
}
