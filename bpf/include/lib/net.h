/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* Packet helpers shared by the BPF programs (kernel side only; not part of the wire contract in
 * include/vigil/). Include after vmlinux.h and <bpf/bpf_endian.h>. */
#ifndef VIGIL_LIB_NET_H
#define VIGIL_LIB_NET_H

/* uapi constants that vmlinux.h (BTF types only) does not carry. */
#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IP_OFFSET_MASK 0x1fff
#define IPV6_FRAG_OFFSET_MASK 0xfff8
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_DSTOPTS 60
#define TC_ACT_UNSPEC (-1) /* TCX_NEXT: no opinion, the next program (or the stack) decides */
#define TC_ACT_SHOT 2
#define VIGIL_IPV6_MAX_EXT_HEADERS 6
#define VIGIL_MAX_L3_HEADER 512 /* bounds the IPv6 extension-header walk for the verifier */

/* An IPv4 address as every Vigil map stores it: ::ffff:a.b.c.d. */
static __always_inline void vigil_map_v4(__u8 *dst, __u32 addr_be)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr_be, 4);
}

/* The L3 protocol and offset of an Ethernet frame at data, past at most two VLAN tags still in the frame
 * (most drivers strip them into skb->vlan_tci). False when the frame is too short. */
static __always_inline bool vigil_eth_l3(void *data, void *data_end, __u16 *proto, __u32 *l3off)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return false;
	__u16 p = bpf_ntohs(eth->h_proto);
	__u32 off = sizeof(*eth);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (p != ETH_P_8021Q && p != ETH_P_8021AD)
			break;
		__be16 *inner = data + off + 2;
		if ((void *)(inner + 1) > data_end)
			return false;
		p = bpf_ntohs(*inner);
		off += 4;
	}
	*proto = p;
	*l3off = off;
	return true;
}

enum vigil_ipv6_walk {
	VIGIL_IPV6_UPPER,          /* *next is not an extension header (TCP, UDP, ESP, ...); it starts at l3 + *off */
	VIGIL_IPV6_LATER_FRAGMENT, /* a non-first fragment: no upper-layer header; *next is the fragment's next header */
	VIGIL_IPV6_TRUNCATED,      /* an extension header lies beyond the linear data or VIGIL_MAX_L3_HEADER */
	VIGIL_IPV6_TOO_DEEP,       /* more than VIGIL_IPV6_MAX_EXT_HEADERS extension headers; *next is still one */
};

/* Walks the extension headers after the fixed IPv6 header at l3 (already bounds-checked). */
static __always_inline int vigil_ipv6_walk(void *l3, void *data_end, __u8 *next, __u32 *off)
{
	__u8 nh = ((struct ipv6hdr *)l3)->nexthdr;
	__u32 o = sizeof(struct ipv6hdr);

#pragma unroll
	for (int i = 0; i < VIGIL_IPV6_MAX_EXT_HEADERS; i++) {
		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
		    nh != IPPROTO_FRAGMENT && nh != IPPROTO_AH)
			break; /* before the length check: an upper layer may be shorter than 8 bytes */
		if (o > VIGIL_MAX_L3_HEADER)
			return VIGIL_IPV6_TRUNCATED;
		__u8 *ext = l3 + o;
		if ((void *)(ext + 8) > data_end)
			return VIGIL_IPV6_TRUNCATED;
		if (nh == IPPROTO_FRAGMENT) {
			nh = ext[0];
			if (bpf_ntohs(*(__be16 *)(ext + 2)) & IPV6_FRAG_OFFSET_MASK) {
				*next = nh;
				return VIGIL_IPV6_LATER_FRAGMENT;
			}
			o += 8;
		} else if (nh == IPPROTO_AH) {
			nh = ext[0];
			o += (ext[1] + 2) * 4;
		} else {
			nh = ext[0];
			o += (ext[1] + 1) * 8;
		}
	}
	*next = nh;
	*off = o;
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS || nh == IPPROTO_FRAGMENT ||
	    nh == IPPROTO_AH)
		return VIGIL_IPV6_TOO_DEEP;
	return VIGIL_IPV6_UPPER;
}

#endif
