using System.Diagnostics;
using System.Runtime.InteropServices;
using Vigil.Interop.Bpf;

namespace Vigil.Bench;

/// <summary>Ring-buffer reader throughput of Vigil's <see cref="RingBufferReader"/>, with the same
/// producer object and protocol as bench/c/ring_consumer.c (libbpf's ring_buffer__consume).
/// drain: fill the ring with --count records (not timed), then time draining them.
/// stream: a producer thread writes --count records in batches while this thread drains.</summary>
public static class RingBench
{
    private const ulong SeqHash = 0x9E3779B97F4A7C15UL;
    private const uint FillBatch = 1024;

    /// <summary>Reads what the C consumer reads: the first and the last 8 bytes of each record.</summary>
    private struct Totals : IRingRecordHandler
    {
        public ulong Records, SumSeq, SumHash;

        public void OnRecord(ReadOnlySpan<byte> record)
        {
            Records++;
            SumSeq += MemoryMarshal.Read<ulong>(record);
            SumHash += MemoryMarshal.Read<ulong>(record[^8..]);
        }
    }

    public static int Run(Args args)
    {
        string mode = args.Get("mode", "drain");
        uint eventSize = (uint)args.Int("size", 64);
        long count = args.Long("count", 1_000_000);
        int rounds = args.Int("rounds", 20);
        uint ringBytes = (uint)args.Long("ring-bytes", 256 << 20);
        bool stream = mode == "stream";
        if (mode is not ("drain" or "stream")) throw new ArgumentException("--mode is drain or stream");

        using var obj = BenchObjects.Open("ring_producer.bpf.o");
        obj.Rodata.SetInitialValue(eventSize);
        var ringMap = obj.Map("bench_ring");
        ringMap.SetMaxEntries(ringBytes);
        obj.Load();
        var fill = obj.Program("bench_fill");
        using var reader = new RingBufferReader(ringMap);

        ulong seq = 0;
        // Warm-up, not counted: enough calls for tiered compilation to reach its optimised, PGO'd
        // code (30 calls, then a background compile), as a long-running agent's reader would be.
        for (int i = 0; i < 64; i++)
        {
            RunRound(reader, fill, stream, 4096, ref seq);
            if (i == 40) Thread.Sleep(300);
        }
        RunRound(reader, fill, stream, count, ref seq);

        long ticks = 0;
        for (int r = 0; r < rounds; r++) ticks += RunRound(reader, fill, stream, count, ref seq);
        double seconds = ticks / (double)Stopwatch.Frequency;
        long events = count * rounds;
        Console.WriteLine($"RESULT impl=cs mode={mode} size={eventSize} events={events} seconds={seconds:F6} eps={events / seconds:F0} ok=1");
        return 0;
    }

    /// <summary>One round; returns the Stopwatch ticks spent consuming. Throws if a record is missing or wrong.</summary>
    private static long RunRound(RingBufferReader reader, BpfProgram fill, bool stream, long count, ref ulong seq)
    {
        var totals = new Totals();
        long start, end;
        if (!stream)
        {
            for (long done = 0; done < count;)
            {
                uint n = Fill(fill, (uint)Math.Min(count - done, 1 << 22), seq + (ulong)done);
                if (n == 0) throw new InvalidOperationException($"ring too small for {count} records");
                done += n;
            }
            start = Stopwatch.GetTimestamp();
            while ((long)totals.Records < count) reader.Drain(ref totals);
            end = Stopwatch.GetTimestamp();
        }
        else
        {
            int go = 0;
            ulong first = seq;
            var producer = new Thread(() =>
            {
                while (Volatile.Read(ref go) == 0) { }
                for (long done = 0; done < count;)
                    done += Fill(fill, (uint)Math.Min(count - done, FillBatch), first + (ulong)done);
            }) { Name = "ring producer" };
            producer.Start();
            start = Stopwatch.GetTimestamp();
            Volatile.Write(ref go, 1);
            while ((long)totals.Records < count) reader.Drain(ref totals);
            end = Stopwatch.GetTimestamp();
            producer.Join();
        }
        Verify(totals, seq, count);
        seq += (ulong)count;
        return end - start;
    }

    private static uint Fill(BpfProgram fill, uint count, ulong firstSeq)
    {
        Span<byte> packet = stackalloc byte[64];
        packet.Clear();
        MemoryMarshal.Write(packet[14..], count);
        MemoryMarshal.Write(packet[22..], firstSeq);
        return ProgramTestRun.Run(fill, packet).ReturnValue;
    }

    private static void Verify(in Totals t, ulong firstSeq, long count)
    {
        ulong seq = 0, hash = 0;
        for (long i = 0; i < count; i++)
        {
            seq += firstSeq + (ulong)i;
            hash += (firstSeq + (ulong)i) * SeqHash;
        }
        if ((long)t.Records != count || t.SumSeq != seq || t.SumHash != hash)
            throw new InvalidOperationException($"verification failed: {t.Records} records (expected {count})");
    }
}
