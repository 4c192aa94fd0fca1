// SPDX-License-Identifier: MIT
/* Files and directories → documents → the loader. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "util.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *n)
{
	size_t l = strlen(n);
	if (n[0] == '.')
		return false; /* editors' swap files, our own temp files */
	return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

static const char *file_type_name(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" :
	       S_ISSOCK(m) ? "a socket" :
	       S_ISCHR(m)  ? "a character device" :
	       S_ISBLK(m)  ? "a block device" :
	       S_ISDIR(m)  ? "a directory" :
			     "not a regular file";
}

/* Read the regular file fd (shown as path) and decode it; fd is closed. */
static void load_fd(struct loader *L, int fd, const char *path, int *ret_r)
{
	char *buf = NULL;
	size_t len;
	int r = read_fd(fd, MS_CONFIG_MAX_FILE, &buf, &len);

	close(fd);
	if (r < 0) {
		cfg_errors_add(L->errs, path, 0, 0, "", "cannot read: %s",
			       r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
		*ret_r = r;
		return;
	}
	load_one(L, buf, len, path);
	free(buf);
}

/* What a config directory holds is not always what its owner put there: a
 * FIFO named fifo.yaml blocks open() forever, and two "x.yaml -> ." links
 * make a naive walk visit 2^depth paths. So only regular files are read
 * (opened O_NONBLOCK and checked with fstat, whatever a stat said a moment
 * before), a symlink to a directory is not followed (a link to a file is:
 * Kubernetes mounts ConfigMaps that way), and the depth and the number of
 * entries are bounded; what is skipped is a warning, a bound an error. */
static void load_dir(struct loader *L, int dfd, const char *path, unsigned depth, int *ret_r)
{
	DIR *dir = fdopendir(dfd);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (!dir) {
		cfg_errors_add(L->errs, path, 0, 0, "", "cannot open directory: %s", strerror(errno));
		*ret_r = -errno;
		close(dfd);
		return;
	}
	while ((de = readdir(dir))) {
		if (!is_yaml_name(de->d_name))
			continue;
		if (++L->n_entries > MS_CONFIG_MAX_FILES) {
			if (L->n_entries == MS_CONFIG_MAX_FILES + 1)
				cfg_errors_add(L->errs, path, 0, 0, "",
					       "more than %u YAML files and directories: not loaded",
					       MS_CONFIG_MAX_FILES);
			break;
		}
		names = xrealloc(names, n + 1, sizeof(char *));
		names[n++] = xstrdup(de->d_name);
	}
	if (n > 1) /* names is NULL for a directory without YAML files */
		qsort(names, n, sizeof(char *), name_cmp);
	for (size_t i = 0; i < n && L->n_entries <= MS_CONFIG_MAX_FILES; i++) {
		_cleanup_free_ char *full = xasprintf("%s/%s", path, names[i]);
		struct stat st = { 0 }; /* st_mode 0 when fstatat fails: openat says why */
		int fd;

		if (fstatat(dirfd(dir), names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode) &&
		    fstatat(dirfd(dir), names[i], &st, 0) == 0 && S_ISDIR(st.st_mode)) {
			cfg_warn_add(L->errs, full, 0, 0, "", "a symlink to a directory: not followed");
			continue;
		}
		if (S_ISDIR(st.st_mode) && depth + 1 > MS_CONFIG_MAX_DEPTH) {
			cfg_errors_add(L->errs, full, 0, 0, "", "directories nested deeper than %u: not loaded",
				       MS_CONFIG_MAX_DEPTH);
			continue;
		}
		fd = openat(dirfd(dir), names[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd < 0 || fstat(fd, &st) < 0) {
			cfg_errors_add(L->errs, full, 0, 0, "", "cannot read: %s", strerror(errno));
			*ret_r = -errno;
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			load_dir(L, fd, full, depth + 1, ret_r);
		} else if (S_ISREG(st.st_mode)) {
			load_fd(L, fd, full, ret_r);
		} else {
			cfg_warn_add(L->errs, full, 0, 0, "", "%s, not a regular file: skipped",
				     file_type_name(st.st_mode));
			close(fd);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(dir);
}

/* A path the operator names is opened as the directory walk opens its
 * entries (non-blocking, then checked), but one that is neither a directory
 * nor a regular file is an error: it was asked for. */
static void load_path(struct loader *L, const char *path, int *ret_r)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0 || fstat(fd, &st) < 0) {
		cfg_errors_add(L->errs, path, 0, 0, "", "cannot read: %s", strerror(errno));
		*ret_r = -errno;
		if (fd >= 0)
			close(fd);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		load_dir(L, fd, path, 0, ret_r);
	} else if (S_ISREG(st.st_mode)) {
		load_fd(L, fd, path, ret_r);
	} else {
		cfg_errors_add(L->errs, path, 0, 0, "", "cannot read: %s, not a regular file or a directory",
			       file_type_name(st.st_mode));
		*ret_r = -EINVAL;
		close(fd);
	}
}

int cfg_load_paths(const char *const *paths, size_t n, const struct cfg_opts *o,
		   struct cfg_errors *errs, struct ms_config **ret)
{
	struct loader L = { .o = o, .errs = errs };
	int r = 0;

	L.c = xcalloc(1, sizeof(*L.c));
	L.c->refs = 1;
	for (size_t i = 0; i < n; i++)
		load_path(&L, paths[i], &r);
	if (r < 0) {
		loader_free(&L);
		cfg_config_free(L.c);
		return r;
	}
	return loader_finish(&L, ret);
}

int cfg_load_buffer(const char *buf, size_t len, const char *name, const struct cfg_opts *o,
		    struct cfg_errors *errs, struct ms_config **ret)
{
	struct loader L = { .o = o, .errs = errs };

	L.c = xcalloc(1, sizeof(*L.c));
	L.c->refs = 1;
	load_one(&L, buf, len, name);
	return loader_finish(&L, ret);
}
