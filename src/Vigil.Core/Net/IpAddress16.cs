using System.Net;
using System.Runtime.CompilerServices;

namespace Vigil.Core.Net;

/// <summary>An IPv4 (as ::ffff:a.b.c.d) or IPv6 address held by value: no allocation per packet.</summary>
[InlineArray(16)]
public struct IpAddress16 : IEquatable<IpAddress16>
{
    private byte _b0;

    public static IpAddress16 From(ReadOnlySpan<byte> sixteen)
    {
        IpAddress16 a = default;
        sixteen[..16].CopyTo(a);
        return a;
    }

    public static IpAddress16 From(IPAddress address)
    {
        var v6 = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? address.MapToIPv6() : address;
        IpAddress16 a = default;
        v6.TryWriteBytes(a, out _);
        return a;
    }

    public readonly bool IsV4Mapped
    {
        get
        {
            ReadOnlySpan<byte> s = this;
            return s[..10].IndexOfAnyExcept((byte)0) < 0 && s[10] == 0xff && s[11] == 0xff;
        }
    }

    public readonly IPAddress ToIPAddress()
    {
        ReadOnlySpan<byte> s = this;
        return IsV4Mapped ? new IPAddress(s[12..]) : new IPAddress(s);
    }

    /// <summary>For diagnostics; outputs format with the allocation-free <see cref="Naming.AddressText"/>.</summary>
    public override readonly string ToString() => ToIPAddress().ToString();

    public readonly bool Equals(IpAddress16 other) => ((ReadOnlySpan<byte>)this).SequenceEqual(other);
    public override readonly bool Equals(object? obj) => obj is IpAddress16 o && Equals(o);
    public override readonly int GetHashCode()
    {
        ReadOnlySpan<byte> s = this;
        return HashCode.Combine(BitConverter.ToUInt64(s), BitConverter.ToUInt64(s[8..]));
    }
}
