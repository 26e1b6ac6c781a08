// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* HTTP socket filter (bpf/include/vigil/http.h): on an AF_PACKET socket, passes only TCP packets to
 * guarded endpoints that carry payload (or FIN/RST, so user space can close the flow); returns 0 for
 * everything else, so the kernel never copies other traffic to user space.
 * Socket filters have no direct packet access: headers are read with bpf_skb_load_bytes_relative from
 * the network header, which is right both on a packet socket (data starts at the MAC header) and in
 * BPF_PROG_TEST_RUN (data starts at the network header). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vigil/http.h"
#include "lib/net.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_guard_config);
} vigil_http_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_lpm_key);
	__type(value, struct vigil_guard_rules);
} vigil_http_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vigil_guard_port_key);
	__type(value, struct vigil_guard_rules);
} vigil_http_ports SEC(".maps");

struct http_counters {
	__u64 c[VIGIL_HTTP_STAT_COUNT];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http_counters);
} vigil_http_stats SEC(".maps");

#define TCP_FIN 0x01
#define TCP_RST 0x04

static __always_inline int verdict(struct http_counters *c, int stat, int keep)
{
	if (c)
		c->c[stat]++;
	return keep;
}

static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	return bpf_skb_load_bytes_relative(skb, off, to, len, BPF_HDR_START_NET);
}

SEC("socket")
int vigil_http_filter(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct http_counters *c = bpf_map_lookup_elem(&vigil_http_stats, &zero);
	if (c)
		c->c[VIGIL_HTTP_STAT_PACKETS]++;
	const struct vigil_guard_config *cfg = bpf_map_lookup_elem(&vigil_http_config, &zero);
	if (!cfg || !cfg->rules)
		return verdict(c, VIGIL_HTTP_STAT_UNGUARDED, 0);

	struct vigil_lpm_key key = { .prefixlen = 8 + 128 };
	__u32 l4, total;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (load(skb, 0, &ip, sizeof(ip)) || ip.version != 4 || ip.ihl < 5)
			return verdict(c, VIGIL_HTTP_STAT_MALFORMED, 0);
		if (ip.protocol != IPPROTO_TCP || (bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK))
			return verdict(c, VIGIL_HTTP_STAT_NOT_TCP, 0);
		key.family = 4;
		vigil_map_v4(key.addr, ip.daddr);
		l4 = ip.ihl * 4;
		total = bpf_ntohs(ip.tot_len);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (load(skb, 0, &ip6, sizeof(ip6)) || ip6.version != 6)
			return verdict(c, VIGIL_HTTP_STAT_MALFORMED, 0);
		key.family = 6;
		__builtin_memcpy(key.addr, &ip6.daddr, 16);
		total = 40 + bpf_ntohs(ip6.payload_len);
		/* The extension-header walk of lib/net.h, over loads instead of pointers. */
		__u8 nh = ip6.nexthdr;
		__u32 off = sizeof(ip6);
#pragma unroll
		for (int i = 0; i < VIGIL_IPV6_MAX_EXT_HEADERS; i++) {
			if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
			    nh != IPPROTO_FRAGMENT && nh != IPPROTO_AH)
				break;
			__u8 ext[4];
			if (off > VIGIL_MAX_L3_HEADER || load(skb, off, ext, sizeof(ext)))
				return verdict(c, VIGIL_HTTP_STAT_MALFORMED, 0);
			if (nh == IPPROTO_FRAGMENT) {
				if (bpf_ntohs(*(__be16 *)(ext + 2)) & IPV6_FRAG_OFFSET_MASK)
					return verdict(c, VIGIL_HTTP_STAT_NOT_TCP, 0); /* a later fragment: no TCP header */
				off += 8;
			} else if (nh == IPPROTO_AH) {
				off += (ext[1] + 2) * 4;
			} else {
				off += (ext[1] + 1) * 8;
			}
			nh = ext[0];
		}
		if (nh != IPPROTO_TCP)
			return verdict(c, VIGIL_HTTP_STAT_NOT_TCP, 0);
		l4 = off;
	} else {
		return verdict(c, VIGIL_HTTP_STAT_NOT_IP, 0);
	}

	struct tcphdr th;
	if (l4 > VIGIL_MAX_L3_HEADER || load(skb, l4, &th, sizeof(th)) || th.doff < 5)
		return verdict(c, VIGIL_HTTP_STAT_MALFORMED, 0);
	__u32 hdrs = l4 + th.doff * 4;
	if (hdrs > total)
		return verdict(c, VIGIL_HTTP_STAT_MALFORMED, 0);

	struct vigil_guard_rules *dst = bpf_map_lookup_elem(&vigil_http_dst, &key);
	__u64 r = dst ? dst->rules : 0;
	if (r & ~cfg->any_port_tcp) {
		struct vigil_guard_port_key pk = { .port = bpf_ntohs(th.dest), .protocol = IPPROTO_TCP };
		struct vigil_guard_rules *pr = bpf_map_lookup_elem(&vigil_http_ports, &pk);
		r &= cfg->any_port_tcp | (pr ? pr->rules : 0);
	}
	if (!r)
		return verdict(c, VIGIL_HTTP_STAT_UNGUARDED, 0);
	__u8 flags = ((__u8 *)&th)[13];
	if (hdrs == total && !(flags & (TCP_FIN | TCP_RST)))
		return verdict(c, VIGIL_HTTP_STAT_NO_PAYLOAD, 0);
	return verdict(c, VIGIL_HTTP_STAT_PASSED, skb->len);
}
