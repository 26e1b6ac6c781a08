using System.Runtime.InteropServices;

namespace Vigil.Interop.Native;

/// <summary>libbpf 1.1 entry points, by their C names. Only the safe wrappers call these.</summary>
internal static unsafe partial class LibBpf
{
    public const string Library = "libbpf.so.1";

    [LibraryImport(Library)] public static partial uint libbpf_major_version();
    [LibraryImport(Library)] public static partial uint libbpf_minor_version();
    [LibraryImport(Library)] public static partial nint libbpf_set_print(nint fn);

    [LibraryImport(Library)] public static partial nint bpf_object__open_mem(void* buf, nuint size, BpfObjectOpenOpts* opts);
    [LibraryImport(Library)] public static partial int bpf_object__load(nint obj);
    [LibraryImport(Library)] public static partial void bpf_object__close(nint obj);
    [LibraryImport(Library)] public static partial nint bpf_object__next_map(nint obj, nint prev);
    [LibraryImport(Library)] public static partial nint bpf_object__next_program(nint obj, nint prev);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint bpf_object__find_program_by_name(nint obj, string name);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint bpf_object__find_map_by_name(nint obj, string name);

    [LibraryImport(Library)] public static partial nint bpf_program__name(nint prog);
    [LibraryImport(Library)] public static partial int bpf_program__fd(nint prog);
    [LibraryImport(Library)] public static partial int bpf_program__set_autoload(nint prog, [MarshalAs(UnmanagedType.U1)] bool autoload);
    [LibraryImport(Library)] public static partial nint bpf_program__attach(nint prog);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint bpf_program__attach_kprobe(nint prog, [MarshalAs(UnmanagedType.U1)] bool retprobe, string func);
    [LibraryImport(Library)] public static partial nint bpf_program__attach_trace(nint prog);
    [LibraryImport(Library)] public static partial nint bpf_program__attach_cgroup(nint prog, int cgroupFd);

    [LibraryImport(Library)] public static partial nint bpf_map__name(nint map);
    [LibraryImport(Library)] public static partial int bpf_map__fd(nint map);
    [LibraryImport(Library)] public static partial int bpf_map__set_max_entries(nint map, uint maxEntries);
    [LibraryImport(Library)] public static partial uint bpf_map__max_entries(nint map);
    [LibraryImport(Library)] public static partial uint bpf_map__value_size(nint map);
    [LibraryImport(Library)] public static partial uint bpf_map__key_size(nint map);
    [LibraryImport(Library)] public static partial void* bpf_map__initial_value(nint map, nuint* size);

    [LibraryImport(Library)] public static partial int bpf_link__destroy(nint link);
    [LibraryImport(Library)] public static partial int bpf_link__fd(nint link);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int bpf_link__pin(nint link, string path);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint bpf_link__open(string path);
    [LibraryImport(Library)] public static partial int bpf_link__update_program(nint link, nint prog);
    [LibraryImport(Library)] public static partial int bpf_link_detach(int linkFd);
    [LibraryImport(Library)] public static partial int bpf_map__reuse_fd(nint map, int fd);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int bpf_obj_pin(int fd, string path);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int bpf_obj_get(string path);

    [LibraryImport(Library)] public static partial int bpf_tc_hook_create(BpfTcHook* hook);
    [LibraryImport(Library)] public static partial int bpf_tc_hook_destroy(BpfTcHook* hook);
    [LibraryImport(Library)] public static partial int bpf_tc_attach(BpfTcHook* hook, BpfTcOpts* opts);
    [LibraryImport(Library)] public static partial int bpf_tc_detach(BpfTcHook* hook, BpfTcOpts* opts);
    [LibraryImport(Library)] public static partial int bpf_tc_query(BpfTcHook* hook, BpfTcOpts* opts);

    [LibraryImport(Library)] public static partial int bpf_map_update_elem(int fd, void* key, void* value, ulong flags);
    [LibraryImport(Library)] public static partial int bpf_map_lookup_elem(int fd, void* key, void* value);
    [LibraryImport(Library)] public static partial int bpf_map_delete_elem(int fd, void* key);
    [LibraryImport(Library)] public static partial int bpf_map_get_next_key(int fd, void* key, void* nextKey);
    [LibraryImport(Library)] public static partial int bpf_prog_test_run_opts(int progFd, BpfTestRunOpts* opts);
    [LibraryImport(Library)] public static partial int bpf_enable_stats(int type);
    [LibraryImport(Library)] public static partial int bpf_obj_get_info_by_fd(int fd, void* info, uint* infoLen);
    [LibraryImport(Library)] public static partial int libbpf_num_possible_cpus();

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint btf__parse(string path, nint extBtf);
    [LibraryImport(Library)] public static partial void btf__free(nint btf);
    [LibraryImport(Library)] public static partial nint bpf_object__btf(nint obj);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int btf__find_by_name_kind(nint btf, string name, uint kind);
    [LibraryImport(Library)] public static partial uint btf__type_cnt(nint btf);
    [LibraryImport(Library)] public static partial BtfType* btf__type_by_id(nint btf, uint id);
    [LibraryImport(Library)] public static partial nint btf__name_by_offset(nint btf, uint offset);
    [LibraryImport(Library)] public static partial long btf__resolve_size(nint btf, uint id);
}

/// <summary>Mirror of <c>struct bpf_object_open_opts</c> (libbpf 1.1), unnamed padding included.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct BpfObjectOpenOpts
{
    public nuint Sz;
    public nint ObjectName;
    public byte RelaxedMaps;      // C bool
    public nint PinRootPath;
    public uint UnusedAttachProgFd; // __u32 :32
    public nint Kconfig;
    public nint BtfCustomPath;
    public nint KernelLogBuf;
    public nuint KernelLogSize;
    public uint KernelLogLevel;
}

/// <summary>The leading fields of <c>struct bpf_map_info</c> (the kernel fills as much as the caller's size asks).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfMapInfoHead
{
    public uint Type;
    public uint Id;
    public uint KeySize;
    public uint ValueSize;
    public uint MaxEntries;
    public uint MapFlags;
}

/// <summary>The leading fields of <c>struct bpf_link_info</c> with its cgroup member.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfLinkInfoHead
{
    public uint Type;       // enum bpf_link_type
    public uint Id;
    public uint ProgId;
    public uint Pad;
    public ulong CgroupId;  // union member cgroup: cgroup_id, attach_type; tcx: ifindex (low half), attach_type (high half)
    public uint AttachType;
    public uint Pad2;
}

/// <summary>Mirror of <c>struct bpf_tc_hook</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfTcHook
{
    public nuint Sz;
    public int Ifindex;
    public int AttachPoint; // enum bpf_tc_attach_point: 1 ingress, 2 egress
    public uint Parent;
}

/// <summary>Mirror of <c>struct bpf_tc_opts</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfTcOpts
{
    public nuint Sz;
    public int ProgFd;
    public uint Flags;
    public uint ProgId;
    public uint Handle;
    public uint Priority;
}

/// <summary>Mirror of <c>struct bpf_test_run_opts</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct BpfTestRunOpts
{
    public nuint Sz;
    public void* DataIn;
    public void* DataOut;
    public uint DataSizeIn;
    public uint DataSizeOut;
    public void* CtxIn;
    public void* CtxOut;
    public uint CtxSizeIn;
    public uint CtxSizeOut;
    public uint Retval;
    public int Repeat;
    public uint Duration;
    public uint Flags;
    public uint Cpu;
    public uint BatchSize;
}

/// <summary>Mirror of <c>struct btf_type</c> (kernel UAPI btf.h).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BtfType
{
    public uint NameOff;
    public uint Info;     // vlen: bits 0-15, kind: bits 24-28, kind_flag: bit 31
    public uint SizeOrType;
}

/// <summary>Mirror of <c>struct btf_member</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BtfMember
{
    public uint NameOff;
    public uint Type;
    public uint Offset;   // bit offset; with kind_flag, bits 0-23 offset and 24-31 bitfield size
}
