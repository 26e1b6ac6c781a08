using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Vigil.Interop.Native;

namespace Vigil.Interop.Bpf;

/// <summary>uprobe_multi links (Linux 6.6+) through raw <c>bpf(BPF_LINK_CREATE)</c>: libbpf 1.1 has
/// neither the section type nor the attach call. The link is fd-owned, so a crashed process
/// leaves nothing attached, and it needs no CAP_SYS_ADMIN (classic perf-event uprobes do).</summary>
public static unsafe partial class UprobeMulti
{
    public const uint BPF_TRACE_UPROBE_MULTI = 48;
    private const uint BPF_LINK_CREATE = 28;

    /// <summary>Marks a kprobe-type program (e.g. <c>SEC("kprobe.multi")</c>) for uprobe_multi links.
    /// Must run before load: the kernel refuses the link unless the program was loaded with this
    /// expected attach type.</summary>
    public static void PrepareForLoad(BpfObject obj, string programName)
    {
        if (obj.IsLoaded) throw new InvalidOperationException($"{programName}: the attach type must be set before load");
        nint prog = LibBpf.bpf_object__find_program_by_name(obj.Raw, programName);
        if (prog == 0) throw new KeyNotFoundException($"BPF object {obj.Name} has no program '{programName}'");
        Errno.Check(bpf_program__set_expected_attach_type(prog, BPF_TRACE_UPROBE_MULTI),
            $"setting the uprobe_multi attach type of {programName}");
    }

    /// <summary>Attaches <paramref name="program"/> at file <paramref name="offsets"/> of the ELF file at
    /// <paramref name="binaryPath"/>; with <paramref name="pid"/> &gt; 0 only that process triggers it.
    /// Disposing the returned descriptor detaches.</summary>
    public static FileDescriptor Attach(BpfProgram program, string binaryPath, ReadOnlySpan<ulong> offsets, int pid = 0)
    {
        if (offsets.IsEmpty) throw new ArgumentException("at least one offset is needed", nameof(offsets));
        var path = Encoding.UTF8.GetBytes(binaryPath + "\0");
        fixed (byte* pathPtr = path)
        fixed (ulong* offsetsPtr = offsets)
        {
            // union bpf_attr, link_create: prog_fd, target_fd, attach_type, flags (0..16), then
            // uprobe_multi { path, offsets, ref_ctr_offsets, cookies (u64 each), cnt, flags, pid }.
            var attr = stackalloc byte[64];
            new Span<byte>(attr, 64).Clear();
            *(uint*)(attr + 0) = (uint)program.Fd;
            *(uint*)(attr + 8) = BPF_TRACE_UPROBE_MULTI;
            *(ulong*)(attr + 16) = (ulong)pathPtr;
            *(ulong*)(attr + 24) = (ulong)offsetsPtr;
            *(uint*)(attr + 48) = (uint)offsets.Length;
            *(uint*)(attr + 56) = (uint)pid;
            long fd = Libc.syscall(Libc.SYS_bpf, BPF_LINK_CREATE, (long)attr, 64);
            if (fd >= 0) return new FileDescriptor((int)fd);

            int errno = Marshal.GetLastSystemError();
            var operation = $"uprobe_multi attach of {program.Name} to {binaryPath}";
            throw errno switch
            {
                Errno.EINVAL or Errno.EOPNOTSUPP or Errno.ENOTSUPP or Errno.ENOSYS =>
                    new BpfNotSupportedException("uprobe_multi links", "6.6", operation, errno),
                Errno.ESRCH => new BpfException(operation, errno, $"process {pid} does not exist"),
                _ => Errno.FromErrno(operation, errno, "CAP_BPF + CAP_PERFMON"),
            };
        }
    }

    [LibraryImport(LibBpf.Library)]
    private static partial int bpf_program__set_expected_attach_type(nint prog, uint type);
}

/// <summary>Symbol look-ups in ELF64 files, for uprobes (which take file offsets, not addresses).</summary>
public static class ElfSymbols
{
    private static ReadOnlySpan<byte> ElfMagic => [0x7F, (byte)'E', (byte)'L', (byte)'F'];

    /// <summary>The file offset of function <paramref name="symbol"/>'s first instruction: its address
    /// (st_value) translated through the PT_LOAD segment that maps it.</summary>
    public static ulong FileOffsetOf(string path, string symbol)
    {
        var elf = File.ReadAllBytes(path);
        var span = elf.AsSpan();
        if (elf.Length < 64 || !span[..4].SequenceEqual(ElfMagic))
            throw new InvalidDataException($"{path} is not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException($"{path} is not a little-endian ELF64 file");

        ulong shoff = U64(span, 0x28), phoff = U64(span, 0x20);
        int shentsize = U16(span, 0x3A), shnum = U16(span, 0x3C), phentsize = U16(span, 0x36), phnum = U16(span, 0x38);
        ulong address = 0;
        // .dynsym (exported functions) first, then .symtab when the file is not stripped.
        foreach (uint wanted in new uint[] { 11 /* SHT_DYNSYM */, 2 /* SHT_SYMTAB */ })
        {
            for (int i = 0; i < shnum && address == 0; i++)
            {
                var sh = span.Slice(checked((int)shoff + i * shentsize), shentsize);
                if (U32(sh, 4) != wanted) continue;
                ulong symOff = U64(sh, 0x18), symSize = U64(sh, 0x20), entSize = U64(sh, 0x38);
                var strSh = span.Slice(checked((int)shoff + (int)U32(sh, 0x28) * shentsize), shentsize);
                ulong strOff = U64(strSh, 0x18);
                for (ulong s = 0; entSize > 0 && s + entSize <= symSize; s += entSize)
                {
                    var sym = span.Slice(checked((int)(symOff + s)), (int)entSize);
                    byte type = (byte)(sym[4] & 0xF);
                    ulong value = U64(sym, 8);
                    if (type != 2 /* STT_FUNC */ || value == 0 || U16(sym, 6) == 0 /* SHN_UNDEF */) continue;
                    if (NameEquals(span, checked((int)(strOff + U32(sym, 0))), symbol)) { address = value; break; }
                }
            }
            if (address != 0) break;
        }
        if (address == 0) throw new KeyNotFoundException($"{path} defines no function '{symbol}'");

        for (int i = 0; i < phnum; i++)
        {
            var ph = span.Slice(checked((int)phoff + i * phentsize), phentsize);
            if (U32(ph, 0) != 1 /* PT_LOAD */) continue;
            ulong offset = U64(ph, 8), vaddr = U64(ph, 0x10), filesz = U64(ph, 0x20);
            if (address >= vaddr && address < vaddr + filesz) return address - vaddr + offset;
        }
        throw new InvalidDataException($"{path}: '{symbol}' at 0x{address:x} lies in no loaded segment");
    }

    /// <summary>The path of a shared library mapped into this process whose file name starts with
    /// <paramref name="fileNamePrefix"/> (e.g. "libc.so"), from /proc/self/maps; null if none.</summary>
    public static string? LoadedLibrary(string fileNamePrefix)
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..];
            if (Path.GetFileName(path).StartsWith(fileNamePrefix, StringComparison.Ordinal)) return path;
        }
        return null;
    }

    private static bool NameEquals(ReadOnlySpan<byte> elf, int offset, string name)
    {
        var rest = elf[offset..];
        int end = rest.IndexOf((byte)0);
        return end == name.Length && Encoding.ASCII.GetString(rest[..end]) == name;
    }

    private static ushort U16(ReadOnlySpan<byte> s, int o) => BinaryPrimitives.ReadUInt16LittleEndian(s[o..]);
    private static uint U32(ReadOnlySpan<byte> s, int o) => BinaryPrimitives.ReadUInt32LittleEndian(s[o..]);
    private static ulong U64(ReadOnlySpan<byte> s, int o) => BinaryPrimitives.ReadUInt64LittleEndian(s[o..]);
}

/// <summary>Calls made on purpose to trigger a probe.</summary>
public static partial class ProbeTriggers
{
    /// <summary>getpid() through libc's exported symbol: passes a uprobe on libc's getpid and
    /// the getpid syscall (glibc does not cache the pid).</summary>
    public static int LibcGetpid() => getpid();

    [LibraryImport("libc")] private static partial int getpid();
}
