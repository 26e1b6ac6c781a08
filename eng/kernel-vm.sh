#!/usr/bin/env bash
# Runs one command on another kernel: boots a Debian kernel in qemu (TCG) with this machine's `/`
# shared read-only over 9p under a tmpfs overlay, runs the command chrooted there (working directory:
# the repository), streams its output live and exits with its exit code.
#
#   bash eng/kernel-vm.sh [--timeout SECONDS] [--share DIR] [--env NAME=VALUE]... KERNEL -- COMMAND [ARGS...]
#   bash eng/kernel-vm.sh --prepare KERNEL        # download and unpack only (prints the kernel release)
#
# KERNEL: 6.1  = bookworm's linux-image-amd64 dependency (linux-image-6.1.0-N-amd64)
#         6.12 = bookworm-security's newest linux-image-6.12.N+deb12-amd64
#         or an exact linux-image-* package name.
# --share DIR: a host directory the guest may write (mounted at the same path); the default is a
#   directory in the temporary work directory. Everything else the guest writes vanishes.
# The kernel package is downloaded (apt-get download) and unpacked (dpkg-deb -x) under
# artifacts/kernel-cache/, never installed. Nothing else outside the temporary work directory and
# the share is touched. Exit status: the command's; 124 on timeout, 125 on a panic or a guest
# that never reported (the serial console log is printed then), 2 on bad usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache_root="$root/artifacts/kernel-cache"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
log() { echo "kernel-vm: $*" >&2; }

timeout_s=1200 share="" prepare_only=0 envs=()
while (($#)); do
  case $1 in
    --timeout) timeout_s=$2; shift 2 ;;
    --share) share=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --prepare) prepare_only=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) usage ;;
    *) [[ -n ${kernel:-} ]] && break; kernel=$1; shift ;;
  esac
done
[[ -n ${kernel:-} ]] || usage
((prepare_only)) || (($#)) || usage

# ---- which package ----
resolve_package() {
  case $1 in
    6.1) apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6\.1\./ {print $2; exit}' ;;
    6.12) apt-cache pkgnames linux-image-6.12. | grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' | sort -V | tail -n1 ;;
    linux-image-*) echo "$1" ;;
    *) return 1 ;;
  esac
}
package=$(resolve_package "$kernel") || { log "unknown kernel '$kernel' (use 6.1, 6.12 or a linux-image-* package)"; exit 2; }
[[ -n $package ]] || { log "no package found for kernel $kernel (apt-get update?)"; exit 1; }
cache="$cache_root/$package"

# ---- prepare (cached): download, unpack, decompress modules, depmod, vmlinux, initramfs ----
# The modules the initramfs needs before the 9p root is mounted (the others load from the share).
boot_modules=(virtio_pci virtio_console 9pnet_virtio 9p overlay)

extract_vmlinux() { # vmlinuz → uncompressed ELF (has a PVH note: boots without BIOS decompression)
  local vmlinuz=$1 out=$2 magic tool off
  for pair in '\xFD\x37\x7A\x58\x5A\x00:xz' '\x28\xB5\x2F\xFD:zstd'; do
    magic=${pair%:*} tool=${pair##*:}
    while read -r off; do
      [[ -n $off ]] || continue
      tail -c +$((off + 1)) "$vmlinuz" | $tool -dc 2>/dev/null >"$out.tmp" || true
      if [[ $(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then mv "$out.tmp" "$out"; return 0; fi
    done < <(LC_ALL=C grep -obUaP "$magic" "$vmlinuz" | cut -d: -f1 | head -n 5)
  done
  rm -f "$out.tmp"
  return 1
}

module_closure() { # module names → their .ko paths and dependencies (relative), from modules.dep
  local dep=$1; shift
  awk -v want="$*" '
    BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) { gsub("-", "_", w[i]); need[w[i]] = 1 } }
    { f = $1; sub(":$", "", f); name = f; sub(".*/", "", name); sub("\\.ko$", "", name); gsub("-", "_", name)
      deps[name] = f; for (i = 2; i <= NF; i++) deps[name] = deps[name] " " $i }
    END { for (m in need) if (m in deps) print deps[m]; else print "MISSING:" m }' "$dep" | tr ' ' '\n' | sort -u
}

prepare() {
  mkdir -p "$cache"
  if [[ -f $cache/ready ]]; then cat "$cache/ready"; return; fi
  local start=$SECONDS kver
  rm -rf "$cache/root" "$cache/initramfs" "$cache"/*.deb
  (cd "$cache" && apt-get download -q "$package" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || { log "apt-get download $package failed"; return 1; }
  dpkg-deb -x "$cache"/*.deb "$cache/root"
  rm -f "$cache"/*.deb
  kver=$(ls "$cache/root/lib/modules")
  # busybox depmod/modprobe read plain .ko files only (6.12 ships .ko.xz).
  find "$cache/root/lib/modules/$kver" -name '*.ko.xz' -print0 | xargs -0 -r -P "$(nproc)" -n 64 xz -d
  busybox depmod -b "$cache/root" "$kver"
  extract_vmlinux "$cache/root/boot/vmlinuz-$kver" "$cache/vmlinux" || { log "no vmlinux in vmlinuz-$kver"; return 1; }

  local ird="$cache/initramfs" mods="lib/modules/$kver" f
  mkdir -p "$ird"/{bin,dev,proc,sys,lower,rw,newroot,share,"$mods"}
  cp /bin/busybox "$ird/bin/busybox"
  for f in $(module_closure "$cache/root/$mods/modules.dep" "${boot_modules[@]}"); do
    [[ $f == MISSING:* ]] && continue # built in
    mkdir -p "$ird/$mods/$(dirname "$f")" && cp "$cache/root/$mods/$f" "$ird/$mods/$f"
  done
  busybox depmod -b "$ird" "$kver"
  cp "$root/eng/kernel-vm-init.sh" "$ird/init" && chmod +x "$ird/init"
  (cd "$ird" && find . | busybox cpio -o -H newc 2>/dev/null) >"$cache/initramfs.cpio"
  echo "$kver" >"$cache/ready"
  log "prepared $package ($kver) in $((SECONDS - start)) s" >&2
  echo "$kver"
}

kver=$(prepare)
((prepare_only)) && { echo "$kver"; exit 0; }
# The init script is copied into the cached initramfs: rebuild it when the script changed.
if ! cmp -s "$root/eng/kernel-vm-init.sh" <(cd "$cache/initramfs" && cat init); then
  rm -f "$cache/ready"; kver=$(prepare)
fi

# ---- run ----
command -v qemu-system-x86_64 >/dev/null || { log "qemu-system-x86_64 is missing (bash eng/install-deps.sh)"; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-kvm-XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
[[ -n $share ]] || share="$work/share"
mkdir -p "$share"
share=$(cd "$share" && pwd)
ctl="$share/.vm"
rm -rf "$ctl" && mkdir -p "$ctl"

# What the guest runs: the command (quoted), in the repository, with the host's PATH.
{
  printf 'export PATH=%q HOME=/root TERM=dumb LANG=C.UTF-8\n' "$PATH"
  printf 'export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1\n'
  printf 'export VIGIL_VM_KERNEL=%q VIGIL_VM_SHARE=%q\n' "$kver" "$share"
  for e in "${envs[@]}"; do printf 'export %q=%q\n' "${e%%=*}" "${e#*=}"; done
  printf 'cd %q\n' "$PWD"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} >"$ctl/cmd.sh"
printf '%s\n' "$cache/root/lib/modules/$kver" "$share" "$PWD" >"$ctl/paths"

log "booting $package ($kver) in qemu (TCG), timeout ${timeout_s}s"
console="$work/console.log"
start=$SECONDS
set +e
# fd 3 = our stdout, handed to qemu as an fd set: the guest's virtserialport writes there as it comes.
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
  -nodefaults -no-user-config -nographic -no-reboot -display none -monitor none \
  -machine pc -accel tcg,thread=multi -cpu max -m 2G -smp 2 -nic none \
  -kernel "$cache/vmlinux" -initrd "$cache/initramfs.cpio" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off rdinit=/init" \
  -serial "file:$console" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$share,mount_tag=share,security_model=none,multidevs=remap" \
  -device virtio-serial-pci -add-fd fd=3,set=1 -chardev file,id=out,path=/dev/fdset/1,append=on \
  -device virtserialport,chardev=out,name=vigil.out 3>&1 </dev/null
qemu_status=$?
set -e
elapsed=$((SECONDS - start))

if [[ -f $ctl/rc ]]; then
  rc=$(cat "$ctl/rc")
  log "guest command exited $rc after ${elapsed}s (boot to command: $(cat "$ctl/boot-ms" 2>/dev/null || echo '?') ms of guest uptime)"
  rm -rf "$ctl"
  exit "$rc"
fi
if ((qemu_status == 124 || qemu_status == 137)); then
  log "TIMEOUT after ${timeout_s}s: the guest did not finish; serial console log follows"; rc=124
else
  log "the guest stopped without reporting an exit code (panic?) after ${elapsed}s; qemu exited $qemu_status; serial console log follows"; rc=125
fi
echo "----- console ($console) -----" >&2
tail -n 200 "$console" >&2 || true
echo "----- end of console -----" >&2
rm -rf "$ctl"
exit $rc
