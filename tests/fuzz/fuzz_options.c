/* fuzz_options.c - libFuzzer target for the command line and -o options
 * (sfs_config_parse in src/options.c).
 *
 * The input is argv[1..], NUL-separated.  Inputs that name a config file
 * (-c) are skipped: the parser would read whatever file they name
 * (/dev/zero never ends); fuzz_config_file.c covers the file. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"

#define MAX_ARGS 64

/* Would parse_args() take a -c?  Conservative: any option cluster before
 * "--" that holds a 'c' before its first 'o'. */
static bool names_config_file(char **argv, int argc)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return false;
		if (a[0] != '-' || a[1] == '-')
			continue;
		for (const char *c = a + 1; *c && *c != 'o'; c++)
			if (*c == 'c')
				return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = g_malloc(size + 1);
	char *argv[MAX_ARGS + 2];
	int argc = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = "scratchfs";
	for (char *s = buf; argc <= MAX_ARGS && s <= buf + size;
	     s += strlen(s) + 1)
		argv[argc++] = s;
	argv[argc] = NULL;

	if (!names_config_file(argv, argc))
		fuzz_parse(argc, argv, "/nonexistent/scratchfs.conf");
	g_free(buf);
	return 0;
}
