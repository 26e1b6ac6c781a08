// SPDX-License-Identifier: MIT
/* Reference consumer for the ring-buffer benchmark: the same producer object and protocol as
 * `Vigil.Bench ring`, consumed through libbpf's ring_buffer__consume().
 *
 * usage: ring_consumer OBJ drain|stream EVENT_SIZE COUNT ROUNDS RING_BYTES
 *   drain : fill the ring with COUNT records (not timed), then time draining them; ROUNDS times.
 *   stream: a producer thread writes COUNT records in batches while this thread drains; the
 *           producer retries when the ring is full, so every record arrives; ROUNDS times.
 * Prints one line: RESULT impl=c mode=... size=... events=... seconds=... eps=... ok=1 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEQ_HASH 0x9E3779B97F4A7C15ULL
#define FILL_BATCH 1024u

struct totals {
	uint64_t records;
	uint64_t sum_seq;
	uint64_t sum_hash;
	size_t size;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct totals *t = ctx;
	const uint64_t *rec = data;
	t->records++;
	t->sum_seq += rec[0];
	t->sum_hash += rec[size / 8 - 1];
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs the producer once: up to count records starting at first_seq; returns how many it wrote. */
static int fill(int prog_fd, uint32_t count, uint64_t first_seq)
{
	unsigned char pkt[64] = { 0 };
	memcpy(pkt + 14, &count, 4);
	memcpy(pkt + 22, &first_seq, 8);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = 1);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (err) {
		fprintf(stderr, "BPF_PROG_TEST_RUN: %s\n", strerror(-err));
		exit(2);
	}
	return (int)opts.retval;
}

struct producer {
	int prog_fd;
	uint64_t first_seq;
	uint64_t count;
	atomic_int go;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	while (!atomic_load(&p->go))
		;
	uint64_t done = 0;
	while (done < p->count) {
		uint64_t left = p->count - done;
		uint32_t batch = left < FILL_BATCH ? (uint32_t)left : FILL_BATCH;
		done += fill(p->prog_fd, batch, p->first_seq + done);
	}
	return NULL;
}

static void expect(const struct totals *t, uint64_t first_seq, uint64_t count)
{
	uint64_t seq = 0, hash = 0;
	for (uint64_t i = 0; i < count; i++) {
		seq += first_seq + i;
		hash += (first_seq + i) * SEQ_HASH;
	}
	if (t->records != count || t->sum_seq != seq || t->sum_hash != hash) {
		fprintf(stderr, "verification failed: %llu records (expected %llu)\n",
			(unsigned long long)t->records, (unsigned long long)count);
		exit(3);
	}
}

/* One round; returns the seconds spent consuming. Exits if a record is missing or wrong. */
static double run_round(int prog_fd, struct ring_buffer *rb, struct totals *t, int stream, uint64_t count, uint64_t *seq)
{
	double start, end;
	memset(t, 0, sizeof(*t));
	if (!stream) {
		for (uint64_t done = 0; done < count;) {
			uint64_t left = count - done;
			int n = fill(prog_fd, left < (1u << 22) ? (uint32_t)left : (1u << 22), *seq + done);
			if (n == 0) {
				fprintf(stderr, "ring too small for %llu records\n", (unsigned long long)count);
				exit(2);
			}
			done += n;
		}
		start = now_seconds();
		while (t->records < count)
			ring_buffer__consume(rb);
		end = now_seconds();
	} else {
		struct producer p = { .prog_fd = prog_fd, .first_seq = *seq, .count = count };
		pthread_t th;
		pthread_create(&th, NULL, produce, &p);
		start = now_seconds();
		atomic_store(&p.go, 1);
		while (t->records < count)
			ring_buffer__consume(rb);
		end = now_seconds();
		pthread_join(th, NULL);
	}
	expect(t, *seq, count);
	*seq += count;
	return end - start;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s OBJ drain|stream EVENT_SIZE COUNT ROUNDS RING_BYTES\n", argv[0]);
		return 1;
	}
	const char *path = argv[1], *mode = argv[2];
	uint32_t event_size = strtoul(argv[3], NULL, 0);
	uint64_t count = strtoull(argv[4], NULL, 0);
	int rounds = atoi(argv[5]);
	uint32_t ring_bytes = strtoul(argv[6], NULL, 0);
	int stream = strcmp(mode, "stream") == 0;

	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "open %s: %s\n", path, strerror(errno));
		return 2;
	}
	struct bpf_map *map, *ring = bpf_object__find_map_by_name(obj, "bench_ring");
	bpf_object__for_each_map(map, obj) {
		if (strstr(bpf_map__name(map), ".rodata") && bpf_map__set_initial_value(map, &event_size, sizeof(event_size))) {
			fprintf(stderr, "setting event_size failed\n");
			return 2;
		}
	}
	bpf_map__set_max_entries(ring, ring_bytes);
	if (bpf_object__load(obj)) {
		fprintf(stderr, "load: %s\n", strerror(errno));
		return 2;
	}
	int prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "bench_fill"));

	struct totals t = { 0 };
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(ring), on_record, &t, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
		return 2;
	}

	/* Warm-up, not counted, the same sequence as the C# side: 64 small rounds, then one full one. */
	uint64_t seq = 0;
	for (int i = 0; i < 64; i++)
		run_round(prog_fd, rb, &t, stream, 4096, &seq);
	run_round(prog_fd, rb, &t, stream, count, &seq);

	double seconds = 0;
	for (int round = 0; round < rounds; round++)
		seconds += run_round(prog_fd, rb, &t, stream, count, &seq);
	uint64_t events = count * (uint64_t)rounds;
	printf("RESULT impl=c mode=%s size=%u events=%llu seconds=%.6f eps=%.0f ok=1\n", mode, event_size,
	       (unsigned long long)events, seconds, events / seconds);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
