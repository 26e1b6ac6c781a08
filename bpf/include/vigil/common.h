/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* Vigil wire contract: types shared by every kernel program and mirrored in Vigil.Wire.
 * Rules: fixed-width types only, explicit named padding, sizes a multiple of 8,
 * network-order fields end in _be. Changing a layout means changing its C# mirror;
 * the artifact tests compare both against this object's BTF. */
#ifndef VIGIL_COMMON_H
#define VIGIL_COMMON_H

#define VIGIL_WIRE_VERSION 1

enum vigil_event_kind {
	VIGIL_EVENT_TCP_PACKET = 1,
	VIGIL_EVENT_GUARD = 2, /* struct vigil_guard_event (guard.h) */
	VIGIL_EVENT_GUARD_HTTP = 3, /* struct vigil_guard_http_event + payload bytes (guard.h) */
};

/* Every ring-buffer record starts with this header. */
struct vigil_event_header {
	__u16 kind;    /* enum vigil_event_kind */
	__u16 version; /* VIGIL_WIRE_VERSION */
	__u32 size;    /* whole record, header included */
	__u64 ts_ns;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
};
_Static_assert(sizeof(struct vigil_event_header) == 16, "vigil_event_header size");

/* Who owns a socket, recorded in process context (listen/connect). */
struct vigil_owner {
	__u64 cgroup_id;
	__u32 pid;   /* thread-group id */
	__u32 uid;
	__u32 gid;
	__u32 known; /* 1 when the fields above are valid */
	char comm[16];
};
_Static_assert(sizeof(struct vigil_owner) == 40, "vigil_owner size");

/* Key of LPM tries holding IPv4 and IPv6 prefixes. The family byte comes first so an IPv6
 * prefix (even ::/0) never matches IPv4 traffic; IPv4 addresses are stored as ::ffff:a.b.c.d.
 * prefixlen counts bits from family: 8 + 96 + n for IPv4 /n, 8 + n for IPv6 /n. */
struct vigil_lpm_key {
	__u32 prefixlen;
	__u8 family; /* 4 or 6 */
	__u8 addr[16];
	__u8 _pad[3];
};
_Static_assert(sizeof(struct vigil_lpm_key) == 24, "vigil_lpm_key size");

#endif
