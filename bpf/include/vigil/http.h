/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* Wire contract of the HTTP socket filter (bpf/http_filter.bpf.c, `vigil watch http --iface`): a
 * BPF_PROG_TYPE_SOCKET_FILTER on an AF_PACKET socket that passes only TCP packets to guarded
 * endpoints (payload, FIN or RST), everything else returns 0 in the kernel. Its maps hold the same
 * compiled policy entries as the guard, without slots (one policy per run):
 *   vigil_http_config  ARRAY[1]    struct vigil_guard_config (rules, any_port_tcp used)
 *   vigil_http_dst     LPM_TRIE    struct vigil_lpm_key        -> struct vigil_guard_rules
 *   vigil_http_ports   HASH        struct vigil_guard_port_key (slot 0) -> struct vigil_guard_rules
 *   vigil_http_stats   PERCPU_ARRAY[1] __u64[VIGIL_HTTP_STAT_COUNT]
 * Mirrored in src/Vigil.Wire/Http.cs. */
#ifndef VIGIL_HTTP_H
#define VIGIL_HTTP_H

#include "guard.h"

/* packets = passed + not_ip + not_tcp + malformed + unguarded + no_payload */
enum vigil_http_stat {
	VIGIL_HTTP_STAT_PACKETS = 0,    /* packets the filter ran on */
	VIGIL_HTTP_STAT_PASSED = 1,     /* TCP to a guarded endpoint with payload, FIN or RST: given to user space */
	VIGIL_HTTP_STAT_NOT_IP = 2,     /* neither IPv4 nor IPv6 */
	VIGIL_HTTP_STAT_NOT_TCP = 3,    /* another protocol, or a non-first fragment */
	VIGIL_HTTP_STAT_MALFORMED = 4,  /* headers cut short or inconsistent */
	VIGIL_HTTP_STAT_UNGUARDED = 5,  /* destination/port not guarded by any rule */
	VIGIL_HTTP_STAT_NO_PAYLOAD = 6, /* guarded, but a bare ACK or SYN */
	VIGIL_HTTP_STAT_COUNT = 7,
};

#endif
