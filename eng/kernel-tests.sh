#!/usr/bin/env bash
# The kernel compatibility matrix: runs the kernel-dependent test subset (tests with the trait
# Matrix=true, prebuilt) and `vigil doctor --output json` on this machine's kernel and, in one qemu
# VM each (eng/kernel-vm.sh), on Debian bookworm's 6.1 and bookworm-security's 6.12 kernels.
#
#   bash eng/kernel-tests.sh [--no-build] [host] [6.1] [6.12]    # default: host 6.1 6.12
#
# Per kernel it leaves artifacts/kernels/<kernel>/{doctor.json,results.xml,timings.json,output.log},
# then generates artifacts/kernels/kernels.md (eng/kernels-table.py; `--docs` there writes
# docs/kernels.md). Inside the VMs every hook of the chain is required (VIGIL_REQUIRED_HOOKS):
# a hook the kernel lacks fails its test there instead of skipping. Exit status non-zero when a
# test failed, a VM crashed or timed out, or a VM run skipped anything.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=1 kernels=() guest_out=""
while (($#)); do
  a=$1; shift
  case $a in
    --no-build) build=0 ;;
    --guest-subset) guest_out=$1; build=0; shift ;; # internal: what runs inside the VM
    host|6.1|6.12|linux-image-*) kernels+=("$a") ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
((${#kernels[@]})) || kernels=(host 6.1 6.12)
required=${VIGIL_MATRIX_REQUIRED_HOOKS:-kprobe,fentry,tc,cgroup}
vm_timeout=${VIGIL_MATRIX_VM_TIMEOUT:-1500}

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if ((build)); then
  echo "== build (host, before any VM: the guests have no network)"
  dotnet build Vigil.sln -c Release -nologo -v quiet -clp:ErrorsOnly || exit 1
fi
tests="tests/Vigil.Tests.Kernel/bin/Release/net10.0/Vigil.Tests.Kernel"
vigil="src/Vigil.Cli/bin/Release/net10.0/vigil"
[[ -x $tests && -x $vigil ]] || { echo "kernel-tests: build first ($tests, $vigil)" >&2; exit 1; }

# What runs on each kernel (natively or in the guest): doctor, then the subset. $1 = output directory.
subset() {
  local out=$1 t0 t1 t2 rc
  t0=$(date +%s.%N)
  t1=$t0
  "$vigil" doctor --output json >"$out/doctor.json" 2>"$out/doctor.err"
  echo $? >"$out/doctor.rc"
  t1=$(date +%s.%N)
  "$tests" -trait "Matrix=true" -parallel none -noColor -reporter verbose -longRunning 60 -xml "$out/results.xml"
  rc=$?
  t2=$(date +%s.%N)
  awk -v k="$(uname -r)" -v a="$t0" -v b="$t1" -v c="$t2" \
    'BEGIN { printf "{\"release\":\"%s\",\"doctor_s\":%.1f,\"subset_s\":%.1f}\n", k, b - a, c - b }' >"$out/subset-timings.json"
  return $rc
}
if [[ -n $guest_out ]]; then subset "$guest_out"; exit $?; fi

status=0
for k in "${kernels[@]}"; do
  out="$root/artifacts/kernels/$k"
  rm -rf "$out" && mkdir -p "$out"
  echo "== kernel matrix: $k"
  start=$(date +%s.%N) prepare_s=0
  if [[ $k == host ]]; then
    subset "$out" 2>&1 | tee "$out/output.log"
    rc=${PIPESTATUS[0]}
  else
    p0=$(date +%s.%N)
    bash eng/kernel-vm.sh --prepare "$k" >/dev/null || { echo "kernel-tests: preparing kernel $k failed" >&2; status=1; continue; }
    prepare_s=$(elapsed "$p0")
    bash eng/kernel-vm.sh --timeout "$vm_timeout" --share "$out" --env "VIGIL_REQUIRED_HOOKS=$required" "$k" -- \
      bash eng/kernel-tests.sh --guest-subset "$out" 2>&1 | tee "$out/output.log"
    rc=${PIPESTATUS[0]}
  fi
  total_s=$(elapsed "$start")
  printf '{"kernel":"%s","exit":%d,"prepare_s":%.1f,"total_s":%.1f,"boot_ms":%s,"required":"%s"}\n' "$k" "$rc" "$prepare_s" "$total_s" \
    "$(grep -o 'boot to command: [0-9]*' "$out/output.log" | grep -o '[0-9]*$' || echo null)" "$([[ $k == host ]] || echo "$required")" >"$out/timings.json"
  if [[ ! -f $out/results.xml ]]; then
    echo "kernel-tests: $k produced no test results (exit $rc)" >&2; status=1; continue
  fi
  ((rc == 0)) || status=1
  if [[ $k != host ]] && grep -q '<test [^>]*result="Skip"' "$out/results.xml"; then
    echo "kernel-tests: $k skipped tests although every hook is required there" >&2; status=1
  fi
done

/usr/bin/python3 eng/kernels-table.py artifacts/kernels >artifacts/kernels/kernels.md || status=1
echo "kernel matrix table: artifacts/kernels/kernels.md (python3 eng/kernels-table.py --docs writes docs/kernels.md)"
exit $status
