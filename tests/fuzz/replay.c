// SPDX-License-Identifier: MIT
/* Without libFuzzer: run a fuzz target over every file of the directories
 * (or files) given, so that the corpus is a regression test in every build. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	char *buf;
	size_t len;
	int r = read_file(path, 64u << 20, &buf, &len);

	if (r < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
		return 1;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int fails = 0, n = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %m\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			fails += run_file(argv[i]);
			n++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char *p = xasprintf("%s/%s", argv[i], de->d_name);
			struct stat sub;
			/* a subdirectory is not an input: one that is meant is named itself */
			if (stat(p, &sub) == 0 && S_ISDIR(sub.st_mode)) {
				free(p);
				continue;
			}
			fails += run_file(p);
			n++;
			free(p);
		}
		if (d)
			closedir(d);
	}
	printf("replay: %d inputs, %d unreadable\n", n, fails);
	return fails ? 1 : (n ? 0 : 1);
}
