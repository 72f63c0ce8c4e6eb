/* config_file.h - the config file (/etc/scratchfs.conf or -c FILE) for
 * options.c.  Internal to the option parser; the public API is options.h.
 *
 * config_file.c knows the file's shape (GKeyFile groups, line numbers,
 * syntax errors) but not the options: every key of the groups that apply
 * goes to the caller's apply function, the same one the -o options go
 * through.  struct sfs_origin tells that function where an option came
 * from, so sfs_option_error() reports a mistake either as
 * "-o NAME=VALUE: problem" or as "FILE:LINE: [GROUP] NAME=VALUE: problem".
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* Where an option came from, for error messages. */
struct sfs_origin {
	int code;             /* SFS_EXIT_USAGE or SFS_EXIT_CONFIG */
	const char *file;     /* config file, NULL for the command line */
	const char *contents; /* its text, to find line numbers */
	const char *group;
};

/* Set err (domain SFS_ERROR, code o->code) to one line naming the option
 * `name` (with `value`, unless NULL), where it came from, and the
 * problem. */
G_GNUC_PRINTF(5, 6)
void sfs_option_error(GError **err, const struct sfs_origin *o,
		      const char *name, const char *value, const char *fmt,
		      ...);

/* The option parser's state, defined in options.c. */
struct sfs_parser;

/* Apply one option; on a mistake set err (see sfs_option_error). */
typedef bool (*sfs_apply_option_fn)(struct sfs_parser *p,
				    const struct sfs_origin *o,
				    const char *name, const char *value,
				    GError **err);

/* Read the config file at `path` and hand every key of its [defaults]
 * group, then of each group naming `mountpoint`, to apply().  A missing
 * file is no error unless must_exist.  Groups that are neither
 * [defaults] nor an absolute path are an error; groups of other mount
 * points are not read.  Errors have code SFS_EXIT_CONFIG. */
bool sfs_config_file_load(const char *path, bool must_exist,
			  const char *mountpoint, sfs_apply_option_fn apply,
			  struct sfs_parser *p, GError **err);
