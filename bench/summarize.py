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


GUARD_SCENARIOS = [("none", "no guard"), ("guard", "guard (HTTP audit on)"), ("guard_http1", "guard, HTTP budget 1 byte"),
                   ("guard_nohttp", "guard, HTTP audit off"), ("iptables", "iptables instead")]
GUARD_CASES = [(dst, family, uid) for dst in ("guarded", "unguarded") for family in ("4", "6") for uid in ("0", "65534")]


def outcome(r):
    """What the caller saw: OK, EPERM, ECONNREFUSED or a mix (counts)."""
    counts = {k: int(r[k]) for k in ("ok", "eperm", "econnrefused", "other") if int(r[k])}
    if len(counts) == 1:
        return {"ok": "ok", "eperm": "EPERM", "econnrefused": "ECONNREFUSED", "other": r["other_errno"]}[next(iter(counts))]
    return "/".join(f"{k}={v}" for k, v in counts.items())


def guard(rows):
    conn = [r for r in rows if r.get("kind") == "guard_connect"]
    cost = [r for r in rows if r.get("kind") == "guard_cost"]
    if not conn and not cost:
        return
    print("## 4. Metadata guard\n")
    kept = [r for r in conn if r.get("disturbed") != "1"]
    lat = [r for r in kept if r.get("stats") == "0"]
    # (scenario, dst, family, uid) -> {rep: row}
    by = defaultdict(dict)
    for r in lat:
        by[(r["scenario"], r["dst"], r["family"], r["uid"])][r["rep"]] = r

    def cell(scenario, case, field):
        g = by.get((scenario,) + case)
        if not g:
            return "-"
        vals = [num(r[field]) / 1000 for r in g.values()]
        outs = {outcome(r) for r in g.values()}
        out = "" if outs == {"ok"} else " " + "/".join(sorted(outs))
        return f"{median(vals):.2f} [{min(vals):.2f}-{max(vals):.2f}]{out}"

    def paired(scenario, base, case, field):
        """Median over repetitions of (scenario - base) in the same repetition, in microseconds."""
        a, b = by.get((scenario,) + case, {}), by.get((base,) + case, {})
        diffs = [(num(a[k][field]) - num(b[k][field])) / 1000 for k in a if k in b]
        return (median(diffs), min(diffs), max(diffs)) if diffs else None

    def fmt(d):
        return "-" if d is None else f"{d[0]:+.2f} [{d[1]:+.2f}..{d[2]:+.2f}]"

    reps = sorted({r["rep"] for r in lat}, key=int)
    present = {r["scenario"] for r in lat}
    scenarios = [(k, t) for k, t in GUARD_SCENARIOS if k in present]
    for field, title in [("connect_median_ns", "connect() alone, median"), ("cycle_median_ns", "socket() + connect() + close(), median"),
                         ("cycle_mean_ns", "socket() + connect() + close(), mean (rare expensive calls count)")]:
        print(f"### {title}: latency, µs\n")
        print(f"Median of the {len(reps)} repetitions' medians [min-max]; each repetition runs every scenario "
              "(order rotated) and each case once. Outcome shown when not a successful connect.\n")
        print("| destination | IP | uid | " + " | ".join(t for _, t in scenarios) + " |")
        print("|---|---|---|" + "---|" * len(scenarios))
        for case in GUARD_CASES:
            print(f"| {case[0]} | v{case[1]} | {case[2]} | " + " | ".join(cell(s_, case, field) for s_, _ in scenarios) + " |")
        print()
        print(f"Added per call, µs: median over repetitions of the difference within a repetition [min..max] ({title}).\n")
        pairs = [(a, b) for a, b in [("guard", "none"), ("guard_http1", "none"), ("guard_nohttp", "none"), ("iptables", "none"),
                                     ("guard", "iptables"), ("guard_nohttp", "iptables")] if a in present and b in present]
        print("| destination | IP | uid | " + " | ".join(f"{a} - {b}" for a, b in pairs) + " |")
        print("|---|---|---|" + "---|" * len(pairs))
        for case in GUARD_CASES:
            print(f"| {case[0]} | v{case[1]} | {case[2]} | " + " | ".join(fmt(paired(a, b, case, field)) for a, b in pairs) + " |")
        print()

    print("Tail of connect(): p90 / p99 / mean in µs (median over repetitions).\n")
    print("| destination | IP | uid | " + " | ".join(t for _, t in scenarios) + " |")
    print("|---|---|---|" + "---|" * len(scenarios))
    for case in GUARD_CASES:
        cells = []
        for s_, _ in scenarios:
            g = by.get((s_,) + case)
            cells.append("-" if not g else " / ".join(f"{median([num(r[f]) / 1000 for r in g.values()]):.1f}"
                                                      for f in ("connect_p90_ns", "connect_p99_ns", "connect_mean_ns")))
        print(f"| {case[0]} | v{case[1]} | {case[2]} | " + " | ".join(cells) + " |")
    print()
    print(quiet_note(lat))
    shares = [num(r["cpu_share"]) for r in lat if "cpu_share" in r]
    if shares:
        redo = [r for r in conn if r.get("disturbed") == "1"]
        foreign = [num(r["foreign_cpu"]) for r in lat if "foreign_cpu" in r]
        print(f"The client's share of its CPU over each kept measurement: min {min(shares):.2f}, median {median(shares):.2f}"
              + (f"; other processes' CPU use meanwhile, % of the machine: median {median(foreign):.0f}, max {max(foreign):.0f}" if foreign else "")
              + f". {len(redo)} measurement(s) were disturbed (too little CPU share or too much other load) and made again "
              "(kept in the raw results as disturbed=1).\n")

    # Program cost from BPF_ENABLE_STATS: summed over repetitions per (scenario, case, program).
    progs = [r for r in rows if r.get("kind") == "guard_prog" and r.get("disturbed") != "1"]
    if progs:
        connects = defaultdict(int)
        for r in kept:
            if r.get("stats") == "1":
                connects[(r["scenario"], r["dst"], r["family"], r["uid"])] += int(r["n"]) + int(r["warmup"])
        tot = defaultdict(lambda: [0, 0])
        for r in progs:
            t = tot[(r["scenario"], r["dst"], r["family"], r["uid"], "egress" if r["program"].endswith("egress") else "connect")]
            t[0] += int(r["runs"])
            t[1] += int(r["run_time_ns"])
        harness = {r.get("stats"): num(r["mean_ns"]) for r in cost if r.get("path") == "harness" and r.get("program") == "bench_nop_cgroup_skb"}
        over = harness.get("1", float("nan")) - harness.get("0", float("nan"))
        print("### Program cost (BPF_ENABLE_STATS), ns\n")
        print("run_time_ns / run_cnt of the guard's programs over the stats pass of each case (every connect of it, "
              "warm-up included), summed over repetitions. `per connect` = all guard program time / connects. "
              f"The accounting itself added {over:.1f} ns to each run of an empty program (BPF_PROG_TEST_RUN with "
              "and without stats): part of it is inside each run_time_ns.\n")
        print("| scenario | destination | IP | uid | connect4/6 ns/run | egress ns/run | egress runs per connect | guard programs per connect |")
        print("|---|---|---|---|---|---|---|---|")
        for s_ in ("guard", "guard_http1", "guard_nohttp"):
            for case in GUARD_CASES:
                key = (s_,) + case
                n = connects.get(key)
                if not n:
                    continue
                c, e = tot.get(key + ("connect",), [0, 0]), tot.get(key + ("egress",), [0, 0])
                cn = f"{c[1] / c[0]:.0f}" if c[0] else "-"
                en = f"{e[1] / e[0]:.0f}" if e[0] else "-"
                print(f"| {s_} | {case[0]} | v{case[1]} | {case[2]} | {cn} | {en} | {e[0] / n:.2f} | {(c[1] + e[1]) / n:.0f} |")
        print()

    vig = [r for r in rows if r.get("kind") == "guard_vigil"]
    if vig:
        print("`vigil watch guard` per run: CPU time over the latency pass (8 cases), kernel counters over the whole run "
              "(latency and stats passes):\n")
        attempts = defaultdict(int)
        for r in lat:
            attempts[(r["scenario"], r["rep"])] += int(r["n"]) + int(r["warmup"])
        print("| scenario | rep | vigil CPU s | µs per connect attempt | checked | guarded | allowed | denied | emitted | rate_limited | ring_full | http_records | http_lost | received by vigil |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(vig, key=lambda r: (r["scenario"], int(r["rep"]))):
            n = attempts.get((r["scenario"], r["rep"]), 0)
            per = f"{num(r['cpu_seconds']) * 1e6 / n:.2f}" if n else "-"
            print(f"| {r['scenario']} | {r['rep']} | {r['cpu_seconds']} | {per} | {r['checked']} | {r['guarded']} | {r['allowed']} | {r['denied']} | "
                  f"{r['emitted']} | {r['rate_limited']} | {r['ring_full']} | {r['http_records']} | {r['http_lost']} | {r['user_received']} |")
        print()

    if cost:
        h = {r["program"]: num(r["mean_ns"]) for r in cost if r.get("path") == "harness" and r.get("stats") == "0"}
        print("### Per-packet cost, BPF_PROG_TEST_RUN (ns)\n")
        print("Mean of the runs' averages (min-max). 'net' subtracts the empty program of the same type "
              + ", ".join(f"({k}: {v:.1f} ns)" for k, v in h.items())
              + ". A test run's skb has a dummy socket (not raw, no socket storage): the path of every packet of "
              "an ordinary socket whose connection is not captured.\n")
        print("| program | frame | HTTP budget | mean ns | net ns | target <= 50 ns | counters |")
        print("|---|---|---|---|---|---|---|")
        for r in cost:
            if r.get("path") != "program":
                continue
            mean = num(r["mean_ns"])
            verdict = ("met" if mean <= 50 else "missed") + (" (gross)" if mean <= 50 else f" (net {'met' if num(r['net_ns']) <= 50 else 'missed'})")
            print(f"| {r['program']} | {r['frame']} | {r['http_bytes']} | {mean:.1f} ({r['min_ns']}-{r['max_ns']}) | {num(r['net_ns']):.1f} | "
                  f"{verdict} | {r['counters']} ok={r['ok']} |")
        print()
        print("| block | frame | mean ns | net ns |")
        print("|---|---|---|---|")
        for r in cost:
            if r.get("path") == "block_lpm":
                print(f"| destination lookup (LPM trie, {'hit' if r['hit'] == '1' else 'miss'}) | {r['frame']} | {num(r['mean_ns']):.1f} | {num(r['net_ns']):.1f} |")
            elif r.get("path") == "harness":
                print(f"| empty program {r['program']}{' with BPF_ENABLE_STATS on' if r.get('stats') == '1' else ''} | - | {num(r['mean_ns']):.1f} | - |")
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
    guard(rows)


if __name__ == "__main__":
    main()
