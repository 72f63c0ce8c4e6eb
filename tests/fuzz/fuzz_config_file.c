/* fuzz_config_file.c - libFuzzer target for the config file reader
 * (src/config_file.c) and the keys it hands to the option parser.
 *
 * The input is the file's text, given with -c through a memfd; the mount
 * point is /mnt/scratch, so [defaults] and [/mnt/scratch] groups apply.
 * A file that names no shared layer fails after the file has been read,
 * which still exercises every key. */
#define _GNU_SOURCE
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];

	if (memfd < 0) {
		memfd = memfd_create("scratchfs.conf", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
	}
	if (ftruncate(memfd, 0) != 0 ||
	    pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);

	char *with_c[] = { "scratchfs", "-c", path, "/mnt/scratch", NULL };
	fuzz_parse(4, with_c, NULL);
	/* The default file (optional), with the shared layer on the command
	 * line: the other way the file is read. */
	char *as_default[] = { "scratchfs", "/srv/shared", "/mnt/scratch", NULL };
	fuzz_parse(3, as_default, path);
	return 0;
}
