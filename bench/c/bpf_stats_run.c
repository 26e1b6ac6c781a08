// SPDX-License-Identifier: MIT
/* Runs a command with BPF run-time statistics on (eng/bench.sh, section 4).
 *
 * usage: bpf_stats_run COMMAND [ARG]...
 *   bpf(BPF_ENABLE_STATS, BPF_STATS_RUN_TIME) returns a descriptor; while any such descriptor is open
 *   the kernel counts run_cnt and run_time_ns of every BPF program (bpftool prog show prints them).
 *   This holds one for exactly as long as COMMAND runs and exits with its status. Unlike the sysctl
 *   kernel.bpf_stats_enabled nothing global is left changed: the kernel drops its reference when the
 *   descriptor closes, whatever ends this process. The descriptor is close-on-exec, so COMMAND does
 *   not keep the statistics on after this process ends. */
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s COMMAND [ARG]...\n", argv[0]);
		return 1;
	}
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (fd < 0) {
		fprintf(stderr, "bpf_stats_run: BPF_ENABLE_STATS: %s\n", strerror(-fd));
		return 1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC); /* the kernel sets it already; say so here too */
	pid_t pid = fork();
	if (pid < 0) {
		perror("bpf_stats_run: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "bpf_stats_run: %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("bpf_stats_run: waitpid");
			return 1;
		}
	}
	close(fd);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
