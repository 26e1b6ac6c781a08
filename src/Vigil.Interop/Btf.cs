using System.Runtime.InteropServices;
using Vigil.Interop.Native;

namespace Vigil.Interop;

/// <summary>A struct as BTF describes it: size and byte offset/size of each member.</summary>
public sealed record BtfStruct(string Name, int Size, IReadOnlyList<BtfField> Fields);
public sealed record BtfField(string Name, int Offset, int Size);

/// <summary>Reads struct layouts from the BTF of an ELF object or of the running kernel.</summary>
public static unsafe class BtfReader
{
    private const int KindStruct = 4;

    public static IReadOnlyDictionary<string, BtfStruct> ReadStructs(string path)
    {
        LibbpfRuntime.EnsureLoaded();
        nint btf = LibBpf.btf__parse(path, 0);
        if (btf == 0 || (btf < 0 && btf > -4096))
            throw Errno.FromErrno($"reading BTF from {path}", btf < 0 ? (int)-btf : Marshal.GetLastSystemError());
        try
        {
            var result = new Dictionary<string, BtfStruct>();
            uint count = LibBpf.btf__type_cnt(btf);
            for (uint id = 1; id < count; id++)
            {
                BtfType* t = LibBpf.btf__type_by_id(btf, id);
                int kind = (int)((t->Info >> 24) & 0x1f);
                if (kind != KindStruct || t->NameOff == 0) continue;
                string name = Name(btf, t->NameOff);
                int vlen = (int)(t->Info & 0xffff);
                bool kflag = (t->Info >> 31) != 0;
                var members = (BtfMember*)(t + 1);
                var fields = new List<BtfField>(vlen);
                for (int i = 0; i < vlen; i++)
                {
                    uint bits = kflag ? members[i].Offset & 0xffffff : members[i].Offset;
                    fields.Add(new BtfField(Name(btf, members[i].NameOff), (int)(bits / 8),
                        (int)LibBpf.btf__resolve_size(btf, members[i].Type)));
                }
                result[name] = new BtfStruct(name, (int)t->SizeOrType, fields);
            }
            return result;
        }
        finally { LibBpf.btf__free(btf); }
    }

    private static string Name(nint btf, uint off) => Marshal.PtrToStringUTF8(LibBpf.btf__name_by_offset(btf, off)) ?? "";
}
