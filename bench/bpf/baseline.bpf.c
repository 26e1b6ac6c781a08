// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Baselines for the per-packet cost benchmark (`Vigil.Bench tc-cost`): what BPF_PROG_TEST_RUN
 * itself costs per run (an empty TC program), and what each building block of the TCP sensor's
 * paths costs on its own on this machine, so its totals can be explained. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vigil/tcp.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_flow_key);
	__type(value, struct vigil_flow_value);
} bench_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_flow_key);
	__type(value, struct vigil_flow_value);
} bench_lru_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_flow_key);
	__type(value, struct vigil_flow_value);
} bench_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} bench_events SEC(".maps");

/* The cost of running a program at all through BPF_PROG_TEST_RUN. */
SEC("tc")
int bench_nop(struct __sk_buff *skb)
{
	return 0;
}

/* One bpf_ktime_get_ns(): the emit path stamps every event. */
SEC("tc")
int bench_ktime(struct __sk_buff *skb)
{
	return (int)bpf_ktime_get_ns();
}

/* One bpf_ktime_get_coarse_ns(): the flow path's clock. */
SEC("tc")
int bench_ktime_coarse(struct __sk_buff *skb)
{
	return (int)bpf_ktime_get_coarse_ns();
}

/* One bpf_jiffies64(): the verifier inlines it into a load of the kernel's jiffies. */
SEC("tc")
int bench_jiffies(struct __sk_buff *skb)
{
	return (int)bpf_jiffies64();
}

/* Three missing lookups with a flow key: the emit path's owner lookup when no owner is known. */
SEC("tc")
int bench_lru_miss3(struct __sk_buff *skb)
{
	struct vigil_flow_key key = { .lport = 5201, .rport = 40000 };
	int found = 0;

	key.laddr[15] = 1;
	key.raddr[15] = 2;
	found += bpf_map_lookup_elem(&bench_lru, &key) != NULL;
	key.rport = 0;
	found += bpf_map_lookup_elem(&bench_lru, &key) != NULL;
	key.laddr[15] = 0;
	found += bpf_map_lookup_elem(&bench_lru, &key) != NULL;
	return found;
}

/* The flow entry the flow-map blocks hit: looked up, or inserted on the first run (then NULL). */
static __always_inline struct vigil_flow_value *flow_hit(void *map)
{
	struct vigil_flow_key key = { .lport = 5201, .rport = 40000 };
	struct vigil_flow_value init = { .packets = 1 };
	key.laddr[15] = 1;
	struct vigil_flow_value *v = bpf_map_lookup_elem(map, &key);
	if (!v)
		bpf_map_update_elem(map, &key, &init, BPF_NOEXIST);
	return v;
}

static __always_inline int plain_update(struct vigil_flow_value *v)
{
	v->packets++;
	v->bytes += 1448;
	v->last_jiffies = 1;
	v->last_seq = 2;
	return 1;
}

/* A hit in the flow map plus the atomic updates: the flow-map path as sampling uses it. */
SEC("tc")
int bench_lru_hit_update(struct __sk_buff *skb)
{
	struct vigil_flow_value *v = flow_hit(&bench_lru);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, 1448);
	__sync_fetch_and_or(&v->flags_seen, 0x18);
	v->last_jiffies = 1;
	v->last_seq = 2;
	return 1;
}

/* Experiments: which part of the flow update costs what (the lookup alone, plain stores, two atomics,
 * other map types). */
SEC("tc")
int bench_lru_hit(struct __sk_buff *skb)
{
	struct vigil_flow_value *v = flow_hit(&bench_lru);
	return v && v->packets > 5;
}

SEC("tc")
int bench_lru_hit_plain(struct __sk_buff *skb)
{
	struct vigil_flow_value *v = flow_hit(&bench_lru);
	return v ? plain_update(v) : 0;
}

SEC("tc")
int bench_lru_hit_2atomic(struct __sk_buff *skb)
{
	struct vigil_flow_value *v = flow_hit(&bench_lru);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, 1448);
	v->last_jiffies = 1;
	v->last_seq = 2;
	return 1;
}

SEC("tc")
int bench_percpu_lru_hit_plain(struct __sk_buff *skb)
{
	struct vigil_flow_value *v = flow_hit(&bench_lru_percpu);
	return v ? plain_update(v) : 0;
}

SEC("tc")
int bench_hash_hit_plain(struct __sk_buff *skb)
{
	struct vigil_flow_value *v = flow_hit(&bench_hash);
	return v ? plain_update(v) : 0;
}

/* Reserve a 128-byte event, query the pending bytes, submit without wake-up: the ring part of emitting. */
SEC("tc")
int bench_ringbuf(struct __sk_buff *skb)
{
	__u64 *ev = bpf_ringbuf_reserve(&bench_events, sizeof(struct vigil_tcp_event), 0);
	if (!ev)
		return 1;
	ev[0] = 1;
	__u64 pending = bpf_ringbuf_query(&bench_events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	return pending > (1 << 30);
}

/* Copy 128 bytes of the packet: the snaplen-128 capture. */
SEC("tc")
int bench_load128(struct __sk_buff *skb)
{
	__u8 buf[128];
	return bpf_skb_load_bytes(skb, 0, buf, sizeof(buf));
}
