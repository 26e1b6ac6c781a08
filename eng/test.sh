#!/usr/bin/env bash
# Runs every test tier — pure, artifact, BPF logic (BPF_PROG_TEST_RUN) and end-to-end — then the
# kernel matrix (the kernel-dependent subset on this kernel and, in qemu, on Debian's 6.1 and 6.12:
# eng/kernel-tests.sh), and prints one plain line "N passed, N failed, N skipped" over all of them.
# Run as root on Debian 12:
#   sudo bash eng/test.sh                  # VIGIL_MATRIX=0 leaves the VM kernels out (the host still runs the subset)
# Installs what is missing first. Exit status is non-zero if any test failed or a tier did not run.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash eng/install-deps.sh || exit 1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

echo "== build"
dotnet build Vigil.sln -c Release -nologo -v quiet -clp:ErrorsOnly || { echo "0 passed, 1 failed"; exit 1; }

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

/usr/bin/python3 - "$results" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for f in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    for a in ET.parse(f).getroot().iter("assembly"):
        t, fl, sk, er = (int(a.get(k, 0)) for k in ("total", "failed", "skipped", "errors"))
        passed += t - fl - sk
        failed += fl + er
        skipped += sk
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
# A tier that crashed leaves no XML: count it as a failure.
for tier in Pure Artifact Kernel "${matrix[@]/#/Matrix-}"; do
  [[ -f "$results/$tier.xml" ]] || { echo "tier $tier produced no results"; status=1; }
done
exit $status
