#!/usr/bin/env python3
"""Generates the kernel compatibility table (docs/kernels.md) from a run's artifacts.

    python3 eng/kernels-table.py [ARTIFACTS_DIR]          # markdown on stdout
    python3 eng/kernels-table.py --docs [ARTIFACTS_DIR]   # writes docs/kernels.md

ARTIFACTS_DIR (default artifacts/kernels) holds one directory per kernel, as eng/kernel-tests.sh
leaves them: doctor.json (`vigil doctor --output json`), results.xml (xunit.v3 results of the
Matrix=true subset), timings.json, subset-timings.json. Nothing in the table is typed by hand.
"""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

CHAIN = ["kprobe", "fentry", "tc", "cgroup"]
PROBES = {"kprobe": ["kprobe"], "fentry": ["fentry"], "tc": ["tcx", "tc"], "cgroup": ["cgroup_skb"]}
HOOK_TEST = re.compile(r'HookMatrixTests\.EachHookOfTheChainSeesEveryIncomingSegmentWithItsOwner\(hook: \\?"(\w+)\\?"\)')
AUTO_TEST = "AutoChoosesTheFirstWorkingHookAndSaysWhyItSkippedTheOthers"
ORDER = {"host": 0}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_results(path):
    """name -> (result, seconds, message, traits [(name, value)], output)"""
    tests = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return tests
    for t in root.iter("test"):
        msg = ""
        reason = t.find("reason")
        failure = t.find("failure/message")
        if failure is not None and failure.text:
            msg = failure.text
        elif reason is not None and reason.text:
            msg = reason.text
        traits = [(tr.get("name"), tr.get("value")) for tr in t.iter("trait")]
        output = t.findtext("output") or ""
        tests[t.get("name")] = (t.get("result"), float(t.get("time", "0")), msg.strip(), traits, output)
    return tests


# Tests that prove several hooks of a sensor at once declare them as traits
# (tests/Vigil.Tests.Kernel/Support/MatrixHooks.cs): MatrixHook = "SENSOR/HOOK [doctor probe ...]", and
# write one line per hook to their output: "matrix hook SENSOR/HOOK: passed" or "...: FAILED: reason".
# New hooks get their rows from these alone: nothing here names them.
HOOK_TRAIT = "MatrixHook"
HOOK_LINE = re.compile(r"^matrix hook (\S+?)/(\S+): (passed|FAILED)(?:: (.*))?$", re.M)


def declared_hooks(results):
    """(sensor, hook) -> {"probes": [...], "test": short name, "result": (r, secs, msg)} for one kernel."""
    hooks = {}
    for name, (r, secs, msg, traits, output) in results.items():
        lines = {(m.group(1), m.group(2)): (m.group(3), m.group(4) or "") for m in HOOK_LINE.finditer(output)}
        for order, (trait, value) in enumerate(traits):
            if trait != HOOK_TRAIT:
                continue
            key, *probes = value.split()
            sensor, _, hook = key.partition("/")
            if (sensor, hook) in lines:  # the test's own verdict for this hook
                verdict, why = lines[(sensor, hook)]
                res = ("Pass" if verdict == "passed" else "Fail", secs, why)
            elif r == "Pass" and lines:  # passed, but this hook wrote no line: not proven
                res = ("NotProven", secs, "the test passed but wrote no result for this hook")
            else:  # failed before its per-hook checks (e.g. the object did not load): every hook fails
                res = (r, secs, msg)
            hooks[(sensor, hook)] = {"probes": probes, "test": name.split(".")[-1].split("(")[0], "order": order, "result": res}
    return hooks


def cell(result):
    if result is None:
        return "not run"
    r, secs = result[0], result[1]
    if r == "Pass":
        return f"passed ({secs:.0f} s)"
    if r == "Skip":
        return "skipped: kernel lacks it"
    return "**FAILED**"


def first_line(text, limit=160):
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def main(argv):
    docs = "--docs" in argv
    args = [a for a in argv if a != "--docs"]
    base = args[0] if args else "artifacts/kernels"
    kernels = sorted((d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))),
                     key=lambda k: (ORDER.get(k, 1), [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", k)]))
    rows, details, findings = [], [], []
    sensor_hooks = {}  # (sensor, hook) -> {kernel: cell text}, from MatrixHook traits
    for k in kernels:
        d = os.path.join(base, k)
        doctor = load_json(os.path.join(d, "doctor.json")) or {}
        timings = load_json(os.path.join(d, "timings.json")) or {}
        subset = load_json(os.path.join(d, "subset-timings.json")) or {}
        results = load_results(os.path.join(d, "results.xml"))
        release = (doctor.get("kernel") or {}).get("release") or subset.get("release") or "?"
        probes = {h["hook"]: h for h in doctor.get("hooks", [])}

        available = []
        for hook in CHAIN:
            works = [p for p in PROBES[hook] if probes.get(p, {}).get("works")]
            if works:
                available.append(hook + (" (tcx)" if hook == "tc" and "tcx" in works else " (netlink)" if hook == "tc" else ""))
        per_hook = {}
        for name, res in results.items():
            m = HOOK_TEST.search(name)
            if m:
                per_hook[m.group(1)] = res
        auto = next((res for name, res in results.items() if name.endswith(AUTO_TEST)), None)
        auto_hook = (doctor.get("tcp_auto_hook") or {}).get("hook") or "none"
        where = "native" if k == "host" else "qemu TCG"
        rows.append(f"| {k} | `{release}` ({where}) | `watch tcp` | {', '.join(available) or 'none'} | "
                    f"{auto_hook} (test: {cell(auto)}) | " + " | ".join(cell(per_hook.get(h)) for h in CHAIN) + " |")

        for key, h in declared_hooks(results).items():
            works = any(probes.get(p, {}).get("works") for p in h["probes"])
            avail = "" if not h["probes"] else "available, " if works else "**not available**, "
            r = h["result"]
            result = ("passed" if r[0] == "Pass" else "skipped" if r[0] == "Skip"
                      else "**not proven**" if r[0] == "NotProven" else f"**FAILED**: {first_line(r[2], 100)}")
            entry = sensor_hooks.setdefault(key, {"test": h["test"], "order": h["order"], "probes": h["probes"], "cells": {}, "secs": {}})
            entry["cells"][k] = (avail + result, r[0] == "Pass")
            entry["secs"][k] = r[1]

        for name, res in sorted(results.items()):
            if res[0] == "Fail":
                findings.append(f"- **{k}** `{name.split('.')[-1]}`: {first_line(res[2])}")
        passed = sum(1 for r in results.values() if r[0] == "Pass")
        failed = sum(1 for r in results.values() if r[0] == "Fail")
        skipped = sum(1 for r in results.values() if r[0] == "Skip")
        t = []
        if timings.get("prepare_s"):
            t.append(f"prepare {timings['prepare_s']:.0f} s")
        if timings.get("boot_ms") is not None and k != "host":
            t.append(f"boot to command {timings['boot_ms'] / 1000:.1f} s")
        if subset:
            t.append(f"doctor {subset.get('doctor_s', 0):.0f} s, subset {subset.get('subset_s', 0):.0f} s")
        if timings.get("total_s"):
            t.append(f"total {timings['total_s']:.0f} s")
        unavailable = [f"{h['hook']}: {first_line(h.get('reason') or '', 200)}" for h in doctor.get("hooks", []) if not h.get("works")]
        details.append(f"### {k}: `{release}`\n\n"
                       f"- subset: {passed} passed, {failed} failed, {skipped} skipped"
                       + (f" (required hooks: {timings['required']})" if timings.get("required") else "") + "\n"
                       f"- timings: {', '.join(t) or 'n/a'}\n"
                       f"- auto: {auto_hook} — {(doctor.get('tcp_auto_hook') or {}).get('reason', '')}\n"
                       + "".join(f"- doctor, not available: {u}\n" for u in unavailable))

    passed_somewhere = {h: [] for h in CHAIN}
    for k in kernels:
        for name, res in load_results(os.path.join(base, k, "results.xml")).items():
            m = HOOK_TEST.search(name)
            if m and res[0] == "Pass":
                passed_somewhere[m.group(1)].append(k)

    out = []
    out.append("# Kernel compatibility\n")
    out.append("<!-- GENERATED by eng/kernels-table.py from artifacts/kernels/ of a run of eng/kernel-tests.sh. Do not edit by hand. -->\n")
    out.append("Which hooks of the `vigil watch tcp` fallback chain (kprobe → fentry → tc → cgroup) each kernel offers, which "
               "one `--hook auto` chooses, and whether each hook passed the end-to-end check (trigger real traffic between two "
               "network namespaces, capture with `vigil watch tcp --hook H`, compare every incoming segment and its owner "
               "with tcpdump). *Available* is what `vigil doctor --output json` found by loading and attaching probe programs; "
               "the per-hook results are the `Matrix=true` tests (`HookMatrixTests`, `AutoChoosesTheFirstWorkingHook…`). "
               "Inside the VMs every hook is required, so a missing hook fails instead of skipping. Sensors whose matrix "
               "tests declare their hooks (`vigil watch guard`) have a table each below.\n")
    out.append("| kernel | release | sensor | hooks available (doctor) | auto chooses | kprobe | fentry | tc | cgroup |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    out.extend(rows)
    out.append("")
    out.append("Every hook passed on at least one kernel: " +
               ", ".join(f"{h} ({', '.join(passed_somewhere[h]) or '**none**'})" for h in CHAIN) + ".\n")
    for sensor in sorted({s for s, _ in sensor_hooks}):
        hooks = sorted(((h, v) for (s, h), v in sensor_hooks.items() if s == sensor), key=lambda hv: (hv[1]["test"], hv[1]["order"]))
        tests = sorted({v["test"] for _, v in hooks})
        out.append(f"## `{sensor}` hooks\n")
        out.append(f"Each hook of the {sensor} sensor on each kernel, from the `Matrix=true` test(s) that declare it "
                   f"(trait `{HOOK_TRAIT}`: {', '.join(f'`{t}`' for t in tests)}); each hook's result is that test's own "
                   "check for the hook (trigger, refusal or admission as the kernel did it, and the events). *Available* is the "
                   "`vigil doctor` probe of the hook's program type.\n")
        out.append("| hook | doctor probe | " + " | ".join(kernels) + " |")
        out.append("|---|---|" + "---|" * len(kernels))
        for hook, v in hooks:
            out.append(f"| `{hook}` | {', '.join(v['probes']) or '—'} | " +
                       " | ".join(v["cells"].get(k, ("not run", False))[0] for k in kernels) + " |")
        out.append("")
        secs = {}
        for _, v in hooks:
            for k, t in v["secs"].items():
                secs.setdefault((v["test"], k), t)
        out.append("Test time: " + "; ".join(
            f"`{t}` " + ", ".join(f"{k} {secs[(t, k)]:.0f} s" for k in kernels if (t, k) in secs) for t in tests) + ".\n")
        out.append(f"Every {sensor} hook passed on at least one kernel: " +
                   ", ".join(f"{h} ({', '.join(k for k in kernels if v['cells'].get(k, ('', False))[1]) or '**none**'})"
                             for h, v in hooks) + ".\n")
    out.append("## Findings (failures in this run)\n")
    out.append("\n".join(findings) if findings else "None: every test of the subset passed or was skipped for a missing hook on the host.")
    out.append("\n## Per kernel\n")
    out.extend(details)
    out.append("## How to reproduce\n")
    out.append("```sh\nbash eng/kernel-tests.sh            # host, 6.1 and 6.12; artifacts in artifacts/kernels/\n"
               "python3 eng/kernels-table.py --docs       # regenerate this page from those artifacts\n```\n"
               "`eng/test.sh` runs the same matrix (set `VIGIL_MATRIX=0` to leave it out). How the VMs are built: "
               "`eng/kernel-vm.sh` (see its header and the README).\n")
    text = "\n".join(out)
    if docs:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "kernels.md")
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {os.path.normpath(path)}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
