/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/* Wire contract of the metadata-service guard: the map contents user space compiles from a policy
 * (src/Vigil.Core/Policy/PolicyCompiler.cs) and the enforcement programs (cgroup connect4/6,
 * sendmsg4/6, cgroup_skb egress; or TC egress on chosen interfaces) read. Mirrored in
 * src/Vigil.Wire/Guard.cs.
 *
 * Rules are numbered 0..VIGIL_GUARD_MAX_RULES-1 in policy order, and every map answers with a
 * bit set of rules (__u64), so one lookup per principal serves every rule at once.
 *
 * Maps (bpf/guard.bpf.c; names in src/Vigil.Wire/Guard.cs GuardNames):
 *   vigil_guard_state   ARRAY[1]    struct vigil_guard_state (active slot + one config per slot)
 *   vigil_guard_dst     LPM_TRIE    struct vigil_guard_dst_key  -> struct vigil_guard_rules
 *   vigil_guard_ports   HASH        struct vigil_guard_port_key -> struct vigil_guard_rules
 *   vigil_guard_allow   HASH        struct vigil_guard_principal_key -> struct vigil_guard_allow_value
 *   vigil_guard_policy  ARRAY[2]    struct vigil_guard_policy_text per slot (user space only)
 *   vigil_guard_events  RINGBUF     struct vigil_guard_event records
 *   vigil_guard_stats   PERCPU_ARRAY[1] __u64[VIGIL_GUARD_STAT_COUNT]
 *   vigil_guard_rate    LRU_HASH    (uid, destination) -> rate window (kernel-private)
 *   vigil_guard_http_sk SK_STORAGE  per-socket HTTP capture state (kernel-private; see "HTTP audit")
 * Load-time settings: const volatile struct vigil_guard_settings vigil_guard_cfg (.rodata).
 *
 * Double buffering (atomic reload): every policy entry carries a slot (0 or 1) in its key, and the
 * state map names the active slot. A decision reads the state once and looks up only keys of that
 * slot, so it sees one whole policy. A reload clears the inactive slot, fills it, writes its config
 * and its policy text, then flips state.active: a change of one byte (0 <-> 1, the other bytes of the
 * rewritten value are unchanged), so no decision can see a torn value. The previous slot is left in
 * place until the next reload clears it: a decision that read the old index just before the flip
 * still finds every entry it looks up.
 *
 * Decision for a connect/send to (daddr, dport, protocol):
 *   1. Normalise: an IPv6 destination in ::ffff:0:0/96 (IPv4-mapped) is judged as the IPv4 address
 *      it carries, i.e. looked up with family 4 (the address bytes stay ::ffff:a.b.c.d, as
 *      struct vigil_lpm_key stores every IPv4 address). The compiler emits IPv4 policy prefixes
 *      only as family-4 keys and writes ::ffff:a.b.c.d/n (n >= 96) policy prefixes as IPv4.
 *   2. R = vigil_guard_dst[daddr].rules; absent: not guarded, allow, no event. The compiler folds
 *      the rules of every shorter covering prefix into each longer one, so the longest match alone
 *      is complete.
 *   3. R &= (protocol == TCP ? any_port_tcp : protocol == UDP ? any_port_udp : 0)
 *          | vigil_guard_ports[{dport, protocol}].rules; R == 0: allow, no event.
 *   4. A = OR of vigil_guard_allow[...].rules for the caller's uid, gid and every supplementary gid,
 *      executable and the ids of its cgroup's ancestors at the levels in cgroup_levels.
 *      The *_rules masks in the config say which lookups can matter for R: skip the others.
 *   5. V = R & ~A (rules this connection violates). V & enforce_rules: refuse with EPERM and report;
 *      else V != 0: allow and report (audit); else allow silently.
 *
 * Principals (what the kernel can read cheaply at connect/sendmsg time, in the calling task):
 *   uid, gid: bpf_get_current_uid_gid() (kuids as the initial user namespace sees them; a numeric
 *     uid in a container's user namespace must be written as the host sees it).
 *   supplementary gids: current->cred->group_info (bounded loop; CO-RE + bpf_probe_read_kernel).
 *   executable: current->mm->exe_file->f_inode: i_ino, i_sb->s_dev and i_generation. Paths are not
 *     available cheaply in these hooks, so the compiler resolves each path to its inode when the
 *     policy is compiled; replacing the binary (a package upgrade) creates a new inode, so the
 *     loader must recompile on reload and when an allowed path changes. i_generation guards against
 *     a freed inode number being reused by another file (checked when the file system reports it).
 *   cgroup: bpf_get_current_ancestor_cgroup_id(level) for each level set in cgroup_levels; a cgroup
 *     allows itself and everything below it.
 * Packet hooks (cgroup_skb egress, the TC enforcer: no task context, a packet may be sent from softirq)
 * judge the socket that sent it: its uid (bpf_get_socket_uid), the gid and supplementary groups of the
 * credentials it was opened with (sk->sk_socket->file->f_cred, what iptables' owner match reads) and
 * its cgroup's ancestors (bpf_skb_ancestor_cgroup_id). Executables cannot be judged there.
 */
#ifndef VIGIL_GUARD_H
#define VIGIL_GUARD_H

#include "common.h"

#define VIGIL_GUARD_MAX_RULES 64        /* bits of a rule set */
#define VIGIL_GUARD_MAX_CGROUP_LEVEL 63 /* bits of cgroup_levels; the root cgroup is level 0 */

enum vigil_guard_mode {
	VIGIL_GUARD_MODE_AUDIT = 1,   /* allow and report */
	VIGIL_GUARD_MODE_ENFORCE = 2, /* refuse (EPERM) and report */
};

/* IPPROTO_* numbers, as the hooks see them. */
enum vigil_guard_protocol {
	VIGIL_GUARD_PROTO_TCP = 6,
	VIGIL_GUARD_PROTO_UDP = 17,
};

enum vigil_guard_principal_kind {
	VIGIL_GUARD_PRINCIPAL_UID = 1,
	VIGIL_GUARD_PRINCIPAL_GID = 2,    /* primary or supplementary */
	VIGIL_GUARD_PRINCIPAL_EXE = 3,    /* id = inode number, dev = superblock device */
	VIGIL_GUARD_PRINCIPAL_CGROUP = 4, /* id = cgroup id (the cgroup directory's inode number) */
};

/* vigil_guard_allow_value.flags */
#define VIGIL_GUARD_ALLOW_CHECK_GENERATION 1 /* exe: i_generation must equal .generation */

/* The config of one slot. Kept in a map (not .rodata) so a reload can replace it. */
struct vigil_guard_config {
	__u64 rules;         /* rules that exist */
	__u64 enforce_rules; /* rules in enforce mode; the other rules audit */
	__u64 any_port_tcp;  /* rules guarding every TCP port of their destinations */
	__u64 any_port_udp;  /* rules guarding every UDP port of their destinations */
	__u64 uid_rules;     /* rules with at least one allowed user */
	__u64 gid_rules;     /* ... group */
	__u64 exe_rules;     /* ... executable */
	__u64 cgroup_rules;  /* ... cgroup */
	__u64 cgroup_levels; /* bit l: some allowed cgroup is at hierarchy level l (root = 0) */
	__u32 generation;    /* policy generation, set by the loader and reported in events */
	__u32 _pad;
};
_Static_assert(sizeof(struct vigil_guard_config) == 80, "vigil_guard_config size");

#define VIGIL_GUARD_SLOTS 2

/* The one entry of vigil_guard_state. */
struct vigil_guard_state {
	__u32 active; /* slot the programs use: 0 or 1 */
	__u32 _pad;
	struct vigil_guard_config slot0; /* two named fields, not an array: the C# mirror can hold them */
	struct vigil_guard_config slot1;
};
_Static_assert(sizeof(struct vigil_guard_state) == 168, "vigil_guard_state size");

/* Key of vigil_guard_dst: an LPM key whose first byte is the slot, so prefixlen counts 8 bits of slot,
 * 8 of family and then the address bits (IPv4 as ::ffff:a.b.c.d, i.e. 96 + n for a /n). */
struct vigil_guard_dst_key {
	__u32 prefixlen;
	__u8 slot;
	__u8 family; /* 4 or 6 */
	__u8 addr[16];
	__u8 _pad[2];
};
_Static_assert(sizeof(struct vigil_guard_dst_key) == 24, "vigil_guard_dst_key size");

/* A set of rules: bit i = rule i. Value of vigil_guard_dst and vigil_guard_ports. */
struct vigil_guard_rules {
	__u64 rules;
};
_Static_assert(sizeof(struct vigil_guard_rules) == 8, "vigil_guard_rules size");

/* Key of vigil_guard_ports: rules whose endpoint set lists this port for this protocol. */
struct vigil_guard_port_key {
	__u16 port;    /* host order */
	__u8 protocol; /* enum vigil_guard_protocol */
	__u8 slot;
	__u8 _pad[4];
};
_Static_assert(sizeof(struct vigil_guard_port_key) == 8, "vigil_guard_port_key size");

/* Key of vigil_guard_allow. Unused fields are zero. */
struct vigil_guard_principal_key {
	__u64 id;    /* uid, gid, inode number or cgroup id, per kind */
	__u32 dev;   /* exe: the superblock's s_dev, MKDEV encoding (major << 20 | minor); else 0 */
	__u8 kind;   /* enum vigil_guard_principal_kind */
	__u8 slot;
	__u8 _pad[2];
};
_Static_assert(sizeof(struct vigil_guard_principal_key) == 16, "vigil_guard_principal_key size");

struct vigil_guard_allow_value {
	__u64 rules;      /* rules that allow this principal */
	__u32 generation; /* exe: the inode's i_generation when compiled */
	__u32 flags;      /* VIGIL_GUARD_ALLOW_* */
};
_Static_assert(sizeof(struct vigil_guard_allow_value) == 16, "vigil_guard_allow_value size");

/* Value of vigil_guard_policy: what user space needs to explain a slot's decisions (rule names, the
 * policy's source) to a later process — a restarted agent, `vigil guard status` — with no file on
 * disk. UTF-8 JSON written by src/Vigil.Sensors/Guard; the kernel never reads it. */
#define VIGIL_GUARD_POLICY_TEXT_MAX (65536 - 8)
struct vigil_guard_policy_text {
	__u32 length;     /* bytes of text used */
	__u32 generation; /* the slot's config generation this text describes */
	char text[VIGIL_GUARD_POLICY_TEXT_MAX];
};
_Static_assert(sizeof(struct vigil_guard_policy_text) == 65536, "vigil_guard_policy_text size");

/* Which hook judged a connection. */
enum vigil_guard_hook {
	VIGIL_GUARD_HOOK_CONNECT4 = 1,
	VIGIL_GUARD_HOOK_CONNECT6 = 2,
	VIGIL_GUARD_HOOK_SENDMSG4 = 3,
	VIGIL_GUARD_HOOK_SENDMSG6 = 4,
	VIGIL_GUARD_HOOK_EGRESS = 5, /* cgroup_skb egress backstop (raw sockets) */
	VIGIL_GUARD_HOOK_TC_EGRESS = 6, /* TC egress enforcer on chosen interfaces (every packet, by its socket) */
};

/* uid or gid of an event when the hook cannot know it (no socket, no task). (uid_t)-1 is no real id:
 * the kernel reserves it as INVALID_UID/INVALID_GID. */
#define VIGIL_GUARD_UNKNOWN_ID 0xffffffff

enum vigil_guard_verdict {
	VIGIL_GUARD_VERDICT_AUDIT = 1, /* allowed, reported (audit rules only were violated) */
	VIGIL_GUARD_VERDICT_DENY = 2,  /* refused: EPERM to the caller, or the packet dropped */
};

/* Per-CPU counters (vigil_guard_stats), indices below.
 * checked = unguarded + guarded; guarded = allowed + audited + denied;
 * audited + denied = emitted + rate_limited + ring_full. */
enum vigil_guard_stat {
	VIGIL_GUARD_STAT_CHECKED = 0,      /* decisions taken (hook runs that looked at a destination) */
	VIGIL_GUARD_STAT_UNGUARDED = 1,    /* destination/port/protocol not covered by any rule */
	VIGIL_GUARD_STAT_GUARDED = 2,      /* covered by at least one rule */
	VIGIL_GUARD_STAT_ALLOWED = 3,      /* guarded, and an allowed principal for every rule */
	VIGIL_GUARD_STAT_AUDITED = 4,      /* violated audit rules only: allowed and reported */
	VIGIL_GUARD_STAT_DENIED = 5,       /* violated an enforce rule: refused */
	VIGIL_GUARD_STAT_EMITTED = 6,      /* events submitted to the ring */
	VIGIL_GUARD_STAT_RATE_LIMITED = 7, /* events suppressed by the per-(uid, destination) limit */
	VIGIL_GUARD_STAT_RING_FULL = 8,    /* events lost: no room in the ring */
	VIGIL_GUARD_STAT_EGRESS_PACKETS = 9, /* packets the egress backstop saw (all sockets) */
	/* HTTP audit (http_bytes > 0). TCP connects allowed or audited to a guarded destination =
	 * http_tracked + http_no_storage; capture records attempted = http_records + http_lost. */
	VIGIL_GUARD_STAT_HTTP_TRACKED = 10,    /* connections given a capture budget (socket storage) */
	VIGIL_GUARD_STAT_HTTP_NO_STORAGE = 11, /* ... whose socket storage could not be created */
	VIGIL_GUARD_STAT_HTTP_RECORDS = 12,    /* capture records submitted (payload and end-of-stream) */
	VIGIL_GUARD_STAT_HTTP_LOST = 13,       /* capture records lost: no room in the ring, or payload unreadable */
	VIGIL_GUARD_STAT_HTTP_BYTES = 14,      /* payload bytes captured */
	/* TC enforcer. Packets without a socket pass unjudged when the host made them (RSTs, ICMP errors)
	 * and are judged without an owner when they came in on another interface (forwarded, e.g. from a
	 * container's namespace): unowned counts those among the guarded. */
	VIGIL_GUARD_STAT_TC_PACKETS = 15,     /* packets the TC enforcer saw (all, on every interface it guards) */
	VIGIL_GUARD_STAT_UNOWNED = 16,        /* guarded packets judged without an owner (forwarded) */
	/* Packet hooks: packets to a guarded destination from a kernel socket (no file: the TCP control socket's
	 * RSTs and time-wait ACKs), passed as the host's own without a decision (not in checked). */
	VIGIL_GUARD_STAT_HOST_PACKETS = 17,
	VIGIL_GUARD_STAT_TC_RESETS = 18,      /* refused TCP SYNs the TC enforcer answered with a RST (of denied) */
	VIGIL_GUARD_STAT_COUNT = 19,
};

/* Load-time settings, in .rodata (not changed by a policy reload). */
struct vigil_guard_settings {
	__u64 rate_window_ns; /* length of a rate-limit window per (uid, destination) */
	__u32 rate_burst;     /* events per window per (uid, destination); further ones are counted */
	__u32 wakeup_bytes;   /* wake the reader once this many bytes are pending */
	__u32 http_bytes;     /* HTTP audit: payload bytes captured per connection (0 = off, at most
			       * VIGIL_GUARD_HTTP_MAX_BYTES) */
	__u32 _pad;
};
_Static_assert(sizeof(struct vigil_guard_settings) == 24, "vigil_guard_settings size");

#define VIGIL_GUARD_MAX_GROUPS 32 /* supplementary groups examined per decision */

/* One audit or deny decision. */
struct vigil_guard_event {
	struct vigil_event_header hdr; /* kind VIGIL_EVENT_GUARD */
	__u8 daddr[16];     /* destination; IPv4 (and IPv4-mapped IPv6) as ::ffff:a.b.c.d */
	__u64 cgroup_id;    /* the caller's cgroup (packet hooks: the socket's; 0 = no owner) */
	__u64 exe_ino;      /* executable inode; 0 = unknown (packet hooks, kernel threads) */
	__u64 violated;     /* V: every rule this connection violates */
	__u32 exe_dev;      /* executable superblock s_dev, MKDEV encoding */
	__u32 pid;          /* thread id; 0 = unknown (packet hooks: egress, tc) */
	__u32 tgid;         /* process id; 0 = unknown (packet hooks) */
	__u32 uid;          /* real uid; packet hooks: the socket's uid; VIGIL_GUARD_UNKNOWN_ID: no owner (forwarded) */
	__u32 gid;          /* real gid; packet hooks: gid of the credentials that opened the socket; VIGIL_GUARD_UNKNOWN_ID: unknown */
	__u32 generation;   /* policy generation that decided */
	__u32 suppressed;   /* decisions for this (uid, destination) not reported since its previous event */
	__u16 dport;        /* host order */
	__u8 family;        /* 4 or 6, as judged (mapped IPv6 = 4) */
	__u8 protocol;      /* IPPROTO_* */
	__u8 verdict;       /* enum vigil_guard_verdict */
	__u8 hook;          /* enum vigil_guard_hook */
	__u8 rule;          /* lowest rule id in violated */
	__u8 _pad;
	char comm[16];      /* empty = unknown (packet hooks) */
	__u32 _pad2;
};
_Static_assert(sizeof(struct vigil_guard_event) == 112, "vigil_guard_event size");

/* ---- HTTP audit ----
 * When connect4/connect6 allow a TCP connect to a guarded destination (an allowed principal, or audit),
 * the socket gets storage (vigil_guard_http_sk) holding the caller's identity and a budget of
 * http_bytes. cgroup_skb egress copies that socket's payload — the first http_bytes bytes of the byte
 * stream, by TCP sequence number, so retransmissions are not copied twice — into
 * struct vigil_guard_http_event records, and one record with VIGIL_GUARD_HTTP_END when the socket sends
 * FIN or RST. User space reassembles records by cookie and parses HTTP (src/Vigil.Core/Http). */
#define VIGIL_GUARD_HTTP_MAX_BYTES 4096

/* vigil_guard_http_event.flags */
#define VIGIL_GUARD_HTTP_END 1    /* the socket sent FIN or RST: nothing more will come */
#define VIGIL_GUARD_HTTP_BUDGET 2 /* this record reaches the budget: nothing more will come */

/* Who opened a guarded connection, as connect saw it: copied into every capture record. */
struct vigil_guard_http_meta {
	__u8 daddr[16];     /* as judged; IPv4 (and mapped IPv6) as ::ffff:a.b.c.d */
	__u64 cookie;       /* socket cookie: identifies the connection */
	__u64 cgroup_id;
	__u64 exe_ino;      /* 0 = unknown */
	__u64 rules;        /* R: rules guarding the destination */
	__u64 violated;     /* V: audit rules violated; 0 = an allowed principal */
	__u32 exe_dev;      /* MKDEV encoding */
	__u32 pid;          /* thread id */
	__u32 tgid;         /* process id */
	__u32 uid;
	__u32 gid;
	__u32 generation;   /* policy generation that decided */
	__u16 dport;        /* host order */
	__u8 family;        /* 4 or 6, as judged */
	__u8 hook;          /* enum vigil_guard_hook: connect4 or connect6 */
	__u8 verdict;       /* 0 = allowed, VIGIL_GUARD_VERDICT_AUDIT */
	__u8 rule;          /* lowest rule id in violated, else in rules */
	__u8 _pad[2];
	char comm[16];
};
_Static_assert(sizeof(struct vigil_guard_http_meta) == 104, "vigil_guard_http_meta size");

/* One slice of a guarded connection's first bytes; data_len payload bytes follow the struct. */
struct vigil_guard_http_event {
	struct vigil_event_header hdr; /* kind VIGIL_EVENT_GUARD_HTTP; size = sizeof + data_len */
	struct vigil_guard_http_meta meta;
	__u32 offset;   /* stream offset of the first byte (0 = the first payload byte sent) */
	__u16 data_len; /* bytes that follow */
	__u8 flags;     /* VIGIL_GUARD_HTTP_* */
	__u8 _pad;
};
_Static_assert(sizeof(struct vigil_guard_http_event) == 128, "vigil_guard_http_event size");

#endif
