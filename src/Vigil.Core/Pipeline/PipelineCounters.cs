namespace Vigil.Core.Pipeline;

/// <summary>User-space counters of the event path. received = decoded + malformed;
/// decoded = queued + dropped_queue; written = what sinks got.</summary>
public sealed class PipelineCounters
{
    public long Received;
    public long Decoded;
    public long Malformed;
    public long UnknownKind;
    public long DroppedQueue;
    public long Written;

    public (string Name, long Value)[] Snapshot() =>
    [
        ("received", Interlocked.Read(ref Received)),
        ("decoded", Interlocked.Read(ref Decoded)),
        ("malformed", Interlocked.Read(ref Malformed)),
        ("unknown_kind", Interlocked.Read(ref UnknownKind)),
        ("dropped_queue", Interlocked.Read(ref DroppedQueue)),
        ("written", Interlocked.Read(ref Written)),
    ];
}
