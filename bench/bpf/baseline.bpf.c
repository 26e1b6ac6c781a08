// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Baselines for the per-packet cost benchmark: what BPF_PROG_TEST_RUN itself costs per run
 * (an empty TC program), and what the TCP sensor's fixed per-packet work costs on its own. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("tc")
int bench_nop(struct __sk_buff *skb)
{
	return 0;
}

/* One bpf_ktime_get_ns() call: the sensor's emit path takes one timestamp per event. */
SEC("tc")
int bench_ktime(struct __sk_buff *skb)
{
	return (int)bpf_ktime_get_ns();
}
