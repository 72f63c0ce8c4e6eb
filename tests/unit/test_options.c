/* test_options.c - unit tests for src/options.c, src/config_file.c and
 * src/validate.c: the command line, -o options, the config file, and
 * sfs_config_validate's checks.
 *
 * Every test works in its own temporary directory (lower, lower2, upper,
 * work, mnt, state and a config file path).  Tests that need a real FUSE
 * mount (stale mount, an existing scratchfs mount) need root and
 * /dev/fuse and are skipped without them.
 */
#include "config.h"

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 31
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <fuse_lowlevel.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "options.h"

struct t {
	char *root;
	char *lower, *lower2, *upper, *work, *mnt, *state, *conf;
	GPtrArray *strs; /* strings owned by the test */
	struct sfs_config cfg;
	GError *err;
	char *mounted; /* a FUSE mount to remove in teardown */
};

/* ------------------------------------------------------------------ */
/* Helpers. */

G_GNUC_PRINTF(2, 3)
static const char *S(struct t *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_ptr_array_add(t->strs, s);
	return s;
}

static char *make_dir(struct t *t, const char *name)
{
	char *p = g_build_filename(t->root, name, NULL);
	if (g_mkdir_with_parents(p, 0755) != 0)
		fail_msg("mkdir %s: %s", p, g_strerror(errno));
	return p;
}

static void touch(const char *path)
{
	if (!g_file_set_contents(path, "x", 1, NULL))
		fail_msg("cannot write %s", path);
}

G_GNUC_PRINTF(2, 3)
static void write_conf(struct t *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (!g_file_set_contents(t->conf, text, -1, NULL))
		fail_msg("cannot write %s", t->conf);
}

static void reset(struct t *t)
{
	sfs_config_clear(&t->cfg);
	g_clear_error(&t->err);
}

/* Parse "scratchfs" + the NULL-terminated arguments. */
static bool parse_args(struct t *t, ...)
{
	va_list ap;
	GPtrArray *argv = g_ptr_array_new();

	reset(t);
	g_ptr_array_add(argv, (gpointer) "scratchfs");
	va_start(ap, t);
	for (const char *a; (a = va_arg(ap, const char *));)
		g_ptr_array_add(argv, (gpointer)a);
	va_end(ap);
	int argc = (int)argv->len;
	g_ptr_array_add(argv, NULL);
	bool ok = sfs_config_parse(argc, (char **)argv->pdata, t->conf,
				   t->state, &t->cfg, &t->err);
	g_ptr_array_free(argv, TRUE);
	if (ok)
		assert_null(t->err);
	else
		assert_non_null(t->err);
	return ok;
}
#define PARSE(t, ...) parse_args((t), __VA_ARGS__, (const char *)NULL)

static void expect_ok(struct t *t, bool ok)
{
	if (!ok)
		fail_msg("unexpected error: %s", t->err->message);
}

/* The last call failed with `code`, and its message has both needles. */
static void expect_error(struct t *t, bool ok, int code, const char *needle,
			 const char *needle2)
{
	if (ok)
		fail_msg("expected error %d mentioning '%s', got success", code,
			 needle);
	assert_non_null(t->err);
	if (t->err->domain != SFS_ERROR || t->err->code != code)
		fail_msg("expected code %d, got %d: %s", code, t->err->code,
			 t->err->message);
	if (needle && !strstr(t->err->message, needle))
		fail_msg("message '%s' lacks '%s'", t->err->message, needle);
	if (needle2 && !strstr(t->err->message, needle2))
		fail_msg("message '%s' lacks '%s'", t->err->message, needle2);
	if (strchr(t->err->message, '\n'))
		fail_msg("message is not one line: '%s'", t->err->message);
}

/* Each of the n values in bad is refused for -o name: a usage error that
 * names "name=value" and what the value should have been (`what`). */
static void expect_bad_values(struct t *t, const char *name,
			      const char *const *bad, size_t n,
			      const char *what)
{
	for (size_t i = 0; i < n; i++) {
		const char *o = S(t, "%s=%s", name, bad[i]);
		expect_error(t, PARSE(t, "-o", o, t->lower, t->mnt),
			     SFS_EXIT_USAGE, o, what);
	}
}

static bool validate(struct t *t)
{
	g_clear_error(&t->err);
	bool ok = sfs_config_validate(&t->cfg, &t->err);
	if (ok)
		assert_null(t->err);
	else
		assert_non_null(t->err);
	return ok;
}

/* Parse with explicit layers, then validate. */
static bool parse_validate(struct t *t, const char *lower, const char *upper,
			   const char *work, const char *mnt)
{
	bool ok = PARSE(t, "-o",
			S(t, "lowerdir=%s,upperdir=%s,workdir=%s", lower,
			  upper, work),
			mnt);
	expect_ok(t, ok);
	return validate(t);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "cleanup: %s: %s\n", path, g_strerror(errno));
	return 0;
}

static int setup(void **state)
{
	struct t *t = g_new0(struct t, 1);

	t->strs = g_ptr_array_new_with_free_func(g_free);
	char *tmp = g_dir_make_tmp("scratchfs-test-XXXXXX", NULL);
	assert_non_null(tmp);
	/* resolved, so paths compare equal to sfs_config_validate's */
	char *real = realpath(tmp, NULL);
	assert_non_null(real);
	t->root = g_strdup(real);
	free(real);
	g_free(tmp);
	t->lower = make_dir(t, "lower");
	t->lower2 = make_dir(t, "lower2");
	t->upper = make_dir(t, "local/upper");
	t->work = make_dir(t, "local/work");
	t->mnt = make_dir(t, "mnt");
	t->state = g_build_filename(t->root, "state", NULL);
	t->conf = g_build_filename(t->root, "scratchfs.conf", NULL);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	if (t->mounted) {
		umount2(t->mounted, MNT_DETACH);
		g_free(t->mounted);
	}
	reset(t);
	nftw(t->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	g_free(t->root);
	g_free(t->lower);
	g_free(t->lower2);
	g_free(t->upper);
	g_free(t->work);
	g_free(t->mnt);
	g_free(t->state);
	g_free(t->conf);
	g_ptr_array_free(t->strs, TRUE);
	g_free(t);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The command line. */

static void test_shared_and_mountpoint(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_int_equal(t->cfg.action, SFS_ACTION_MOUNT);
	assert_string_equal(t->cfg.mountpoint, t->mnt);
	assert_string_equal(t->cfg.source, t->lower);
	assert_non_null(t->cfg.lowerdirs);
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_null(t->cfg.lowerdirs[1]);
	/* built-in defaults */
	assert_true(t->cfg.timeout == 1.0);
	assert_true(t->cfg.metacopy);
	assert_false(t->cfg.writeback_cache);
	assert_false(t->cfg.read_only);
	assert_true(t->cfg.multithread);
	assert_false(t->cfg.foreground);
	assert_false(t->cfg.debug);
	assert_false(t->cfg.single_thread);
	assert_int_equal(t->cfg.allow_other, geteuid() == 0);
	assert_string_equal(t->cfg.fsname, t->lower);
	assert_string_equal(t->cfg.config_file, t->conf);
	assert_null(t->cfg.mount_flags);
	/* built-in local layer: STATE/ESCAPED-MOUNTPOINT/{upper,work} */
	g_autofree char *esc = sfs_escape_path(t->mnt);
	g_autofree char *up = g_build_filename(t->state, esc, "upper", NULL);
	g_autofree char *wk = g_build_filename(t->state, esc, "work", NULL);
	assert_true(t->cfg.upper_is_default);
	assert_string_equal(t->cfg.upperdir, up);
	assert_string_equal(t->cfg.workdir, wk);
}

static void test_relative_paths(void **state)
{
	struct t *t = *state;
	g_autofree char *cwd = g_get_current_dir();

	assert_int_equal(chdir(t->root), 0);
	bool ok = PARSE(t, "lower", "./mnt/", "-o",
			"upperdir=local/upper,workdir=local/../local/work");
	int r = chdir(cwd);
	assert_int_equal(r, 0);
	expect_ok(t, ok);
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_string_equal(t->cfg.mountpoint, t->mnt);
	assert_string_equal(t->cfg.upperdir, t->upper);
	assert_string_equal(t->cfg.workdir, t->work);
	assert_false(t->cfg.upper_is_default);
}

static void test_all_o_options(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, "-o",
			   S(t, "lowerdir=%s:%s,upperdir=%s,workdir=%s",
			     t->lower, t->lower2, t->upper, t->work),
			   "-o", "timeout=2.5,metacopy=off,writeback_cache,ro",
			   "-ofsname=myshare,multithread,noallow_other",
			   t->mnt));
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_string_equal(t->cfg.lowerdirs[1], t->lower2);
	assert_null(t->cfg.lowerdirs[2]);
	assert_string_equal(t->cfg.upperdir, t->upper);
	assert_string_equal(t->cfg.workdir, t->work);
	assert_false(t->cfg.upper_is_default);
	assert_true(t->cfg.timeout == 2.5);
	assert_false(t->cfg.metacopy);
	assert_true(t->cfg.writeback_cache);
	assert_true(t->cfg.read_only);
	assert_true(t->cfg.multithread);
	assert_false(t->cfg.allow_other);
	assert_string_equal(t->cfg.fsname, "myshare");
	assert_null(t->cfg.source);

	expect_ok(t, PARSE(t, "-o", "metacopy=on,allow_other,ro=off",
			   t->lower, t->mnt));
	assert_true(t->cfg.metacopy);
	assert_true(t->cfg.allow_other);
	assert_false(t->cfg.read_only);
	expect_ok(t, PARSE(t, "-o", "nometacopy,metacopy", t->lower, t->mnt));
	assert_true(t->cfg.metacopy);
	expect_ok(t, PARSE(t, "-o", "nometacopy", t->lower, t->mnt));
	assert_false(t->cfg.metacopy);
}

/* no_open: off by default; NAME, noNAME, NAME=BOOL on the command line, a
 * key in the config file, with the usual precedence. */
static void test_no_open(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_false(t->cfg.no_open);
	expect_ok(t, PARSE(t, "-o", "no_open", t->lower, t->mnt));
	assert_true(t->cfg.no_open);
	expect_ok(t, PARSE(t, "-o", "nono_open", t->lower, t->mnt));
	assert_false(t->cfg.no_open);
	expect_ok(t, PARSE(t, "-o", "no_open=off", t->lower, t->mnt));
	assert_false(t->cfg.no_open);
	expect_ok(t, PARSE(t, "-o", "nono_open,no_open", t->lower, t->mnt));
	assert_true(t->cfg.no_open);
	expect_ok(t, PARSE(t, "-o", "no_open=off,no_open=on", t->lower,
			   t->mnt));
	assert_true(t->cfg.no_open);
	expect_error(t, PARSE(t, "-o", "nono_open=on", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "nono_open=on", NULL);
	expect_error(t, PARSE(t, "-o", "no_open=maybe", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "no_open=maybe", "on or off");

	/* built-in < [defaults] < [MOUNTPOINT] < command line */
	write_conf(t, "[defaults]\nno_open=true\n");
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_true(t->cfg.no_open);
	write_conf(t, "[%s]\nno_open=yes\n[defaults]\nno_open=off\n",
		   t->mnt);
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_true(t->cfg.no_open);
	expect_ok(t, PARSE(t, "-o", "nono_open", t->lower, t->mnt));
	assert_false(t->cfg.no_open);
	write_conf(t, "[defaults]\nno_open=0\n");
	expect_ok(t, PARSE(t, "-o", "no_open", t->lower, t->mnt));
	assert_true(t->cfg.no_open);

	/* --help lists it */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	sfs_print_help(f, "scratchfs");
	fclose(f);
	assert_non_null(strstr(buf, "-o no_open=on|off"));
	free(buf);
}

static void test_lowerdir_escapes(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, "-o", "lowerdir=/a\\:b:/c,fsname=x\\,y", t->mnt));
	assert_string_equal(t->cfg.lowerdirs[0], "/a:b");
	assert_string_equal(t->cfg.lowerdirs[1], "/c");
	assert_null(t->cfg.lowerdirs[2]);
	assert_string_equal(t->cfg.fsname, "x,y");

	expect_error(t, PARSE(t, "-o", "lowerdir=/a::/c", t->mnt),
		     SFS_EXIT_USAGE, "lowerdir=/a::/c", "empty");
	expect_error(t, PARSE(t, "-o", "lowerdir=/a:", t->mnt),
		     SFS_EXIT_USAGE, "lowerdir=/a:", "empty");
	expect_error(t, PARSE(t, "-o", "lowerdir=", t->mnt), SFS_EXIT_USAGE,
		     "lowerdir", NULL);
	expect_error(t, PARSE(t, "-o", "upperdir=", t->mnt), SFS_EXIT_USAGE,
		     "upperdir", NULL);
	expect_error(t, PARSE(t, "-o", "upperdir", t->mnt), SFS_EXIT_USAGE,
		     "upperdir", "value");
}

/* mount(8) -> mount.fuse3 runs: scratchfs SOURCE MNT -o OPTS; with
 * lowerdir= given, SOURCE is a name only. */
static void test_source_is_name_with_lowerdir(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, "scratch", t->mnt, "-o",
			   S(t, "rw,lowerdir=%s,upperdir=%s,workdir=%s,dev,suid",
			     t->lower, t->upper, t->work)));
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_null(t->cfg.lowerdirs[1]);
	assert_string_equal(t->cfg.source, "scratch");
	assert_string_equal(t->cfg.fsname, "scratch");
	assert_string_equal(t->cfg.mountpoint, t->mnt);
	expect_ok(t, validate(t));
}

static void test_single_positional_is_mountpoint(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, t->mnt, "-o", S(t, "lowerdir=%s", t->lower)));
	assert_string_equal(t->cfg.mountpoint, t->mnt);
	assert_null(t->cfg.source);
	assert_string_equal(t->cfg.fsname, "scratchfs");
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
}

static void test_positional_count(void **state)
{
	struct t *t = *state;

	expect_error(t, PARSE(t, "-f"), SFS_EXIT_USAGE, "mount point", NULL);
	expect_error(t, PARSE(t, "a", "b", "c"), SFS_EXIT_USAGE, "'c'",
		     NULL);
	/* "--" ends the options: a mount point may start with '-' */
	expect_ok(t, PARSE(t, "-o", S(t, "lowerdir=%s", t->lower), "--",
			   "-weird"));
	g_autofree char *cwd = g_get_current_dir();
	g_autofree char *want = g_build_filename(cwd, "-weird", NULL);
	assert_string_equal(t->cfg.mountpoint, want);
}

static void test_flags(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, "-f", t->lower, t->mnt));
	assert_true(t->cfg.foreground);
	assert_false(t->cfg.debug);
	assert_false(t->cfg.single_thread);

	expect_ok(t, PARSE(t, "-d", t->lower, t->mnt));
	assert_true(t->cfg.debug);
	assert_true(t->cfg.foreground); /* -d implies -f */

	expect_ok(t, PARSE(t, t->lower, "-s", t->mnt));
	assert_true(t->cfg.single_thread);
	assert_false(t->cfg.foreground);

	expect_ok(t, PARSE(t, "-sfo", "ro", t->lower, t->mnt));
	assert_true(t->cfg.single_thread);
	assert_true(t->cfg.foreground);
	assert_true(t->cfg.read_only);

	expect_error(t, PARSE(t, t->lower, t->mnt, "-o"), SFS_EXIT_USAGE,
		     "-o", "argument");
	expect_error(t, PARSE(t, t->lower, t->mnt, "-c"), SFS_EXIT_USAGE,
		     "-c", "argument");
}

static void test_help_version(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, "-h"));
	assert_int_equal(t->cfg.action, SFS_ACTION_HELP);
	expect_ok(t, PARSE(t, "--help"));
	assert_int_equal(t->cfg.action, SFS_ACTION_HELP);
	expect_ok(t, PARSE(t, "-V"));
	assert_int_equal(t->cfg.action, SFS_ACTION_VERSION);
	expect_ok(t, PARSE(t, "--version"));
	assert_int_equal(t->cfg.action, SFS_ACTION_VERSION);
	/* no config file is read for --help, even a broken one */
	expect_ok(t, PARSE(t, "-c", "/nonexistent/scratchfs.conf", "-h"));
	assert_int_equal(t->cfg.action, SFS_ACTION_HELP);
	expect_ok(t, validate(t)); /* nothing to check */

	/* --help names every -o option it lists in scratchfs(8) */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	sfs_print_help(f, "scratchfs");
	fclose(f);
	const char *names[] = { "lowerdir=", "upperdir=", "workdir=",
				"timeout=", "metacopy=", "writeback_cache",
				"multithread", "allow_other", "noallow_other",
				"default_permissions", "-o ro", "fsname=",
				"-f ", "-d ", "-s ", "-c FILE", "--version",
				"upper_limit=", "upper_inodes=", "loglevel=",
				"--status", "--format=", "--fsck", "--repair",
				"busy_poll=", "passthrough=", "no_opendir=" };
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
		if (!strstr(buf, names[i]))
			fail_msg("--help lacks %s", names[i]);
	free(buf);
}

/* upper_limit= (sizes), upper_inodes= (counts), loglevel= */
static void test_limits_and_loglevel(void **state)
{
	struct t *t = *state;
	static const struct { const char *v; guint64 want; } sizes[] = {
		{ "4096", 4096 }, { "512K", 512ull << 10 }, { "9G", 9ull << 30 },
		{ "2m", 2ull << 20 }, { "1T", 1ull << 40 }, { "3GiB", 3ull << 30 },
		{ "0", 0 },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
		g_autofree char *o = g_strdup_printf("upper_limit=%s", sizes[i].v);
		expect_ok(t, PARSE(t, "-o", o, t->lower, t->mnt));
		assert_int_equal(t->cfg.upper_limit, sizes[i].want);
	}
	const char *bad[] = { "12X", "", "-1", "1.5G", "G", "99999999999T",
			      "10 G" };
	expect_bad_values(t, "upper_limit", bad, G_N_ELEMENTS(bad), "size");
	expect_ok(t, PARSE(t, "-o", "upper_inodes=100000", t->lower, t->mnt));
	assert_int_equal(t->cfg.upper_inodes, 100000);
	expect_error(t, PARSE(t, "-o", "upper_inodes=1k", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "upper_inodes=1k", "whole number");
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_int_equal(t->cfg.loglevel, SFS_LOG_WARN);
	assert_int_equal(t->cfg.upper_limit, 0);
	expect_ok(t, PARSE(t, "-o", "loglevel=info", t->lower, t->mnt));
	assert_int_equal(t->cfg.loglevel, SFS_LOG_INFO);
	expect_ok(t, PARSE(t, "-d", t->lower, t->mnt));
	assert_int_equal(t->cfg.loglevel, SFS_LOG_DEBUG);
	expect_error(t, PARSE(t, "-o", "loglevel=loud", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "loglevel=loud", "error, warn, info or debug");
}

/* --status MOUNTPOINT, --fsck -o layers: their own argument rules */
static void test_status_and_fsck_args(void **state)
{
	struct t *t = *state;
	expect_ok(t, PARSE(t, "--status", t->mnt));
	assert_int_equal(t->cfg.action, SFS_ACTION_STATUS);
	assert_int_equal(t->cfg.format, SFS_FORMAT_HUMAN);
	assert_string_equal(t->cfg.mountpoint, t->mnt);
	expect_ok(t, PARSE(t, "--format=prometheus", "--status", t->mnt));
	assert_int_equal(t->cfg.format, SFS_FORMAT_PROMETHEUS);
	expect_ok(t, PARSE(t, "--status", "--format=json", t->mnt));
	assert_int_equal(t->cfg.format, SFS_FORMAT_JSON);
	expect_error(t, PARSE(t, "--status", "--format=xml", t->mnt),
		     SFS_EXIT_USAGE, "--format=xml", NULL);
	expect_error(t, PARSE(t, "--status"), SFS_EXIT_USAGE, "--status", NULL);
	expect_error(t, PARSE(t, "--status", t->lower, t->mnt), SFS_EXIT_USAGE,
		     "--status", NULL);
	expect_error(t, PARSE(t, "--format=json", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "--format goes with --status", NULL);

	g_autofree char *layers = g_strdup_printf(
		"lowerdir=%s,upperdir=/u,workdir=/w", t->lower);
	expect_ok(t, PARSE(t, "--fsck", "-o", layers));
	assert_int_equal(t->cfg.action, SFS_ACTION_FSCK);
	assert_false(t->cfg.repair);
	assert_string_equal(t->cfg.upperdir, "/u");
	expect_ok(t, PARSE(t, "--fsck", "--repair", "-o", layers));
	assert_true(t->cfg.repair);
	expect_error(t, PARSE(t, "--fsck", "-o", "upperdir=/u,workdir=/w"),
		     SFS_EXIT_USAGE, "lowerdir=", NULL);
	expect_error(t, PARSE(t, "--fsck", "-o", layers, t->mnt),
		     SFS_EXIT_USAGE, "no mount point", NULL);
	expect_error(t, PARSE(t, "--repair", t->lower, t->mnt), SFS_EXIT_USAGE,
		     "--repair goes with --fsck", NULL);
}

static void test_unknown_options(void **state)
{
	struct t *t = *state;

	expect_error(t, PARSE(t, "-o", "bogus", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "bogus", "unknown");
	expect_error(t, PARSE(t, "-o", "ro,bogus=1", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "bogus=1", "unknown");
	expect_error(t, PARSE(t, "-x", t->lower, t->mnt), SFS_EXIT_USAGE,
		     "-x", "unknown");
	expect_error(t, PARSE(t, "-fx", t->lower, t->mnt), SFS_EXIT_USAGE,
		     "-x", "unknown");
	expect_error(t, PARSE(t, "--bogus", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "--bogus", "unknown");
	/* "no" only negates yes/no options */
	expect_error(t, PARSE(t, "-o", "nolowerdir", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "nolowerdir", "unknown");
	expect_error(t, PARSE(t, "-o", "noallow_other=1", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "noallow_other=1", NULL);
	expect_error(t, PARSE(t, "-o", "metacopy=maybe", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "metacopy=maybe", NULL);
}

static void test_mount_helper_options_ignored(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, "-o",
			   "rw,dev,suid,nodev,nosuid,exec,noexec,defaults,"
			   "nofail,_netdev,x-systemd.automount,"
			   "x-systemd.device-timeout=10s,auto,noauto,user,"
			   "users,nouser,relatime,noatime",
			   t->lower, t->mnt));
	assert_false(t->cfg.read_only);
	assert_non_null(t->cfg.mount_flags);
	assert_string_equal(t->cfg.mount_flags,
			    "dev,suid,nodev,nosuid,exec,noexec,noatime");
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_true(t->cfg.upper_is_default);
}

static void test_timeout_values(void **state)
{
	struct t *t = *state;
	const char *bad[] = { "abc", "", "-1", "nan", "inf", "1e9", "1s",
			      "0x", " 1", "0x10" };

	expect_bad_values(t, "timeout", bad, G_N_ELEMENTS(bad), "seconds");
	expect_error(t, PARSE(t, "-o", "timeout", t->lower, t->mnt),
		     SFS_EXIT_USAGE, "timeout", NULL);

	expect_ok(t, PARSE(t, "-o", "timeout=0", t->lower, t->mnt));
	assert_true(t->cfg.timeout == 0.0);
	expect_ok(t, PARSE(t, "-o", "timeout=0.25", t->lower, t->mnt));
	assert_true(t->cfg.timeout == 0.25);
	expect_ok(t, PARSE(t, "-o", "timeout=30", t->lower, t->mnt));
	assert_true(t->cfg.timeout == 30.0);
}

static void test_speed_options(void **state)
{
	struct t *t = *state;
	const char *bad[] = { "abc", "", "-1", "10001", "1.5", " 1" };

	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_int_equal(t->cfg.busy_poll, 50);
	assert_true(t->cfg.passthrough);
	assert_true(t->cfg.no_opendir);
	expect_bad_values(t, "busy_poll", bad, G_N_ELEMENTS(bad), "microseconds");
	expect_ok(t, PARSE(t, "-o", "busy_poll=0,passthrough=off,no_opendir=off",
			   t->lower, t->mnt));
	assert_int_equal(t->cfg.busy_poll, 0);
	assert_false(t->cfg.passthrough);
	assert_false(t->cfg.no_opendir);
	expect_ok(t, PARSE(t, "-o", "busy_poll=10000,nopassthrough",
			   t->lower, t->mnt));
	assert_int_equal(t->cfg.busy_poll, 10000);
	assert_false(t->cfg.passthrough);
}

static void test_default_permissions(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, "-o", "default_permissions,allow_other",
			   t->lower, t->mnt));
	assert_true(t->cfg.allow_other);
	expect_error(t, PARSE(t, "-o", "nodefault_permissions", t->lower,
			      t->mnt),
		     SFS_EXIT_USAGE, "nodefault_permissions",
		     "default_permissions");
	expect_error(t, PARSE(t, "-o", "default_permissions=off", t->lower,
			      t->mnt),
		     SFS_EXIT_USAGE, "default_permissions=off", "refused");

	write_conf(t, "[defaults]\ndefault_permissions=false\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:2:", t->conf), "default_permissions");
}

static void test_allow_other_root_default(void **state)
{
	struct t *t = *state;

	if (geteuid() != 0)
		skip();
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_true(t->cfg.allow_other);
	expect_ok(t, PARSE(t, "-o", "noallow_other", t->lower, t->mnt));
	assert_false(t->cfg.allow_other);
	assert_string_equal(sfs_default_state_dir(), SFS_DEFAULT_STATE_DIR);
}

/* As an ordinary user: allow_other is off by default and the state
 * directory is in the user's cache directory. */
static void test_unprivileged_defaults(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* needs to switch to another user */

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int bad = 0;
		if (setresgid(65534, 65534, 65534) != 0 ||
		    setresuid(65534, 65534, 65534) != 0)
			_exit(100);
		char *argv[] = { "scratchfs", "/tmp/shared", "/tmp/mnt/x",
				 NULL };
		struct sfs_config cfg;
		GError *err = NULL;

		g_setenv("XDG_CACHE_HOME", "/tmp/xdg-cache", TRUE);
		if (strcmp(sfs_default_state_dir(),
			   "/tmp/xdg-cache/scratchfs") != 0)
			bad |= 1;
		if (!sfs_config_parse(3, argv, "/nonexistent/scratchfs.conf",
				      NULL, &cfg, &err))
			_exit(101);
		if (cfg.allow_other)
			bad |= 2;
		if (strcmp(cfg.upperdir,
			   "/tmp/xdg-cache/scratchfs/tmp-mnt-x/upper") != 0)
			bad |= 4;
		sfs_config_clear(&cfg);

		g_unsetenv("XDG_CACHE_HOME");
		g_setenv("HOME", "/home/someone", TRUE);
		if (strcmp(sfs_default_state_dir(),
			   "/home/someone/.cache/scratchfs") != 0)
			bad |= 8;
		_exit(bad);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("unprivileged child failed checks, mask %d",
			 WEXITSTATUS(status));
}

static void test_escape_path(void **state)
{
	(void)state;
	const char *cases[][2] = {
		{ "/mnt/scratch", "mnt-scratch" },
		{ "/mnt/scratch/", "mnt-scratch" },
		{ "//mnt//scratch", "mnt-scratch" },
		{ "/", "-" },
		{ "/a-b/c d", "a\\x2db-c\\x20d" },
		{ "/.hidden/x.y", "\\x2ehidden-x.y" },
		{ "/srv/v1:2_x", "srv-v1:2_x" },
		{ "/\xc3\xa4/x\\y", "\\xc3\\xa4-x\\x5cy" }, /* systemd-escape -p */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *e = sfs_escape_path(cases[i][0]);
		assert_string_equal(e, cases[i][1]);
	}
}

static void test_upper_without_work(void **state)
{
	struct t *t = *state;

	expect_error(t, PARSE(t, "-o", S(t, "upperdir=%s", t->upper),
			      t->lower, t->mnt),
		     SFS_EXIT_USAGE, "workdir", t->upper);
	expect_error(t, PARSE(t, "-o", S(t, "workdir=%s", t->work), t->lower,
			      t->mnt),
		     SFS_EXIT_USAGE, "upperdir", t->work);
}

/* ------------------------------------------------------------------ */
/* The config file. */

static void test_config_missing(void **state)
{
	struct t *t = *state;

	/* the default file may be absent */
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	/* -c FILE may not */
	const char *missing = S(t, "%s/nope.conf", t->root);
	expect_error(t, PARSE(t, "-c", missing, t->lower, t->mnt),
		     SFS_EXIT_CONFIG, missing, "No such file");
	expect_error(t, PARSE(t, "-c", t->root, t->lower, t->mnt),
		     SFS_EXIT_CONFIG, t->root, "directory");
}

/* The admin's case: `scratchfs /mnt/scratch` and nothing else. */
static void test_config_mountpoint_only(void **state)
{
	struct t *t = *state;

	write_conf(t,
		   "# scratchfs.conf\n"
		   "[defaults]\n"
		   "timeout = 3\n"
		   "\n"
		   "[%s]\n"
		   "lowerdir=%s:%s\n"
		   "upperdir=%s\n"
		   "workdir=%s\n"
		   "allow_other=false\n"
		   "writeback_cache=true\n"
		   "metacopy=off\n"
		   "ro=yes\n"
		   "multithread=off\n"
		   "fsname=pv-scratch\n"
		   "[/some/other/mount]\n"
		   "lowerdir=/elsewhere\n"
		   "timeout=99\n",
		   t->mnt, t->lower, t->lower2, t->upper, t->work);
	expect_ok(t, PARSE(t, t->mnt));
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_string_equal(t->cfg.lowerdirs[1], t->lower2);
	assert_string_equal(t->cfg.upperdir, t->upper);
	assert_string_equal(t->cfg.workdir, t->work);
	assert_false(t->cfg.upper_is_default);
	assert_true(t->cfg.timeout == 3.0);
	assert_false(t->cfg.allow_other);
	assert_true(t->cfg.writeback_cache);
	assert_false(t->cfg.metacopy);
	assert_true(t->cfg.read_only);
	assert_false(t->cfg.multithread);
	assert_string_equal(t->cfg.fsname, "pv-scratch");
	expect_ok(t, validate(t));

	/* the group matches however the mount point is spelled */
	expect_ok(t, PARSE(t, S(t, "%s/./", t->mnt)));
	assert_string_equal(t->cfg.upperdir, t->upper);
	write_conf(t, "[%s//]\nupperdir=%s\nworkdir=%s\n", t->mnt, t->upper,
		   t->work);
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_string_equal(t->cfg.upperdir, t->upper);
}

/* built-in < [defaults] < [MOUNTPOINT] < command line */
static void test_config_precedence(void **state)
{
	struct t *t = *state;

	/* built-in only */
	write_conf(t, "[/unrelated]\ntimeout=42\n");
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_true(t->cfg.timeout == 1.0);
	assert_true(t->cfg.metacopy);
	assert_string_equal(t->cfg.fsname, t->lower);
	assert_true(t->cfg.upper_is_default);

	/* [defaults] beats built-in */
	write_conf(t,
		   "[defaults]\ntimeout=5\nmetacopy=off\nfsname=from-defaults\n"
		   "upperdir=%s\nworkdir=%s\n",
		   t->upper, t->work);
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_true(t->cfg.timeout == 5.0);
	assert_false(t->cfg.metacopy);
	assert_string_equal(t->cfg.fsname, "from-defaults");
	assert_string_equal(t->cfg.upperdir, t->upper);
	assert_false(t->cfg.upper_is_default);

	/* [MOUNTPOINT] beats [defaults], whatever the order in the file */
	write_conf(t,
		   "[%s]\ntimeout=7\nupperdir=%s/u2\n"
		   "[defaults]\ntimeout=5\nmetacopy=off\nfsname=from-defaults\n"
		   "upperdir=%s\nworkdir=%s\n",
		   t->mnt, t->root, t->upper, t->work);
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_true(t->cfg.timeout == 7.0);
	assert_false(t->cfg.metacopy); /* only in [defaults] */
	assert_string_equal(t->cfg.fsname, "from-defaults");
	assert_string_equal(t->cfg.upperdir, S(t, "%s/u2", t->root));
	assert_string_equal(t->cfg.workdir, t->work);

	/* command line beats both */
	expect_ok(t, PARSE(t, "-o",
			   S(t, "timeout=9,metacopy=on,fsname=cli,upperdir=%s",
			     t->upper),
			   t->lower, t->mnt));
	assert_true(t->cfg.timeout == 9.0);
	assert_true(t->cfg.metacopy);
	assert_string_equal(t->cfg.fsname, "cli");
	assert_string_equal(t->cfg.upperdir, t->upper);
}

/* lowerdir: -o lowerdir= > SHARED > config file */
static void test_config_lowerdir_precedence(void **state)
{
	struct t *t = *state;

	write_conf(t, "[defaults]\nlowerdir=%s\n", t->lower2);
	expect_ok(t, PARSE(t, t->mnt));
	assert_string_equal(t->cfg.lowerdirs[0], t->lower2);
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_null(t->cfg.lowerdirs[1]);
	expect_ok(t, PARSE(t, "scratch", t->mnt, "-o",
			   S(t, "lowerdir=%s", t->lower)));
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_null(t->cfg.lowerdirs[1]);
}

static void test_config_option_c(void **state)
{
	struct t *t = *state;
	const char *other = S(t, "%s/other.conf", t->root);

	write_conf(t, "[defaults]\ntimeout=5\n");
	assert_true(g_file_set_contents(other, "[defaults]\ntimeout=6\n", -1,
					NULL));
	expect_ok(t, PARSE(t, "-c", other, t->lower, t->mnt));
	assert_true(t->cfg.timeout == 6.0);
	assert_string_equal(t->cfg.config_file, other);
	expect_ok(t, PARSE(t, S(t, "-c%s", other), t->lower, t->mnt));
	assert_true(t->cfg.timeout == 6.0);
}

static void test_config_syntax_errors(void **state)
{
	struct t *t = *state;

	write_conf(t, "[defaults]\ntimeout=2\nthis is junk\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:3:", t->conf), "this is junk");

	write_conf(t, "# comment\n\n[defaults\ntimeout=2\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:3:", t->conf), NULL);

	write_conf(t, "timeout=2\n[defaults]\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:1:", t->conf), NULL);

	write_conf(t, "[defaults]\n[default]\ntimeout=1\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:2:", t->conf), "[default]");
}

static void test_config_bad_keys_and_values(void **state)
{
	struct t *t = *state;

	write_conf(t, "[defaults]\ntimeout=2\nlowerdirs=/x\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:3:", t->conf), "lowerdirs");

	write_conf(t, "[%s]\n\ntimeout = abc\n", t->mnt);
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:3:", t->conf), "timeout=abc");

	write_conf(t, "[defaults]\nallow_other=perhaps\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:2:", t->conf), "allow_other=perhaps");

	write_conf(t, "[defaults]\nupperdir=relative/dir\nworkdir=/w\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:2:", t->conf), "absolute");

	/* options that only make sense to mount(8) are not config keys */
	write_conf(t, "[defaults]\nnofail=true\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     S(t, "%s:2:", t->conf), "nofail");
	write_conf(t, "[defaults]\nnoallow_other=true\n");
	expect_error(t, PARSE(t, t->lower, t->mnt), SFS_EXIT_CONFIG,
		     "allow_other=false", NULL);

	/* a mistake in another mount point's group does not matter */
	write_conf(t, "[/elsewhere]\nbogus=1\n");
	expect_ok(t, PARSE(t, t->lower, t->mnt));
}

/* ------------------------------------------------------------------ */
/* Validation. */

static void test_validate_ok_and_realpaths(void **state)
{
	struct t *t = *state;
	const char *link = S(t, "%s/lower-link", t->root);

	assert_int_equal(symlink(t->lower, link), 0);
	expect_ok(t, parse_validate(t, S(t, "%s:%s", link, t->lower2),
				    t->upper, t->work, t->mnt));
	assert_string_equal(t->cfg.lowerdirs[0], t->lower);
	assert_string_equal(t->cfg.lowerdirs[1], t->lower2);
	assert_string_equal(t->cfg.upperdir, t->upper);
	assert_string_equal(t->cfg.workdir, t->work);
}

static void test_validate_default_upper_created(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, t->lower, t->mnt));
	assert_true(t->cfg.upper_is_default);
	g_autofree char *up = g_strdup(t->cfg.upperdir);
	g_autofree char *wk = g_strdup(t->cfg.workdir);
	assert_false(g_file_test(up, G_FILE_TEST_EXISTS));
	assert_int_equal(chmod(t->lower, 0751), 0);
	expect_ok(t, validate(t));
	struct stat st, top;
	/* the upper root, the mount's root, shows the shared root (as root) */
	assert_int_equal(stat(t->lower, &top), 0);
	assert_int_equal(stat(up, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777,
			 geteuid() == 0 ? (top.st_mode & 07777) : 0700);
	assert_int_equal(stat(wk, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	/* and again, now that they exist */
	expect_ok(t, PARSE(t, t->lower, t->mnt));
	expect_ok(t, validate(t));

	/* an explicit upperdir is never created */
	const char *missing = S(t, "%s/no-upper", t->root);
	expect_error(t, parse_validate(t, t->lower, missing, t->work, t->mnt),
		     SFS_EXIT_LAYER, missing, "does not exist");
	assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));
}

static void test_validate_no_shared_layer(void **state)
{
	struct t *t = *state;

	expect_ok(t, PARSE(t, t->mnt));
	expect_error(t, validate(t), SFS_EXIT_USAGE, "no shared layer",
		     "lowerdir");
}

static void test_validate_shared_layer(void **state)
{
	struct t *t = *state;
	const char *missing = S(t, "%s/missing", t->root);
	const char *file = S(t, "%s/file", t->root);

	touch(file);
	expect_ok(t, PARSE(t, missing, t->mnt));
	expect_error(t, validate(t), SFS_EXIT_LAYER, missing,
		     "does not exist");
	expect_ok(t, PARSE(t, file, t->mnt));
	expect_error(t, validate(t), SFS_EXIT_LAYER, file, "not a directory");
	/* the second layer of a list is checked too */
	expect_ok(t, PARSE(t, "-o", S(t, "lowerdir=%s:%s", t->lower, missing),
			   t->mnt));
	expect_error(t, validate(t), SFS_EXIT_LAYER, missing,
		     "does not exist");
}

static void test_validate_upper_work_dirs(void **state)
{
	struct t *t = *state;
	const char *missing = S(t, "%s/local/missing", t->root);
	const char *file = S(t, "%s/local/file", t->root);

	touch(file);
	expect_error(t, parse_validate(t, t->lower, missing, t->work, t->mnt),
		     SFS_EXIT_LAYER, S(t, "upperdir %s", missing),
		     "does not exist");
	expect_error(t, parse_validate(t, t->lower, file, t->work, t->mnt),
		     SFS_EXIT_LAYER, S(t, "upperdir %s", file),
		     "not a directory");
	expect_error(t, parse_validate(t, t->lower, t->upper, missing, t->mnt),
		     SFS_EXIT_LAYER, S(t, "workdir %s", missing),
		     "does not exist");
	expect_error(t, parse_validate(t, t->lower, t->upper, file, t->mnt),
		     SFS_EXIT_LAYER, S(t, "workdir %s", file),
		     "not a directory");
}

static void test_validate_same_filesystem(void **state)
{
	struct t *t = *state;
	struct stat a, b;
	char *other = NULL;

	/* a directory on another filesystem: /dev/shm, or a tmpfs we mount */
	if (stat("/dev/shm", &a) == 0 && stat(t->upper, &b) == 0 &&
	    a.st_dev != b.st_dev && access("/dev/shm", W_OK) == 0) {
		other = g_build_filename("/dev/shm", "scratchfs-test-XXXXXX",
					 NULL);
		if (!g_mkdtemp(other)) {
			g_free(other);
			other = NULL;
		}
	}
	if (!other) {
		char *dir = make_dir(t, "tmpfs");
		if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
			g_free(dir);
			skip();
		}
		t->mounted = dir;
		other = g_strdup(dir);
	}
	bool ok = parse_validate(t, t->lower, t->upper, other, t->mnt);
	if (!t->mounted)
		g_rmdir(other);
	expect_error(t, ok, SFS_EXIT_LAYER, t->upper, "different filesystems");
	assert_non_null(strstr(t->err->message, other));
	g_free(other);
}

static void test_validate_upper_work_nesting(void **state)
{
	struct t *t = *state;
	g_autofree char *inside_up = make_dir(t, "local/upper/work");
	g_autofree char *inside_wk = make_dir(t, "local/work/upper");

	expect_error(t, parse_validate(t, t->lower, t->upper, t->upper, t->mnt),
		     SFS_EXIT_LAYER, t->upper, "also the upperdir");
	expect_error(t, parse_validate(t, t->lower, t->upper, inside_up, t->mnt),
		     SFS_EXIT_LAYER, S(t, "workdir %s is inside", inside_up),
		     t->upper);
	expect_error(t, parse_validate(t, t->lower, inside_wk, t->work, t->mnt),
		     SFS_EXIT_LAYER, S(t, "upperdir %s is inside", inside_wk),
		     t->work);
}

static void test_validate_upper_in_shared(void **state)
{
	struct t *t = *state;
	g_autofree char *up = make_dir(t, "lower2/up");
	g_autofree char *wk = make_dir(t, "lower2/wk");
	g_autofree char *low_in_up = make_dir(t, "local/upper/shared");

	expect_error(t,
		     parse_validate(t, S(t, "%s:%s", t->lower, t->lower2), up,
				    wk, t->mnt),
		     SFS_EXIT_LAYER, S(t, "upperdir %s is inside", up),
		     t->lower2);
	expect_error(t, parse_validate(t, t->lower, t->lower, t->work, t->mnt),
		     SFS_EXIT_LAYER, S(t, "upperdir %s", t->lower),
		     "shared layer");
	expect_error(t, parse_validate(t, t->lower2, t->upper, wk, t->mnt),
		     SFS_EXIT_LAYER, S(t, "workdir %s is inside", wk),
		     t->lower2);
	expect_error(t, parse_validate(t, low_in_up, t->upper, t->work, t->mnt),
		     SFS_EXIT_LAYER, S(t, "shared layer %s is inside", low_in_up),
		     t->upper);
}

static void test_validate_mountpoint_nesting(void **state)
{
	struct t *t = *state;
	g_autofree char *low_in_mnt = make_dir(t, "mnt/shared");
	g_autofree char *up_in_mnt = make_dir(t, "mnt/up");
	g_autofree char *mnt_in_low = make_dir(t, "lower/mnt");
	g_autofree char *mnt_in_up = make_dir(t, "local/upper/mnt");

	expect_error(t, parse_validate(t, low_in_mnt, t->upper, t->work, t->mnt),
		     SFS_EXIT_LAYER, S(t, "shared layer %s is inside", low_in_mnt),
		     S(t, "mount point %s", t->mnt));
	expect_error(t, parse_validate(t, t->lower, up_in_mnt, t->work, t->mnt),
		     SFS_EXIT_LAYER, S(t, "upperdir %s is inside", up_in_mnt),
		     t->mnt);
	g_autofree char *wk_in_mnt = make_dir(t, "mnt/wk");
	expect_error(t, parse_validate(t, t->lower, t->upper, wk_in_mnt, t->mnt),
		     SFS_EXIT_LAYER, S(t, "workdir %s is inside", wk_in_mnt),
		     t->mnt);
	expect_error(t, parse_validate(t, t->lower, t->upper, t->work, mnt_in_low),
		     SFS_EXIT_LAYER, S(t, "mount point %s is inside", mnt_in_low),
		     t->lower);
	expect_error(t, parse_validate(t, t->lower, t->upper, t->work, mnt_in_up),
		     SFS_EXIT_LAYER, S(t, "mount point %s is inside", mnt_in_up),
		     t->upper);
	expect_error(t, parse_validate(t, t->lower, t->upper, t->work, t->lower),
		     SFS_EXIT_LAYER, S(t, "shared layer %s", t->lower),
		     "mount point");
}

static void test_validate_mountpoint(void **state)
{
	struct t *t = *state;
	const char *missing = S(t, "%s/nomnt", t->root);
	const char *file = S(t, "%s/filemnt", t->root);

	touch(file);
	expect_error(t, parse_validate(t, t->lower, t->upper, t->work, missing),
		     SFS_EXIT_MOUNTPOINT, S(t, "mount point %s", missing),
		     "does not exist");
	expect_error(t, parse_validate(t, t->lower, t->upper, t->work, file),
		     SFS_EXIT_MOUNTPOINT, S(t, "mount point %s", file),
		     "not a directory");
	/* a FUSE fd passed by mount.fuse3 -o drop_privileges */
	expect_ok(t, parse_validate(t, t->lower, t->upper, t->work,
				    "/dev/fd/9"));
}

static bool have_fuse(void)
{
	return geteuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0;
}

/* A FUSE mount whose daemon is gone: its fd is closed before INIT. */
static void test_validate_stale_mount(void **state)
{
	struct t *t = *state;

	if (!have_fuse())
		skip();
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	g_autofree char *opts = g_strdup_printf(
		"fd=%d,rootmode=40000,user_id=0,group_id=0", fd);
	if (mount("scratch", t->mnt, "fuse.scratchfs", MS_NOSUID | MS_NODEV,
		  opts) != 0) {
		close(fd);
		skip();
	}
	t->mounted = g_strdup(t->mnt);
	close(fd);
	struct stat st;
	if (stat(t->mnt, &st) == 0 || errno != ENOTCONN)
		fail_msg("expected ENOTCONN from the stale mount");

	expect_error(t, parse_validate(t, t->lower, t->upper, t->work, t->mnt),
		     SFS_EXIT_MOUNTPOINT, S(t, "mount point %s", t->mnt),
		     S(t, "fusermount3 -u %s", t->mnt));
	assert_non_null(strstr(t->err->message, "stale"));
}

/* A live FUSE mount, served by libfuse in a thread. */
static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st = { .st_ino = ino, .st_mode = S_IFDIR | 0755,
			   .st_nlink = 2 };
	fuse_reply_attr(req, &st, 0);
}

static gpointer fs_loop(gpointer se)
{
	fuse_session_loop(se);
	return NULL;
}

struct live_mount {
	struct fuse_session *se;
	GThread *thread;
};

static bool live_mount(const char *dir, const char *subtype,
		       struct live_mount *m)
{
	static const struct fuse_lowlevel_ops ops = { .getattr = fs_getattr };
	g_autofree char *opt = g_strdup_printf("subtype=%s,fsname=test",
					       subtype);
	char *argv[] = { "test", "-o", opt, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);

	m->se = fuse_session_new(&args, &ops, sizeof ops, NULL);
	fuse_opt_free_args(&args);
	if (!m->se)
		return false;
	if (fuse_session_mount(m->se, dir) != 0) {
		fuse_session_destroy(m->se);
		return false;
	}
	m->thread = g_thread_new("fuse", fs_loop, m->se);
	return true;
}

static void live_unmount(struct live_mount *m)
{
	fuse_session_exit(m->se);
	fuse_session_unmount(m->se);
	g_thread_join(m->thread);
	fuse_session_destroy(m->se);
}

static void test_validate_already_mounted(void **state)
{
	struct t *t = *state;
	struct live_mount m;

	if (!have_fuse())
		skip();
	if (!live_mount(t->mnt, "scratchfs", &m))
		skip();
	bool ok = parse_validate(t, t->lower, t->upper, t->work, t->mnt);
	live_unmount(&m);
	expect_error(t, ok, SFS_EXIT_MOUNTPOINT, S(t, "mount point %s", t->mnt),
		     "already a scratchfs mount");

	/* another FUSE filesystem there is no reason to refuse */
	if (!live_mount(t->mnt, "notscratch", &m))
		skip();
	ok = parse_validate(t, t->lower, t->upper, t->work, t->mnt);
	live_unmount(&m);
	expect_ok(t, ok);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_shared_and_mountpoint),
		T(test_relative_paths),
		T(test_all_o_options),
		T(test_no_open),
		T(test_lowerdir_escapes),
		T(test_source_is_name_with_lowerdir),
		T(test_single_positional_is_mountpoint),
		T(test_positional_count),
		T(test_flags),
		T(test_help_version),
		T(test_limits_and_loglevel),
		T(test_status_and_fsck_args),
		T(test_unknown_options),
		T(test_mount_helper_options_ignored),
		T(test_timeout_values),
		T(test_speed_options),
		T(test_default_permissions),
		T(test_allow_other_root_default),
		T(test_unprivileged_defaults),
		T(test_escape_path),
		T(test_upper_without_work),
		T(test_config_missing),
		T(test_config_mountpoint_only),
		T(test_config_precedence),
		T(test_config_lowerdir_precedence),
		T(test_config_option_c),
		T(test_config_syntax_errors),
		T(test_config_bad_keys_and_values),
		T(test_validate_ok_and_realpaths),
		T(test_validate_default_upper_created),
		T(test_validate_no_shared_layer),
		T(test_validate_shared_layer),
		T(test_validate_upper_work_dirs),
		T(test_validate_same_filesystem),
		T(test_validate_upper_work_nesting),
		T(test_validate_upper_in_shared),
		T(test_validate_mountpoint_nesting),
		T(test_validate_mountpoint),
		T(test_validate_stale_mount),
		T(test_validate_already_mounted),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
