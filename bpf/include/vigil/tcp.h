/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* Wire contract of the incoming-TCP sensor (bpf/tcp_inspect.bpf.c). */
#ifndef VIGIL_TCP_H
#define VIGIL_TCP_H

#include "common.h"

/* Which hook produced an event. */
enum vigil_tcp_hook {
	VIGIL_TCP_HOOK_KPROBE = 1,
	VIGIL_TCP_HOOK_FENTRY = 2,
	VIGIL_TCP_HOOK_TC = 3,
	VIGIL_TCP_HOOK_CGROUP = 4,
};

/* What the captured bytes start with. */
enum vigil_link_type {
	VIGIL_LINK_ETHERNET = 1, /* Ethernet frame (TC) */
	VIGIL_LINK_RAW_IP = 2,   /* IPv4 or IPv6 header (cgroup, kprobe, fentry) */
};

/* TCP header flag bits, as in the header's 13th byte. */
enum vigil_tcp_flag {
	VIGIL_TCP_FIN = 0x01,
	VIGIL_TCP_SYN = 0x02,
	VIGIL_TCP_RST = 0x04,
	VIGIL_TCP_PSH = 0x08,
	VIGIL_TCP_ACK = 0x10,
	VIGIL_TCP_URG = 0x20,
	VIGIL_TCP_ECE = 0x40,
	VIGIL_TCP_CWR = 0x80,
};

/* Per-CPU counters (array map vigil_tcp_stats), indices below.
 * packets = seen + not_tcp + malformed;
 * seen = filtered + sampled + emitted + ring_full + aggregated. */
enum vigil_tcp_stat {
	VIGIL_TCP_STAT_PACKETS = 0,    /* hook invocations */
	VIGIL_TCP_STAT_NOT_TCP = 1,    /* not IPv4/IPv6 TCP (TC, cgroup) */
	VIGIL_TCP_STAT_MALFORMED = 2,  /* truncated/invalid headers, non-first fragments */
	VIGIL_TCP_STAT_SEEN = 3,       /* well-formed TCP segments */
	VIGIL_TCP_STAT_FILTERED = 4,   /* rejected by an in-kernel filter */
	VIGIL_TCP_STAT_SAMPLED = 5,    /* dropped by --sample */
	VIGIL_TCP_STAT_EMITTED = 6,    /* submitted to the ring buffer */
	VIGIL_TCP_STAT_RING_FULL = 7,  /* ring buffer had no room */
	VIGIL_TCP_STAT_AGGREGATED = 8, /* counted in the flow map only (--flows) */
	VIGIL_TCP_STAT_FLOW_FULL = 9,  /* flow map update failed */
	VIGIL_TCP_STAT_COUNT = 10,
};

/* Load-time configuration, in .rodata: the verifier sees these as constants and
 * prunes disabled features, so an unused filter costs nothing. */
struct vigil_tcp_config {
	__u32 snaplen;       /* header bytes copied into each event, <= VIGIL_TCP_MAX_SNAPLEN */
	__u32 sample_every;  /* keep 1 in N packets per flow (SYN/FIN/RST always kept); 0/1 = all */
	__u32 wakeup_bytes;  /* wake the reader once this many bytes are pending */
	__u32 netns_ino;     /* inode of the network namespace the TC/cgroup hook sees */
	__u8 families;       /* bit 0: IPv4, bit 1: IPv6 */
	__u8 flags_any;      /* keep packets with any of these flags; 0 = no flag filter */
	__u8 filter_ports;   /* 1: keep only ports in vigil_tcp_ports (either side) */
	__u8 filter_src;     /* 1: keep only sources in vigil_tcp_src */
	__u8 filter_dst;     /* 1: keep only destinations in vigil_tcp_dst */
	__u8 flows_only;     /* 1: aggregate into vigil_tcp_flows, emit no events */
	__u8 _pad[2];
};
_Static_assert(sizeof(struct vigil_tcp_config) == 24, "vigil_tcp_config size");

#define VIGIL_TCP_MAX_SNAPLEN 256

/* One incoming TCP segment. Followed by cap_len captured bytes (padded to the snaplen). */
struct vigil_tcp_event {
	struct vigil_event_header hdr;
	__u8 saddr[16]; /* IPv4 as ::ffff:a.b.c.d */
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 seq;
	__u32 ack;
	__u16 window;   /* raw header value, unscaled */
	__u8 flags;     /* enum vigil_tcp_flag bits */
	__u8 family;    /* 4 or 6 */
	__u32 ifindex;
	__u32 payload_len;
	__u32 ip_len;   /* IP packet length (header + payload) */
	__u32 netns_ino;
	__u16 cap_len;  /* captured bytes following the event */
	__u8 hook;      /* enum vigil_tcp_hook */
	__u8 link_type; /* enum vigil_link_type of the captured bytes */
	__u32 _pad;
	struct vigil_owner owner;
};
_Static_assert(sizeof(struct vigil_tcp_event) == 128, "vigil_tcp_event size");

/* Key of the flow map and the socket-owner map: addresses and ports as seen from the
 * local host (local = destination of an incoming packet). */
struct vigil_flow_key {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;
	__u16 rport;
	__u32 netns_ino;
};
_Static_assert(sizeof(struct vigil_flow_key) == 40, "vigil_flow_key size");

/* Flow times are in jiffies (bpf_jiffies64, which the verifier inlines into one load; a clock
 * helper call would cost about as much as the rest of the aggregation path). User space converts
 * them with the sensor's clock program and the tick length (clock_getres of CLOCK_MONOTONIC_COARSE). */
struct vigil_flow_value {
	__u64 packets;
	__u64 bytes;    /* TCP payload bytes */
	__u64 first_jiffies;
	__u64 last_jiffies;
	__u32 last_seq;
	__u32 flags_seen; /* OR of enum vigil_tcp_flag bits; 32-bit for an atomic OR */
};
_Static_assert(sizeof(struct vigil_flow_value) == 40, "vigil_flow_value size");

/* The flows-only path's per-CPU write-combining slot: consecutive packets of one flow on one CPU
 * (the common case: RSS and GRO keep a flow on a CPU) add up here without a hash lookup; the slot
 * is added into vigil_tcp_flows when another flow arrives on that CPU. value.packets == 0: empty.
 * Readers of the flow map add the slots in (a flow may be only in a slot). */
struct vigil_flow_pending {
	struct vigil_flow_key key;
	struct vigil_flow_value value;
};
_Static_assert(sizeof(struct vigil_flow_pending) == 80, "vigil_flow_pending size");

#endif
