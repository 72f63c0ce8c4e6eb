/* options.h - command line, -o mount options and /etc/scratchfs.conf,
 * merged into one struct sfs_config (options.c, config_file.c), and the
 * checks of its directories (validate.c).
 *
 * Precedence, lowest first: built-in defaults < [defaults] group of the
 * config file < [MOUNTPOINT] group < command line.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>

#define SFS_DEFAULT_CONFIG SYSCONFDIR "/scratchfs.conf"
#define SFS_DEFAULT_STATE_DIR LOCALSTATEDIR "/cache/scratchfs"

/* Exit codes; documented in scratchfs(8) EXIT STATUS. */
enum sfs_exit {
	SFS_EXIT_OK = 0,
	SFS_EXIT_USAGE = 1,      /* bad command line or -o option */
	SFS_EXIT_CONFIG = 2,     /* config file unreadable or malformed */
	SFS_EXIT_LAYER = 3,      /* a layer directory is missing or unsuitable */
	SFS_EXIT_MOUNTPOINT = 4, /* mount point missing, busy, stale */
	SFS_EXIT_MOUNT = 5,      /* the kernel refused the mount / FUSE failure */
};

/* GError domain: the error code is one of enum sfs_exit.  Defined here,
 * not in options.c, because config_file.c, validate.c and layers.c raise
 * it too and options.c calls them. */
#define SFS_ERROR (sfs_error_quark())
static inline GQuark sfs_error_quark(void)
{
	return g_quark_from_static_string("scratchfs-error-quark");
}

enum sfs_action {
	SFS_ACTION_MOUNT = 0,
	SFS_ACTION_HELP,
	SFS_ACTION_VERSION,
	SFS_ACTION_STATUS,   /* --status MOUNTPOINT (status_cmd.c) */
	SFS_ACTION_FSCK,     /* --fsck [--repair] -o ... (fsck.c) */
};

enum sfs_status_format {
	SFS_FORMAT_HUMAN = 0,
	SFS_FORMAT_JSON,
	SFS_FORMAT_PROMETHEUS,
};

struct sfs_config {
	enum sfs_action action;

	char *mountpoint;    /* absolute path */
	char *source;        /* positional SHARED, NULL if none */
	char **lowerdirs;    /* NULL-terminated, absolute, leftmost on top */
	char *upperdir;      /* absolute */
	char *workdir;       /* absolute */
	double timeout;      /* entry/attr cache seconds, default 1.0 */

	bool foreground;     /* -f */
	bool debug;          /* -d, implies foreground */
	bool single_thread;  /* -s: one thread, whatever multithread says */
	bool multithread;    /* -o multithread: default true (multi-threaded
	                      * loop); -o nomultithread turns it off */
	bool allow_other;    /* default: true when euid is 0 */
	bool read_only;      /* -o ro */
	bool writeback_cache;
	bool metacopy;       /* default true: link/chmod/... copy metadata only */
	bool no_open;        /* -o no_open: default false; when on (and the
	                      * kernel agrees) the kernel sends no OPEN/RELEASE
	                      * and keeps file data cached across opens */
	bool no_opendir;     /* default true: no OPENDIR/RELEASEDIR, the kernel
	                      * keeps listings (listing.h) */
	bool passthrough;    /* default true: file data bypasses the daemon
	                      * (FUSE passthrough) where the kernel allows */
	unsigned busy_poll;  /* µs the reader may spin before sleeping, default 50 */
	char *fsname;        /* -o fsname=, default: the source or "scratchfs" */
	char *config_file;   /* -c FILE or the default config path */
	bool upper_is_default; /* upper/work came from the built-in default */

	/* Generic mount flags seen in -o (nosuid, nodev, noexec, sync,
	 * dirsync, noatime, ... and their opposites), comma-separated in the
	 * order given, or NULL.  main passes them to the kernel with the FUSE
	 * mount options, as mount(8) would.  Note mount.fuse3 adds "dev,suid"
	 * unless nodev/nosuid were given. */
	char *mount_flags;

	int loglevel;          /* enum sfs_log_level; -d: debug */
	guint64 upper_limit;   /* -o upper_limit= bytes, 0 = none */
	guint64 upper_inodes;  /* -o upper_inodes=, 0 = none */
	enum sfs_status_format format; /* --format= for --status */
	bool repair;           /* --repair for --fsck */
};

/* Parse argv plus the config file into cfg. `default_config` (NULL:
 * SFS_DEFAULT_CONFIG) and `state_dir` (NULL: sfs_default_state_dir())
 * let unit tests point away from /etc and /var.  The config file is read
 * only when the action is SFS_ACTION_MOUNT.  On error sets err (domain
 * SFS_ERROR, code = exit code) with one line naming the problem, and
 * leaves cfg cleared. */
bool sfs_config_parse(int argc, char **argv, const char *default_config,
		      const char *state_dir, struct sfs_config *cfg,
		      GError **err);

/* Check the directories: existence, same filesystem for upper/work,
 * nesting rules, mount point state. Creates the built-in default
 * upper/work (0700) when cfg->upper_is_default.  On success the layer
 * paths in cfg are replaced by their realpath(3). */
bool sfs_config_validate(struct sfs_config *cfg, GError **err);

void sfs_config_clear(struct sfs_config *cfg);

/* Text for --help (lists every option). */
void sfs_print_help(FILE *out, const char *progname);

/* Where the built-in upper/work live: SFS_DEFAULT_STATE_DIR as root,
 * otherwise $XDG_CACHE_HOME/scratchfs or ~/.cache/scratchfs.  The string
 * is owned by options.c and stays valid until the next call. */
const char *sfs_default_state_dir(void);

/* A path as `systemd-escape --path` writes it: /mnt/scratch -> mnt-scratch.
 * The caller frees the result. */
char *sfs_escape_path(const char *path);
