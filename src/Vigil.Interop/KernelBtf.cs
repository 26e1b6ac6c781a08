namespace Vigil.Interop;

/// <summary>The running kernel's BTF, which CO-RE relocations and tp_btf/fentry programs need.</summary>
public static class KernelBtf
{
    public const string Path = "/sys/kernel/btf/vmlinux";

    public static bool Available => File.Exists(Path);

    /// <summary>Fails with a clear message instead of libbpf's relocation errors.</summary>
    public static void Require()
    {
        if (!Available)
            throw new BpfNotSupportedException("kernel BTF", "5.4", $"looking for {Path}", Errno.ENOENT,
                $"this kernel exposes no BTF ({Path} is missing): Vigil needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (standard on Debian 11+, Ubuntu 20.10+, RHEL 8.2+)");
    }
}
