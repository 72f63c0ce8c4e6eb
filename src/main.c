/* main.c - the process: parse, validate, mount, daemonize, serve, exit.
 *
 * Nothing is mounted until every option and directory has been checked;
 * without -f the command returns only once the mount is up, so a startup
 * script can use the mount as soon as scratchfs exits 0.
 */
#include "config.h"

#include "creds.h"
#include "fs.h"
#include "kernel_io.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "ops.h"
#include "options.h"
#include "reclaim.h"
#include "status_cmd.h"
#include "fsck.h"

#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(GError *err)
{
	fprintf(stderr, "scratchfs: %s\n", err->message);
	int code = err->domain == SFS_ERROR ? err->code : SFS_EXIT_MOUNT;
	g_error_free(err);
	return code;
}

/* The libfuse command line: only options scratchfs decided on. */
static void build_fuse_args(const struct sfs_config *cfg,
			    struct fuse_args *args)
{
	fuse_opt_add_arg(args, "scratchfs");
	if (cfg->debug)
		fuse_opt_add_arg(args, "-d");
	g_autofree char *fsname = g_strdup(cfg->fsname ? cfg->fsname
						       : "scratchfs");
	/* ',' separates -o options: libfuse reads "\," as a literal. */
	g_autoptr(GString) o = g_string_new("subtype=scratchfs,fsname=");
	for (const char *p = fsname; *p; p++) {
		if (*p == ',' || *p == '\\')
			g_string_append_c(o, '\\');
		g_string_append_c(o, *p);
	}
	/* Other users' access is checked by the kernel against the modes
	 * scratchfs reports.  A private mount needs no such check: its one
	 * user is the daemon's own, whose rights the layers enforce, and
	 * skipping it saves a GETATTR after every change to a directory. */
	if (cfg->allow_other)
		g_string_append(o, ",allow_other,default_permissions");
	if (cfg->read_only)
		g_string_append(o, ",ro");
	/* noexec, nosuid, nodev, sync, ...: libfuse turns them into the
	 * mount(2) flags mount(8) would have set. */
	if (cfg->mount_flags)
		g_string_append_printf(o, ",%s", cfg->mount_flags);
	fuse_opt_add_arg(args, "-o");
	fuse_opt_add_arg(args, o->str);
}

/* Seven workers: with the reader, the eight threads measured best for
 * the old multi-threaded loop (tests/bench/RESULTS.md). */
static int serve(struct fuse_session *se, const struct sfs_config *cfg)
{
	bool one = !cfg->multithread || cfg->single_thread;
	return sfs_loop_run(se, one ? 0 : 7);
}

/* The raw-protocol hooks (kernel_io.c) on the mounted session. */
static bool attach_kernel_io(struct fuse_session *se, struct sfs_fs *fs,
			     const struct sfs_config *cfg, GError **err)
{
	struct sfs_kio_config kc = {
		.spin_us = cfg->busy_poll,
		/* Passthrough needs OPEN and excludes the writeback cache;
		 * writes that pass through escape upper_limit's count. */
		.passthrough = cfg->passthrough && !cfg->no_open &&
			       !cfg->writeback_cache && !cfg->upper_limit,
		.debug = cfg->debug,
		.spins_caught = &fs->counters.spins_caught,
		.spins_missed = &fs->counters.spins_missed,
	};
	return sfs_kio_attach(se, &kc, err);
}

/* Every node the kernel remembers holds an O_PATH fd: lift the limit as
 * far as the kernel lets us (root may go past the hard limit, up to
 * fs.nr_open). */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	g_autofree char *txt = NULL;
	rlim_t want = rl.rlim_max;
	if (g_file_get_contents("/proc/sys/fs/nr_open", &txt, NULL, NULL))
		want = MAX(want, (rlim_t)g_ascii_strtoull(txt, NULL, 10));
	struct rlimit up = { want, want };
	if (setrlimit(RLIMIT_NOFILE, &up) != 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static long fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return 1024;
	return (long)MIN(rl.rlim_cur, (rlim_t)G_MAXINT);
}

/* fusermount3 lets ordinary users use allow_other only when the admin
 * said so in /etc/fuse.conf: check first, so the refusal is one line and
 * comes before anything is mounted. */
static bool allow_other_permitted(void)
{
	if (geteuid() == 0)
		return true;
	g_autofree char *txt = NULL;
	if (!g_file_get_contents("/etc/fuse.conf", &txt, NULL, NULL))
		return false;
	g_auto(GStrv) lines = g_strsplit(txt, "\n", -1);
	for (char **l = lines; *l; l++)
		if (!strcmp(g_strstrip(*l), "user_allow_other"))
			return true;
	return false;
}

/* One line at unmount with what the mount did (counters.h). */
static void log_totals(struct sfs_fs *fs, const struct sfs_config *cfg)
{
	g_autofree char *totals = sfs_counters_summary(&fs->counters);
	sfs_notice("%s: %s", cfg->mountpoint, totals);
}

static int run(struct sfs_config *cfg)
{
	GError *err = NULL;
	struct sfs_fs fs;
	if (cfg->allow_other && !allow_other_permitted()) {
		fprintf(stderr, "scratchfs: allow_other needs 'user_allow_other' "
				"in /etc/fuse.conf when not run as root\n");
		return SFS_EXIT_USAGE;
	}
	sfs_log_init(false, cfg->loglevel);
	raise_fd_limit();
	/* The kernel has applied the caller's umask to every mode it sends;
	 * the daemon's own must not apply a second time. */
	umask(0);
	if (!sfs_fs_init(&fs, cfg, &err)) {
		sfs_fs_destroy(&fs);
		return fail(err);
	}
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	build_fuse_args(cfg, &args);
	int code = SFS_EXIT_MOUNT;
	struct fuse_session *se =
		fuse_session_new(&args, &sfs_ops, sizeof(sfs_ops), &fs);
	if (!se)
		goto out;
	fs.se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cfg->mountpoint) != 0) {
		fprintf(stderr, "scratchfs: %s: mount failed\n", cfg->mountpoint);
		goto out_signals;
	}
	if (!attach_kernel_io(se, &fs, cfg, &err)) {
		fail(err);
		goto out_unmount;
	}
	if (!cfg->foreground) {
		if (fuse_daemonize(0) != 0)
			goto out_unmount;
		sfs_log_to_syslog();
	}
	sfs_creds_init();
	fs.notifier = sfs_notifier_start(se);
	fs.reclaim = sfs_reclaim_start(se, fs.table, fs.layers.upper.fd,
				       fd_limit(), &fs.counters.fd_reclaims);
	/* The loop returns the signal number after SIGTERM/SIGINT/SIGHUP:
	 * a clean, requested end. */
	code = serve(se, cfg) >= 0 ? SFS_EXIT_OK : SFS_EXIT_MOUNT;
	sfs_reclaim_stop(fs.reclaim);
	fs.reclaim = NULL;
	sfs_notifier_stop(fs.notifier);
	fs.notifier = NULL;
	log_totals(&fs, cfg);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	sfs_fs_destroy(&fs);
	return code;
}

int main(int argc, char **argv)
{
	struct sfs_config cfg = { 0 };
	GError *err = NULL;
	int code = SFS_EXIT_OK;
	if (!sfs_config_parse(argc, argv, SFS_DEFAULT_CONFIG,
			      sfs_default_state_dir(), &cfg, &err))
		code = fail(err);
	else if (cfg.action == SFS_ACTION_HELP)
		sfs_print_help(stdout, argv[0]);
	else if (cfg.action == SFS_ACTION_VERSION)
		printf("scratchfs %s (libfuse %s)\n", PACKAGE_VERSION,
		       fuse_pkgversion());
	else if (cfg.action == SFS_ACTION_STATUS)
		code = sfs_status_command(&cfg, stdout);
	else if (cfg.action == SFS_ACTION_FSCK)
		code = sfs_fsck_command(&cfg);
	else if (!sfs_config_validate(&cfg, &err))
		code = fail(err);
	else
		code = run(&cfg);
	sfs_config_clear(&cfg);
	return code;
}
