// SPDX-License-Identifier: MIT
/* Applying rules inside a pod's netns with the node's own iptables tools. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strbuf.h"
#include "tproxy.h"
#include "util.h"

#define OUT_MAX (8u << 20)

static void tool_path(const char *tool, char *buf, size_t len)
{
	const char *dir = getenv("MESHSPLICE_IPTABLES_DIR");

	if (dir && *dir)
		snprintf(buf, len, "%s/%s", dir, tool);
	else
		snprintf(buf, len, "%s", tool);
}

int tp_run(int netns_fd, const char *tool, const char *const *args, const char *stdin_text,
	   char **ret_out, char **ret_err)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	char path[512];
	const char *argv[16];
	size_t n = 0;
	pid_t pid;
	int status, r = 0;

	tool_path(tool, path, sizeof(path));
	argv[n++] = path;
	for (size_t i = 0; args && args[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0) {
		/* child: into the pod's netns, then the tool; nothing but exec here */
		if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
			_exit(126);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	{
		size_t off = 0, len = stdin_text ? strlen(stdin_text) : 0;
		char *bufs[2] = { NULL, NULL };
		size_t lens[2] = { 0, 0 }, caps[2] = { 0, 0 };
		struct pollfd p[3] = { { .fd = len ? in[1] : -1, .events = POLLOUT },
				       { .fd = out[0], .events = POLLIN },
				       { .fd = err[0], .events = POLLIN } };
		if (!len) {
			close(in[1]);
			in[1] = -1;
		}
		signal(SIGPIPE, SIG_IGN);
		while (p[0].fd >= 0 || p[1].fd >= 0 || p[2].fd >= 0) {
			if (poll(p, 3, 10000) <= 0) {
				if (errno == EINTR)
					continue;
				kill(pid, SIGKILL);
				break;
			}
			if (p[0].fd >= 0 && p[0].revents) {
				ssize_t w = write(in[1], stdin_text + off, len - off);
				if (w > 0)
					off += (size_t)w;
				if (w < 0 || off == len) {
					close(in[1]);
					in[1] = p[0].fd = -1;
				}
			}
			for (int k = 0; k < 2; k++) {
				if (p[k + 1].fd < 0 || !p[k + 1].revents)
					continue;
				if (lens[k] + 4096 + 1 > caps[k] && caps[k] < OUT_MAX) {
					caps[k] = caps[k] ? caps[k] * 2 : 8192;
					bufs[k] = xrealloc(bufs[k], caps[k], 1);
				}
				ssize_t rd = caps[k] > lens[k] + 1 ? read(p[k + 1].fd, bufs[k] + lens[k], caps[k] - lens[k] - 1) : 0;
				if (rd <= 0) {
					p[k + 1].fd = -1;
					continue;
				}
				lens[k] += (size_t)rd;
			}
		}
		for (int k = 0; k < 2; k++) {
			if (!bufs[k])
				bufs[k] = xcalloc(1, 1);
			bufs[k][lens[k]] = '\0';
		}
		if (ret_out)
			*ret_out = bufs[0];
		else
			free(bufs[0]);
		if (ret_err)
			*ret_err = bufs[1];
		else
			free(bufs[1]);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			r = -errno;
			goto out;
		}
	r = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return r;
}

static const char *tool(enum tp_backend b, int family, const char *what)
{
	static __thread char buf[64];

	snprintf(buf, sizeof(buf), "%s-%s-%s", family == AF_INET ? "iptables" : "ip6tables",
		 b == TP_BACKEND_LEGACY ? "legacy" : "nft", what);
	return buf;
}

static int count_rules(int netns_fd, const char *t)
{
	char *out = NULL;
	int n = 0;

	if (tp_run(netns_fd, t, NULL, NULL, &out, NULL) != 0) {
		free(out);
		return -1;
	}
	for (char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (l[0] == '-' && l[1] == 'A')
			n++;
	free(out);
	return n;
}

int tp_detect_backend(int netns_fd, enum tp_backend *ret)
{
	int nft = count_rules(netns_fd, "iptables-nft-save"), legacy = count_rules(netns_fd, "iptables-legacy-save");

	if (nft < 0 && legacy < 0)
		return -ENOENT;
	*ret = legacy > nft ? TP_BACKEND_LEGACY : TP_BACKEND_NFT;
	return 0;
}

/* Our chain and our jumps in one table, as iptables-save -c prints them
 * (the counters cut off each line, and kept for the chain's rules). */
struct state {
	bool chain;
	char **jumps; /* "-A OUTPUT ... -j <chain>" lines */
	size_t n_jumps;
	char **rules; /* "-A <chain> ..." lines */
	uint64_t *pkts; /* each rule's packet counter */
	size_t n_rules;
};

static void state_free(struct state *s)
{
	for (size_t i = 0; i < s->n_jumps; i++)
		free(s->jumps[i]);
	for (size_t i = 0; i < s->n_rules; i++)
		free(s->rules[i]);
	free(s->jumps);
	free(s->rules);
	free(s->pkts);
	memset(s, 0, sizeof(*s));
}

static void push(char ***v, size_t *n, const char *s, size_t len)
{
	*v = xrealloc(*v, *n + 1, sizeof(char *));
	(*v)[(*n)++] = xstrndup(s, len);
}

/* Our chains and their jumps: nat's TP_CHAIN and filter's TP_REFUSE_CHAIN,
 * from one iptables-save of every table the netns has (naming a table
 * would make legacy iptables create it). */
static void parse_table(struct state *s, const char *chain, const char *l, size_t len, uint64_t pkts)
{
	size_t cl = strlen(chain);

	if (len > cl + 1 && l[0] == ':' && strncmp(l + 1, chain, cl) == 0 && l[cl + 1] == ' ')
		s->chain = true;
	else if (len > cl + 4 && strncmp(l, "-A ", 3) == 0 && strncmp(l + 3, chain, cl) == 0 && l[cl + 3] == ' ') {
		push(&s->rules, &s->n_rules, l, len);
		s->pkts = xrealloc(s->pkts, s->n_rules, sizeof(*s->pkts));
		s->pkts[s->n_rules - 1] = pkts;
	} else if (strncmp(l, "-A OUTPUT ", 10) == 0 && len > cl + 4 && memcmp(l + len - cl - 4, " -j ", 4) == 0 &&
		   memcmp(l + len - cl, chain, cl) == 0)
		push(&s->jumps, &s->n_jumps, l, len);
}

static int read_state(int netns_fd, enum tp_backend b, int family, struct state *nat, struct state *filter,
		      char **ret_err)
{
	const char *args[] = { "-c", NULL };
	char *out = NULL, *err = NULL;
	int r = tp_run(netns_fd, tool(b, family, "save"), args, NULL, &out, &err);
	struct state *in = NULL;

	memset(nat, 0, sizeof(*nat));
	memset(filter, 0, sizeof(*filter));
	if (r != 0) {
		*ret_err = xasprintf("%s: %s", tool(b, family, "save"), r < 0 ? strerror(-r) : err);
		free(out);
		free(err);
		return -EIO;
	}
	for (char *l = out; l && *l;) {
		char *nl = strchr(l, '\n');
		unsigned long long pkts = 0;
		if (l[0] == '[') { /* "[packets:bytes] " */
			char *end = strchr(l, ']');
			if (!end || (nl && end > nl) || sscanf(l, "[%llu:", &pkts) != 1) {
				l = nl ? nl + 1 : NULL;
				continue;
			}
			l = end + (end[1] == ' ' ? 2 : 1);
		}
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (l[0] == '*')
			in = len == 4 && !strncmp(l, "*nat", 4) ? nat : len == 7 && !strncmp(l, "*filter", 7) ? filter : NULL;
		else if (in)
			parse_table(in, in == nat ? TP_CHAIN : TP_REFUSE_CHAIN, l, len, pkts);
		l = nl ? nl + 1 : NULL;
	}
	free(out);
	free(err);
	return 0;
}

/* What the chain's REJECT rules counted. */
static uint64_t state_refused(const struct state *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->n_rules; i++)
		if (strstr(s->rules[i], " -j REJECT"))
			n += s->pkts[i];
	return n;
}

/* The state's lines (jumps first, then the rules), one per line. */
static char *state_text(const struct state *s)
{
	struct strbuf b = { 0 };

	for (size_t i = 0; i < s->n_jumps; i++)
		strbuf_printf(&b, "%s\n", s->jumps[i]);
	for (size_t i = 0; i < s->n_rules; i++)
		strbuf_printf(&b, "%s\n", s->rules[i]);
	return b.s ? b.s : xstrdup("");
}

/* The lines that take chain and its jumps out of a table. */
static void state_remove(struct strbuf *b, const struct state *s, const char *chain)
{
	for (size_t i = 0; i < s->n_jumps; i++)
		strbuf_printf(b, "-D%s\n", s->jumps[i] + 2);
	if (s->chain)
		strbuf_printf(b, "-F %s\n-X %s\n", chain, chain);
}

/* iptables-restore names the failing line by number: quote it back. */
static char *restore_error(const char *t, const char *text, const char *err, int status)
{
	const char *p = strstr(err ? err : "", "line ");
	int line = 0;

	if (p && sscanf(p, "line %d", &line) == 1 && line > 0) {
		const char *l = text;
		for (int i = 1; l && i < line; i++)
			l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL;
		if (l) {
			size_t len = strchr(l, '\n') ? (size_t)(strchr(l, '\n') - l) : strlen(l);
			return xasprintf("%s: line %d failed: \"%.*s\": %s", t, line, (int)len, l, err);
		}
	}
	return xasprintf("%s exited %d: %s", t, status, err && *err ? err : "(no message)");
}

static int restore(int netns_fd, enum tp_backend b, int family, const char *text, char **ret_err)
{
	const char *args[] = { "--noflush", "-w", "5", NULL };
	char *err = NULL;
	int r = tp_run(netns_fd, tool(b, family, "restore"), args, text, NULL, &err);

	if (r != 0) {
		*ret_err = r < 0 ? xasprintf("%s: %s", tool(b, family, "restore"), strerror(-r)) :
				   restore_error(tool(b, family, "restore"), text, err, r);
		for (char *c = *ret_err; *c; c++)
			if (*c == '\n')
				*c = ' ';
		free(err);
		return -EIO;
	}
	free(err);
	return 0;
}

static int uninstall_family(int netns_fd, enum tp_backend b, int family, char **ret_err)
{
	struct state s, f;
	struct strbuf text = { 0 };
	int r;

	if ((r = read_state(netns_fd, b, family, &s, &f, ret_err)) < 0)
		return r;
	if (f.chain || f.n_jumps) {
		strbuf_printf(&text, "*filter\n");
		state_remove(&text, &f, TP_REFUSE_CHAIN);
		strbuf_printf(&text, "COMMIT\n");
	}
	if (s.chain || s.n_jumps) {
		strbuf_printf(&text, "*nat\n");
		state_remove(&text, &s, TP_CHAIN);
		strbuf_printf(&text, "COMMIT\n");
	}
	r = text.s ? restore(netns_fd, b, family, text.s, ret_err) : 0;
	free(text.s);
	state_free(&s);
	state_free(&f);
	return r;
}

/* The filter table's part of an install: nothing when it is as wanted
 * (its counters kept), else the chain rewritten (its jump added once), or
 * taken out when the family has no kernel-path VIP left. */
static void refuse_part(struct strbuf *text, const struct state *f, const struct tp_opts *o, int family,
			uint64_t *refused)
{
	_cleanup_free_ char *want = tp_refuse_render(o, family), *want_lines = tp_refuse_expected(o, family),
			    *have = state_text(f);

	if (!want) {
		if (f->chain || f->n_jumps) {
			*refused += state_refused(f);
			strbuf_printf(text, "*filter\n");
			state_remove(text, f, TP_REFUSE_CHAIN);
			strbuf_printf(text, "COMMIT\n");
		}
		return;
	}
	if (f->chain && streq(have, want_lines))
		return;
	*refused += state_refused(f);
	bool jumped = false;
	for (size_t i = 0; i < f->n_jumps; i++)
		jumped |= streq(f->jumps[i], TP_REFUSE_JUMP);
	char *commit = strstr(want, "COMMIT\n");
	*commit = '\0';
	strbuf_printf(text, "%s%sCOMMIT\n", want,
		      jumped ? "" : "-I OUTPUT 1 -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j " TP_REFUSE_CHAIN "\n");
}

/* One restore for the family: the filter part first (a VIP that becomes a
 * kernel-path one has its REJECT before nat can leave it alone), then the
 * nat chain, replaced whole (never seen half-written). */
static int install_family(int netns_fd, enum tp_backend b, int family, const struct tp_opts *o,
			  uint64_t *refused, char **ret_err)
{
	struct state s, f;
	_cleanup_free_ char *rules = tp_rules_render(o, family);
	struct strbuf text = { 0 };
	bool want_udp = o->dns_port != 0, have_tcp = false, have_udp = false;
	int r;

	if ((r = read_state(netns_fd, b, family, &s, &f, ret_err)) < 0)
		return r;
	for (size_t i = 0; i < s.n_jumps; i++) {
		have_tcp |= streq(s.jumps[i], "-A OUTPUT -p tcp -j " TP_CHAIN);
		have_udp |= streq(s.jumps[i], "-A OUTPUT -p udp -j " TP_CHAIN);
	}
	refuse_part(&text, &f, o, family, refused);
	/* The rendered set appends its jumps; installed ones are kept (first in
	 * OUTPUT), so installing twice is installing once. */
	char *cut = strstr(rules, "-A OUTPUT ");
	if (cut)
		*cut = '\0';
	strbuf_printf(&text, "%s%s%s%sCOMMIT\n", rules, have_tcp ? "" : "-I OUTPUT 1 -p tcp -j " TP_CHAIN "\n",
		      want_udp && !have_udp ? "-I OUTPUT 1 -p udp -j " TP_CHAIN "\n" : "",
		      !want_udp && have_udp ? "-D OUTPUT -p udp -j " TP_CHAIN "\n" : "");
	r = restore(netns_fd, b, family, text.s, ret_err);
	free(text.s);
	state_free(&s);
	state_free(&f);
	return r;
}

int tp_install_counted(int netns_fd, enum tp_backend b, const struct tp_opts *o, uint64_t *refused,
		       char **ret_err)
{
	int r = install_family(netns_fd, b, AF_INET, o, refused, ret_err);

	if (r == 0)
		r = install_family(netns_fd, b, AF_INET6, o, refused, ret_err);
	if (r == 0)
		r = tp_routes_install(netns_fd, o->vip_cidrs, o->n_vip_cidrs, ret_err);
	if (r < 0 && !o->keep_on_failure) {
		/* A first install half-applied is worse than none: take it all back
		 * out. Over rules in force, taking them out would let the pod's
		 * connections go direct; they stay, the caller reports the failure. */
		char *e2 = NULL;
		tp_uninstall(netns_fd, b, &e2);
		free(e2);
	}
	return r;
}

int tp_install(int netns_fd, enum tp_backend b, const struct tp_opts *o, char **ret_err)
{
	uint64_t refused = 0;

	return tp_install_counted(netns_fd, b, o, &refused, ret_err);
}

int tp_refused(int netns_fd, enum tp_backend b, uint64_t *ret, char **ret_err)
{
	*ret = 0;
	for (int k = 0; k < 2; k++) {
		struct state s, f;
		int r = read_state(netns_fd, b, k ? AF_INET6 : AF_INET, &s, &f, ret_err);
		if (r < 0)
			return r;
		*ret += state_refused(&f);
		state_free(&s);
		state_free(&f);
	}
	return 0;
}

int tp_uninstall(int netns_fd, enum tp_backend b, char **ret_err)
{
	char *e6 = NULL, *er = NULL;
	int r4 = uninstall_family(netns_fd, b, AF_INET, ret_err);
	int r6 = uninstall_family(netns_fd, b, AF_INET6, r4 < 0 ? &e6 : ret_err);
	int rr = tp_routes_uninstall(netns_fd, (r4 < 0 || r6 < 0) ? &er : ret_err);

	free(e6);
	free(er);
	return r4 < 0 ? r4 : r6 < 0 ? r6 : rr;
}

/* The first difference between want and got, named. */
static char *drift(int family, const char *table, const char *want, const char *got)
{
	const char *a = want, *g = got;

	while (*a && *g && *a == *g) {
		a++;
		g++;
	}
	while (a > want && a[-1] != '\n')
		a--;
	while (g > got && g[-1] != '\n')
		g--;
	return xasprintf("%s%s: drift: expected \"%.*s\", found \"%.*s\"", family == AF_INET ? "IPv4" : "IPv6", table,
			 (int)strcspn(a, "\n"), *a ? a : "(nothing)", (int)strcspn(g, "\n"), *g ? g : "(nothing)");
}

static int verify_family(int netns_fd, enum tp_backend b, int family, const struct tp_opts *o,
			 char **ret_err)
{
	_cleanup_free_ char *want = tp_rules_expected(o, family), *want_f = tp_refuse_expected(o, family);
	struct state s, f;
	int r;

	if ((r = read_state(netns_fd, b, family, &s, &f, ret_err)) < 0)
		return r;
	_cleanup_free_ char *got = state_text(&s), *got_f = state_text(&f);
	state_free(&s);
	state_free(&f);
	if (!streq(got, want)) {
		*ret_err = drift(family, "", want, got);
		return -EEXIST;
	}
	if (!streq(got_f, want_f)) {
		*ret_err = drift(family, " filter", want_f, got_f);
		return -EEXIST;
	}
	return 0;
}

int tp_verify(int netns_fd, enum tp_backend b, const struct tp_opts *o, char **ret_err)
{
	int r = verify_family(netns_fd, b, AF_INET, o, ret_err);
	int n;

	if (r == 0)
		r = verify_family(netns_fd, b, AF_INET6, o, ret_err);
	if (r == 0 && (n = tp_routes_count(netns_fd)) != (int)o->n_vip_cidrs) {
		*ret_err = xasprintf("routes: drift: %zu VIP route(s) expected, %d found", o->n_vip_cidrs, n);
		r = -EEXIST;
	}
	return r;
}
