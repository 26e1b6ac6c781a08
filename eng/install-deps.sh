#!/usr/bin/env bash
# Installs what Vigil needs to build, run and test on Debian 12 (bookworm), as root.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail

packages=(
  clang-19 llvm-19 libbpf-dev libbpf1 bpftool   # BPF toolchain and libbpf 1.1
  iproute2 libcap2-bin                          # ip netns/veth, capsh/setpriv for privilege tests
  tshark tcpdump                                # oracles for end-to-end tests, comparison benchmarks
  curl netcat-openbsd nmap socat python3 iperf3 # real clients and load generators
  jq ethtool                                    # benchmarks (eng/bench.sh)
  qemu-system-x86 busybox-static xz-utils zstd  # kernel matrix: Debian kernels in a VM (eng/kernel-vm.sh)
)

missing=()
for p in "${packages[@]}"; do
  [[ $p == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]} — run as root (sudo) to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null 2>&1 || [[ $(dotnet --version 2>/dev/null | cut -d. -f1) -lt 10 ]]; then
  echo "install-deps: the .NET 10 SDK is required (https://learn.microsoft.com/dotnet/core/install/linux-debian); 'dotnet --version' must print 10.x" >&2
  exit 1
fi
