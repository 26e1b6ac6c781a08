using System.Buffers.Binary;
using System.Text;

namespace Vigil.Tests.Pure;

/// <summary>A small pcap-ng reader written from the specification for the tests, independent of the
/// writer: it checks framing (lengths, 32-bit alignment, trailing length) as it goes.</summary>
internal sealed class PcapNgReader
{
    public sealed record Interface(ushort LinkType, uint SnapLen, Dictionary<ushort, byte[]> Options)
    {
        public string? Name => Options.TryGetValue(2, out var v) ? Encoding.UTF8.GetString(v) : null;
        public byte? TsResol => Options.TryGetValue(9, out var v) ? v[0] : null;
    }

    public sealed record Packet(uint InterfaceId, ulong Timestamp, uint CapturedLength, uint OriginalLength, byte[] Data, Dictionary<ushort, byte[]> Options)
    {
        public string? Comment => Options.TryGetValue(1, out var v) ? Encoding.UTF8.GetString(v) : null;
    }

    public ushort Major, Minor;
    public long SectionLength;
    public Dictionary<ushort, byte[]> SectionOptions = new();
    public List<Interface> Interfaces = new();
    public List<Packet> Packets = new();
    public List<uint> BlockTypes = new();

    public static PcapNgReader Read(byte[] file)
    {
        var r = new PcapNgReader();
        int at = 0;
        while (at < file.Length)
        {
            Assert.True(file.Length - at >= 12, $"truncated block at {at}");
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at));
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 4));
            Assert.True(length % 4 == 0, $"block at {at} has length {length}, not a multiple of 4");
            Assert.True(length >= 12 && at + length <= file.Length, $"block at {at} has impossible length {length}");
            Assert.Equal((uint)length, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + length - 4)));
            var body = file.AsSpan(at + 8, length - 12);
            r.BlockTypes.Add(type);
            switch (type)
            {
                case 0x0A0D0D0A:
                    Assert.Equal(0x1A2B3C4Du, BinaryPrimitives.ReadUInt32LittleEndian(body));
                    r.Major = BinaryPrimitives.ReadUInt16LittleEndian(body[4..]);
                    r.Minor = BinaryPrimitives.ReadUInt16LittleEndian(body[6..]);
                    r.SectionLength = BinaryPrimitives.ReadInt64LittleEndian(body[8..]);
                    r.SectionOptions = Options(body[16..]);
                    break;
                case 1:
                    r.Interfaces.Add(new Interface(BinaryPrimitives.ReadUInt16LittleEndian(body),
                        BinaryPrimitives.ReadUInt32LittleEndian(body[4..]), Options(body[8..])));
                    Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(body[2..])); // reserved
                    break;
                case 6:
                    uint id = BinaryPrimitives.ReadUInt32LittleEndian(body);
                    ulong ts = (ulong)BinaryPrimitives.ReadUInt32LittleEndian(body[4..]) << 32 | BinaryPrimitives.ReadUInt32LittleEndian(body[8..]);
                    uint cap = BinaryPrimitives.ReadUInt32LittleEndian(body[12..]);
                    uint orig = BinaryPrimitives.ReadUInt32LittleEndian(body[16..]);
                    int padded = (int)((cap + 3) & ~3u);
                    Assert.True(id < r.Interfaces.Count, $"packet refers to interface {id} before its description");
                    Assert.True(orig >= cap);
                    var data = body.Slice(20, (int)cap).ToArray();
                    Assert.True(body.Slice(20 + (int)cap, padded - (int)cap).IndexOfAnyExcept((byte)0) < 0, "packet padding is not zero");
                    r.Packets.Add(new Packet(id, ts, cap, orig, data, Options(body[(20 + padded)..])));
                    break;
                default:
                    Assert.Fail($"unexpected block type 0x{type:x8}");
                    break;
            }
            at += length;
        }
        return r;
    }

    private static Dictionary<ushort, byte[]> Options(ReadOnlySpan<byte> s)
    {
        var options = new Dictionary<ushort, byte[]>();
        int at = 0;
        while (at < s.Length)
        {
            ushort code = BinaryPrimitives.ReadUInt16LittleEndian(s[at..]);
            ushort length = BinaryPrimitives.ReadUInt16LittleEndian(s[(at + 2)..]);
            if (code == 0)
            {
                Assert.Equal(0, length);
                Assert.Equal(s.Length, at + 4); // opt_endofopt is the last thing in the block
                break;
            }
            int padded = (length + 3) & ~3;
            Assert.True(at + 4 + padded <= s.Length, "option overruns its block");
            Assert.True(s.Slice(at + 4 + length, padded - length).IndexOfAnyExcept((byte)0) < 0, "option padding is not zero");
            options[code] = s.Slice(at + 4, length).ToArray();
            at += 4 + padded;
        }
        return options;
    }
}
