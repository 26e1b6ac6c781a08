// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Metadata-service guard: enforcement of a compiled policy (bpf/include/vigil/guard.h) in cgroup
 * connect4/6 and sendmsg4/6 (a refused call fails with EPERM), plus a cgroup_skb egress backstop for
 * raw sockets, which have no connect hook. Or, for hosts without cgroup v2, a TC egress enforcer on
 * chosen interfaces that judges every packet to a guarded destination by its socket. Decisions that
 * violate a rule are reported through a ring buffer, rate-limited per (uid, destination) in the kernel. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "vigil/guard.h"
#include "lib/net.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile struct vigil_guard_settings vigil_guard_cfg = {
	.rate_window_ns = 1000000000ULL,
	.rate_burst = 5,
	.wakeup_bytes = 16 * 1024,
	.http_bytes = 0,
};
#define SETTINGS vigil_guard_cfg

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_guard_state);
} vigil_guard_state SEC(".maps");

/* Sizes: two policy slots (guard.h) of at most 4096 prefixes, 4096 ports and 8192 principals each. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct vigil_guard_dst_key);
	__type(value, struct vigil_guard_rules);
} vigil_guard_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct vigil_guard_port_key);
	__type(value, struct vigil_guard_rules);
} vigil_guard_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vigil_guard_principal_key);
	__type(value, struct vigil_guard_allow_value);
} vigil_guard_allow SEC(".maps");

/* Read and written by user space only: the rule names and source of each slot's policy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIGIL_GUARD_SLOTS);
	__type(key, __u32);
	__type(value, struct vigil_guard_policy_text);
} vigil_guard_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by user space before load */
} vigil_guard_events SEC(".maps");

struct vigil_guard_counters {
	__u64 c[VIGIL_GUARD_STAT_COUNT];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_guard_counters);
} vigil_guard_stats SEC(".maps");

/* Rate limiting state per (uid, destination): kernel-private, not part of the wire contract. */
struct rate_key {
	__u8 daddr[16];
	__u32 uid;
	__u16 dport;
	__u8 protocol;
	__u8 family;
};

struct rate_value {
	__u64 window_start_ns;
	__u32 emitted;    /* events in the current window */
	__u32 suppressed; /* decisions not reported since the last event */
};

/* LRU: a flood of distinct destinations evicts old windows, which can only let more events through. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rate_key);
	__type(value, struct rate_value);
} vigil_guard_rate SEC(".maps");

#define SOCK_RAW 3
#define VIGIL_TCP_SYN 0x02 /* in the TCP header's flags byte */
#define VIGIL_TCP_ACK 0x10

/* What is being judged: destination as looked up (IPv4 as ::ffff:a.b.c.d, family 4). */
struct target {
	__u8 addr[16];
	__u16 port;
	__u8 family;
	__u8 protocol;
	__u8 tcp_flags; /* packet hooks: the TCP header's flags byte (0 when there is none) */
};

/* Who is calling, as far as the hook can know. */
struct caller {
	__u64 exe_ino;
	__u32 exe_dev;
	__u32 exe_generation;
	__u32 uid;
	__u32 gid;
	bool has_exe;
};

static __always_inline struct vigil_guard_counters *counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&vigil_guard_stats, &zero);
}

static __always_inline void count(struct vigil_guard_counters *c, int idx)
{
	if (c)
		c->c[idx]++; /* per-CPU: no atomic needed */
}

static __always_inline void set_v4(struct target *t, __u32 addr_be)
{
	vigil_map_v4(t->addr, addr_be);
	t->family = 4;
}

/* An IPv6 destination; ::ffff:0:0/96 is judged as the IPv4 address it carries (guard.h step 1). */
static __always_inline void set_v6(struct target *t, const __u32 w[4])
{
	__builtin_memcpy(t->addr, w, 16);
	t->family = (w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff)) ? 4 : 6;
}

/* The active slot's config, and the slot every lookup of this decision uses (guard.h, double
 * buffering). Read once per decision. */
struct policy {
	const struct vigil_guard_config *cfg;
	__u8 slot;
};

/* Steps 2-3: the rules guarding this destination, port and protocol. */
static __always_inline __u64 guarded_rules(const struct policy *p, const struct target *t)
{
	const struct vigil_guard_config *cfg = p->cfg;
	struct vigil_guard_dst_key key = { .prefixlen = 8 + 8 + 128, .slot = p->slot, .family = t->family };
	__builtin_memcpy(key.addr, t->addr, 16);
	struct vigil_guard_rules *dst = bpf_map_lookup_elem(&vigil_guard_dst, &key);
	if (!dst)
		return 0;
	__u64 r = dst->rules;
	if (!r)
		return 0;
	__u64 ports = t->protocol == IPPROTO_TCP ? cfg->any_port_tcp
		    : t->protocol == IPPROTO_UDP ? cfg->any_port_udp : 0;
	if (r & ~ports) {
		struct vigil_guard_port_key pk = { .port = t->port, .protocol = t->protocol, .slot = p->slot };
		struct vigil_guard_rules *pr = bpf_map_lookup_elem(&vigil_guard_ports, &pk);
		if (pr)
			ports |= pr->rules;
	}
	return r & ports;
}

static __always_inline __u64 allowed_by(const struct policy *p, __u8 kind, __u64 id, __u32 dev)
{
	struct vigil_guard_principal_key key = { .id = id, .dev = dev, .kind = kind, .slot = p->slot };
	struct vigil_guard_allow_value *v = bpf_map_lookup_elem(&vigil_guard_allow, &key);
	return v ? v->rules : 0;
}

/* Rules allowing one of the caller's cgroup ancestors, at the levels where the policy names a cgroup.
 * of_skb: the socket's cgroup (egress, skb); else the current task's (connect/sendmsg, skb unused).
 * A constant flag, not a NULL test of skb: clang cannot know the ctx pointer is non-NULL, so the task
 * arm stayed in the egress program, and 6.1's verifier walks it and refuses
 * bpf_get_current_ancestor_cgroup_id, which cgroup_skb programs may not call there (kernel matrix). */
static __always_inline __u64 cgroup_allowed(const struct policy *p, struct __sk_buff *skb, const bool of_skb)
{
	__u64 a = 0;
	__u64 levels = p->cfg->cgroup_levels;
	for (int l = 0; l <= VIGIL_GUARD_MAX_CGROUP_LEVEL; l++) {
		if (!(levels >> l))
			break;
		if (!((levels >> l) & 1))
			continue;
		__u64 id = of_skb ? bpf_skb_ancestor_cgroup_id(skb, l) : bpf_get_current_ancestor_cgroup_id(l);
		if (id)
			a |= allowed_by(p, VIGIL_GUARD_PRINCIPAL_CGROUP, id, 0);
	}
	return a;
}

/* The calling task's executable: current->mm->exe_file->f_inode (zero for kernel threads). */
static __always_inline void read_exe(struct caller *who)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
	if (!inode)
		return;
	who->exe_ino = BPF_CORE_READ(inode, i_ino);
	who->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
	who->exe_generation = BPF_CORE_READ(inode, i_generation);
	who->has_exe = true;
}

static __always_inline __u64 exe_allowed(const struct policy *p, const struct caller *who)
{
	if (!who->has_exe)
		return 0;
	struct vigil_guard_principal_key key = { .id = who->exe_ino, .dev = who->exe_dev, .kind = VIGIL_GUARD_PRINCIPAL_EXE, .slot = p->slot };
	struct vigil_guard_allow_value *v = bpf_map_lookup_elem(&vigil_guard_allow, &key);
	if (!v)
		return 0;
	/* A freed inode number reused by another file has another generation. */
	if ((v->flags & VIGIL_GUARD_ALLOW_CHECK_GENERATION) && v->generation != who->exe_generation)
		return 0;
	return v->rules;
}

/* Supplementary groups of a cred (the caller's, or a socket's), at most VIGIL_GUARD_MAX_GROUPS of them. */
static __always_inline __u64 supplementary_allowed(const struct policy *p, const struct group_info *gi)
{
	if (!gi)
		return 0;
	int n = BPF_CORE_READ(gi, ngroups);
	__u64 a = 0;
	for (int i = 0; i < VIGIL_GUARD_MAX_GROUPS; i++) {
		if (i >= n)
			break;
		kgid_t g;
		if (bpf_probe_read_kernel(&g, sizeof(g), &gi->gid[i]))
			break;
		a |= allowed_by(p, VIGIL_GUARD_PRINCIPAL_GID, g.val, 0);
	}
	return a;
}

/* Returns true when the event for this decision may be emitted, and how many were suppressed before it. */
static __always_inline bool rate_allows(struct vigil_guard_counters *c, const struct target *t, __u32 uid, __u32 *suppressed)
{
	struct rate_key key = { .uid = uid, .dport = t->port, .protocol = t->protocol, .family = t->family };
	__builtin_memcpy(key.daddr, t->addr, 16);
	__u64 now = bpf_ktime_get_ns();
	struct rate_value *v = bpf_map_lookup_elem(&vigil_guard_rate, &key);
	if (!v) {
		struct rate_value init = { .window_start_ns = now, .emitted = 1 };
		bpf_map_update_elem(&vigil_guard_rate, &key, &init, BPF_ANY);
		*suppressed = 0;
		return true;
	}
	if (now - v->window_start_ns >= SETTINGS.rate_window_ns) {
		/* New window. Racing CPUs may both reset it: at worst a few more events, never a lost count. */
		v->window_start_ns = now;
		v->emitted = 0;
	}
	if (v->emitted >= SETTINGS.rate_burst) {
		__sync_fetch_and_add(&v->suppressed, 1);
		count(c, VIGIL_GUARD_STAT_RATE_LIMITED);
		return false;
	}
	__sync_fetch_and_add(&v->emitted, 1);
	*suppressed = __sync_lock_test_and_set(&v->suppressed, 0);
	return true;
}

static __always_inline void submit(struct vigil_guard_counters *c, struct vigil_guard_event *ev)
{
	count(c, VIGIL_GUARD_STAT_EMITTED);
	/* No per-event wake-up (it costs microseconds in the hook); the reader polls with a short timeout. */
	__u64 wake = bpf_ringbuf_query(&vigil_guard_events, BPF_RB_AVAIL_DATA) >= SETTINGS.wakeup_bytes
			     ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(ev, wake);
}

static __always_inline struct vigil_guard_event *reserve(struct vigil_guard_counters *c, const struct vigil_guard_config *cfg,
							  const struct target *t, __u8 hook, __u64 violated, __u32 uid)
{
	__u32 suppressed;
	if (!rate_allows(c, t, uid, &suppressed))
		return NULL;
	struct vigil_guard_event *ev = bpf_ringbuf_reserve(&vigil_guard_events, sizeof(*ev), 0);
	if (!ev) {
		count(c, VIGIL_GUARD_STAT_RING_FULL);
		return NULL;
	}
	ev->hdr.kind = VIGIL_EVENT_GUARD;
	ev->hdr.version = VIGIL_WIRE_VERSION;
	ev->hdr.size = sizeof(*ev);
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(ev->daddr, t->addr, 16);
	ev->dport = t->port;
	ev->family = t->family;
	ev->protocol = t->protocol;
	ev->verdict = (violated & cfg->enforce_rules) ? VIGIL_GUARD_VERDICT_DENY : VIGIL_GUARD_VERDICT_AUDIT;
	ev->hook = hook;
	ev->violated = violated;
	ev->rule = __builtin_ctzll(violated);
	ev->generation = cfg->generation;
	ev->suppressed = suppressed;
	ev->uid = uid;
	ev->_pad = 0;
	ev->_pad2 = 0;
	return ev;
}

/* Counts the outcome of a guarded decision and returns the hook's verdict (1 allow, 0 refuse). */
static __always_inline int verdict(struct vigil_guard_counters *c, const struct vigil_guard_config *cfg, __u64 violated)
{
	if (!violated) {
		count(c, VIGIL_GUARD_STAT_ALLOWED);
		return 1;
	}
	if (violated & cfg->enforce_rules) {
		count(c, VIGIL_GUARD_STAT_DENIED);
		return 0;
	}
	count(c, VIGIL_GUARD_STAT_AUDITED);
	return 1;
}

/* False when no policy is loaded (or the active slot has no rules): the guard is idle. */
static __always_inline bool active_policy(struct policy *p)
{
	__u32 zero = 0;
	const struct vigil_guard_state *st = bpf_map_lookup_elem(&vigil_guard_state, &zero);
	if (!st)
		return false;
	p->slot = st->active & 1;
	p->cfg = p->slot ? &st->slot1 : &st->slot0;
	return p->cfg->rules != 0;
}

/* ---- HTTP audit (guard.h): the first bytes of guarded TCP connections ---- */

/* Per-socket capture state. Kernel-private: user space sees only the records. */
struct http_sock {
	struct vigil_guard_http_meta meta;
	__u32 seq_base; /* sequence number of stream byte 0 */
	__u32 captured; /* stream bytes [0, captured) are handled */
	__u8 started;   /* seq_base is known */
	__u8 done;      /* budget used or stream ended */
	__u8 _pad[6];
};

/* Socket-local storage rather than a cookie-keyed hash: it dies with the socket (no stale entries, no
 * LRU eviction of live connections), and a socket without it costs one pointer test in egress.
 * bpf_sk_storage_get is available to cgroup_skb since 5.2 and to cgroup sock_addr programs since 5.x
 * (both well before 6.1, the oldest kernel Vigil is tested on). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct http_sock);
} vigil_guard_http_sk SEC(".maps");

/* A TCP connect allowed to a guarded destination: give the socket a capture budget and the caller's identity. */
static __always_inline void http_track(struct bpf_sock_addr *ctx, struct vigil_guard_counters *c, const struct policy *p,
				       const struct target *t, __u8 hook, __u64 r, __u64 v, struct caller *who)
{
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return;
	struct http_sock *hs = bpf_sk_storage_get(&vigil_guard_http_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!hs) {
		count(c, VIGIL_GUARD_STAT_HTTP_NO_STORAGE);
		return;
	}
	count(c, VIGIL_GUARD_STAT_HTTP_TRACKED);
	if (!who->has_exe)
		read_exe(who);
	struct vigil_guard_http_meta *m = &hs->meta;
	__builtin_memcpy(m->daddr, t->addr, 16);
	m->cookie = bpf_get_socket_cookie(ctx);
	m->cgroup_id = bpf_get_current_cgroup_id();
	m->exe_ino = who->exe_ino;
	m->exe_dev = who->exe_dev;
	m->rules = r;
	m->violated = v;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	m->pid = (__u32)pid_tgid;
	m->tgid = pid_tgid >> 32;
	m->uid = who->uid;
	m->gid = who->gid;
	m->generation = p->cfg->generation;
	m->dport = t->port;
	m->family = t->family;
	m->hook = hook;
	m->verdict = v ? VIGIL_GUARD_VERDICT_AUDIT : 0;
	m->rule = __builtin_ctzll(v ? v : r);
	bpf_get_current_comm(m->comm, sizeof(m->comm));
	/* A socket connected again (after a failed attempt) starts over. */
	hs->seq_base = 0;
	hs->captured = 0;
	hs->started = 0;
	hs->done = 0;
}

/* Clamps len to [1, max] in one register, so the verifier (6.1's included) sees both bounds on the
 * register passed as the copy size (see snap_len in tcp_inspect.bpf.c). */
static __always_inline __u32 http_clamp(__u64 len, __u32 max)
{
	asm volatile("if %[len] <= %[max] goto +1\n\t"
		     "%[len] = %[max]\n\t"
		     "if %[len] > 0 goto +1\n\t"
		     "%[len] = 1"
		     : [len] "+r"(len)
		     : [max] "r"((__u64)max));
	return len;
}

/* One record: stream bytes [start, start + len) read from the packet at skb offset off (len 0 = end of stream). */
static __always_inline void http_emit(struct vigil_guard_counters *c, struct __sk_buff *skb, const struct http_sock *hs,
				      __u32 start, __u32 off, __u32 len, __u8 flags)
{
	struct vigil_guard_http_event *ev = bpf_ringbuf_reserve(&vigil_guard_events, sizeof(*ev) + SETTINGS.http_bytes, 0);
	if (!ev) {
		count(c, VIGIL_GUARD_STAT_HTTP_LOST);
		return;
	}
	if (len) {
		__u32 n = http_clamp(len, SETTINGS.http_bytes);
		/* bpf_skb_load_bytes: the payload of a TCP skb is usually in page fragments, not linear data. */
		if (bpf_skb_load_bytes(skb, off, (__u8 *)(ev + 1), n)) {
			bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);
			count(c, VIGIL_GUARD_STAT_HTTP_LOST);
			return;
		}
		len = n;
	}
	ev->hdr.kind = VIGIL_EVENT_GUARD_HTTP;
	ev->hdr.version = VIGIL_WIRE_VERSION;
	ev->hdr.size = sizeof(*ev) + len;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	__builtin_memcpy(&ev->meta, &hs->meta, sizeof(ev->meta));
	ev->offset = start;
	ev->data_len = len;
	ev->flags = flags;
	ev->_pad = 0;
	count(c, VIGIL_GUARD_STAT_HTTP_RECORDS);
	if (c)
		c->c[VIGIL_GUARD_STAT_HTTP_BYTES] += len;
	__u64 wake = bpf_ringbuf_query(&vigil_guard_events, BPF_RB_AVAIL_DATA) >= SETTINGS.wakeup_bytes
			     ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(ev, wake);
}

/* Offset of the TCP header in an egress packet (skb->data is the network header), or 0. */
static __always_inline __u32 http_l4_offset(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;
		if ((void *)(ip + 1) > data_end || ip->ihl < 5 || ip->protocol != IPPROTO_TCP ||
		    (bpf_ntohs(ip->frag_off) & IP_OFFSET_MASK))
			return 0;
		return ip->ihl * 4;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;
		if ((void *)(ip6 + 1) > data_end)
			return 0;
		__u8 next = 0;
		__u32 off = 0;
		if (vigil_ipv6_walk(ip6, data_end, &next, &off) != VIGIL_IPV6_UPPER || next != IPPROTO_TCP ||
		    off > VIGIL_MAX_L3_HEADER)
			return 0;
		return off;
	}
	return 0;
}

/* cgroup_skb egress, TCP full sockets: copy the payload of a socket that http_track marked. Sockets
 * without storage (every unguarded connection) cost one lookup that misses. */
static __always_inline void http_capture(struct vigil_guard_counters *c, struct __sk_buff *skb, struct bpf_sock *sk)
{
	if (!SETTINGS.http_bytes)
		return;
	/* Only TCP sockets get storage (http_track): no protocol test needed before the lookup. */
	struct http_sock *hs = bpf_sk_storage_get(&vigil_guard_http_sk, sk, 0, 0);
	if (!hs || hs->done)
		return;
	__u32 l4 = http_l4_offset(skb);
	if (!l4)
		return;
	struct tcphdr th;
	if (bpf_skb_load_bytes(skb, l4, &th, sizeof(th)))
		return;
	__u32 seq = bpf_ntohl(th.seq);
	__u32 payload = l4 + th.doff * 4;
	__u32 plen = skb->len > payload ? skb->len - payload : 0;
	if (th.syn) {
		hs->seq_base = seq + 1; /* the SYN takes one sequence number */
		hs->started = 1;
		return;
	}
	if (plen) {
		if (!hs->started) { /* the SYN went out before the storage existed: count from here */
			hs->seq_base = seq;
			hs->started = 1;
		}
		__u32 o = seq - hs->seq_base; /* stream offset of the packet's first byte */
		__u32 budget = SETTINGS.http_bytes;
		/* o >= budget: beyond the budget, or (wrapped) before byte 0 */
		if (o < budget) {
			__u32 start = o > hs->captured ? o : hs->captured;
			__u32 end = o + plen < budget ? o + plen : budget;
			if (start < end) {
				hs->captured = end;
				if (end == budget)
					hs->done = 1;
				http_emit(c, skb, hs, start, payload + (start - o), end - start,
					  end == budget ? VIGIL_GUARD_HTTP_BUDGET : 0);
			}
		}
	}
	if ((th.fin || th.rst) && !hs->done) {
		hs->done = 1;
		http_emit(c, skb, hs, hs->captured, 0, 0, VIGIL_GUARD_HTTP_END);
	}
}

/* ---- connect / sendmsg: the calling task is the one asking ---- */

static __always_inline int judge_call(struct bpf_sock_addr *ctx, __u8 hook, bool v6)
{
	struct policy p;
	if (!active_policy(&p))
		return 1;
	const struct vigil_guard_config *cfg = p.cfg;
	struct vigil_guard_counters *c = counters();
	struct target t = {};
	if (v6) {
		__u32 w[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
		set_v6(&t, w);
	} else {
		set_v4(&t, ctx->user_ip4);
	}
	t.port = bpf_ntohs((__u16)ctx->user_port);
	t.protocol = (__u8)ctx->protocol;
	count(c, VIGIL_GUARD_STAT_CHECKED);

	__u64 r = guarded_rules(&p, &t);
	if (!r) {
		count(c, VIGIL_GUARD_STAT_UNGUARDED);
		return 1;
	}
	count(c, VIGIL_GUARD_STAT_GUARDED);

	/* Step 4: one lookup per principal kind, skipped where no rule in R names that kind. */
	struct caller who = {};
	__u64 uid_gid = bpf_get_current_uid_gid();
	who.uid = (__u32)uid_gid;
	who.gid = uid_gid >> 32;
	__u64 a = 0;
	if (r & cfg->uid_rules)
		a |= allowed_by(&p, VIGIL_GUARD_PRINCIPAL_UID, who.uid, 0);
	if ((r & ~a) & cfg->gid_rules) {
		a |= allowed_by(&p, VIGIL_GUARD_PRINCIPAL_GID, who.gid, 0);
		if ((r & ~a) & cfg->gid_rules) {
			struct task_struct *task = (struct task_struct *)bpf_get_current_task();
			a |= supplementary_allowed(&p, BPF_CORE_READ(task, cred, group_info));
		}
	}
	if ((r & ~a) & cfg->exe_rules) {
		read_exe(&who);
		a |= exe_allowed(&p, &who);
	}
	if ((r & ~a) & cfg->cgroup_rules)
		a |= cgroup_allowed(&p, NULL, false);

	/* Step 5. */
	__u64 v = r & ~a;
	int allow = verdict(c, cfg, v);
	if (SETTINGS.http_bytes && allow && t.protocol == IPPROTO_TCP && (hook == VIGIL_GUARD_HOOK_CONNECT4 || hook == VIGIL_GUARD_HOOK_CONNECT6))
		http_track(ctx, c, &p, &t, hook, r, v, &who);
	if (!v)
		return allow;

	struct vigil_guard_event *ev = reserve(c, cfg, &t, hook, v, who.uid);
	if (ev) {
		if (!who.has_exe)
			read_exe(&who);
		__u64 pid_tgid = bpf_get_current_pid_tgid();
		ev->pid = (__u32)pid_tgid;
		ev->tgid = pid_tgid >> 32;
		ev->gid = who.gid;
		ev->exe_ino = who.exe_ino;
		ev->exe_dev = who.exe_dev;
		ev->cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(ev->comm, sizeof(ev->comm));
		submit(c, ev);
	}
	return allow;
}

SEC("cgroup/connect4")
int vigil_guard_connect4(struct bpf_sock_addr *ctx)
{
	return judge_call(ctx, VIGIL_GUARD_HOOK_CONNECT4, false);
}

SEC("cgroup/connect6")
int vigil_guard_connect6(struct bpf_sock_addr *ctx)
{
	return judge_call(ctx, VIGIL_GUARD_HOOK_CONNECT6, true);
}

SEC("cgroup/sendmsg4")
int vigil_guard_sendmsg4(struct bpf_sock_addr *ctx)
{
	return judge_call(ctx, VIGIL_GUARD_HOOK_SENDMSG4, false);
}

SEC("cgroup/sendmsg6")
int vigil_guard_sendmsg6(struct bpf_sock_addr *ctx)
{
	return judge_call(ctx, VIGIL_GUARD_HOOK_SENDMSG6, true);
}

/* ---- Packet hooks: cgroup_skb egress (the backstop for raw sockets) and the TC enforcer ----
 * No task context: the packet may be sent from softirq (retransmissions, data released by an ACK), so
 * the hook judges the socket that sent it (guard.h, "Packet hooks"). Packets without a socket owner
 * that the host made (RSTs, ICMP errors) pass. */

/* The destination port of a TCP or UDP header at l4, and a TCP header's flags (each left 0 when it is
 * not in the linear data). */
static __always_inline void l4_fields(void *l4, void *data_end, struct target *t)
{
	if (t->protocol != IPPROTO_TCP && t->protocol != IPPROTO_UDP)
		return;
	__u8 *h = l4;
	/* One register for the check and the loads: clang otherwise recomputes data + offset after the
	 * check, and the verifier does not carry the checked range over to the copy. */
	barrier_var(h);
	if ((void *)(h + 4) > data_end)
		return;
	t->port = (__u16)h[2] << 8 | h[3];
	if (t->protocol == IPPROTO_TCP && (void *)(h + 14) <= data_end)
		t->tcp_flags = h[13];
}

/* The destination of an IPv4/IPv6 packet at l3 (proto: its ETH_P_*). False when it is neither or too
 * short to judge. */
static __always_inline bool parse_l3(__u16 proto, void *l3, void *data_end, struct target *t)
{
	if (proto == ETH_P_IP) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return false;
		set_v4(t, ip->daddr);
		t->protocol = ip->protocol;
		/* Non-first fragments carry no L4 header: judged with port 0 (any-port rules only). */
		if (!(bpf_ntohs(ip->frag_off) & IP_OFFSET_MASK))
			l4_fields(l3 + ip->ihl * 4, data_end, t);
		return true;
	}
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			return false;
		__u32 w[4];
		__builtin_memcpy(w, &ip6->daddr, 16);
		set_v6(t, w);
		__u8 next = 0;
		__u32 off = 0;
		switch (vigil_ipv6_walk(ip6, data_end, &next, &off)) {
		case VIGIL_IPV6_UPPER:
			t->protocol = next;
			if (off <= VIGIL_MAX_L3_HEADER)
				l4_fields(l3 + off, data_end, t);
			break;
		case VIGIL_IPV6_LATER_FRAGMENT: /* no L4 header: judged with port 0 (any-port rules only) */
		case VIGIL_IPV6_TOO_DEEP:
			t->protocol = next;
			break;
		default: /* headers beyond what we walk: judged with port 0 */
			break;
		}
		return true;
	}
	return false;
}

/* The credentials a socket was opened with: sk->sk_socket->file->f_cred (NULL for kernel sockets).
 * The verifier allows no arithmetic on a socket pointer, so its address is copied out through the
 * stack with a probe read (a pointer may be passed as a plain value with CAP_PERFMON, which the
 * guard needs anyway) and the fields are read with CO-RE probe reads. */
static __always_inline const struct cred *socket_cred(struct bpf_sock *sk)
{
	struct sock *ksk = NULL;
	if (bpf_probe_read_kernel(&ksk, sizeof(ksk), &sk) || !ksk)
		return NULL;
	return BPF_CORE_READ(ksk, sk_socket, file, f_cred);
}

/* Steps 2-5 for a packet to t sent by the full socket sk, or by nobody known (sk NULL: forwarded from
 * another interface, which violates every rule guarding t). Returns 1 to let the packet pass. */
static __always_inline int judge_packet(struct vigil_guard_counters *c, const struct policy *p, struct __sk_buff *skb,
					struct bpf_sock *sk, const struct target *t, __u8 hook)
{
	const struct vigil_guard_config *cfg = p->cfg;
	__u64 r = guarded_rules(p, t);
	if (!r) {
		count(c, VIGIL_GUARD_STAT_CHECKED);
		count(c, VIGIL_GUARD_STAT_UNGUARDED);
		return 1;
	}
	/* A socket with no file is the kernel's own — the TCP control socket that sends RSTs and time-wait
	 * ACKs (a SOCK_RAW socket of uid 0 in the root cgroup) — so its packets are the host's, as those with
	 * no socket at all (seen on Debian's 6.1 and 6.12, where the time-wait ACKs of allowed connections
	 * came from it). A user socket loses its file only after close(), when only TCP still sends. */
	const struct cred *cred = NULL;
	if (sk && !(cred = socket_cred(sk))) {
		count(c, VIGIL_GUARD_STAT_HOST_PACKETS);
		return 1;
	}
	count(c, VIGIL_GUARD_STAT_CHECKED);
	count(c, VIGIL_GUARD_STAT_GUARDED);
	__u32 uid = VIGIL_GUARD_UNKNOWN_ID, gid = VIGIL_GUARD_UNKNOWN_ID;
	__u64 a = 0;
	if (sk) {
		uid = bpf_get_socket_uid(skb);
		gid = BPF_CORE_READ(cred, gid.val);
		if (r & cfg->uid_rules)
			a |= allowed_by(p, VIGIL_GUARD_PRINCIPAL_UID, uid, 0);
		if ((r & ~a) & cfg->gid_rules) {
			a |= allowed_by(p, VIGIL_GUARD_PRINCIPAL_GID, gid, 0);
			if ((r & ~a) & cfg->gid_rules)
				a |= supplementary_allowed(p, BPF_CORE_READ(cred, group_info));
		}
		if ((r & ~a) & cfg->cgroup_rules)
			a |= cgroup_allowed(p, skb, true);
	} else {
		count(c, VIGIL_GUARD_STAT_UNOWNED);
	}
	__u64 v = r & ~a;
	int allow = verdict(c, cfg, v);
	if (!v)
		return allow;
	struct vigil_guard_event *ev = reserve(c, cfg, t, hook, v, uid);
	if (ev) {
		ev->pid = 0;
		ev->tgid = 0;
		ev->gid = gid;
		ev->exe_ino = 0;
		ev->exe_dev = 0;
		ev->cgroup_id = sk ? bpf_skb_cgroup_id(skb) : 0;
		__builtin_memset(ev->comm, 0, sizeof(ev->comm));
		submit(c, ev);
	}
	return allow;
}

/* cgroup_skb egress: the backstop for raw sockets. TCP and UDP sockets were judged when they connected
 * or sent; a raw socket has no such hook, and can carry a hand-made TCP or UDP header. (skb->data is
 * the network header here.) */
SEC("cgroup_skb/egress")
int vigil_guard_egress(struct __sk_buff *skb)
{
	struct vigil_guard_counters *c = counters();
	count(c, VIGIL_GUARD_STAT_EGRESS_PACKETS);
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	if (sk->type != SOCK_RAW) {
		http_capture(c, skb, sk);
		return 1;
	}
	struct policy p;
	if (!active_policy(&p))
		return 1;
	struct target t = {};
	if (!parse_l3(bpf_ntohs(skb->protocol), (void *)(long)skb->data, (void *)(long)skb->data_end, &t))
		return 1;
	return judge_packet(c, &p, skb, sk, &t, VIGIL_GUARD_HOOK_EGRESS);
}

/* ---- TC egress: the enforcer for hosts without cgroup v2 (--enforcer tc) ----
 * Every packet leaving a chosen interface to a guarded destination is judged by the socket that sent it
 * (TCP, UDP and raw alike); everything else passes untouched (TC_ACT_UNSPEC, so programs attached after
 * this one still run). A refused packet is dropped; a refused TCP SYN is answered with a RST (tc_reset). */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

struct tcp_reset_v4 {
	struct iphdr ip;
	struct tcphdr tcp;
};

struct tcp_reset_v6 {
	struct ipv6hdr ip;
	struct tcphdr tcp;
};

/* The RST|ACK header answering a SYN header: ports swapped, acknowledging the SYN's sequence number. */
static __always_inline void reset_tcp(struct tcphdr *rst, const struct tcphdr *syn)
{
	__builtin_memset(rst, 0, sizeof(*rst));
	rst->source = syn->dest;
	rst->dest = syn->source;
	rst->ack_seq = bpf_htonl(bpf_ntohl(syn->seq) + 1);
	rst->doff = 5;
	rst->rst = 1;
	rst->ack = 1;
}

/* A refused SYN becomes the RST the destination would send, turned back in through the interface
 * (bpf_redirect to its ingress): the connect() fails at once with ECONNREFUSED, as with iptables' REJECT
 * --reject-with tcp-reset, instead of timing out while every retransmitted SYN is dropped. A forwarded
 * SYN's RST is routed back to its sender the same way. Only plain headers are answered (IPv4 without
 * options, IPv6 without extension headers, as connect() sends them); anything else is dropped. */
static __always_inline int tc_reset(struct vigil_guard_counters *c, struct __sk_buff *skb, __u16 proto, __u32 l3off)
{
	__u8 macs[12];
	if (l3off && (bpf_skb_load_bytes(skb, 0, macs, sizeof(macs)) < 0))
		return TC_ACT_SHOT;
	if (proto == ETH_P_IP) {
		struct tcp_reset_v4 in, out = {};
		if (bpf_skb_load_bytes(skb, l3off, &in, sizeof(in)) < 0 || in.ip.ihl != 5)
			return TC_ACT_SHOT;
		out.ip.version = 4;
		out.ip.ihl = 5;
		out.ip.tot_len = bpf_htons(sizeof(out));
		out.ip.ttl = 64;
		out.ip.protocol = IPPROTO_TCP;
		out.ip.saddr = in.ip.daddr;
		out.ip.daddr = in.ip.saddr;
		out.ip.check = csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&out.ip, sizeof(out.ip), 0));
		reset_tcp(&out.tcp, &in.tcp);
		__be32 pseudo[3] = { out.ip.saddr, out.ip.daddr, bpf_htonl(IPPROTO_TCP << 16 | sizeof(out.tcp)) };
		__s64 sum = bpf_csum_diff(NULL, 0, pseudo, sizeof(pseudo), 0);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&out.tcp, sizeof(out.tcp), (__u32)sum);
		out.tcp.check = csum_fold((__u32)sum);
		if (bpf_skb_change_tail(skb, l3off + sizeof(out), 0) < 0 ||
		    bpf_skb_store_bytes(skb, l3off, &out, sizeof(out), 0) < 0)
			return TC_ACT_SHOT;
	} else {
		struct tcp_reset_v6 in, out = {};
		if (bpf_skb_load_bytes(skb, l3off, &in, sizeof(in)) < 0 || in.ip.nexthdr != IPPROTO_TCP)
			return TC_ACT_SHOT;
		out.ip.version = 6;
		out.ip.payload_len = bpf_htons(sizeof(out.tcp));
		out.ip.nexthdr = IPPROTO_TCP;
		out.ip.hop_limit = 64;
		out.ip.saddr = in.ip.daddr;
		out.ip.daddr = in.ip.saddr;
		reset_tcp(&out.tcp, &in.tcp);
		__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)&out.ip.saddr, 32, 0);
		__be32 len_next[2] = { bpf_htonl(sizeof(out.tcp)), bpf_htonl(IPPROTO_TCP) };
		sum = bpf_csum_diff(NULL, 0, len_next, sizeof(len_next), (__u32)sum);
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&out.tcp, sizeof(out.tcp), (__u32)sum);
		out.tcp.check = csum_fold((__u32)sum);
		if (bpf_skb_change_tail(skb, l3off + sizeof(out), 0) < 0 ||
		    bpf_skb_store_bytes(skb, l3off, &out, sizeof(out), 0) < 0)
			return TC_ACT_SHOT;
	}
	if (l3off) {
		/* The frame comes back from the destination's side: its addresses swap. */
		__u8 swapped[12];
		__builtin_memcpy(swapped, macs + 6, 6);
		__builtin_memcpy(swapped + 6, macs, 6);
		if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0) < 0)
			return TC_ACT_SHOT;
	}
	count(c, VIGIL_GUARD_STAT_TC_RESETS);
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

static __always_inline int tc_judge(struct __sk_buff *skb, __u16 proto, __u32 l3off)
{
	struct vigil_guard_counters *c = counters();
	count(c, VIGIL_GUARD_STAT_TC_PACKETS);
	struct policy p;
	if (!active_policy(&p))
		return TC_ACT_UNSPEC;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct target t = {};
	if (l3off > 64 || !parse_l3(proto, data + l3off, data_end, &t))
		return TC_ACT_UNSPEC;
	struct bpf_sock *sk = skb->sk;
	if (sk) {
		/* Request and time-wait mini sockets answer the peer (SYN-ACK, last ACK): the host's own replies. */
		sk = bpf_sk_fullsock(sk);
		if (!sk)
			return TC_ACT_UNSPEC;
		/* A TCP connection is judged at its SYN, as connect() is by the cgroup enforcer: without an
		 * allowed SYN there is no connection, and later segments may leave after close(), when the socket
		 * has no file (so no credentials) left. */
		if (sk->type == SOCK_STREAM && t.protocol == IPPROTO_TCP && !(t.tcp_flags & VIGIL_TCP_SYN))
			return TC_ACT_UNSPEC;
	} else if (!skb->ingress_ifindex) {
		return TC_ACT_UNSPEC; /* made by the host itself (RST, ICMP error) */
	}
	if (judge_packet(c, &p, skb, sk, &t, VIGIL_GUARD_HOOK_TC_EGRESS))
		return TC_ACT_UNSPEC;
	if (t.protocol == IPPROTO_TCP && (t.tcp_flags & (VIGIL_TCP_SYN | VIGIL_TCP_ACK)) == VIGIL_TCP_SYN)
		return tc_reset(c, skb, proto, l3off);
	return TC_ACT_SHOT;
}

/* Interfaces with Ethernet framing (and loopback, which uses it too). */
SEC("tc")
int vigil_guard_tc_egress(struct __sk_buff *skb)
{
	__u16 proto;
	__u32 l3off;
	if (!vigil_eth_l3((void *)(long)skb->data, (void *)(long)skb->data_end, &proto, &l3off))
		return TC_ACT_UNSPEC;
	return tc_judge(skb, proto, l3off);
}

/* Interfaces without a link-layer header (tun, WireGuard, IP-in-IP tunnels): the packet starts at L3. */
SEC("tc")
int vigil_guard_tc_egress_ip(struct __sk_buff *skb)
{
	return tc_judge(skb, bpf_ntohs(skb->protocol), 0);
}
