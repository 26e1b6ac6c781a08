using Vigil.Core.Tcp;

namespace Vigil.Core.Pipeline;

/// <summary>Receives decoded packets on the pipeline's consumer thread. <paramref name="captured"/>
/// is valid only during the call.</summary>
public interface ITcpPacketSink
{
    void Write(in TcpPacket packet, ReadOnlySpan<byte> captured);
    void Flush();
}
