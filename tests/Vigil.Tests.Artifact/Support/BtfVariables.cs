using System.Runtime.InteropServices;
using Vigil.Interop;
using Vigil.Interop.Native;

namespace Vigil.Tests.Artifact.Support;

/// <summary>A global variable as BTF describes it: the data section holding it, its offset there, and
/// its type with const/volatile/typedef peeled off.</summary>
internal sealed record BtfVariable(string Name, string Section, int Offset, int Size, string TypeKind, string TypeName, string[] Qualifiers);

/// <summary>Reads the global variables (BTF_KIND_VAR within BTF_KIND_DATASEC) of an object file.
/// BtfReader covers structs only; this is what the names test needs on top.</summary>
internal static unsafe class BtfVariables
{
    private const int KindStruct = 4, KindUnion = 5, KindTypedef = 8, KindVolatile = 9, KindConst = 10, KindRestrict = 11,
        KindVar = 14, KindDatasec = 15, KindTypeTag = 18;

    [StructLayout(LayoutKind.Sequential)]
    private struct VarSecinfo { public uint Type, Offset, Size; }

    private static int Kind(BtfType* t) => (int)((t->Info >> 24) & 0x1f);
    private static int Vlen(BtfType* t) => (int)(t->Info & 0xffff);

    public static IReadOnlyList<BtfVariable> Read(string path)
    {
        LibbpfRuntime.EnsureLoaded();
        nint btf = LibBpf.btf__parse(path, 0);
        if (btf == 0 || (btf < 0 && btf > -4096))
            throw new InvalidOperationException($"cannot read BTF from {path}");
        try
        {
            var result = new List<BtfVariable>();
            uint count = LibBpf.btf__type_cnt(btf);
            for (uint id = 1; id < count; id++)
            {
                BtfType* sec = LibBpf.btf__type_by_id(btf, id);
                if (Kind(sec) != KindDatasec) continue;
                string section = Name(btf, sec->NameOff);
                var infos = (VarSecinfo*)(sec + 1);
                for (int i = 0; i < Vlen(sec); i++)
                {
                    BtfType* v = LibBpf.btf__type_by_id(btf, infos[i].Type);
                    if (Kind(v) != KindVar) continue;
                    var qualifiers = new List<string>();
                    uint typeId = v->SizeOrType;
                    BtfType* t = LibBpf.btf__type_by_id(btf, typeId);
                    while (Kind(t) is KindTypedef or KindVolatile or KindConst or KindRestrict or KindTypeTag)
                    {
                        qualifiers.Add(Kind(t) switch { KindVolatile => "volatile", KindConst => "const", KindTypedef => "typedef", _ => "other" });
                        t = LibBpf.btf__type_by_id(btf, t->SizeOrType);
                    }
                    string kind = Kind(t) switch { KindStruct => "struct", KindUnion => "union", var k => $"kind {k}" };
                    result.Add(new BtfVariable(Name(btf, v->NameOff), section, (int)infos[i].Offset, (int)infos[i].Size,
                        kind, Name(btf, t->NameOff), qualifiers.ToArray()));
                }
            }
            return result;
        }
        finally { LibBpf.btf__free(btf); }
    }

    private static string Name(nint btf, uint off) => Marshal.PtrToStringUTF8(LibBpf.btf__name_by_offset(btf, off)) ?? "";
}
