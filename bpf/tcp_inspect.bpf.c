// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Incoming TCP inspection: one object, one program per hook of the fallback chain
 * (kprobe -> fentry -> TC ingress -> cgroup_skb ingress). User space loads only the
 * chosen hook's programs plus the socket-owner tracker. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "vigil/tcp.h"
#include "lib/net.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by user space before load (so the verifier prunes what is disabled). */
const volatile struct vigil_tcp_config vigil_tcp_cfg = {
	.families = 3,
	.wakeup_bytes = 64 * 1024,
};
#define CFG vigil_tcp_cfg

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by user space before load */
} vigil_tcp_events SEC(".maps");

struct vigil_tcp_counters {
	__u64 c[VIGIL_TCP_STAT_COUNT];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_tcp_counters);
} vigil_tcp_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_flow_key);
	__type(value, struct vigil_flow_value);
} vigil_tcp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_flow_pending);
} vigil_tcp_flow_slots SEC(".maps");

/* Socket owners by (local, remote, netns); listeners have a zero remote side. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vigil_flow_key);
	__type(value, struct vigil_owner);
} vigil_tcp_owners SEC(".maps");

/* Owners of connecting sockets by socket cookie: at SYN_SENT the local port is not
 * assigned yet, so the tuple key is written when the connection is established. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct vigil_owner);
} vigil_tcp_pending SEC(".maps");

/* Listening sockets per local port (all namespaces): the packet path looks for a listener's
 * owner only where one can exist, because each missed hash lookup costs ~30 ns. A hint only:
 * a stale count costs two lookups, never a wrong owner. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} vigil_tcp_listeners SEC(".maps");

/* Port filter: value 1 = keep. An array lookup is inlined by the verifier. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} vigil_tcp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_lpm_key);
	__type(value, __u8);
} vigil_tcp_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_lpm_key);
	__type(value, __u8);
} vigil_tcp_dst SEC(".maps");

/* Result of parsing, in host order except addresses. */
struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 seq;
	__u32 ack;
	__u16 window;
	__u8 flags;
	__u8 family;
	__u32 payload_len;
	__u32 ip_len;
};

enum parse_result {
	PARSE_TCP = 0,
	PARSE_NOT_TCP = 1,
	PARSE_MALFORMED = 2,
};

static __always_inline struct vigil_tcp_counters *counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&vigil_tcp_stats, &zero);
}

static __always_inline void count(struct vigil_tcp_counters *c, int idx)
{
	if (c)
		c->c[idx]++; /* per-CPU: no atomic needed */
}

static __always_inline void tcp_fields(struct pkt *p, const struct tcphdr *th)
{
	p->sport = bpf_ntohs(th->source);
	p->dport = bpf_ntohs(th->dest);
	p->seq = bpf_ntohl(th->seq);
	p->ack = bpf_ntohl(th->ack_seq);
	p->window = bpf_ntohs(th->window);
	p->flags = ((const __u8 *)th)[13];
}

/* ---- Parsing from packet memory (TC and cgroup_skb: direct packet access) ---- */

/* l3 points at an IPv4 header; avail = bytes from l3 to the end of the whole packet
 * (headers may be linear while the payload is not, so lengths are checked against
 * the packet length, header reads against data_end). */
static __always_inline int parse_ipv4(void *l3, void *data_end, __u32 avail, struct pkt *p)
{
	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	if (ip->protocol != IPPROTO_TCP)
		return PARSE_NOT_TCP;
	if (bpf_ntohs(ip->frag_off) & IP_OFFSET_MASK)
		return PARSE_MALFORMED; /* non-first fragment: no TCP header to read */
	__u32 ihl = ip->ihl * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot < ihl + sizeof(struct tcphdr) || tot > avail)
		return PARSE_MALFORMED;
	struct tcphdr *th = l3 + ihl;
	if ((void *)(th + 1) > data_end)
		return PARSE_MALFORMED;
	__u32 doff = th->doff * 4;
	if (doff < sizeof(struct tcphdr) || ihl + doff > tot)
		return PARSE_MALFORMED; /* data offset beyond the packet */
	p->family = 4;
	vigil_map_v4(p->saddr, ip->saddr);
	vigil_map_v4(p->daddr, ip->daddr);
	tcp_fields(p, th);
	p->ip_len = tot;
	p->payload_len = tot - ihl - doff;
	return PARSE_TCP;
}

static __always_inline int parse_ipv6(void *l3, void *data_end, __u32 avail, struct pkt *p)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	__u32 tot = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (tot > avail)
		return PARSE_MALFORMED;
	__u8 next = 0;
	__u32 off = 0;
	int walk = vigil_ipv6_walk(l3, data_end, &next, &off);
	if (walk == VIGIL_IPV6_TRUNCATED || walk == VIGIL_IPV6_LATER_FRAGMENT)
		return PARSE_MALFORMED; /* a non-first fragment carries no TCP header to read */
	if (walk == VIGIL_IPV6_TOO_DEEP || next != IPPROTO_TCP)
		return PARSE_NOT_TCP; /* ESP, no next header, UDP, ICMPv6, more extension headers than we walk */
	if (off > VIGIL_MAX_L3_HEADER)
		return PARSE_MALFORMED;
	struct tcphdr *th = l3 + off;
	if ((void *)(th + 1) > data_end)
		return PARSE_MALFORMED;
	__u32 doff = th->doff * 4;
	if (doff < sizeof(struct tcphdr) || off + doff > tot)
		return PARSE_MALFORMED;
	p->family = 6;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);
	tcp_fields(p, th);
	p->ip_len = tot;
	p->payload_len = tot - off - doff;
	return PARSE_TCP;
}

static __always_inline int parse_l3(__u16 proto, void *l3, void *data_end, __u32 avail, struct pkt *p)
{
	if (proto == ETH_P_IP)
		return parse_ipv4(l3, data_end, avail, p);
	if (proto == ETH_P_IPV6)
		return parse_ipv6(l3, data_end, avail, p);
	return PARSE_NOT_TCP;
}

/* ---- Parsing from a kernel sk_buff (kprobe, fentry on tcp_v{4,6}_rcv) ---- */

/* At tcp_v*_rcv the network and transport headers are set and fragments reassembled. */
static __always_inline int parse_kernel_skb(struct sk_buff *skb, struct pkt *p)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 thoff = BPF_CORE_READ(skb, transport_header);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	struct tcphdr th;

	if (thoff <= nh || bpf_probe_read_kernel(&th, sizeof(th), head + thoff))
		return PARSE_MALFORMED;
	__u32 l3len = thoff - nh;
	__u32 doff = th.doff * 4;
	if (proto == ETH_P_IP) {
		struct iphdr ip;
		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return PARSE_MALFORMED;
		p->family = 4;
		vigil_map_v4(p->saddr, ip.saddr);
		vigil_map_v4(p->daddr, ip.daddr);
		p->ip_len = bpf_ntohs(ip.tot_len);
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;
		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return PARSE_MALFORMED;
		p->family = 6;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		p->ip_len = sizeof(ip6) + bpf_ntohs(ip6.payload_len);
	} else {
		return PARSE_NOT_TCP;
	}
	if (doff < sizeof(th) || l3len + doff > p->ip_len)
		return PARSE_MALFORMED;
	tcp_fields(p, &th);
	p->payload_len = p->ip_len - l3len - doff;
	return PARSE_TCP;
}

/* ---- Filters, sampling, aggregation, emission (shared by every hook) ---- */

static __always_inline bool prefix_match(void *trie, __u8 family, const __u8 *addr)
{
	struct vigil_lpm_key key = { .prefixlen = 8 + 128, .family = family };
	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(trie, &key) != NULL;
}

static __always_inline bool port_match(__u16 port)
{
	__u32 key = port;
	__u8 *keep = bpf_map_lookup_elem(&vigil_tcp_ports, &key);
	return keep && *keep;
}

static __always_inline bool filtered_out(const struct pkt *p)
{
	if (!(CFG.families & (p->family == 4 ? 1 : 2)))
		return true;
	if (CFG.flags_any && !(p->flags & CFG.flags_any))
		return true;
	if (CFG.filter_ports && !port_match(p->sport) && !port_match(p->dport))
		return true;
	if (CFG.filter_src && !prefix_match(&vigil_tcp_src, p->family, p->saddr))
		return true;
	if (CFG.filter_dst && !prefix_match(&vigil_tcp_dst, p->family, p->daddr))
		return true;
	return false;
}

static __always_inline void flow_key(struct vigil_flow_key *k, const struct pkt *p, __u32 netns)
{
	__builtin_memcpy(k->laddr, p->daddr, 16);
	__builtin_memcpy(k->raddr, p->saddr, 16);
	k->lport = p->dport;
	k->rport = p->sport;
	k->netns_ino = netns;
}

/* Counts the packet in its flow; returns how many packets the flow had before it (sampling
 * needs that count exact across CPUs, so this path updates the shared map every time). */
static __always_inline __u64 flow_update(struct vigil_tcp_counters *c, const struct pkt *p, __u32 netns)
{
	struct vigil_flow_key key = {};
	flow_key(&key, p, netns);
	__u64 now = bpf_jiffies64();
	struct vigil_flow_value *v = bpf_map_lookup_elem(&vigil_tcp_flows, &key);
	if (v) {
		__u64 before = __sync_fetch_and_add(&v->packets, 1);
		__sync_fetch_and_add(&v->bytes, p->payload_len);
		/* A flow's flags settle after its handshake: skip the locked OR when nothing is new. */
		if ((v->flags_seen & p->flags) != p->flags)
			__sync_fetch_and_or(&v->flags_seen, (__u32)p->flags);
		v->last_jiffies = now;
		v->last_seq = p->seq;
		return before;
	}
	struct vigil_flow_value init = {
		.packets = 1,
		.bytes = p->payload_len,
		.first_jiffies = now,
		.last_jiffies = now,
		.last_seq = p->seq,
		.flags_seen = p->flags,
	};
	if (bpf_map_update_elem(&vigil_tcp_flows, &key, &init, BPF_NOEXIST))
		count(c, VIGIL_TCP_STAT_FLOW_FULL); /* lost a race with another CPU, or no room */
	return 0;
}

/* Adds a CPU's slot into the shared flow map. */
static __always_inline void flow_flush(struct vigil_tcp_counters *c, const struct vigil_flow_pending *slot)
{
	const struct vigil_flow_value *pv = &slot->value;
	struct vigil_flow_value *v = bpf_map_lookup_elem(&vigil_tcp_flows, &slot->key);
	if (!v) {
		if (!bpf_map_update_elem(&vigil_tcp_flows, &slot->key, pv, BPF_NOEXIST))
			return;
		/* Another CPU inserted the flow first: add to its entry. */
		v = bpf_map_lookup_elem(&vigil_tcp_flows, &slot->key);
		if (!v) {
			count(c, VIGIL_TCP_STAT_FLOW_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->packets, pv->packets);
	__sync_fetch_and_add(&v->bytes, pv->bytes);
	if ((v->flags_seen & pv->flags_seen) != pv->flags_seen)
		__sync_fetch_and_or(&v->flags_seen, pv->flags_seen);
	if (pv->last_jiffies >= v->last_jiffies) {
		v->last_jiffies = pv->last_jiffies;
		v->last_seq = pv->last_seq;
	}
}

static __always_inline bool same_flow(const struct vigil_flow_key *a, const struct vigil_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* The flows-only path: a hash lookup with a 40-byte key costs ~40 ns here, twice the rest of the
 * path, so packets of the flow this CPU saw last add up in its slot (plain adds: per-CPU). */
static __always_inline void flow_aggregate(struct vigil_tcp_counters *c, const struct pkt *p, __u32 netns)
{
	__u32 zero = 0;
	struct vigil_flow_pending *slot = bpf_map_lookup_elem(&vigil_tcp_flow_slots, &zero);
	if (!slot)
		return;
	struct vigil_flow_key key = {};
	flow_key(&key, p, netns);
	__u64 now = bpf_jiffies64();
	struct vigil_flow_value *v = &slot->value;
	if (v->packets && same_flow(&slot->key, &key)) {
		v->packets++;
		v->bytes += p->payload_len;
		v->flags_seen |= p->flags;
		v->last_jiffies = now;
		v->last_seq = p->seq;
		return;
	}
	if (v->packets)
		flow_flush(c, slot);
	slot->key = key;
	v->packets = 1;
	v->bytes = p->payload_len;
	v->first_jiffies = now;
	v->last_jiffies = now;
	v->last_seq = p->seq;
	v->flags_seen = p->flags;
}

/* The SYN-ACK answering a connect() arrives while the socket is in SYN_SENT, before its tuple is
 * in vigil_tcp_owners: find the socket itself and its owner by cookie in vigil_tcp_pending. */
static __always_inline struct vigil_owner *connecting_owner(void *skb, __u8 hook, const struct pkt *p)
{
	__u64 cookie = 0;

	if (hook == VIGIL_TCP_HOOK_CGROUP) {
		/* cgroup_skb ingress runs after the socket lookup: skb->sk is the receiving socket. */
		cookie = bpf_get_socket_cookie((struct __sk_buff *)skb);
	} else if (hook == VIGIL_TCP_HOOK_TC) {
		struct bpf_sock_tuple t = {};
		__u32 len;
		if (p->family == 4) {
			__builtin_memcpy(&t.ipv4.saddr, p->saddr + 12, 4);
			__builtin_memcpy(&t.ipv4.daddr, p->daddr + 12, 4);
			t.ipv4.sport = bpf_htons(p->sport);
			t.ipv4.dport = bpf_htons(p->dport);
			len = sizeof(t.ipv4);
		} else {
			__builtin_memcpy(t.ipv6.saddr, p->saddr, 16);
			__builtin_memcpy(t.ipv6.daddr, p->daddr, 16);
			t.ipv6.sport = bpf_htons(p->sport);
			t.ipv6.dport = bpf_htons(p->dport);
			len = sizeof(t.ipv6);
		}
		struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, &t, len, BPF_F_CURRENT_NETNS, 0);
		if (!sk)
			return NULL;
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
		/* The tracker asked for this socket's cookie at SYN_SENT, so the kernel has set it. */
		if (tp)
			cookie = tp->inet_conn.icsk_inet.sk.__sk_common.skc_cookie.counter;
		bpf_sk_release(sk);
	} else {
		/* kprobe/fentry run before tcp_v*_rcv looks the socket up, and may not call the lookup
		 * helpers; but IP early demux has usually set skb->sk to the SYN_SENT socket already (it is
		 * in the established hash). Not on loopback, whose packets keep their route: no owner there. */
		struct sock *sk = BPF_CORE_READ((struct sk_buff *)skb, sk);
		if (sk)
			cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	}
	return cookie ? bpf_map_lookup_elem(&vigil_tcp_pending, &cookie) : NULL;
}

static __always_inline void lookup_owner(struct vigil_owner *dst, void *skb, __u8 hook, const struct pkt *p, __u32 netns)
{
	struct vigil_flow_key key = {};
	struct vigil_owner *o;

	flow_key(&key, p, netns);
	o = bpf_map_lookup_elem(&vigil_tcp_owners, &key); /* connected socket */
	if (!o) {
		__u32 port = p->dport;
		__u32 *listeners = bpf_map_lookup_elem(&vigil_tcp_listeners, &port);
		if (listeners && *listeners) {
			__builtin_memset(key.raddr, 0, 16);
			key.rport = 0;
			o = bpf_map_lookup_elem(&vigil_tcp_owners, &key); /* listener on this address */
			if (!o) {
				__builtin_memset(key.laddr, 0, 16);
				o = bpf_map_lookup_elem(&vigil_tcp_owners, &key); /* wildcard listener */
			}
		}
	}
	if (!o && (p->flags & (VIGIL_TCP_SYN | VIGIL_TCP_ACK)) == (VIGIL_TCP_SYN | VIGIL_TCP_ACK))
		o = connecting_owner(skb, hook, p);
	if (o)
		__builtin_memcpy(dst, o, sizeof(*dst));
}

/* Copies len (<= snap, a load-time constant) bytes from the linear part of the packet with plain
 * loads: bpf_skb_load_bytes costs a helper call (~25 ns here) and the headers are nearly always
 * linear. Returns false, having copied an unknown part, if the bytes are not all linear. */
static __always_inline bool copy_linear(__u8 *dst, const __u8 *pkt, const void *end, __u32 len, __u32 snap)
{
	if (len < 8)
		return false;
	/* Whole words at constant offsets; the verifier drops the iterations beyond snap. */
#pragma unroll
	for (int i = 0; i < VIGIL_TCP_MAX_SNAPLEN / 8; i++) {
		if (i * 8 + 8 > snap || i * 8 + 8 > len)
			break;
		if ((const void *)(pkt + i * 8 + 8) > end)
			return false;
		*(__u64 *)(dst + i * 8) = *(const __u64 *)(pkt + i * 8);
	}
	/* The last len % 8 bytes: one word ending at len, overlapping bytes already copied. */
	if (len & 7) {
		__u32 off = len - 8;
		if (off + 8 > snap)
			return false; /* never (len <= snap): bounds the offset for the verifier */
		const __u8 *src = pkt + off;
		if ((const void *)(src + 8) > end)
			return false;
		*(__u64 *)(dst + off) = *(const __u64 *)src;
	}
	return true;
}

/* min(len, snap), at least 1, compared and kept in one register. clang compiles a C min() as a
 * 32-bit copy of len plus a compare of the original; the 6.1 verifier does not carry the bound it
 * learns over to that copy, nor a lower bound from "len != 0", and rejected the snap copies below
 * (past the ring record; a possibly-zero size for bpf_skb_load_bytes). 6.12+ accept the C form.
 * len is never 0 here: a parsed packet holds at least its IP and TCP headers. */
static __always_inline __u32 snap_len(__u64 len, __u32 snap)
{
	asm volatile("if %[len] <= %[snap] goto +1\n\t"
		     "%[len] = %[snap]\n\t"
		     "if %[len] > 0 goto +1\n\t"
		     "%[len] = 1"
		     : [len] "+r"(len)
		     : [snap] "r"((__u64)snap));
	return len;
}

#define KEEP_ALWAYS (VIGIL_TCP_SYN | VIGIL_TCP_FIN | VIGIL_TCP_RST)

/* Everything after parsing. skb is a struct __sk_buff * for TC/cgroup and a
 * struct sk_buff * for kprobe/fentry; hook is a constant, so the other branch is pruned. */
static __always_inline void handle(struct vigil_tcp_counters *c, void *skb, __u8 hook,
				   const struct pkt *p, __u32 ifindex, __u32 netns)
{
	if (filtered_out(p)) {
		count(c, VIGIL_TCP_STAT_FILTERED);
		return;
	}
	if (CFG.flows_only) {
		flow_aggregate(c, p, netns);
		count(c, VIGIL_TCP_STAT_AGGREGATED);
		return;
	}
	if (CFG.sample_every > 1) {
		__u64 before = flow_update(c, p, netns);
		if (!(p->flags & KEEP_ALWAYS) && before % CFG.sample_every) {
			count(c, VIGIL_TCP_STAT_SAMPLED);
			return;
		}
	}

	/* The reserve size must be a verifier constant: snaplen comes from .rodata. */
	__u32 snap = CFG.snaplen > VIGIL_TCP_MAX_SNAPLEN ? VIGIL_TCP_MAX_SNAPLEN : CFG.snaplen;
	__u32 size = (sizeof(struct vigil_tcp_event) + snap + 7) & ~7u;
	struct vigil_tcp_event *ev = bpf_ringbuf_reserve(&vigil_tcp_events, size, 0);
	if (!ev) {
		count(c, VIGIL_TCP_STAT_RING_FULL);
		return;
	}
	ev->hdr.kind = VIGIL_EVENT_TCP_PACKET;
	ev->hdr.version = VIGIL_WIRE_VERSION;
	ev->hdr.size = size;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(ev->saddr, p->saddr, 16);
	__builtin_memcpy(ev->daddr, p->daddr, 16);
	ev->sport = p->sport;
	ev->dport = p->dport;
	ev->seq = p->seq;
	ev->ack = p->ack;
	ev->window = p->window;
	ev->flags = p->flags;
	ev->family = p->family;
	ev->ifindex = ifindex;
	ev->payload_len = p->payload_len;
	ev->ip_len = p->ip_len;
	ev->netns_ino = netns;
	ev->hook = hook;
	ev->cap_len = 0;
	ev->_pad = 0; /* ring memory is reused: every byte of the record is written */
	/* Written even when nothing is captured: ring memory is reused, not zeroed. */
	ev->link_type = (hook == VIGIL_TCP_HOOK_TC) ? VIGIL_LINK_ETHERNET : VIGIL_LINK_RAW_IP;
	__builtin_memset(&ev->owner, 0, sizeof(ev->owner));
	lookup_owner(&ev->owner, skb, hook, p, netns);

	if (snap) {
		__u8 *data = (__u8 *)(ev + 1);
		if (hook == VIGIL_TCP_HOOK_TC || hook == VIGIL_TCP_HOOK_CGROUP) {
			struct __sk_buff *s = skb;
			__u32 len = snap_len(s->len, snap);
			if (copy_linear(data, (const __u8 *)(long)s->data, (const void *)(long)s->data_end, len, snap) ||
			    (len > 0 && !bpf_skb_load_bytes(s, 0, data, len)))
				ev->cap_len = len;
		} else {
			struct sk_buff *k = skb;
			__u32 len = snap_len(p->ip_len, snap);
			unsigned char *head = BPF_CORE_READ(k, head);
			__u16 nh = BPF_CORE_READ(k, network_header);
			if (len > 0 && !bpf_probe_read_kernel(data, len, head + nh))
				ev->cap_len = len;
		}
	}

	count(c, VIGIL_TCP_STAT_EMITTED);
	/* No per-event wake-up (it costs microseconds): wake the reader once enough
	 * bytes are pending; the reader also polls with a short timeout. */
	__u64 wake = bpf_ringbuf_query(&vigil_tcp_events, BPF_RB_AVAIL_DATA) >= CFG.wakeup_bytes
			     ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(ev, wake);
}

static __always_inline void account_parse(struct vigil_tcp_counters *c, int r)
{
	count(c, VIGIL_TCP_STAT_PACKETS);
	if (r == PARSE_NOT_TCP)
		count(c, VIGIL_TCP_STAT_NOT_TCP);
	else if (r == PARSE_MALFORMED)
		count(c, VIGIL_TCP_STAT_MALFORMED);
	else
		count(c, VIGIL_TCP_STAT_SEEN);
}

/* ---- Hooks ---- */

/* TC ingress: sees the Ethernet frame; never changes the verdict or stops the chain. */
SEC("tc")
int vigil_tcp_tc(struct __sk_buff *skb)
{
	struct vigil_tcp_counters *c = counters();
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct pkt p = {};
	int r = PARSE_MALFORMED;
	__u32 l3off;
	__u16 proto;

	if (vigil_eth_l3(data, data_end, &proto, &l3off) && skb->len >= l3off)
		r = parse_l3(proto, data + l3off, data_end, skb->len - l3off, &p);
	account_parse(c, r);
	if (r == PARSE_TCP)
		handle(c, skb, VIGIL_TCP_HOOK_TC, &p, skb->ingress_ifindex, CFG.netns_ino);
	/* TC_ACT_UNSPEC (= TCX_NEXT): observe only. TC_ACT_OK would end the filter chain and hide
	 * the packet from every program attached after this one (other tools, other Vigils). */
	return TC_ACT_UNSPEC;
}

/* cgroup_skb ingress: sees the IP packet after the socket lookup; always allows. */
SEC("cgroup_skb/ingress")
int vigil_tcp_cgroup(struct __sk_buff *skb)
{
	struct vigil_tcp_counters *c = counters();
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct pkt p = {};
	int r = parse_l3(bpf_ntohs(skb->protocol), data, data_end, skb->len, &p);

	account_parse(c, r);
	if (r == PARSE_TCP)
		handle(c, skb, VIGIL_TCP_HOOK_CGROUP, &p, skb->ifindex, CFG.netns_ino);
	return 1;
}

/* Never attached: user space runs it with BPF_PROG_TEST_RUN to read the kernel's jiffies (the clock
 * of flow times), returned in the context's cb[0] (low half) and cb[1] (high half). */
SEC("tc")
int vigil_tcp_clock(struct __sk_buff *skb)
{
	__u64 now = bpf_jiffies64();
	skb->cb[0] = (__u32)now;
	skb->cb[1] = (__u32)(now >> 32);
	return 0;
}

static __always_inline __u32 skb_netns(struct sk_buff *skb)
{
	return BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
}

static __always_inline void on_kernel_skb(struct sk_buff *skb, __u8 hook)
{
	struct vigil_tcp_counters *c = counters();
	struct pkt p = {};
	int r = parse_kernel_skb(skb, &p);

	account_parse(c, r);
	if (r == PARSE_TCP)
		handle(c, skb, hook, &p, BPF_CORE_READ(skb, skb_iif), skb_netns(skb));
}

/* The classic recipe's hooks: every segment that reaches TCP, loopback included. */
SEC("kprobe/tcp_v4_rcv")
int BPF_KPROBE(vigil_tcp_kprobe_v4, struct sk_buff *skb)
{
	on_kernel_skb(skb, VIGIL_TCP_HOOK_KPROBE);
	return 0;
}

SEC("kprobe/tcp_v6_rcv")
int BPF_KPROBE(vigil_tcp_kprobe_v6, struct sk_buff *skb)
{
	on_kernel_skb(skb, VIGIL_TCP_HOOK_KPROBE);
	return 0;
}

SEC("fentry/tcp_v4_rcv")
int BPF_PROG(vigil_tcp_fentry_v4, struct sk_buff *skb)
{
	on_kernel_skb(skb, VIGIL_TCP_HOOK_FENTRY);
	return 0;
}

SEC("fentry/tcp_v6_rcv")
int BPF_PROG(vigil_tcp_fentry_v6, struct sk_buff *skb)
{
	on_kernel_skb(skb, VIGIL_TCP_HOOK_FENTRY);
	return 0;
}

/* ---- Socket owners ----
 * Incoming packets are handled in softirq context, where the current task is unrelated
 * to the packet. Owners are recorded where they are true: listen() and connect() run in
 * the owning process. Accepted sockets inherit the listener's owner. */

static __always_inline void sock_key(struct vigil_flow_key *k, const struct sock *sk, bool with_remote)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		__be32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		if (l) /* 0.0.0.0 is stored as :: so one wildcard key serves both */
			vigil_map_v4(k->laddr, l);
		if (with_remote)
			vigil_map_v4(k->raddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		BPF_CORE_READ_INTO(&k->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		if (with_remote)
			BPF_CORE_READ_INTO(&k->raddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	k->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (with_remote)
		k->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	k->netns_ino = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline void current_owner(struct vigil_owner *o)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	o->pid = pid_tgid >> 32;
	o->uid = (__u32)uid_gid;
	o->gid = uid_gid >> 32;
	o->cgroup_id = bpf_get_current_cgroup_id();
	o->known = 1;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

static __always_inline void listeners_add(__u32 port, int delta)
{
	__u32 *n = bpf_map_lookup_elem(&vigil_tcp_listeners, &port);
	if (!n)
		return;
	if (delta > 0)
		__sync_fetch_and_add(n, 1);
	else if (*n) /* listeners older than Vigil and not seeded were never counted */
		__sync_fetch_and_sub(n, 1);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(vigil_tcp_sock_state, const struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	struct vigil_flow_key key = {};
	struct vigil_owner owner = {};
	__u64 cookie = bpf_get_socket_cookie((void *)sk);

	switch (newstate) {
	case TCP_LISTEN: /* listen(): process context */
		sock_key(&key, sk, false);
		current_owner(&owner);
		bpf_map_update_elem(&vigil_tcp_owners, &key, &owner, BPF_ANY);
		listeners_add(key.lport, 1);
		break;
	case TCP_SYN_SENT: /* connect(): process context, local port not chosen yet */
		current_owner(&owner);
		bpf_map_update_elem(&vigil_tcp_pending, &cookie, &owner, BPF_ANY);
		break;
	case TCP_ESTABLISHED: {
		struct vigil_owner *o = NULL;
		sock_key(&key, sk, true);
		if (oldstate == TCP_SYN_SENT) {
			o = bpf_map_lookup_elem(&vigil_tcp_pending, &cookie);
		} else if (oldstate == TCP_SYN_RECV) {
			/* Accepted child: inherit the listener's owner. */
			struct vigil_flow_key lk = key;
			__builtin_memset(lk.raddr, 0, 16);
			lk.rport = 0;
			o = bpf_map_lookup_elem(&vigil_tcp_owners, &lk);
			if (!o) {
				__builtin_memset(lk.laddr, 0, 16);
				o = bpf_map_lookup_elem(&vigil_tcp_owners, &lk);
			}
		}
		if (o) {
			__builtin_memcpy(&owner, o, sizeof(owner));
			bpf_map_update_elem(&vigil_tcp_owners, &key, &owner, BPF_ANY);
		}
		bpf_map_delete_elem(&vigil_tcp_pending, &cookie);
		break;
	}
	case TCP_CLOSE:
		sock_key(&key, sk, oldstate != TCP_LISTEN);
		bpf_map_delete_elem(&vigil_tcp_owners, &key);
		bpf_map_delete_elem(&vigil_tcp_pending, &cookie);
		if (oldstate == TCP_LISTEN)
			listeners_add(key.lport, -1);
		break;
	}
	return 0;
}
