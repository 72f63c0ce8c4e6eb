/* fuzz_common.h - what both libFuzzer targets share: the parse call, with
 * the config file and the state directory kept away from /etc and /var,
 * and a check of what a parse must leave behind. */
#pragma once

#include <glib.h>
#include <stdlib.h>

#include "options.h"

#define FUZZ_STATE_DIR "/nonexistent/scratchfs-fuzz-state"

/* Parse argv; on success the config must be complete, on failure the
 * error must be one line with an exit code of enum sfs_exit.  Anything
 * else aborts, which libFuzzer reports as a crash. */
static inline void fuzz_parse(int argc, char **argv, const char *default_config)
{
	struct sfs_config cfg;
	GError *err = NULL;

	if (sfs_config_parse(argc, argv, default_config, FUZZ_STATE_DIR, &cfg,
			     &err)) {
		if (err)
			abort();
		if (cfg.action == SFS_ACTION_MOUNT &&
		    (!cfg.mountpoint || !cfg.upperdir || !cfg.workdir ||
		     !cfg.fsname || cfg.timeout < 0 || cfg.timeout > 1e6))
			abort();
		sfs_config_clear(&cfg);
		return;
	}
	if (!err || err->domain != SFS_ERROR || err->code < SFS_EXIT_USAGE ||
	    err->code > SFS_EXIT_MOUNT || !err->message[0])
		abort();
	g_error_free(err);
}
