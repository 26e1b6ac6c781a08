// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Feature probes for `vigil doctor`: one minimal program per hook type. Each probe opens its
 * own copy of this object, loads exactly one program, attaches it to a harmless target,
 * triggers it where that is cheap, and detaches. The programs never change what they see:
 * tracing programs only count calls made by the doctor's own process, packet and socket
 * programs return "no opinion"/"allow". See docs/programs/probes.md. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* The doctor's process id, set before load; calls from any other process are not counted. */
const volatile __u32 vigil_probe_tgid = 0;

/* How often the attached program ran for the doctor's process (read through the .bss map). */
__u64 vigil_probe_hits = 0;

static __always_inline int count_own_call(void)
{
	if ((bpf_get_current_pid_tgid() >> 32) == vigil_probe_tgid)
		__sync_fetch_and_add(&vigil_probe_hits, 1);
	return 0;
}

/* Attached by user space to getpid's syscall entry (the target is named at attach time). */
SEC("kprobe")
int vigil_probe_kprobe(void *ctx)
{
	return count_own_call();
}

/* fentry targets are resolved at load time, so each candidate has its own program. The
 * syscall wrapper is not in BTF on every kernel; the body it calls usually is. */
SEC("fentry/__x64_sys_getpid")
int vigil_probe_fentry(void *ctx)
{
	return count_own_call();
}

SEC("fentry/__do_sys_getpid")
int vigil_probe_fentry_do(void *ctx)
{
	return count_own_call();
}

/* Every syscall passes sys_enter, so the doctor's own getpid() triggers both. */
SEC("tp_btf/sys_enter")
int vigil_probe_tp_btf(void *ctx)
{
	return count_own_call();
}

SEC("raw_tp/sys_enter")
int vigil_probe_raw_tp(void *ctx)
{
	return count_own_call();
}

/* Attached only inside a private network namespace; TC_ACT_UNSPEC (-1, TCX_NEXT) = no opinion. */
SEC("tc")
int vigil_probe_tc(struct __sk_buff *skb)
{
	return -1;
}

/* Attached only to a cgroup the doctor creates (no process is ever in it); 1 = allow. */
SEC("cgroup_skb/ingress")
int vigil_probe_cgroup_skb(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup/connect4")
int vigil_probe_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

/* libbpf 1.1 has no uprobe.multi section: user space sets the expected attach type
 * (BPF_TRACE_UPROBE_MULTI) before load and creates the link with bpf(BPF_LINK_CREATE).
 * The link carries a pid filter, so only the doctor's own getpid() calls reach it. */
SEC("kprobe.multi")
int vigil_probe_uprobe_multi(void *ctx)
{
	return count_own_call();
}

/* An LSM hook that always allows (0); the doctor opens a file to trigger it. */
SEC("lsm/file_open")
int vigil_probe_lsm(void *ctx)
{
	count_own_call();
	return 0;
}
