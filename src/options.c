/* options.c - one struct sfs_config from the command line, the -o mount
 * options and the config file.
 *
 * Parsing (sfs_config_parse) only reads argv and the config file; all
 * checks that look at directories live in sfs_config_validate
 * (validate.c), so that `scratchfs --help` works anywhere and the checks
 * run in one place.
 *
 * Every -o option is also a config file key (read by config_file.c), and
 * both go through apply_option(); the only difference is where a mistake
 * is reported (exit code SFS_EXIT_USAGE with "-o NAME=VALUE", or
 * SFS_EXIT_CONFIG with "FILE:LINE: [GROUP] NAME=VALUE").
 *
 * Precedence, lowest first: built-in defaults (sfs_config_parse), the
 * config file's [defaults] group, its [MOUNTPOINT] group, the command
 * line (SHARED, then the -o options in order).
 */
#include "config.h"

#include "config_file.h"
#include "log.h"
#include "options.h"

#include <math.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TIMEOUT 1000000.0 /* seconds; keeps the kernel's timeouts sane */
#define MAX_BUSY_POLL 10000   /* µs; past that a sleep costs less than the spin */

static const struct sfs_origin cmdline = { SFS_EXIT_USAGE, NULL, NULL, NULL };

/* ------------------------------------------------------------------ */
/* Small helpers. */

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1", NULL };
	static const char *const no[] = { "false", "no", "off", "0", NULL };

	for (int i = 0; yes[i]; i++) {
		if (g_ascii_strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (g_ascii_strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* s cut at each `sep`, where "\SEP" stands for SEP inside an item: the
 * items of -o (',') and of lowerdir= (':').  Empty items are kept. */
static char **split_escaped(const char *s, char sep)
{
	GPtrArray *items = g_ptr_array_new();
	GString *cur = g_string_new(NULL);

	for (const char *c = s;; c++) {
		if (*c == '\\' && c[1] == sep) {
			g_string_append_c(cur, sep);
			c++;
		} else if (*c != sep && *c != '\0') {
			g_string_append_c(cur, *c);
		} else {
			g_ptr_array_add(items, g_strdup(cur->str));
			g_string_truncate(cur, 0);
			if (*c == '\0')
				break;
		}
	}
	g_string_free(cur, TRUE);
	g_ptr_array_add(items, NULL);
	return (char **)g_ptr_array_free(items, FALSE);
}

char *sfs_escape_path(const char *path)
{
	g_autofree char *canon = g_canonicalize_filename(path, "/");
	const char *s = canon;

	while (*s == '/')
		s++;
	if (!*s)
		return g_strdup("-");

	GString *out = g_string_new(NULL);
	for (const char *c = s; *c; c++) {
		if (*c == '/')
			g_string_append_c(out, '-');
		else if (g_ascii_isalnum(*c) || *c == ':' || *c == '_' ||
			 (*c == '.' && c != s))
			g_string_append_c(out, *c);
		else
			g_string_append_printf(out, "\\x%02x",
					       (unsigned)(unsigned char)*c);
	}
	return g_string_free(out, FALSE);
}

const char *sfs_default_state_dir(void)
{
	static char *dir; /* recomputed per call: euid and env may change */
	uid_t uid = geteuid();

	g_free(dir);
	if (uid == 0) {
		dir = g_strdup(SFS_DEFAULT_STATE_DIR);
		return dir;
	}
	const char *xdg = g_getenv("XDG_CACHE_HOME");
	if (xdg && g_path_is_absolute(xdg)) {
		dir = g_build_filename(xdg, "scratchfs", NULL);
		return dir;
	}
	const char *home = g_getenv("HOME");
	if (!home || !g_path_is_absolute(home)) {
		struct passwd *pw = getpwuid(uid);
		home = pw && pw->pw_dir ? pw->pw_dir : "/";
	}
	dir = g_build_filename(home, ".cache", "scratchfs", NULL);
	return dir;
}

/* ------------------------------------------------------------------ */
/* The options. */

enum opt_type {
	OT_LOWERDIR,
	OT_UPPERDIR,
	OT_WORKDIR,
	OT_TIMEOUT,
	OT_FSNAME,
	OT_SIZE,        /* guint64 field at `off`: bytes, K/M/G/T suffixes */
	OT_COUNT,       /* guint64 field at `off`: a plain number */
	OT_LOGLEVEL,
	OT_BUSY_POLL,
	OT_BOOL,        /* bool field at `off`; NAME, noNAME, NAME=BOOL */
	OT_DEFAULT_PERMISSIONS,
	OT_IGNORE,      /* passed by mount(8) / mount.fuse3: no meaning here */
	OT_MOUNT_FLAG,  /* a generic flag for the kernel: cfg->mount_flags */
};

struct opt_def {
	const char *name;
	enum opt_type type;
	size_t off;
	bool cmdline_only; /* not a config file key */
};

#define BOOL_OPT(n, field) { n, OT_BOOL, offsetof(struct sfs_config, field), false }
#define IGNORED(n) { n, OT_IGNORE, 0, true }
#define MOUNT_FLAG(n) { n, OT_MOUNT_FLAG, 0, true }

static const struct opt_def opt_defs[] = {
	{ "lowerdir", OT_LOWERDIR, 0, false },
	{ "upperdir", OT_UPPERDIR, 0, false },
	{ "workdir", OT_WORKDIR, 0, false },
	{ "timeout", OT_TIMEOUT, 0, false },
	{ "fsname", OT_FSNAME, 0, false },
	{ "upper_limit", OT_SIZE, offsetof(struct sfs_config, upper_limit), false },
	{ "upper_inodes", OT_COUNT, offsetof(struct sfs_config, upper_inodes), false },
	{ "loglevel", OT_LOGLEVEL, 0, false },
	BOOL_OPT("allow_other", allow_other),
	BOOL_OPT("ro", read_only),
	BOOL_OPT("metacopy", metacopy),
	BOOL_OPT("writeback_cache", writeback_cache),
	BOOL_OPT("multithread", multithread),
	BOOL_OPT("no_open", no_open), /* "nono_open" turns it off */
	BOOL_OPT("no_opendir", no_opendir),
	BOOL_OPT("passthrough", passthrough),
	{ "busy_poll", OT_BUSY_POLL, 0, false },
	{ "default_permissions", OT_DEFAULT_PERMISSIONS, 0, false },
	IGNORED("rw"), IGNORED("defaults"), IGNORED("nofail"),
	IGNORED("_netdev"), IGNORED("auto"), IGNORED("noauto"),
	IGNORED("user"), IGNORED("nouser"), IGNORED("users"),
	/* atime flags libfuse 3.14 cannot pass on (it refuses the mount):
	 * a FUSE mount's atimes are the daemon's business anyway. */
	IGNORED("relatime"), IGNORED("norelatime"), IGNORED("strictatime"),
	IGNORED("nostrictatime"), IGNORED("diratime"), IGNORED("nodiratime"),
	IGNORED("lazytime"), IGNORED("nolazytime"),
	/* The flags libfuse turns into mount(2) flags. */
	MOUNT_FLAG("dev"), MOUNT_FLAG("nodev"), MOUNT_FLAG("suid"),
	MOUNT_FLAG("nosuid"), MOUNT_FLAG("exec"), MOUNT_FLAG("noexec"),
	MOUNT_FLAG("sync"), MOUNT_FLAG("async"), MOUNT_FLAG("dirsync"),
	MOUNT_FLAG("atime"), MOUNT_FLAG("noatime"),
};

static const struct opt_def *find_opt(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(opt_defs); i++)
		if (strcmp(opt_defs[i].name, name) == 0)
			return &opt_defs[i];
	return NULL;
}

struct sfs_parser {
	struct sfs_config *cfg;
	GString *mount_flags;
};

/* An absolute, canonical path from an option value.  Relative paths are
 * taken relative to the working directory on the command line and
 * refused in the config file (whose working directory is anyone's). */
static char *option_path(const struct sfs_origin *o, const char *name,
			 const char *value, const char *path, GError **err)
{
	if (!*path) {
		sfs_option_error(err, o, name, value, "empty directory name");
		return NULL;
	}
	if (o->file && !g_path_is_absolute(path)) {
		sfs_option_error(err, o, name, value,
				 "'%s' is not an absolute path", path);
		return NULL;
	}
	return g_canonicalize_filename(path, NULL);
}

/* lowerdir=A:B:C; "\:" stands for a ':' inside a name. */
static char **parse_lowerdirs(const struct sfs_origin *o, const char *value,
			      GError **err)
{
	char **dirs = split_escaped(value, ':');

	for (size_t i = 0; dirs[i]; i++) {
		char *path = option_path(o, "lowerdir", value, dirs[i], err);
		if (!path) {
			g_strfreev(dirs);
			return NULL;
		}
		g_free(dirs[i]);
		dirs[i] = path;
	}
	return dirs;
}

/* "10G", "512M", "4096": binary multiples, a plain number is bytes (or
 * a count, without suffixes).  false if malformed or past 2^63. */
static bool parse_size(const char *value, bool suffixes, guint64 *out)
{
	static const char units[] = "KMGT";
	char *end = NULL;
	if (!g_ascii_isdigit(*value))
		return false;
	guint64 v = g_ascii_strtoull(value, &end, 10);
	int shift = 0;
	const char *u = suffixes && *end ? strchr(units, g_ascii_toupper(*end)) : NULL;
	if (u) {
		shift = 10 * (int)(u - units + 1);
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
	}
	if (*end || v > ((guint64)G_MAXINT64 >> shift))
		return false;
	*out = v << shift;
	return true;
}

/* Apply one option.  value is NULL for a bare "-o name". */
static bool apply_option(struct sfs_parser *p, const struct sfs_origin *o,
			 const char *name, const char *value, GError **err)
{
	struct sfs_config *cfg = p->cfg;
	bool negated = false;
	const struct opt_def *d = find_opt(name);

	if (!d && g_str_has_prefix(name, "no")) {
		d = find_opt(name + 2);
		if (d && d->type != OT_BOOL &&
		    d->type != OT_DEFAULT_PERMISSIONS)
			d = NULL;
		negated = d != NULL;
	}
	if (!d && !o->file &&
	    (g_str_has_prefix(name, "x-") || strcmp(name, "comment") == 0))
		return true; /* fstab annotations for mount(8) and systemd */
	if (!d || (o->file && d->cmdline_only)) {
		sfs_option_error(err, o, name, value, "unknown option (see %s)",
				 o->file ? "scratchfs.conf(5)" : "--help");
		return false;
	}
	if (negated && o->file) {
		sfs_option_error(err, o, name, value,
				 "unknown key (write %s=false)", d->name);
		return false;
	}

	switch (d->type) {
	case OT_IGNORE:
		return true;
	case OT_MOUNT_FLAG:
		if (p->mount_flags->len)
			g_string_append_c(p->mount_flags, ',');
		g_string_append(p->mount_flags, name);
		return true;
	case OT_BOOL:
	case OT_DEFAULT_PERMISSIONS: {
		bool v = !negated;
		if (value && (negated || !parse_bool(value, &v))) {
			sfs_option_error(err, o, name, value,
					 "expected on or off (true/false, yes/no, 1/0)");
			return false;
		}
		if (d->type == OT_DEFAULT_PERMISSIONS) {
			if (!v) {
				sfs_option_error(err, o, name, value,
						 "refused: shared mounts (allow_other) always have the kernel check permissions; without that check any user could read anything");
				return false;
			}
			return true;
		}
		*(bool *)((char *)cfg + d->off) = v;
		return true;
	}
	default:
		break;
	}

	if (!value) {
		sfs_option_error(err, o, name, value, "needs a value (%s=...)",
				 name);
		return false;
	}
	switch (d->type) {
	case OT_LOWERDIR: {
		char **dirs = parse_lowerdirs(o, value, err);
		if (!dirs)
			return false;
		g_strfreev(cfg->lowerdirs);
		cfg->lowerdirs = dirs;
		return true;
	}
	case OT_UPPERDIR:
	case OT_WORKDIR: {
		char *path = option_path(o, name, value, value, err);
		if (!path)
			return false;
		char **field = d->type == OT_UPPERDIR ? &cfg->upperdir
						      : &cfg->workdir;
		g_free(*field);
		*field = path;
		return true;
	}
	case OT_TIMEOUT: {
		char *end = NULL;
		double t = g_ascii_strtod(value, &end);
		/* plain decimal only: no spaces, hex, "inf" or "nan" */
		if (!*value || value[strspn(value, "0123456789.eE+-")] ||
		    *end || !isfinite(t) || t < 0 ||
		    t > MAX_TIMEOUT) {
			sfs_option_error(err, o, name, value,
					 "expected a number of seconds from 0 to %.0f (e.g. 1 or 0.5)",
					 MAX_TIMEOUT);
			return false;
		}
		cfg->timeout = t;
		return true;
	}
	case OT_SIZE:
	case OT_COUNT: {
		guint64 v;
		if (!parse_size(value, d->type == OT_SIZE, &v)) {
			sfs_option_error(err, o, name, value,
					 d->type == OT_SIZE
						 ? "expected a size in bytes with an optional K, M, G or T suffix (e.g. 9G)"
						 : "expected a whole number (0: no limit)");
			return false;
		}
		*(guint64 *)((char *)cfg + d->off) = v;
		return true;
	}
	case OT_LOGLEVEL: {
		int level = sfs_log_level_parse(value);
		if (level < 0) {
			sfs_option_error(err, o, name, value,
					 "expected error, warn, info or debug");
			return false;
		}
		cfg->loglevel = level;
		return true;
	}
	case OT_BUSY_POLL: {
		guint64 us;
		if (!g_ascii_string_to_unsigned(value, 10, 0, MAX_BUSY_POLL, &us,
						NULL)) {
			sfs_option_error(err, o, name, value,
					 "expected microseconds from 0 to %d",
					 MAX_BUSY_POLL);
			return false;
		}
		cfg->busy_poll = (unsigned)us;
		return true;
	}
	case OT_FSNAME:
		if (!*value) {
			sfs_option_error(err, o, name, value, "empty name");
			return false;
		}
		g_free(cfg->fsname);
		cfg->fsname = g_strdup(value);
		return true;
	default:
		g_assert_not_reached();
	}
}

/* One -o argument: comma-separated, "\," for a comma inside a value. */
static bool apply_cmdline_options(struct sfs_parser *p, const char *arg,
				  GError **err)
{
	g_auto(GStrv) items = split_escaped(arg, ',');

	for (size_t i = 0; items[i]; i++) {
		if (!*items[i])
			continue;
		char *eq = strchr(items[i], '=');
		if (eq)
			*eq = '\0';
		if (!apply_option(p, &cmdline, items[i], eq ? eq + 1 : NULL,
				  err))
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* The command line. */

/* --status, --fsck, --repair, --format=: true if a was one of them;
 * false with err set if its value was wrong, false alone if a is
 * something else. */
static bool parse_long_action(const char *a, struct sfs_config *cfg,
			      GError **err)
{
	static const char *const formats[] = { "human", "json", "prometheus" };
	if (strcmp(a, "--status") == 0 || strcmp(a, "--fsck") == 0) {
		cfg->action = a[2] == 's' ? SFS_ACTION_STATUS : SFS_ACTION_FSCK;
		return true;
	}
	if (strcmp(a, "--repair") == 0) {
		cfg->repair = true;
		return true;
	}
	if (!g_str_has_prefix(a, "--format="))
		return false;
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++) {
		if (strcmp(a + 9, formats[i]) == 0) {
			cfg->format = (enum sfs_status_format)i;
			return true;
		}
	}
	g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
		    "%s: expected --format=human, json or prometheus", a);
	return false;
}

static bool parse_args(int argc, char **argv, struct sfs_config *cfg,
		       GPtrArray *oargs, GPtrArray *positional,
		       const char **config_arg, GError **err)
{
	bool options_done = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (options_done || a[0] != '-' || a[1] == '\0') {
			g_ptr_array_add(positional, (gpointer)a);
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		if (a[1] == '-') {
			if (strcmp(a, "--help") == 0) {
				cfg->action = SFS_ACTION_HELP;
				return true;
			}
			if (strcmp(a, "--version") == 0) {
				cfg->action = SFS_ACTION_VERSION;
				return true;
			}
			if (parse_long_action(a, cfg, err))
				continue;
			if (err && *err)
				return false;
			g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
				    "unknown option '%s' (see --help)", a);
			return false;
		}
		for (const char *c = a + 1; *c; c++) {
			switch (*c) {
			case 'f':
				cfg->foreground = true;
				continue;
			case 'd':
				cfg->debug = true;
				continue;
			case 's':
				cfg->single_thread = true;
				continue;
			case 'h':
				cfg->action = SFS_ACTION_HELP;
				return true;
			case 'V':
				cfg->action = SFS_ACTION_VERSION;
				return true;
			case 'o':
			case 'c': {
				const char *v = c[1] ? c + 1 : NULL;
				if (!v && i + 1 < argc)
					v = argv[++i];
				if (!v) {
					g_set_error(err, SFS_ERROR,
						    SFS_EXIT_USAGE,
						    "option -%c needs an argument",
						    *c);
					return false;
				}
				if (*c == 'o')
					g_ptr_array_add(oargs, (gpointer)v);
				else
					*config_arg = v;
				break;
			}
			default:
				g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
					    "unknown option '-%c' (see --help)",
					    *c);
				return false;
			}
			break; /* -o / -c consumed the rest */
		}
	}
	return true;
}

/* scratchfs --status [--format=F] MOUNTPOINT */
static bool parse_status(struct sfs_config *cfg, GPtrArray *positional,
			 GError **err)
{
	if (positional->len != 1 || !*(const char *)positional->pdata[0]) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "usage: scratchfs --status [--format=human|json|prometheus] MOUNTPOINT");
		return false;
	}
	cfg->mountpoint = g_canonicalize_filename(positional->pdata[0], NULL);
	return true;
}

/* scratchfs --fsck [--repair] -o lowerdir=...,upperdir=...,workdir=...
 * Only -o: the check looks at layers, not at a mount's configuration. */
static bool parse_fsck(struct sfs_config *cfg, GPtrArray *oargs,
		       GPtrArray *positional, GError **err)
{
	if (positional->len) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "--fsck takes no mount point: give the layers with -o lowerdir=...,upperdir=...,workdir=...");
		return false;
	}
	struct sfs_parser p = { cfg, g_string_new(NULL) };
	bool ok = true;
	for (guint i = 0; ok && i < oargs->len; i++)
		ok = apply_cmdline_options(&p, oargs->pdata[i], err);
	g_string_free(p.mount_flags, TRUE);
	if (ok && (!cfg->lowerdirs || !cfg->upperdir || !cfg->workdir)) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "--fsck needs -o lowerdir=...,upperdir=...,workdir=...");
		ok = false;
	}
	return ok;
}

static bool parse(int argc, char **argv, const char *default_config,
		  const char *state_dir, struct sfs_config *cfg, GError **err)
{
	g_autoptr(GPtrArray) oargs = g_ptr_array_new();
	g_autoptr(GPtrArray) positional = g_ptr_array_new();
	const char *config_arg = NULL;

	if (!parse_args(argc, argv, cfg, oargs, positional, &config_arg, err))
		return false;
	if (cfg->action == SFS_ACTION_HELP || cfg->action == SFS_ACTION_VERSION)
		return true;
	if (cfg->repair && cfg->action != SFS_ACTION_FSCK) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "--repair goes with --fsck");
		return false;
	}
	if (cfg->format != SFS_FORMAT_HUMAN && cfg->action != SFS_ACTION_STATUS) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "--format goes with --status");
		return false;
	}
	if (cfg->action == SFS_ACTION_STATUS)
		return parse_status(cfg, positional, err);
	if (cfg->action == SFS_ACTION_FSCK)
		return parse_fsck(cfg, oargs, positional, err);
	cfg->foreground = cfg->foreground || cfg->debug;
	if (cfg->debug)
		cfg->loglevel = SFS_LOG_DEBUG;

	if (positional->len == 0) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "no mount point given (usage: scratchfs [OPTIONS] [SHARED] MOUNTPOINT; see --help)");
		return false;
	}
	if (positional->len > 2) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "too many arguments, starting at '%s' (usage: scratchfs [OPTIONS] [SHARED] MOUNTPOINT)",
			    (const char *)positional->pdata[2]);
		return false;
	}
	const char *mp = positional->pdata[positional->len - 1];
	if (!*mp) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "empty mount point name");
		return false;
	}
	cfg->mountpoint = g_canonicalize_filename(mp, NULL);
	if (positional->len == 2 && *(const char *)positional->pdata[0])
		cfg->source = g_strdup(positional->pdata[0]);

	struct sfs_parser p = { cfg, g_string_new(NULL) };
	bool ok = false;

	if (config_arg)
		cfg->config_file = g_canonicalize_filename(config_arg, NULL);
	else
		cfg->config_file = g_strdup(default_config ? default_config
							   : SFS_DEFAULT_CONFIG);
	if (!sfs_config_file_load(cfg->config_file, config_arg != NULL,
				  cfg->mountpoint, apply_option, &p, err))
		goto out;

	/* SHARED is command line, so it beats the config file; -o lowerdir=
	 * beats SHARED, which is then only a name (as with mount -t overlay). */
	if (cfg->source) {
		g_strfreev(cfg->lowerdirs);
		cfg->lowerdirs = g_new0(char *, 2);
		cfg->lowerdirs[0] = g_canonicalize_filename(cfg->source, NULL);
	}
	for (guint i = 0; i < oargs->len; i++)
		if (!apply_cmdline_options(&p, oargs->pdata[i], err))
			goto out;

	if (!cfg->fsname)
		cfg->fsname = g_strdup(cfg->source ? cfg->source : "scratchfs");

	if (!cfg->upperdir && !cfg->workdir) {
		g_autofree char *esc = sfs_escape_path(cfg->mountpoint);
		const char *sd = state_dir ? state_dir : sfs_default_state_dir();
		cfg->upperdir = g_build_filename(sd, esc, "upper", NULL);
		cfg->workdir = g_build_filename(sd, esc, "work", NULL);
		cfg->upper_is_default = true;
	} else if (!cfg->workdir || !cfg->upperdir) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "%s=%s is set but %s= is not: give both upperdir= and workdir= (or neither, for the built-in default)",
			    cfg->upperdir ? "upperdir" : "workdir",
			    cfg->upperdir ? cfg->upperdir : cfg->workdir,
			    cfg->upperdir ? "workdir" : "upperdir");
		goto out;
	}
	if (p.mount_flags->len)
		cfg->mount_flags = g_strdup(p.mount_flags->str);
	ok = true;
out:
	g_string_free(p.mount_flags, TRUE);
	return ok;
}

bool sfs_config_parse(int argc, char **argv, const char *default_config,
		      const char *state_dir, struct sfs_config *cfg,
		      GError **err)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->action = SFS_ACTION_MOUNT;
	cfg->timeout = 1.0;
	cfg->metacopy = true;
	cfg->no_open = false;
	cfg->multithread = true; /* measured: see tests/bench/RESULTS.md */
	cfg->passthrough = true;
	cfg->no_opendir = true;
	cfg->busy_poll = 50;     /* measured: see tests/bench/RESULTS.md */
	cfg->allow_other = geteuid() == 0;
	cfg->loglevel = SFS_LOG_WARN;

	if (parse(argc, argv, default_config, state_dir, cfg, err))
		return true;
	sfs_config_clear(cfg);
	return false;
}

void sfs_config_clear(struct sfs_config *cfg)
{
	g_free(cfg->mountpoint);
	g_free(cfg->source);
	g_strfreev(cfg->lowerdirs);
	g_free(cfg->upperdir);
	g_free(cfg->workdir);
	g_free(cfg->fsname);
	g_free(cfg->config_file);
	g_free(cfg->mount_flags);
	memset(cfg, 0, sizeof *cfg);
}

/* ------------------------------------------------------------------ */

void sfs_print_help(FILE *out, const char *progname)
{
	fprintf(out,
		"usage: %s [OPTIONS] [SHARED] MOUNTPOINT\n"
		"\n"
		"Mount at MOUNTPOINT one tree that stacks a local writable layer\n"
		"(upperdir) over read-only shared layers (SHARED or lowerdir=).\n"
		"Everything written lands in the local layer; the shared layers\n"
		"are never modified.  Hardlinks work across the whole mount.\n"
		"\n"
		"Options:\n"
		"    -f                     stay in the foreground\n"
		"    -d                     print every FUSE request (implies -f)\n"
		"    -s                     single-threaded request loop\n"
		"    -c FILE                config file (default %s)\n"
		"    -h, --help             print this help and exit\n"
		"    -V, --version          print the version and exit\n"
		"\n"
		"    --status [--format=human|json|prometheus] MOUNTPOINT\n"
		"                           print a running mount's counters and exit\n"
		"    --fsck [--repair] -o lowerdir=...,upperdir=...,workdir=...\n"
		"                           check (and repair) an unmounted local layer;\n"
		"                           exit 0 clean, 1 repaired, 4 problems left,\n"
		"                           8 could not run (layer in use)\n"
		"\n"
		"Mount options (-o opt[,opt...]; the same keys work in the config file):\n"
		"    -o lowerdir=DIR[:DIR...]   shared layers, leftmost on top; when given,\n"
		"                               SHARED is only a name (as with mount -t overlay)\n"
		"    -o upperdir=DIR            local layer: everything written lands here\n"
		"    -o workdir=DIR             empty directory on the same filesystem as upperdir\n"
		"    -o timeout=SECONDS         cache time of names that depend on a shared\n"
		"                               layer (default 1; local ones: a day)\n"
		"    -o metacopy=on|off         link/chmod/chown/utimes of a shared file copy\n"
		"                               only its metadata (default on)\n"
		"    -o writeback_cache         let the kernel cache writes\n"
		"    -o no_open=on|off          no OPEN/RELEASE round trips: the kernel keeps file data cached across opens (default off)\n"
		"    -o no_opendir=on|off       no OPENDIR/RELEASEDIR round trips: the kernel keeps\n"
		"                               listings (default on)\n"
		"    -o multithread             worker threads for requests that may block\n"
		"                               (default on; -s or -o nomultithread: none)\n"
		"    -o busy_poll=USEC          the reader spins up to this long for the next\n"
		"                               request while that pays (default 50; 0: never)\n"
		"    -o passthrough=on|off      file reads and writes go from the kernel to the\n"
		"                               layer's file without the daemon (default on;\n"
		"                               needs CAP_SYS_ADMIN and Linux >= 6.9)\n"
		"    -o allow_other             let every user use the mount (default as root)\n"
		"    -o noallow_other           only the mounting user may use the mount\n"
		"    -o default_permissions     the kernel checks permissions (always, with\n"
		"                               allow_other)\n"
		"    -o ro                      read-only mount\n"
		"    -o fsname=NAME             source name in /proc/mounts (default SHARED)\n"
		"    -o upper_limit=SIZE        the local layer may hold SIZE bytes (K/M/G/T\n"
		"                               suffixes); past it writes fail with ENOSPC\n"
		"                               and df shows SIZE (default: no limit)\n"
		"    -o upper_inodes=N          the local layer may hold N inodes (default:\n"
		"                               no limit)\n"
		"    -o loglevel=LEVEL          error, warn (default), info (one line per\n"
		"                               copy-up) or debug\n"
		"\n"
		"Generic mount flags, passed to the kernel as mount(8) does: nodev, dev,\n"
		"nosuid, suid, noexec, exec, sync, async, dirsync, noatime, atime (run\n"
		"directly, scratchfs mounts nosuid,nodev unless suid or dev is given;\n"
		"mount(8) through mount.fuse3 asks for suid,dev).\n"
		"\n"
		"Accepted and ignored, for mount(8) and fstab: rw, defaults, nofail, _netdev,\n"
		"auto, noauto, user, users, x-*, relatime, strictatime, lazytime,\n"
		"diratime, nodiratime and their no- forms (FUSE atimes are the daemon's).\n"
		"\n"
		"Without upperdir= and workdir=, the local layer is\n"
		"STATE/ESCAPED-MOUNTPOINT/upper and .../work, created on demand, where\n"
		"STATE is %s as root and\n"
		"$XDG_CACHE_HOME/scratchfs (~/.cache/scratchfs) otherwise.\n"
		"\n"
		"See scratchfs(8) and scratchfs.conf(5).\n",
		progname, SFS_DEFAULT_CONFIG, SFS_DEFAULT_STATE_DIR);
}
