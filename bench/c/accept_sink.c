// SPDX-License-Identifier: MIT
/* Listener of the metadata-guard benchmark (eng/bench.sh, section 4): accepts TCP connections on
 * ADDRESS:PORT for each ADDRESS and closes them (every millisecond), so connect_loop's handshakes always find
 * room in the accept queue (a full queue drops SYNs, and a dropped SYN costs a 1 s retransmit).
 *
 * usage: accept_sink SECONDS PORT ADDRESS...
 *   Prints "READY" once every socket listens; ends after SECONDS (a bound in case the script that
 *   started it could not stop it) or on SIGTERM. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTENERS 16
#define BACKLOG 4096 /* the kernel caps it at net.core.somaxconn (4096 by default) */

static int listen_on(const char *address, int port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	if (inet_pton(AF_INET, address, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, address, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		len = sizeof(*a6);
	} else {
		fprintf(stderr, "accept_sink: not an address: %s\n", address);
		exit(1);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, BACKLOG)) {
		fprintf(stderr, "accept_sink: listening on %s port %d: %s\n", address, port, strerror(errno));
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc - 3 > MAX_LISTENERS) {
		fprintf(stderr, "usage: %s SECONDS PORT ADDRESS... (at most %d addresses)\n", argv[0], MAX_LISTENERS);
		return 1;
	}
	time_t end = time(NULL) + atol(argv[1]);
	int port = atoi(argv[2]);
	int fds[MAX_LISTENERS];
	int n = argc - 3;
	for (int i = 0; i < n; i++)
		fds[i] = listen_on(argv[3 + i], port);
	printf("READY\n");
	fflush(stdout);

	/* Polls every millisecond instead of sleeping in poll(): a listener with a waiter makes every
	 * handshake wake this process (an IPI on another CPU, a VM exit here) inside the client's
	 * connect(), which is not what is measured. At most ~100 connections arrive per millisecond. */
	const struct timespec tick = { .tv_nsec = 1000000 };
	while (time(NULL) < end) {
		nanosleep(&tick, NULL);
		for (int i = 0; i < n; i++) {
			int c;
			/* A plain close (FIN): the client resets its end (SO_LINGER 0), so neither side keeps a
			 * TIME_WAIT; an RST from here could reach a client still inside connect() (ECONNRESET). */
			while ((c = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC)) >= 0)
				close(c);
		}
	}
	return 0;
}
