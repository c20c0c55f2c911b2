/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * driver.c - replays fuzz inputs through a target without libFuzzer (the gcc
 * build/): every file named on the command line, or every file of a named
 * directory, goes once through LLVMFuzzerTestOneInput().  The fuzzing itself
 * is libFuzzer's, in build-fuzz/ (tools/build --fuzz, tools/fuzz NAME); this
 * keeps the committed corpus and regression inputs running everywhere.
 * Exit 0 when every input ran (a crash or sanitizer report aborts), 1 when a
 * file could not be read.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* run_file - one input; 0 or -errno */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (len == cap) {
			uint8_t *t = realloc(buf, cap = cap ? cap * 2 : 4096);
			if (!t) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = t;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	long ran = 0, bad = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			continue; /* a target without regressions yet */
		}
		if (!S_ISDIR(st.st_mode)) {
			bad += run_file(argv[i]) < 0;
			ran++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char p[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
			if (run_file(p) < 0) {
				fprintf(stderr, "%s: %s\n", p, strerror(errno));
				bad++;
			}
			ran++;
		}
		if (d)
			closedir(d);
	}
	printf("replayed %ld inputs, %ld unreadable\n", ran, bad);
	return bad ? 1 : 0;
}
