using Vigil.Core.Tcp;
using Vigil.Wire;

namespace Vigil.Core.Pipeline;

/// <summary>Decode → bounded hand-off → sinks. The producer (ring reader thread) decodes into a
/// preallocated slot; a consumer thread writes slots to the sinks. When the queue is full the
/// packet is dropped and counted: the kernel side is never slowed by a slow sink.</summary>
public sealed class TcpPipeline : IDisposable
{
    private readonly TcpPacket[] _packets;
    private readonly byte[] _captures;
    private readonly int _mask;
    private readonly ITcpPacketSink[] _sinks;
    private readonly Thread _consumer;
    private readonly SemaphoreSlim _signal = new(0);
    private readonly CancellationTokenSource _stop = new();
    private long _head; // next slot the producer writes (producer only)
    private long _tail; // next slot the consumer reads (consumer only)
    private long _limit = long.MaxValue;

    public PipelineCounters Counters { get; } = new();

    /// <summary>Raised on the consumer thread once <see cref="StopAfter"/> packets were written.</summary>
    public event Action? LimitReached;

    /// <summary>Raised on the consumer thread when a sink fails (e.g. stdout closed by `| head`);
    /// the pipeline then stops writing and keeps counting what it drops.</summary>
    public event Action<Exception>? SinkFailed;

    /// <summary>The sink failure that stopped output, if any.</summary>
    public Exception? Failure { get; private set; }

    public TcpPipeline(IReadOnlyList<ITcpPacketSink> sinks, int capacity = 8192)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0) throw new ArgumentException("capacity must be a power of two");
        _packets = new TcpPacket[capacity];
        _captures = new byte[capacity * WireConstants.TcpMaxSnaplen];
        _mask = capacity - 1;
        _sinks = sinks.ToArray();
        _consumer = new Thread(Consume) { Name = "vigil tcp sinks", IsBackground = true };
        _consumer.Start();
    }

    /// <summary>Write at most this many packets to the sinks (--count).</summary>
    public void StopAfter(long count) => _limit = count;

    /// <summary>Called by the ring reader for each record (single producer).</summary>
    public void Publish(ReadOnlySpan<byte> record)
    {
        Counters.Received++;
        long head = _head;
        if (head - Volatile.Read(ref _tail) > _mask)
        {
            // Queue full: decode only to classify, then drop.
            var r = TcpEventDecoder.TryDecode(record, out _, out _);
            Count(r);
            if (r == DecodeResult.Ok) Interlocked.Increment(ref Counters.DroppedQueue);
            return;
        }
        int slot = (int)(head & _mask);
        var result = TcpEventDecoder.TryDecode(record, out _packets[slot], out var captured);
        Count(result);
        if (result != DecodeResult.Ok) return;
        captured.CopyTo(_captures.AsSpan(slot * WireConstants.TcpMaxSnaplen, WireConstants.TcpMaxSnaplen));
        Volatile.Write(ref _head, head + 1);
    }

    /// <summary>Wakes the consumer once per batch (not per event).</summary>
    public void EndBatch()
    {
        if (_signal.CurrentCount == 0) _signal.Release();
    }

    private void Count(DecodeResult r)
    {
        switch (r)
        {
            case DecodeResult.Ok: Interlocked.Increment(ref Counters.Decoded); break;
            case DecodeResult.UnknownKind: Interlocked.Increment(ref Counters.UnknownKind); Interlocked.Increment(ref Counters.Malformed); break;
            default: Interlocked.Increment(ref Counters.Malformed); break;
        }
    }

    private void Consume()
    {
        var token = _stop.Token;
        while (true)
        {
            try { _signal.Wait(100, token); }
            catch (OperationCanceledException) { }
            long head = Volatile.Read(ref _head);
            while (_tail < head)
            {
                int slot = (int)(_tail & _mask);
                if (Counters.Written < _limit && Failure is null)
                {
                    var cap = _captures.AsSpan(slot * WireConstants.TcpMaxSnaplen, _packets[slot].CapturedLength);
                    if (TryWrite(in _packets[slot], cap) && Interlocked.Increment(ref Counters.Written) == _limit)
                        LimitReached?.Invoke();
                }
                else if (Failure is not null)
                    Interlocked.Increment(ref Counters.DroppedQueue);
                Volatile.Write(ref _tail, _tail + 1);
            }
            if (Failure is null)
            {
                try { foreach (var sink in _sinks) sink.Flush(); }
                catch (IOException e) { Fail(e); }
            }
            if (token.IsCancellationRequested && Volatile.Read(ref _head) == _tail) return;
        }
    }

    private bool TryWrite(in TcpPacket packet, ReadOnlySpan<byte> captured)
    {
        try
        {
            foreach (var sink in _sinks) sink.Write(in packet, captured);
            return true;
        }
        catch (IOException e)
        {
            Fail(e);
            Interlocked.Increment(ref Counters.DroppedQueue);
            return false;
        }
    }

    private void Fail(Exception e)
    {
        Failure = e;
        SinkFailed?.Invoke(e);
    }

    /// <summary>Writes what is queued, then stops the consumer.</summary>
    public void Complete()
    {
        _stop.Cancel();
        _consumer.Join();
    }

    public void Dispose()
    {
        if (!_stop.IsCancellationRequested) Complete();
        _signal.Dispose();
        _stop.Dispose();
    }
}
