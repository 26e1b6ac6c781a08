// SPDX-License-Identifier: MIT
/* Connect-latency client of the metadata-guard benchmark (eng/bench.sh, section 4).
 *
 * usage: connect_loop ADDRESS PORT COUNT MAX_SECONDS [WARMUP]
 *   WARMUP untimed iterations (default 1000), then at most COUNT timed iterations of
 *   socket() + connect() + close() to ADDRESS:PORT over TCP (IPv4 or IPv6, by the address),
 *   ending early after MAX_SECONDS. Blocking connect: to a listener on loopback it returns once
 *   the handshake is done (or at once with EPERM from the guard, or ECONNREFUSED after an RST).
 *
 * Two times per iteration, CLOCK_MONOTONIC:
 *   connect - the connect() call alone: what the guard's connect4/6 hook and the egress program
 *             (SYN, ACK) add to;
 *   cycle   - socket() + connect() + close(): adds the close's packet and anything the guard does
 *             when a socket ends.
 * A connected socket is closed with SO_LINGER {1, 0} (an RST, no TIME_WAIT): 20 000 connects a
 * second to one address would otherwise use up the ephemeral ports within a TIME_WAIT (60 s).
 *
 * Whether something else took the CPU meanwhile (a shared machine): the timed loop's involuntary
 * context switches (preempted=) and its CPU time over its wall time (cpu_share=, near 1 when nothing
 * else ran: a connect to loopback does not sleep), and the whole process's CPU time (process_cpu_s=, so
 * the script can tell other processes' CPU use from this one's).
 *
 * Prints one line: RESULT kind=guard_connect n=... ok=... eperm=... econnrefused=... other=...
 * connect_{median,p90,p99,mean,min}_ns=... cycle_{median,mean}_ns=... seconds=... preempted=... cpu_share=... process_cpu_s=... */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 10000000L

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(const struct rusage *ru)
{
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) + (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t pct(const uint64_t *sorted, long n, double q)
{
	long i = (long)(q * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

static double mean(const uint64_t *v, long n)
{
	double s = 0;
	for (long i = 0; i < n; i++)
		s += (double)v[i];
	return n ? s / (double)n : 0;
}

struct target {
	struct sockaddr_storage addr;
	socklen_t len;
	int family;
};

struct outcome {
	long ok, eperm, econnrefused, other;
	int other_errno; /* the first unexpected errno, to name it */
};

/* One iteration; returns the connect() time and sets *cycle to the whole iteration's. */
static uint64_t once(const struct target *t, struct outcome *o, uint64_t *cycle)
{
	uint64_t t0 = now_ns();
	int fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		exit(2);
	}
	uint64_t t1 = now_ns();
	int rc = connect(fd, (const struct sockaddr *)&t->addr, t->len);
	int err = rc ? errno : 0;
	uint64_t t2 = now_ns();
	if (rc == 0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		o->ok++;
	} else if (err == EPERM) {
		o->eperm++;
	} else if (err == ECONNREFUSED) {
		o->econnrefused++;
	} else {
		if (!o->other++)
			o->other_errno = err;
	}
	close(fd);
	*cycle = now_ns() - t0;
	return t2 - t1;
}

int main(int argc, char **argv)
{
	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: %s ADDRESS PORT COUNT MAX_SECONDS [WARMUP]\n", argv[0]);
		return 1;
	}
	struct target t = { 0 };
	int port = atoi(argv[2]);
	long count = atol(argv[3]);
	double max_seconds = atof(argv[4]);
	long warmup = argc > 5 ? atol(argv[5]) : 1000;
	if (port <= 0 || port > 65535 || count <= 0 || count > MAX_COUNT || max_seconds <= 0 || warmup < 0) {
		fprintf(stderr, "connect_loop: bad arguments\n");
		return 1;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)&t.addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t.addr;
	if (inet_pton(AF_INET, argv[1], &a4->sin_addr) == 1) {
		a4->sin_family = t.family = AF_INET;
		a4->sin_port = htons(port);
		t.len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, argv[1], &a6->sin6_addr) == 1) {
		a6->sin6_family = t.family = AF_INET6;
		a6->sin6_port = htons(port);
		t.len = sizeof(*a6);
	} else {
		fprintf(stderr, "connect_loop: not an IPv4 or IPv6 address: %s\n", argv[1]);
		return 1;
	}

	uint64_t *conn = malloc(count * sizeof(*conn)), *cyc = malloc(count * sizeof(*cyc));
	if (!conn || !cyc) {
		perror("malloc");
		return 2;
	}
	struct outcome o = { 0 }, warm = { 0 };
	uint64_t ignored;
	for (long i = 0; i < warmup; i++)
		once(&t, &warm, &ignored);

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	uint64_t start = now_ns(), deadline = start + (uint64_t)(max_seconds * 1e9);
	long n = 0;
	while (n < count) {
		conn[n] = once(&t, &o, &cyc[n]);
		n++;
		if ((n & 255) == 0 && now_ns() > deadline)
			break;
	}
	double seconds = (double)(now_ns() - start) / 1e9;
	getrusage(RUSAGE_SELF, &ru1);
	long preempted = ru1.ru_nivcsw - ru0.ru_nivcsw;
	double cpu_share = (cpu_seconds(&ru1) - cpu_seconds(&ru0)) / seconds;

	double conn_mean = mean(conn, n), cyc_mean = mean(cyc, n);
	struct rusage ru_end;
	getrusage(RUSAGE_SELF, &ru_end);
	qsort(conn, n, sizeof(*conn), cmp_u64);
	qsort(cyc, n, sizeof(*cyc), cmp_u64);
	printf("RESULT kind=guard_connect n=%ld ok=%ld eperm=%ld econnrefused=%ld other=%ld other_errno=%s "
	       "connect_median_ns=%llu connect_p90_ns=%llu connect_p99_ns=%llu connect_mean_ns=%.1f connect_min_ns=%llu "
	       "cycle_median_ns=%llu cycle_mean_ns=%.1f seconds=%.3f warmup=%ld preempted=%ld cpu_share=%.3f process_cpu_s=%.3f\n",
	       n, o.ok, o.eperm, o.econnrefused, o.other, o.other ? strerrorname_np(o.other_errno) : "-",
	       (unsigned long long)pct(conn, n, 0.5), (unsigned long long)pct(conn, n, 0.9),
	       (unsigned long long)pct(conn, n, 0.99), conn_mean, (unsigned long long)conn[0],
	       (unsigned long long)pct(cyc, n, 0.5), cyc_mean, seconds, warmup, preempted, cpu_share, cpu_seconds(&ru_end));
	free(conn);
	free(cyc);
	return 0;
}
