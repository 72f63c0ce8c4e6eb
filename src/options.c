/* options.c - one struct sfs_config from the command line, the -o mount
 * options and the config file (GKeyFile).
 *
 * Parsing (sfs_config_parse) only reads argv and the config file; all
 * checks that look at directories live in sfs_config_validate, so that
 * `scratchfs --help` works anywhere and the checks run in one place.
 *
 * Every -o option is also a config file key, and both go through
 * apply_option(); the only difference is where a mistake is reported
 * (exit code SFS_EXIT_USAGE with "-o NAME=VALUE", or SFS_EXIT_CONFIG with
 * "FILE:LINE: [GROUP] NAME=VALUE").
 */
#include "config.h"

#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(scratchfs-error-quark, sfs_error)

#define MOUNTINFO "/proc/self/mountinfo"
#define MAX_TIMEOUT 1000000.0 /* seconds; keeps the kernel's timeouts sane */

/* ------------------------------------------------------------------ */
/* Where an option came from, for error messages. */

struct origin {
	int code;             /* SFS_EXIT_USAGE or SFS_EXIT_CONFIG */
	const char *file;     /* config file, NULL for the command line */
	const char *contents; /* its text, to find line numbers */
	const char *group;
};

static const struct origin cmdline = { SFS_EXIT_USAGE, NULL, NULL, NULL };

/* Line (1-based) of `key` in `[group]` of a key file's text, or of the
 * group header when key is NULL; 0 when not found. */
static unsigned find_line(const char *text, const char *group,
			  const char *key)
{
	unsigned lineno = 0;
	bool in_group = false;
	size_t glen = strlen(group);

	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		lineno++;
		while (len && g_ascii_isspace(*line)) {
			line++;
			len--;
		}
		while (len && g_ascii_isspace(line[len - 1]))
			len--;
		if (len >= 2 && line[0] == '[' && line[len - 1] == ']') {
			in_group = len - 2 == glen &&
				   memcmp(line + 1, group, glen) == 0;
			if (in_group && !key)
				return lineno;
		} else if (in_group && key && len && line[0] != '#') {
			const char *eq = memchr(line, '=', len);
			if (eq) {
				size_t klen = (size_t)(eq - line);
				while (klen && g_ascii_isspace(line[klen - 1]))
					klen--;
				if (klen == strlen(key) &&
				    memcmp(line, key, klen) == 0)
					return lineno;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return 0;
}

/* "-o NAME=VALUE: problem" or "FILE:LINE: [GROUP] NAME=VALUE: problem". */
G_GNUC_PRINTF(5, 6)
static void option_error(GError **err, const struct origin *o,
			 const char *name, const char *value,
			 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *problem = g_strdup_vprintf(fmt, ap);
	va_end(ap);

	g_autofree char *opt = value ? g_strdup_printf("%s=%s", name, value)
				     : g_strdup(name);
	if (!o->file) {
		g_set_error(err, SFS_ERROR, o->code, "-o %s: %s", opt, problem);
		return;
	}
	unsigned line = find_line(o->contents, o->group, name);
	g_autofree char *where = line ? g_strdup_printf("%s:%u", o->file, line)
				      : g_strdup(o->file);
	g_set_error(err, SFS_ERROR, o->code, "%s: [%s] %s: %s", where,
		    o->group, opt, problem);
}

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

/* child == parent, or child below parent (both absolute, canonical). */
static bool path_within(const char *child, const char *parent)
{
	size_t n = strlen(parent);

	if (strcmp(parent, "/") == 0)
		return true;
	return strncmp(child, parent, n) == 0 &&
	       (child[n] == '\0' || child[n] == '/');
}

/* The path, single-quoted for a shell only if it needs it. */
static char *shell_word(const char *s)
{
	for (const char *c = s; *c; c++)
		if (!g_ascii_isalnum(*c) && !strchr("/._-+:@,=%", *c))
			return g_shell_quote(s);
	return g_strdup(s);
}

static bool is_dev_fd(const char *path)
{
	const char *p = path;

	if (!g_str_has_prefix(p, "/dev/fd/"))
		return false;
	p += strlen("/dev/fd/");
	if (!*p)
		return false;
	for (; *p; p++)
		if (!g_ascii_isdigit(*p))
			return false;
	return true;
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

/* The mount point with its parent directory resolved (realpath), without
 * touching the mount point itself: it may be a hung or stale FUSE mount.
 * NULL when the parent does not resolve. */
static char *resolve_mountpoint(const char *mp)
{
	char buf[8];

	if (strcmp(mp, "/") == 0)
		return g_strdup("/");
	/* A symlink as mount point: follow it like mount(2) would.  On a
	 * mounted directory readlink() fails without asking the daemon. */
	if (readlink(mp, buf, sizeof buf) >= 0)
		return realpath(mp, NULL);

	g_autofree char *parent = g_path_get_dirname(mp);
	g_autofree char *base = g_path_get_basename(mp);
	char *rparent = realpath(parent, NULL);
	if (!rparent)
		return NULL;
	char *res = g_build_filename(rparent, base, NULL);
	free(rparent);
	return res;
}

/* ------------------------------------------------------------------ */
/* The options. */

enum opt_type {
	OT_LOWERDIR,
	OT_UPPERDIR,
	OT_WORKDIR,
	OT_TIMEOUT,
	OT_FSNAME,
	OT_BOOL,        /* bool field at `off`; NAME, noNAME, NAME=BOOL */
	OT_DEFAULT_PERMISSIONS,
	OT_IGNORE,      /* passed by mount(8) / mount.fuse3: no meaning here */
	OT_MOUNT_FLAG,  /* ignored, but recorded in cfg->mount_flags */
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
	BOOL_OPT("allow_other", allow_other),
	BOOL_OPT("ro", read_only),
	BOOL_OPT("metacopy", metacopy),
	BOOL_OPT("writeback_cache", writeback_cache),
	BOOL_OPT("multithread", multithread),
	{ "default_permissions", OT_DEFAULT_PERMISSIONS, 0, false },
	IGNORED("rw"), IGNORED("defaults"), IGNORED("nofail"),
	IGNORED("_netdev"), IGNORED("auto"), IGNORED("noauto"),
	IGNORED("user"), IGNORED("nouser"), IGNORED("users"),
	IGNORED("atime"), IGNORED("relatime"), IGNORED("strictatime"),
	IGNORED("diratime"), IGNORED("lazytime"), IGNORED("nolazytime"),
	IGNORED("norelatime"), IGNORED("nostrictatime"),
	MOUNT_FLAG("dev"), MOUNT_FLAG("nodev"), MOUNT_FLAG("suid"),
	MOUNT_FLAG("nosuid"), MOUNT_FLAG("exec"), MOUNT_FLAG("noexec"),
	MOUNT_FLAG("sync"), MOUNT_FLAG("async"), MOUNT_FLAG("dirsync"),
	MOUNT_FLAG("noatime"), MOUNT_FLAG("nodiratime"),
};

static const struct opt_def *find_opt(const char *name)
{
	for (size_t i = 0; i < G_N_ELEMENTS(opt_defs); i++)
		if (strcmp(opt_defs[i].name, name) == 0)
			return &opt_defs[i];
	return NULL;
}

struct parser {
	struct sfs_config *cfg;
	GString *mount_flags;
};

/* An absolute, canonical path from an option value.  Relative paths are
 * taken relative to the working directory on the command line and
 * refused in the config file (whose working directory is anyone's). */
static char *option_path(const struct origin *o, const char *name,
			 const char *value, const char *path, GError **err)
{
	if (!*path) {
		option_error(err, o, name, value, "empty directory name");
		return NULL;
	}
	if (o->file && !g_path_is_absolute(path)) {
		option_error(err, o, name, value,
			     "'%s' is not an absolute path", path);
		return NULL;
	}
	return g_canonicalize_filename(path, NULL);
}

/* lowerdir=A:B:C; "\:" stands for a ':' inside a name. */
static char **parse_lowerdirs(const struct origin *o, const char *value,
			      GError **err)
{
	g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
	GString *cur = g_string_new(NULL);
	bool ok = true;

	for (const char *c = value;; c++) {
		if (*c == '\\' && c[1] == ':') {
			g_string_append_c(cur, ':');
			c++;
			continue;
		}
		if (*c != ':' && *c != '\0') {
			g_string_append_c(cur, *c);
			continue;
		}
		char *p = option_path(o, "lowerdir", value, cur->str, err);
		if (!p) {
			ok = false;
			break;
		}
		g_ptr_array_add(dirs, p);
		g_string_truncate(cur, 0);
		if (*c == '\0')
			break;
	}
	g_string_free(cur, TRUE);
	if (!ok)
		return NULL;
	g_ptr_array_add(dirs, NULL);
	return (char **)g_ptr_array_free(g_steal_pointer(&dirs), FALSE);
}

/* Apply one option.  value is NULL for a bare "-o name". */
static bool apply_option(struct parser *p, const struct origin *o,
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
		option_error(err, o, name, value, "unknown option (see %s)",
			     o->file ? "scratchfs.conf(5)" : "--help");
		return false;
	}
	if (negated && o->file) {
		option_error(err, o, name, value,
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
			option_error(err, o, name, value,
				     "expected on or off (true/false, yes/no, 1/0)");
			return false;
		}
		if (d->type == OT_DEFAULT_PERMISSIONS) {
			if (!v) {
				option_error(err, o, name, value,
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
		option_error(err, o, name, value, "needs a value (%s=...)",
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
			option_error(err, o, name, value,
				     "expected a number of seconds from 0 to %.0f (e.g. 1 or 0.5)",
				     MAX_TIMEOUT);
			return false;
		}
		cfg->timeout = t;
		return true;
	}
	case OT_FSNAME:
		if (!*value) {
			option_error(err, o, name, value, "empty name");
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
static bool apply_cmdline_options(struct parser *p, const char *arg,
				  GError **err)
{
	GString *item = g_string_new(NULL);
	bool ok = true;

	for (const char *c = arg;; c++) {
		if (*c == '\\' && c[1] == ',') {
			g_string_append_c(item, ',');
			c++;
			continue;
		}
		if (*c != ',' && *c != '\0') {
			g_string_append_c(item, *c);
			continue;
		}
		if (item->len) {
			char *eq = strchr(item->str, '=');
			if (eq)
				*eq = '\0';
			ok = apply_option(p, &cmdline, item->str,
					  eq ? eq + 1 : NULL, err);
			if (!ok)
				break;
			g_string_truncate(item, 0);
		}
		if (*c == '\0')
			break;
	}
	g_string_free(item, TRUE);
	return ok;
}

/* ------------------------------------------------------------------ */
/* The config file. */

static bool read_file(const char *path, bool must_exist, char **contents,
		      GError **err)
{
	*contents = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return true;
		g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
			    "config file %s: %s", path, g_strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
			    "config file %s is a directory", path);
		return false;
	}
	GString *buf = g_string_new(NULL);
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			g_string_free(buf, TRUE);
			g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
				    "config file %s: %s", path, g_strerror(e));
			return false;
		}
		if (n == 0)
			break;
		g_string_append_len(buf, chunk, n);
	}
	close(fd);
	*contents = g_string_free(buf, FALSE);
	return true;
}

/* GKeyFile does not say where a syntax error is: find the first line
 * such that the text up to and including it fails to load.  Config files
 * are a few dozen lines, so the quadratic search costs nothing. */
static unsigned locate_syntax_error(const char *text)
{
	unsigned lineno = 0;

	for (const char *p = text; *p;) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end + 1 - text) : strlen(text);
		lineno++;
		g_autoptr(GKeyFile) kf = g_key_file_new();
		if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE,
					       NULL))
			return lineno;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

static bool group_matches(const char *group, const char *mountpoint,
			  const char *resolved)
{
	if (group[0] != '/')
		return false;
	g_autofree char *g = g_canonicalize_filename(group, "/");
	return strcmp(g, mountpoint) == 0 ||
	       (resolved && strcmp(g, resolved) == 0);
}

static bool apply_group(struct parser *p, GKeyFile *kf, struct origin *o,
			const char *group, GError **err)
{
	g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);

	o->group = group;
	for (size_t i = 0; keys && keys[i]; i++) {
		GError *e = NULL;
		g_autofree char *value = g_key_file_get_string(kf, group,
							       keys[i], &e);
		if (!value) {
			option_error(err, o, keys[i], NULL, "%s", e->message);
			g_error_free(e);
			return false;
		}
		if (!apply_option(p, o, keys[i], value, err))
			return false;
	}
	return true;
}

static bool load_config(struct parser *p, const char *path, bool must_exist,
			GError **err)
{
	g_autofree char *text = NULL;
	GError *e = NULL;

	if (!read_file(path, must_exist, &text, err))
		return false;
	if (!text)
		return true; /* the default file is optional */

	g_autoptr(GKeyFile) kf = g_key_file_new();
	if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE,
				       &e)) {
		unsigned line = locate_syntax_error(text);
		if (line)
			g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
				    "%s:%u: %s", path, line, e->message);
		else
			g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG, "%s: %s",
				    path, e->message);
		g_error_free(e);
		return false;
	}

	struct origin o = { SFS_EXIT_CONFIG, path, text, NULL };
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
	for (size_t i = 0; groups[i]; i++) {
		if (strcmp(groups[i], "defaults") != 0 && groups[i][0] != '/') {
			g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
				    "%s:%u: group [%s] is neither [defaults] nor an absolute mount point path",
				    path, find_line(text, groups[i], NULL),
				    groups[i]);
			return false;
		}
	}
	if (g_key_file_has_group(kf, "defaults") &&
	    !apply_group(p, kf, &o, "defaults", err))
		return false;

	const char *mp = p->cfg->mountpoint;
	g_autofree char *resolved = resolve_mountpoint(mp);
	for (size_t i = 0; groups[i]; i++)
		if (group_matches(groups[i], mp, resolved) &&
		    !apply_group(p, kf, &o, groups[i], err))
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* The command line. */

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

static bool parse(int argc, char **argv, const char *default_config,
		  const char *state_dir, struct sfs_config *cfg, GError **err)
{
	g_autoptr(GPtrArray) oargs = g_ptr_array_new();
	g_autoptr(GPtrArray) positional = g_ptr_array_new();
	const char *config_arg = NULL;

	if (!parse_args(argc, argv, cfg, oargs, positional, &config_arg, err))
		return false;
	if (cfg->action != SFS_ACTION_MOUNT)
		return true;
	cfg->foreground = cfg->foreground || cfg->debug;

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

	struct parser p = { cfg, g_string_new(NULL) };
	bool ok = false;

	if (config_arg)
		cfg->config_file = g_canonicalize_filename(config_arg, NULL);
	else
		cfg->config_file = g_strdup(default_config ? default_config
							   : SFS_DEFAULT_CONFIG);
	if (!load_config(&p, cfg->config_file, config_arg != NULL, err))
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
	cfg->allow_other = geteuid() == 0;

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
/* Validation. */

/* The type of the filesystem mounted last at `path` (mountinfo spelling,
 * e.g. "fuse.scratchfs"), or NULL. */
static char *mounted_fstype(const char *path)
{
	g_autofree char *text = NULL;
	char *found = NULL;

	if (!g_file_get_contents(MOUNTINFO, &text, NULL, NULL))
		return NULL;
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		/* id parent major:minor root MOUNTPOINT opts [tags] - TYPE ... */
		g_auto(GStrv) f = g_strsplit(line, " ", -1);
		guint n = g_strv_length(f);
		if (n >= 7) {
			g_autofree char *mp = g_strcompress(f[4]);
			for (guint i = 6; i + 1 < n; i++) {
				if (strcmp(f[i], "-") != 0)
					continue;
				if (strcmp(mp, path) == 0) {
					g_free(found);
					found = g_strdup(f[i + 1]);
				}
				break;
			}
		}
		line = next;
	}
	return found;
}

static bool check_mountpoint(const struct sfs_config *cfg,
			     const char *resolved, GError **err)
{
	const char *mp = cfg->mountpoint;
	struct stat st;

	if (stat(mp, &st) != 0) {
		int e = errno;
		if (e == ENOTCONN) {
			g_autofree char *w = shell_word(mp);
			g_set_error(err, SFS_ERROR, SFS_EXIT_MOUNTPOINT,
				    "mount point %s is a stale FUSE mount (transport endpoint is not connected); clear it with: fusermount3 -u %s",
				    mp, w);
		} else if (e == ENOENT) {
			g_set_error(err, SFS_ERROR, SFS_EXIT_MOUNTPOINT,
				    "mount point %s does not exist", mp);
		} else {
			g_set_error(err, SFS_ERROR, SFS_EXIT_MOUNTPOINT,
				    "mount point %s: %s", mp, g_strerror(e));
		}
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_MOUNTPOINT,
			    "mount point %s is not a directory", mp);
		return false;
	}
	g_autofree char *fstype = resolved ? mounted_fstype(resolved) : NULL;
	if (fstype && strcmp(fstype, "fuse.scratchfs") == 0) {
		g_autofree char *w = shell_word(mp);
		g_set_error(err, SFS_ERROR, SFS_EXIT_MOUNTPOINT,
			    "mount point %s is already a scratchfs mount (unmount it first: fusermount3 -u %s)",
			    mp, w);
		return false;
	}
	return true;
}

static bool check_dir(const char *what, const char *path, struct stat *st,
		      GError **err)
{
	if (stat(path, st) != 0) {
		int e = errno;
		if (e == ENOENT)
			g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
				    "%s %s does not exist", what, path);
		else
			g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER, "%s %s: %s",
				    what, path, g_strerror(e));
		return false;
	}
	if (!S_ISDIR(st->st_mode)) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "%s %s is not a directory", what, path);
		return false;
	}
	return true;
}

/* Replace *path by its realpath (it exists: check_dir passed). */
static bool make_real(const char *what, char **path, GError **err)
{
	char *r = realpath(*path, NULL);
	if (!r) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER, "%s %s: %s", what,
			    *path, g_strerror(errno));
		return false;
	}
	g_free(*path);
	*path = g_strdup(r);
	free(r);
	return true;
}

struct named_dir {
	const char *what;
	const char *path;
};

/* a and b must not be equal nor one inside the other. */
static bool check_apart(const struct named_dir *a, const struct named_dir *b,
			const char *why, GError **err)
{
	if (strcmp(a->path, b->path) == 0) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "%s %s is also the %s: %s", a->what, a->path,
			    b->what, why);
		return false;
	}
	if (path_within(a->path, b->path)) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "%s %s is inside the %s %s: %s", a->what, a->path,
			    b->what, b->path, why);
		return false;
	}
	if (path_within(b->path, a->path)) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "%s %s is inside the %s %s: %s", b->what, b->path,
			    a->what, a->path, why);
		return false;
	}
	return true;
}

static bool check_layout(const struct sfs_config *cfg, const char *mp,
			 GError **err)
{
	const struct named_dir upper = { "upperdir", cfg->upperdir };
	const struct named_dir work = { "workdir", cfg->workdir };

	if (!check_apart(&work, &upper,
			 "workdir must be a separate directory next to upperdir, on the same filesystem",
			 err))
		return false;
	for (size_t i = 0; cfg->lowerdirs[i]; i++) {
		const struct named_dir lower = { "shared layer",
						 cfg->lowerdirs[i] };
		if (!check_apart(&upper, &lower,
				 "scratchfs never writes to a shared layer",
				 err) ||
		    !check_apart(&work, &lower,
				 "scratchfs never writes to a shared layer",
				 err))
			return false;
	}
	if (!mp)
		return true;
	const struct named_dir mnt = { "mount point", mp };
	const char *why = "the mount would contain itself";
	for (size_t i = 0; cfg->lowerdirs[i]; i++) {
		const struct named_dir lower = { "shared layer",
						 cfg->lowerdirs[i] };
		if (!check_apart(&lower, &mnt, why, err))
			return false;
	}
	return check_apart(&upper, &mnt, why, err) &&
	       check_apart(&work, &mnt, why, err);
}

bool sfs_config_validate(struct sfs_config *cfg, GError **err)
{
	struct stat st, ust, wst;

	if (cfg->action != SFS_ACTION_MOUNT)
		return true;
	if (!cfg->mountpoint) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "no mount point given");
		return false;
	}
	if (!cfg->lowerdirs || !cfg->lowerdirs[0]) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_USAGE,
			    "no shared layer given: name it as SHARED (scratchfs SHARED MOUNTPOINT), with -o lowerdir=DIR, or as lowerdir= in %s",
			    cfg->config_file ? cfg->config_file
					     : SFS_DEFAULT_CONFIG);
		return false;
	}

	/* Mount point first: a stale mount after a crash is the most likely
	 * problem, and its fix is one command. /dev/fd/N is a FUSE fd that
	 * mount.fuse3 (drop_privileges) already mounted. */
	g_autofree char *mp = NULL;
	if (!is_dev_fd(cfg->mountpoint)) {
		mp = resolve_mountpoint(cfg->mountpoint);
		if (!check_mountpoint(cfg, mp, err))
			return false;
	}

	for (size_t i = 0; cfg->lowerdirs[i]; i++)
		if (!check_dir("shared layer", cfg->lowerdirs[i], &st, err) ||
		    !make_real("shared layer", &cfg->lowerdirs[i], err))
			return false;

	if (cfg->upper_is_default) {
		const char *dirs[] = { cfg->upperdir, cfg->workdir };
		for (size_t i = 0; i < G_N_ELEMENTS(dirs); i++) {
			if (g_mkdir_with_parents(dirs[i], 0700) != 0) {
				g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
					    "cannot create the default %s %s: %s",
					    i ? "workdir" : "upperdir", dirs[i],
					    g_strerror(errno));
				return false;
			}
		}
	}
	if (!check_dir("upperdir", cfg->upperdir, &ust, err) ||
	    !check_dir("workdir", cfg->workdir, &wst, err) ||
	    !make_real("upperdir", &cfg->upperdir, err) ||
	    !make_real("workdir", &cfg->workdir, err))
		return false;
	if (ust.st_dev != wst.st_dev) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "upperdir %s and workdir %s are on different filesystems: workdir must be on the same filesystem as upperdir",
			    cfg->upperdir, cfg->workdir);
		return false;
	}
	return check_layout(cfg, mp, err);
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
		"Mount options (-o opt[,opt...]; the same keys work in the config file):\n"
		"    -o lowerdir=DIR[:DIR...]   shared layers, leftmost on top; when given,\n"
		"                               SHARED is only a name (as with mount -t overlay)\n"
		"    -o upperdir=DIR            local layer: everything written lands here\n"
		"    -o workdir=DIR             empty directory on the same filesystem as upperdir\n"
		"    -o timeout=SECONDS         kernel entry/attribute cache time (default 1)\n"
		"    -o metacopy=on|off         link/chmod/chown/utimes of a shared file copy\n"
		"                               only its metadata (default on)\n"
		"    -o writeback_cache         let the kernel cache writes\n"
		"    -o multithread             multi-threaded request loop\n"
		"    -o allow_other             let every user use the mount (default as root)\n"
		"    -o noallow_other           only the mounting user may use the mount\n"
		"    -o default_permissions     the kernel checks permissions (always, with\n"
		"                               allow_other)\n"
		"    -o ro                      read-only mount\n"
		"    -o fsname=NAME             source name in /proc/mounts (default SHARED)\n"
		"\n"
		"Accepted and ignored, for mount(8) and fstab: rw, defaults, nofail, _netdev,\n"
		"auto, noauto, user, users, x-*, and the generic flags dev, nodev, suid,\n"
		"nosuid, exec, noexec, sync, async, dirsync, noatime, nodiratime.\n"
		"\n"
		"Without upperdir= and workdir=, the local layer is\n"
		"STATE/ESCAPED-MOUNTPOINT/upper and .../work, created on demand, where\n"
		"STATE is %s as root and\n"
		"$XDG_CACHE_HOME/scratchfs (~/.cache/scratchfs) otherwise.\n"
		"\n"
		"See scratchfs(8) and scratchfs.conf(5).\n",
		progname, SFS_DEFAULT_CONFIG, SFS_DEFAULT_STATE_DIR);
}
