using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop.Bpf;

/// <summary>An owned libbpf <c>struct bpf_object</c>. Programs and maps are borrowed from it and must not outlive it.</summary>
public sealed unsafe class BpfObject : SafeHandle
{
    private readonly Dictionary<string, BpfProgram> _programs = new();
    private readonly Dictionary<string, BpfMap> _maps = new();

    private BpfObject(nint handle) : base(0, ownsHandle: true) => SetHandle(handle);

    public override bool IsInvalid => handle == 0;
    public bool IsLoaded { get; private set; }
    public string Name { get; private init; } = "";

    /// <summary>Opens an ELF object held in memory (embedded resources). Nothing touches the kernel yet.</summary>
    public static BpfObject OpenMemory(ReadOnlySpan<byte> elf, string name)
    {
        LibbpfRuntime.EnsureLoaded();
        // libbpf keeps a pointer into the buffer only during open; it copies what it needs.
        fixed (byte* p = elf)
        {
            var opts = new BpfObjectOpenOpts { Sz = (nuint)sizeof(BpfObjectOpenOpts) };
            var h = LibBpf.bpf_object__open_mem(p, (nuint)elf.Length, &opts);
            if (h == 0 || h > -4096 && h < 0)
                throw Errno.FromErrno($"opening BPF object {name}", h < 0 ? (int)-h : Marshal.GetLastSystemError());
            var obj = new BpfObject(h) { Name = name };
            obj.Index();
            return obj;
        }
    }

    private void Index()
    {
        for (nint p = LibBpf.bpf_object__next_program(handle, 0); p != 0; p = LibBpf.bpf_object__next_program(handle, p))
        {
            var prog = new BpfProgram(this, p);
            _programs[prog.Name] = prog;
        }
        for (nint m = LibBpf.bpf_object__next_map(handle, 0); m != 0; m = LibBpf.bpf_object__next_map(handle, m))
        {
            var map = new BpfMap(this, m);
            _maps[map.Name] = map;
        }
    }

    public IReadOnlyCollection<BpfProgram> Programs => _programs.Values;
    public IReadOnlyCollection<BpfMap> Maps => _maps.Values;

    public BpfProgram Program(string name) =>
        _programs.TryGetValue(name, out var p) ? p : throw new KeyNotFoundException($"BPF object {Name} has no program '{name}'");

    public BpfMap Map(string name) =>
        _maps.TryGetValue(name, out var m) ? m : throw new KeyNotFoundException($"BPF object {Name} has no map '{name}'");

    /// <summary>The .rodata map (libbpf names it after the object, truncated).</summary>
    public BpfMap Rodata => _maps.Values.FirstOrDefault(m => m.Name.EndsWith(".rodata", StringComparison.Ordinal))
        ?? throw new KeyNotFoundException($"BPF object {Name} has no .rodata");

    /// <summary>Loads every program left to autoload. A verifier rejection carries the log.</summary>
    public void Load()
    {
        string log = "";
        int rc = LibbpfRuntime.Capture(() => LibBpf.bpf_object__load(handle), out log);
        if (rc < 0)
        {
            int errno = -rc;
            if (log.Contains("-- BEGIN PROG LOAD LOG --", StringComparison.Ordinal) && errno is Errno.EACCES or Errno.EINVAL or Errno.E2BIG)
                throw new BpfVerifierException($"loading BPF object {Name}", errno, log);
            var ex = Errno.FromErrno($"loading BPF object {Name}", errno);
            throw string.IsNullOrWhiteSpace(log) ? ex : new BpfException(ex.Operation, errno, ex.Hint, Last(log, 15));
        }
        IsLoaded = true;
    }

    private static string Last(string log, int lines) =>
        string.Join('\n', log.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(lines));

    internal nint Raw => handle;

    protected override bool ReleaseHandle()
    {
        LibBpf.bpf_object__close(handle);
        return true;
    }
}

/// <summary>A program borrowed from its <see cref="BpfObject"/>.</summary>
public sealed class BpfProgram
{
    private readonly BpfObject _owner;
    private readonly nint _prog;

    internal BpfProgram(BpfObject owner, nint prog)
    {
        _owner = owner;
        _prog = prog;
        Name = Marshal.PtrToStringUTF8(LibBpf.bpf_program__name(prog)) ?? "";
    }

    public string Name { get; }

    public int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_owner.IsClosed, _owner);
            return LibBpf.bpf_program__fd(_prog);
        }
    }

    internal nint Raw => _prog;

    /// <summary>Pins the loaded program at <paramref name="path"/> on a bpffs.</summary>
    public void Pin(string path) => Errno.Check(LibBpf.bpf_obj_pin(Fd, path), $"pinning program {Name} at {path}");

    public void SetAutoload(bool autoload) =>
        Errno.Check(LibBpf.bpf_program__set_autoload(_prog, autoload), $"set autoload of {Name}");

    /// <summary>Attaches by the section's own target (tp_btf, raw_tp, ...).</summary>
    public BpfLink Attach() => Link(LibBpf.bpf_program__attach(_prog), $"attaching {Name}");

    public BpfLink AttachKprobe(string function) =>
        Link(LibBpf.bpf_program__attach_kprobe(_prog, false, function), $"attaching kprobe {Name} to {function}");

    public BpfLink AttachTrace() => Link(LibBpf.bpf_program__attach_trace(_prog), $"attaching fentry/fexit {Name}");

    public BpfLink AttachCgroup(SafeHandle cgroupDir)
    {
        bool added = false;
        cgroupDir.DangerousAddRef(ref added);
        try
        {
            return Link(LibBpf.bpf_program__attach_cgroup(_prog, (int)cgroupDir.DangerousGetHandle()), $"attaching {Name} to a cgroup");
        }
        finally { if (added) cgroupDir.DangerousRelease(); }
    }

    private BpfLink Link(nint link, string operation)
    {
        // libbpf 1.x returns NULL and sets errno (libbpf_get_error is legacy).
        if (link == 0 || (link < 0 && link > -4096))
        {
            int errno = link < 0 ? (int)-link : Marshal.GetLastSystemError();
            throw Errno.FromErrno(operation, errno == 0 ? Errno.EINVAL : errno);
        }
        return new BpfLink(link);
    }
}

/// <summary>A map borrowed from its <see cref="BpfObject"/>. Map operations go straight to bpf().</summary>
public sealed unsafe class BpfMap
{
    private readonly BpfObject _owner;
    private readonly nint _map;

    internal BpfMap(BpfObject owner, nint map)
    {
        _owner = owner;
        _map = map;
        Name = Marshal.PtrToStringUTF8(LibBpf.bpf_map__name(map)) ?? "";
    }

    public string Name { get; }
    public int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_owner.IsClosed, _owner);
            return LibBpf.bpf_map__fd(_map);
        }
    }
    public uint KeySize => LibBpf.bpf_map__key_size(_map);
    public uint ValueSize => LibBpf.bpf_map__value_size(_map);
    public uint MaxEntries => LibBpf.bpf_map__max_entries(_map);

    public void SetMaxEntries(uint entries) =>
        Errno.Check(LibBpf.bpf_map__set_max_entries(_map, entries), $"resizing map {Name}");

    /// <summary>Before load: use an existing map (a pinned one) instead of creating this one. libbpf takes
    /// the existing map's definition (and a duplicate of the descriptor), so check compatibility first
    /// (<see cref="BpfFs.MapInfo"/>).</summary>
    public void ReuseFd(FileDescriptor fd) =>
        Errno.Check(LibBpf.bpf_map__reuse_fd(_map, fd.Value), $"reusing an existing map for {Name}");

    /// <summary>After load: pins the map at <paramref name="path"/> in a bpffs.</summary>
    public void Pin(string path) =>
        Errno.Check(LibBpf.bpf_obj_pin(Fd, path), $"pinning map {Name} at {path}");

    /// <summary>Type, key and value sizes, entries and flags as the kernel holds them.</summary>
    public BpfMapInfo Info() => BpfFs.MapInfo(Fd);

    /// <summary>Writes the global <paramref name="variable"/> of this data section (.rodata, .data) before load, at
    /// the offset the object's BTF gives it: clang may put other constants first (the de Bruijn table of
    /// __builtin_ctzll lands at the start of .rodata), so offset 0 is not a safe guess.</summary>
    public void SetVariable<T>(string variable, in T value) where T : unmanaged
    {
        if (_owner.IsLoaded) throw new InvalidOperationException($"{Name}: initial values must be set before load");
        const uint KindVar = 14, KindDatasec = 15;
        nint btf = LibBpf.bpf_object__btf(_owner.Raw);
        if (btf == 0) throw new InvalidOperationException($"{_owner.Name} has no BTF: cannot find {variable}");
        string section = Name[Name.IndexOf('.')..]; // libbpf names the map "<object prefix>.rodata"
        int secId = LibBpf.btf__find_by_name_kind(btf, section, KindDatasec);
        if (secId <= 0) throw new InvalidOperationException($"{_owner.Name} has no BTF section {section}");
        BtfType* sec = LibBpf.btf__type_by_id(btf, (uint)secId);
        var infos = (uint*)(sec + 1); // struct btf_var_secinfo { type, offset, size }
        for (int i = 0; i < (int)(sec->Info & 0xffff); i++)
        {
            BtfType* v = LibBpf.btf__type_by_id(btf, infos[3 * i]);
            if (((v->Info >> 24) & 0x1f) != KindVar || Marshal.PtrToStringUTF8(LibBpf.btf__name_by_offset(btf, v->NameOff)) != variable) continue;
            uint offset = infos[3 * i + 1], size = infos[3 * i + 2];
            if (size != (uint)sizeof(T)) throw new InvalidOperationException($"{variable} is {size} bytes in {_owner.Name}, not {sizeof(T)}");
            nuint total;
            byte* p = (byte*)LibBpf.bpf_map__initial_value(_map, &total);
            if (p == null || total < offset + size) throw new InvalidOperationException($"{Name} has no initial value holding {variable}");
            *(T*)(p + offset) = value;
            return;
        }
        throw new InvalidOperationException($"{_owner.Name} has no global {variable} in {section}");
    }

    /// <summary>Writes initial contents (.rodata, .data) before load. After load libbpf returns a private copy, so this refuses.</summary>
    public void SetInitialValue<T>(in T value) where T : unmanaged
    {
        if (_owner.IsLoaded) throw new InvalidOperationException($"{Name}: initial values must be set before load");
        nuint size;
        void* p = LibBpf.bpf_map__initial_value(_map, &size);
        if (p == null || size < (nuint)sizeof(T)) throw new InvalidOperationException($"{Name} has no initial value of {sizeof(T)} bytes");
        *(T*)p = value;
    }

    public void Update<TKey, TValue>(in TKey key, in TValue value, ulong flags = 0) where TKey : unmanaged where TValue : unmanaged
    {
        fixed (TKey* k = &key) fixed (TValue* v = &value)
            if (LibBpf.bpf_map_update_elem(Fd, k, v, flags) < 0)
                throw Errno.FromErrno($"updating map {Name}", Marshal.GetLastSystemError());
    }

    /// <summary>Inserts unless the key exists (BPF_NOEXIST); false if it existed.</summary>
    public bool TryInsert<TKey, TValue>(in TKey key, in TValue value) where TKey : unmanaged where TValue : unmanaged
    {
        fixed (TKey* k = &key) fixed (TValue* v = &value)
        {
            if (LibBpf.bpf_map_update_elem(Fd, k, v, 1 /* BPF_NOEXIST */) == 0) return true;
            int errno = Marshal.GetLastSystemError();
            if (errno == Errno.EEXIST) return false;
            throw Errno.FromErrno($"inserting into map {Name}", errno);
        }
    }

    /// <summary>Number of possible CPUs: the element count of per-CPU map values.</summary>
    public static int PossibleCpus => _possibleCpus ??= Errno.Check(LibBpf.libbpf_num_possible_cpus(), "counting possible CPUs");
    private static int? _possibleCpus;

    public bool TryLookup<TKey, TValue>(in TKey key, out TValue value) where TKey : unmanaged where TValue : unmanaged
    {
        TValue v = default;
        fixed (TKey* k = &key)
        {
            if (LibBpf.bpf_map_lookup_elem(Fd, k, &v) < 0)
            {
                int errno = Marshal.GetLastSystemError();
                if (errno == Errno.ENOENT) { value = default; return false; }
                throw Errno.FromErrno($"looking up map {Name}", errno);
            }
        }
        value = v;
        return true;
    }

    /// <summary>Looks up a per-CPU value into <paramref name="perCpu"/> (one element per possible CPU, 8-byte aligned each).</summary>
    public void LookupPerCpu<TKey>(in TKey key, Span<byte> perCpu) where TKey : unmanaged
    {
        fixed (TKey* k = &key) fixed (byte* v = perCpu)
            if (LibBpf.bpf_map_lookup_elem(Fd, k, v) < 0)
                throw Errno.FromErrno($"looking up map {Name}", Marshal.GetLastSystemError());
    }

    /// <summary>A per-CPU array entry of <paramref name="count"/> u64 counters, summed over the CPUs.</summary>
    public ulong[] SumPerCpuCounters(uint index, int count)
    {
        int cpus = PossibleCpus;
        int per = count * 8;
        var buf = new byte[cpus * per];
        LookupPerCpu(index, buf);
        var sum = new ulong[count];
        for (int cpu = 0; cpu < cpus; cpu++)
        {
            var slice = MemoryMarshal.Cast<byte, ulong>(buf.AsSpan(cpu * per, per));
            for (int i = 0; i < sum.Length; i++) sum[i] += slice[i];
        }
        return sum;
    }

    public bool Delete<TKey>(in TKey key) where TKey : unmanaged
    {
        fixed (TKey* k = &key)
        {
            if (LibBpf.bpf_map_delete_elem(Fd, k) == 0) return true;
            int errno = Marshal.GetLastSystemError();
            if (errno == Errno.ENOENT) return false;
            throw Errno.FromErrno($"deleting from map {Name}", errno);
        }
    }

    /// <summary>Snapshot of the keys (hash maps change meanwhile; a key deleted under us restarts the walk, as in the kernel).</summary>
    public List<TKey> Keys<TKey>(int max = int.MaxValue) where TKey : unmanaged
    {
        var keys = new List<TKey>();
        TKey prev = default, next = default;
        bool first = true;
        while (keys.Count < max && LibBpf.bpf_map_get_next_key(Fd, first ? null : &prev, &next) == 0)
        {
            keys.Add(next);
            prev = next;
            first = false;
        }
        return keys;
    }
}

/// <summary>An owned libbpf <c>struct bpf_link</c>: destroying it closes the descriptor, which detaches
/// the program unless the link is pinned (a pin is another reference; <see cref="Detach"/> ends it anyway).</summary>
public sealed class BpfLink : SafeHandle
{
    internal BpfLink(nint link) : base(0, ownsHandle: true) => SetHandle(link);
    public override bool IsInvalid => handle == 0;
    public int Fd => LibBpf.bpf_link__fd(handle);

    /// <summary>Opens a link pinned at <paramref name="path"/>.</summary>
    public static BpfLink OpenPinned(string path)
    {
        var link = LibBpf.bpf_link__open(path);
        if (link == 0 || (link < 0 && link > -4096))
        {
            int errno = link < 0 ? (int)-link : Marshal.GetLastSystemError();
            throw Errno.FromErrno($"opening the pinned link {path}", errno == 0 ? Errno.EINVAL : errno);
        }
        return new BpfLink(link);
    }

    public void Pin(string path) => Errno.Check(LibBpf.bpf_link__pin(handle, path), $"pinning a link at {path}");

    /// <summary>Replaces the link's program in one step (BPF_LINK_UPDATE): the hook never runs without one.</summary>
    public void Update(BpfProgram program) =>
        Errno.Check(LibBpf.bpf_link__update_program(handle, program.Raw), $"replacing the program of a link with {program.Name}");

    /// <summary>Detaches the program now (BPF_LINK_DETACH), whatever else holds the link (pins, other processes).</summary>
    public void Detach() => Errno.Check(LibBpf.bpf_link_detach(Fd), "detaching a link");

    public BpfLinkInfo Info() => BpfFs.LinkInfo(Fd);

    protected override bool ReleaseHandle() => LibBpf.bpf_link__destroy(handle) == 0 || true;
}
