#!/bin/busybox sh
# PID 1 of the test VM (eng/kernel-vm.sh copies it into the busybox initramfs as /init).
# Mounts the host's / (9p, read-only) under a tmpfs overlay, the read-write share at its host path,
# the guest's own proc/sys/dev/cgroup2/bpffs, then runs /share/.vm/cmd.sh chrooted there with
# stdout+stderr on the "vigil.out" virtserialport, writes its exit code to /share/.vm/rc, powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "vm-init: $*" >/dev/ttyS0; poweroff -f; }

# Built-in on some kernels, modules on others: a failure shows up at the mounts below.
for m in virtio_pci virtio_console 9pnet_virtio 9p overlay; do modprobe "$m" 2>/dev/null; done
p9="trans=virtio,version=9p2000.L,msize=512000"
# cache=loose: the host tree does not change under a run, and uncached 9p reads are slow under TCG.
mount -t 9p -o "$p9,ro,cache=loose" hostroot /lower || fail "mounting the host root over 9p failed"
mount -t 9p -o "$p9" share /share || fail "mounting the share failed"
{ read -r modtree; read -r sharepath; read -r workdir; } </share/.vm/paths || fail "no /share/.vm/paths"
kver=$(uname -r)

mount -t tmpfs -o mode=0755 tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "overlay mount failed"
r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs tmpfs $r/dev/shm
# The host's /run (its netns mounts, pid files) and /tmp must not show through, except the working
# directory when it lies there (a clone in /tmp): kept aside and bound back over the fresh tmpfs.
case "$workdir" in /tmp/*|/run/*) mkdir -p /keep && mount --bind "$r$workdir" /keep || fail "keeping $workdir failed" ;; esac
mount -t tmpfs -o mode=0755 tmpfs $r/run
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
case "$workdir" in /tmp/*|/run/*) mkdir -p "$r$workdir" && mount --bind /keep "$r$workdir" || fail "binding $workdir back failed" ;; esac
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup || fail "cgroup2 mount failed"
mount -t bpf bpf $r/sys/fs/bpf
mount -t securityfs securityfs $r/sys/kernel/security 2>/dev/null
mount -t tracefs tracefs $r/sys/kernel/tracing 2>/dev/null
mkdir -p "$r$sharepath" && mount --bind /share "$r$sharepath" || fail "binding the share failed"

# Every module of the kernel, for the chroot and for autoload (which runs kernel.modprobe in
# PID 1's root, i.e. here, not in the chroot).
mkdir -p /lib/modules/$kver $r/lib/modules/$kver
mount --bind "/lower$modtree" /lib/modules/$kver && mount --bind "/lower$modtree" $r/lib/modules/$kver || fail "no module tree at $modtree"
echo /bin/modprobe >/proc/sys/kernel/modprobe
ip link set lo up

out=/dev/null
for d in /sys/class/virtio-ports/*; do
  [ "$(cat "$d/name" 2>/dev/null)" = vigil.out ] && out=/dev/${d##*/}
done
[ "$out" = /dev/null ] && fail "no vigil.out port"
cut -d' ' -f1 /proc/uptime | awk '{ printf "%d\n", $1 * 1000 }' >/share/.vm/boot-ms

chroot $r /bin/sh "$sharepath/.vm/cmd.sh" >"$out" 2>&1 </dev/null
echo $? >/share/.vm/rc
sync
poweroff -f
