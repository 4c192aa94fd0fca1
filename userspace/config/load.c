// SPDX-License-Identifier: MIT
/* Files and directories → documents → the loader. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static void load_path(struct loader *L, const char *path, int *ret_r)
{
	struct stat st;
	char *buf = NULL;
	size_t len;
	int r;

	if (stat(path, &st) < 0) {
		cfg_errors_add(L->errs, path, 0, 0, "", "cannot read: %s", strerror(errno));
		*ret_r = -errno;
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *dir = opendir(path);
		struct dirent *de;
		char **names = NULL;
		size_t n = 0;

		if (!dir) {
			cfg_errors_add(L->errs, path, 0, 0, "", "cannot open directory: %s", strerror(errno));
			*ret_r = -errno;
			return;
		}
		while ((de = readdir(dir))) {
			if (!is_yaml_name(de->d_name))
				continue;
			names = xrealloc(names, n + 1, sizeof(char *));
			names[n++] = xasprintf("%s/%s", path, de->d_name);
		}
		closedir(dir);
		if (n > 1) /* names is NULL for a directory without YAML files */
			qsort(names, n, sizeof(char *), name_cmp);
		for (size_t i = 0; i < n; i++) {
			load_path(L, names[i], ret_r);
			free(names[i]);
		}
		free(names);
		return;
	}
	r = read_file(path, MS_CONFIG_MAX_FILE, &buf, &len);
	if (r < 0) {
		cfg_errors_add(L->errs, path, 0, 0, "", "cannot read: %s",
			       r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
		*ret_r = r;
		return;
	}
	load_one(L, buf, len, path);
	free(buf);
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
