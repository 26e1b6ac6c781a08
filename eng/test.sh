#!/usr/bin/env bash
# Runs every test tier — pure, artifact, BPF logic (BPF_PROG_TEST_RUN) and end-to-end — then the
# kernel matrix (the kernel-dependent subset on this kernel and, in qemu, on Debian's 6.1 and 6.12:
# eng/kernel-tests.sh), and ends with one plain line "N passed, N failed" over all of them.
# Run as root on Debian 12 (what .ci/run runs):
#   bash eng/test.sh                  # VIGIL_MATRIX=0 leaves the VM kernels out (the host still runs the subset)
# Installs what is missing first. Exit status is non-zero if any test failed, a tier did not run, or the
# run left kernel state behind (a bpffs mount or pin, a network namespace, a vigil cgroup, a vigil program).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash eng/install-deps.sh || exit 1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

echo "== build"
dotnet build Vigil.sln -c Release -nologo -v quiet -clp:ErrorsOnly || { echo "0 passed, 1 failed"; exit 1; }

# What the tests may change in the host kernel, listed so that anything left behind is a failure.
kernel_state() {
  awk '$3 == "bpf" { print "bpffs mount: " $2 }' /proc/self/mounts
  awk '$3 == "bpf" { print $2 }' /proc/self/mounts | while read -r m; do
    find "$m" -mindepth 1 2>/dev/null | sed 's/^/bpffs entry: /'
  done
  ip netns list 2>/dev/null | sed 's/^/netns: /'
  local cg
  cg=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
  [[ -n $cg ]] && find "$cg" -mindepth 1 -maxdepth 3 -type d -name 'vigil*' 2>/dev/null | sed 's/^/cgroup: /'
  bpftool prog show 2>/dev/null | awk '/name (vigil|probe|bench)_/ { print "bpf program: " $0 }'
}
state_before=$(kernel_state | sort)

results="$root/artifacts/test-results"
rm -rf "$results" && mkdir -p "$results"
status=0
for tier in Pure Artifact Kernel; do
  exe="tests/Vigil.Tests.$tier/bin/Release/net10.0/Vigil.Tests.$tier"
  echo "== tier: $tier"
  # Kernel-facing tests share the machine's kernel: run them one at a time. The matrix subset runs
  # below, once per kernel (this one included).
  extra=()
  [[ $tier == Kernel ]] && extra=(-parallel none -trait- "Matrix=true")
  "$exe" -xml "$results/$tier.xml" -noColor "${extra[@]}" "$@" || status=1
done

matrix=(host)
[[ ${VIGIL_MATRIX:-1} == 0 ]] || matrix+=(6.1 6.12)
echo "== kernel matrix: ${matrix[*]}"
bash eng/kernel-tests.sh --no-build "${matrix[@]}" || status=1
for k in "${matrix[@]}"; do
  [[ -f artifacts/kernels/$k/results.xml ]] && cp "artifacts/kernels/$k/results.xml" "$results/Matrix-$k.xml"
done

# A tier that crashed leaves no XML: count it as a failure.
missing=0
for tier in Pure Artifact Kernel "${matrix[@]/#/Matrix-}"; do
  [[ -f "$results/$tier.xml" ]] || { echo "tier $tier produced no results"; missing=$((missing + 1)); status=1; }
done
left=$(comm -13 <(echo "$state_before") <(kernel_state | sort))
if [[ -n $left ]]; then
  echo "the tests left kernel state behind:"; echo "$left" | sed 's/^/  /'
  missing=$((missing + 1)); status=1
fi

/usr/bin/python3 - "$results" "$missing" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
passed, failed, skipped = 0, int(sys.argv[2]), 0
for f in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    for a in ET.parse(f).getroot().iter("assembly"):
        t, fl, sk, er = (int(a.get(k, 0)) for k in ("total", "failed", "skipped", "errors"))
        passed += t - fl - sk
        failed += fl + er
        skipped += sk
print(f"{skipped} skipped (only hooks this kernel lacks may skip; inside the VMs none may)")
print(f"{passed} passed, {failed} failed")
PY
exit $status
