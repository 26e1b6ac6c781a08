#!/usr/bin/python3
"""Summarises the RESULT lines that eng/bench.sh collected in a results directory (markdown)."""
import shlex
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def results(directory):
    rows = []
    for path in sorted(Path(directory).glob("*.txt")):
        for line in path.read_text().splitlines():
            if not line.startswith("RESULT "):
                continue
            fields = {}
            for token in shlex.split(line)[1:]:
                key, _, value = token.partition("=")
                fields[key] = value
            rows.append(fields)
    return rows


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def median(values):
    return statistics.median(values) if values else float("nan")


def quiet_note(rows):
    idle = [num(r["idle_before"]) for r in rows if "idle_before" in r]
    if not idle:
        return ""
    busy = sum(1 for i in idle if i < 90)
    return (f"CPU idle in the second before each measurement: min {min(idle):.0f}%, median {median(idle):.0f}%; "
            f"{busy} of {len(idle)} measurements started with the machine less than 90% idle.\n")


def ring(rows):
    rs = [r for r in rows if "impl" in r]
    if not rs:
        return
    print("## 1. Ring-buffer reader: Vigil C# RingBufferReader vs libbpf ring_buffer__consume (C)\n")
    print("Million records/s; median of the alternating runs (min-max in brackets). "
          "Ratio = median C# / median C.\n")
    print("| regime | record | C (libbpf) | C# (Vigil) | ratio C#/C | runs |")
    print("|---|---|---|---|---|---|")
    groups = defaultdict(lambda: defaultdict(list))
    for r in rs:
        groups[(r["regime"], int(r["size"]))][r["impl"]].append(num(r["eps"]) / 1e6)
    order = {"burst": 0, "cache": 1, "stream": 2}
    for (regime, size), by_impl in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        c, cs = by_impl.get("c", []), by_impl.get("cs", [])
        ratio = median(cs) / median(c) if c and cs else float("nan")
        print(f"| {regime} | {size} B | {median(c):.1f} [{min(c):.1f}-{max(c):.1f}] | "
              f"{median(cs):.1f} [{min(cs):.1f}-{max(cs):.1f}] | {ratio:.2f}x | {len(c)}+{len(cs)} |")
    bad = [r for r in rs if r.get("ok") != "1"]
    print(f"\nEvery run verified count and contents of all records: {'yes' if not bad else 'NO'}\n")
    print(quiet_note(rs))


def tc(rows):
    ts = [r for r in rows if r.get("kind") == "tc_cost"]
    if not ts:
        return
    base = next((num(r["mean_ns"]) for r in ts if r["path"] == "block_nop"), float("nan"))
    print("## 2. Per-packet cost of vigil_tcp_tc (BPF_PROG_TEST_RUN)\n")
    print(f"Mean of the runs' averages (min-max of the runs); 'net' subtracts the empty program's {base:.1f} ns "
          "(what BPF_PROG_TEST_RUN costs per run here). Emitting paths: 'quiet' = no reader and no wake-ups "
          "during the timed runs; 'poll' = a reader in epoll woken every 64 KiB (the agent's set-up); "
          "'spin' = a reader spinning on the ring.\n")
    print("| path | quiet/none: mean ns | net ns | target | with poll reader | with spinning reader | counters (quiet/none run) |")
    print("|---|---|---|---|---|---|---|")
    targets = {"filtered": 50, "aggregated": 50, "emitted": 150, "emitted_snap128": 150, "emitted_v6": 150}
    by = {(r["path"], r.get("reader", "none")): r for r in ts}
    for name in ["filtered", "aggregated", "emitted", "emitted_snap128", "emitted_v6"]:
        r = by.get((name, "none")) or by.get((name, "quiet"))
        if not r:
            continue
        mean = num(r["mean_ns"])
        target = targets[name]
        verdict = f"<= {target}: {'met' if mean <= target else 'missed'} (net {'met' if mean - base <= target else 'missed'})"
        counters = (f"packets={r['packets']} filtered={r['filtered']} aggregated={r['aggregated']} "
                    f"emitted={r['emitted']} ring_full={r['ring_full']} drained={r['drained']} ok={r['ok']}")

        def other(reader):
            o = by.get((name, reader))
            return f"{num(o['mean_ns']):.1f} ({o['min_ns']}-{o['max_ns']}), ring_full={o['ring_full']}, ok={o['ok']}" if o else "-"
        print(f"| {name} ({r.get('desc', '')}) | {mean:.1f} ({r['min_ns']}-{r['max_ns']}) | {mean - base:.1f} | "
              f"{verdict} | {other('poll')} | {other('spin')} | {counters} |")
    print()
    print(quiet_note(ts))
    print("Building blocks (each an own TC program, same packet):\n")
    print("| block | mean ns | net ns |")
    print("|---|---|---|")
    for r in ts:
        if r["path"].startswith("block_"):
            mean = num(r["mean_ns"])
            print(f"| {r['path'][6:]} | {mean:.1f} | {mean - base:.1f} |")
    print()
    single = [r for r in ts if r["path"].startswith("single_run_")]
    if single:
        one = next((num(r["mean_ns"]) for r in single if r["path"] == "single_run_nop"), float("nan"))
        print("Flows-only worst case: one run per BPF_PROG_TEST_RUN call (repeat=1), frames of two flows in turn,"
              " so every packet flushes the CPU's slot; 'net' subtracts the empty program timed the same way:\n")
        print("| case | mean ns | net ns | counters |")
        print("|---|---|---|---|")
        for r in single:
            mean = num(r["mean_ns"])
            print(f"| {r['path'][11:]} | {mean:.1f} | {mean - one:.1f} | aggregated={r['aggregated']} flow_full={r['flow_full']} ok={r['ok']} |")
        print()


def net(rows):
    ip = [r for r in rows if r.get("kind") == "iperf"]
    if not ip:
        return
    sensor = [r for r in rows if r.get("kind") == "sensor"]
    dump = [r for r in rows if r.get("kind") == "tcpdump"]
    print("## 3. TCP throughput between two network namespaces (iperf3, one stream)\n")
    print("| scenario | IP | inspection | Gbit/s mean [min-max] | vs none | retransmits (mean) | runs |")
    print("|---|---|---|---|---|---|---|")
    groups = defaultdict(list)
    for r in ip:
        groups[(r["scenario"], r["family"], r["mode"])].append(r)
    for scenario in ["offload", "no_offload"]:
        for family in ["4", "6"]:
            none = groups.get((scenario, family, "none"))
            if not none:
                continue
            baseline = statistics.mean(num(r["bps"]) for r in none) / 1e9
            for mode in ["none", "vigil", "vigil_nosink", "vigil_flows", "tcpdump"]:
                g = groups.get((scenario, family, mode), [])
                if not g:
                    continue
                gbps = [num(r["bps"]) / 1e9 for r in g]
                mean = statistics.mean(gbps)
                rel = "-" if mode == "none" else f"{(1 - mean / baseline) * 100:+.1f}% slower" if mean < baseline else f"{(mean / baseline - 1) * 100:.1f}% faster"
                retr = statistics.mean(num(r["retransmits"]) for r in g)
                print(f"| {scenario} | v{family} | {mode} | {mean:.2f} [{min(gbps):.2f}-{max(gbps):.2f}] | {rel} | {retr:.0f} | {len(g)} |")
    print()
    print(quiet_note(ip))
    print("Vigil sensor counters per run (kernel: seen/emitted/ring_full; user space: received/dropped_queue/written):\n")
    print("| scenario | IP | mode | rep | seen | aggregated | emitted | ring_full | received | dropped_queue | written | lost % | sensor CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sensor:
        seen = num(r["seen"])
        lost = num(r["ring_full"]) + num(r["dropped_queue"]) + num(r["user_malformed"])
        pct = lost / seen * 100 if seen else 0.0
        print(f"| {r['scenario']} | v{r['family']} | {r['mode']} | {r['rep']} | {r['seen']} | {r['aggregated']} | {r['emitted']} | {r['ring_full']} | "
              f"{r['received']} | {r['dropped_queue']} | {r['written']} | {pct:.2f} | {r['cpu_seconds']} |")
    if dump:
        print("\ntcpdump counters per run (both directions):\n")
        print("| scenario | IP | rep | captured | received by filter | dropped by kernel |")
        print("|---|---|---|---|---|---|")
        for r in dump:
            print(f"| {r['scenario']} | v{r['family']} | {r['rep']} | {r['captured']} | {r['received_by_filter']} | {r['dropped_by_kernel']} |")
    print()


def main():
    rows = results(sys.argv[1])
    m = next((r for r in rows if r.get("kind") == "machine"), None)
    print("# Vigil benchmark summary\n")
    if m:
        print(f"Machine: {m['cpus']} vCPU {m['cpu']}, {m['mem_gib']} GiB, kernel {m['kernel']}, "
              f".NET SDK {m['dotnet']}, libbpf {m['libbpf']}; SRSO: {m['srso']}; Spectre v2: {m['spectre_v2']}\n")
    ring(rows)
    tc(rows)
    net(rows)


if __name__ == "__main__":
    main()
