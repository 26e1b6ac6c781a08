using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop.Bpf;

/// <summary>BPF_PROG_TEST_RUN: runs a loaded program on a crafted input without attaching it.</summary>
public static unsafe class ProgramTestRun
{
    public readonly record struct Result(uint ReturnValue, uint AverageNanoseconds);

    /// <summary>Runs <paramref name="program"/> on <paramref name="packet"/> <paramref name="repeat"/> times.
    /// For skb programs an optional <c>struct __sk_buff</c> context sets fields such as ifindex.</summary>
    public static Result Run(BpfProgram program, ReadOnlySpan<byte> packet, int repeat = 1, ReadOnlySpan<byte> context = default) =>
        Run(program, packet, repeat, context, []);

    /// <summary>As above, and copies the context as the program left it into <paramref name="contextOut"/>
    /// (which must be at least as large as the kernel's context struct).</summary>
    public static Result Run(BpfProgram program, ReadOnlySpan<byte> packet, int repeat, ReadOnlySpan<byte> context, Span<byte> contextOut)
    {
        fixed (byte* data = packet) fixed (byte* ctx = context) fixed (byte* ctxOut = contextOut)
        {
            var opts = new BpfTestRunOpts
            {
                Sz = (nuint)sizeof(BpfTestRunOpts),
                DataIn = data,
                DataSizeIn = (uint)packet.Length,
                CtxIn = context.IsEmpty ? null : ctx,
                CtxSizeIn = (uint)context.Length,
                CtxOut = contextOut.IsEmpty ? null : ctxOut,
                CtxSizeOut = (uint)contextOut.Length,
                Repeat = repeat,
            };
            int rc = LibBpf.bpf_prog_test_run_opts(program.Fd, &opts);
            if (rc < 0)
            {
                int errno = -rc;
                if (errno == Errno.EPERM) errno = Marshal.GetLastSystemError() is var e && e != 0 ? e : errno;
                throw Errno.FromErrno($"BPF_PROG_TEST_RUN of {program.Name}", errno, "CAP_BPF");
            }
            return new Result(opts.Retval, opts.Duration);
        }
    }
}
