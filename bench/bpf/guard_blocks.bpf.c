// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Baselines for the guard's per-packet benchmark (`Vigil.Bench guard-cost`): what BPF_PROG_TEST_RUN
 * costs for an empty cgroup_skb program (the guard's egress type; `bench_nop` in baseline.bpf.c is the
 * TC one), and the guard's destination lookup on its own — the LPM trie lookup that every judged
 * connect() makes and that BPF_PROG_TEST_RUN cannot reach in connect4/6 (sock_addr programs have no
 * test run). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vigil/guard.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* The same definition as vigil_guard_dst in bpf/guard.bpf.c; the bench fills it with the policy's prefixes. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_guard_dst_key);
	__type(value, struct vigil_guard_rules);
} bench_guard_dst SEC(".maps");

/* The cost of running a cgroup_skb program at all through BPF_PROG_TEST_RUN. */
SEC("cgroup_skb/egress")
int bench_nop_cgroup_skb(struct __sk_buff *skb)
{
	return 1;
}

/* One lookup of the frame's destination, keyed as guarded_rules() in guard.bpf.c keys it (slot 0;
 * IPv4 as ::ffff:a.b.c.d). Returns the rules found (0 = unguarded). */
SEC("tc")
int bench_guard_lpm(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct vigil_guard_dst_key key = { .prefixlen = 8 + 8 + 128, .slot = 0 };
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > data_end)
			return 0;
		key.family = 4;
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &ip->daddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		if ((void *)(ip6 + 1) > data_end)
			return 0;
		key.family = 6;
		__builtin_memcpy(key.addr, &ip6->daddr, 16);
	} else {
		return 0;
	}
	struct vigil_guard_rules *r = bpf_map_lookup_elem(&bench_guard_dst, &key);
	return r ? (int)r->rules : 0;
}
