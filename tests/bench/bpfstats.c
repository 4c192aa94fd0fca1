// SPDX-License-Identifier: MIT
/* bpfstats: what the programs attached to a cgroup cost while a command runs.
 *   bpfstats CGROUP -- COMMAND...
 * turns on the kernel's run-time statistics (BPF_ENABLE_STATS: on while the
 * returned fd is open, so they go off when this tool exits, however it
 * exits), notes run_cnt and run_time_ns of every program attached to CGROUP,
 * runs COMMAND, and prints to stderr, per program that ran:
 *   bpfstats: NAME runs N ns T per-run T/N
 * and the total ns over every program. The statistics add two clock reads to
 * each run they measure, so the figures are a little above the real cost. */
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROGS 64

struct prog {
	int fd;
	char name[BPF_OBJ_NAME_LEN];
	unsigned long long cnt, ns;
};

static int prog_info(struct prog *p)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(p->fd, &info, &len) < 0)
		return -errno;
	snprintf(p->name, sizeof(p->name), "%s", info.name);
	p->cnt = info.run_cnt;
	p->ns = info.run_time_ns;
	return 0;
}

/* every program attached to the cgroup, whatever the attach type; a type
 * that is not a cgroup's answers EINVAL and is skipped */
static int cgroup_progs(int cg, struct prog *progs)
{
	int n = 0;

	for (int type = 0; type < __MAX_BPF_ATTACH_TYPE; type++) {
		__u32 ids[MAX_PROGS], cnt = MAX_PROGS, flags = 0;
		if (bpf_prog_query(cg, (enum bpf_attach_type)type, 0, &flags, ids, &cnt) < 0)
			continue;
		for (__u32 i = 0; i < cnt && n < MAX_PROGS; i++) {
			int fd = bpf_prog_get_fd_by_id(ids[i]);
			if (fd < 0)
				continue;
			progs[n].fd = fd;
			if (prog_info(&progs[n]) < 0) {
				close(fd);
				continue;
			}
			n++;
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	struct prog progs[MAX_PROGS];
	unsigned long long total = 0;
	int cg, stats, n, status;
	pid_t pid;

	if (argc < 4 || strcmp(argv[2], "--") != 0) {
		fprintf(stderr, "usage: bpfstats CGROUP -- COMMAND...\n");
		return 2;
	}
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats < 0) {
		fprintf(stderr, "bpfstats: BPF_ENABLE_STATS: %s\n", strerror(-stats));
		return 1;
	}
	cg = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		fprintf(stderr, "bpfstats: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	n = cgroup_progs(cg, progs);
	fcntl(stats, F_SETFD, FD_CLOEXEC);
	pid = fork();
	if (pid < 0) {
		perror("bpfstats: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[3], argv + 3);
		fprintf(stderr, "bpfstats: %s: %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0) {
		perror("bpfstats: waitpid");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct prog before = progs[i];
		if (prog_info(&progs[i]) < 0 || progs[i].cnt == before.cnt)
			continue;
		unsigned long long runs = progs[i].cnt - before.cnt, ns = progs[i].ns - before.ns;
		fprintf(stderr, "bpfstats: %s runs %llu ns %llu per-run %.1f\n", progs[i].name, runs, ns,
			(double)ns / (double)runs);
		total += ns;
	}
	fprintf(stderr, "bpfstats: total ns %llu\n", total);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
