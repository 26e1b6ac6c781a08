// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/* Benchmark producer for ring-buffer consumers (bench/Vigil.Bench `ring`, bench/c/ring_consumer.c).
 * One run of the TC program (via BPF_PROG_TEST_RUN) writes up to `count` records of
 * `event_size` bytes into bench_ring, without wake-ups, and returns how many it submitted.
 * Every record carries its sequence number in its first 8 bytes and a hash of it in its last
 * 8 bytes, so both consumers do the same reads and can verify what they received. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define MAX_EVENT_SIZE 4096
#define SEQ_HASH 0x9E3779B97F4A7C15ULL

/* Set before load: the verifier needs a constant reservation size. */
const volatile __u32 event_size = 64;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20); /* resized before load */
} bench_ring SEC(".maps");

/* Parameters, read from the test packet right after its 14-byte Ethernet header. */
struct fill_request {
	__u32 count;
	__u32 pad;
	__u64 first_seq;
};

struct fill_state {
	__u64 first_seq;
	__u32 submitted;
};

static long fill_one(__u64 index, void *arg)
{
	struct fill_state *st = arg;
	__u32 size = event_size;

	if (size < 16 || size > MAX_EVENT_SIZE || (size & 7))
		return 1;
	__u64 *rec = bpf_ringbuf_reserve(&bench_ring, size, 0);
	if (!rec)
		return 1; /* ring full: stop, the caller retries later */
	__u64 seq = st->first_seq + index;
	rec[0] = seq;
	rec[size / 8 - 1] = seq * SEQ_HASH;
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	st->submitted++;
	return 0;
}

SEC("tc")
int bench_fill(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct fill_request *req = data + 14;

	if ((void *)(req + 1) > data_end)
		return 0;
	struct fill_state st = { .first_seq = req->first_seq };
	bpf_loop(req->count, fill_one, &st, 0);
	return st.submitted;
}
