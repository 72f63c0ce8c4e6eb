/* validate.c - sfs_config_validate: the checks that look at directories.
 *
 * Parsing (options.c) only reads argv and the config file; everything
 * that stats a path runs here, once, before anything is mounted: the
 * mount point first (a stale mount after a crash is the likeliest
 * problem, and its fix is one command), then the layers and how they sit
 * relative to each other and to the mount point.  Each problem is one
 * GError line with the exit code of its kind.
 */
#include "config.h"

#include "options.h"
#include "validate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOUNTINFO "/proc/self/mountinfo"

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

char *sfs_resolve_mountpoint(const char *mp)
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
static bool resolve_realpath(const char *what, char **path, GError **err)
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

/* The built-in local layer (upper/work under the state directory), made
 * on first use.  Its parents stay private (0700); the upper root becomes
 * the mount's root, so it takes the owner, group and mode of the top
 * shared layer's root, as a copy-up of the root would: otherwise every
 * user but root would find the mount closed.  An upperdir that already
 * exists (made by the administrator, or by an earlier mount) is kept,
 * and so is the layer of an unprivileged user's private mount. */
static bool create_default_layer(const struct sfs_config *cfg, GError **err)
{
	struct stat top;
	bool create_upper = access(cfg->upperdir, F_OK) != 0 && errno == ENOENT;
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
	/* A user's own mount (no allow_other) is theirs alone: keep it so. */
	if (!create_upper || geteuid() != 0)
		return true;
	if (stat(cfg->lowerdirs[0], &top) != 0 ||
	    chown(cfg->upperdir, top.st_uid, top.st_gid) != 0 ||
	    chmod(cfg->upperdir, top.st_mode & 07777) != 0) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "cannot give the default upperdir %s the owner and mode of %s: %s",
			    cfg->upperdir, cfg->lowerdirs[0], g_strerror(errno));
		return false;
	}
	return true;
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

	/* Mount point first.  /dev/fd/N is a FUSE fd that mount.fuse3
	 * (drop_privileges) already mounted. */
	g_autofree char *mp = NULL;
	if (!is_dev_fd(cfg->mountpoint)) {
		mp = sfs_resolve_mountpoint(cfg->mountpoint);
		if (!check_mountpoint(cfg, mp, err))
			return false;
	}

	for (size_t i = 0; cfg->lowerdirs[i]; i++)
		if (!check_dir("shared layer", cfg->lowerdirs[i], &st, err) ||
		    !resolve_realpath("shared layer", &cfg->lowerdirs[i], err))
			return false;

	if (cfg->upper_is_default && !create_default_layer(cfg, err))
		return false;
	if (!check_dir("upperdir", cfg->upperdir, &ust, err) ||
	    !check_dir("workdir", cfg->workdir, &wst, err) ||
	    !resolve_realpath("upperdir", &cfg->upperdir, err) ||
	    !resolve_realpath("workdir", &cfg->workdir, err))
		return false;
	if (ust.st_dev != wst.st_dev) {
		g_set_error(err, SFS_ERROR, SFS_EXIT_LAYER,
			    "upperdir %s and workdir %s are on different filesystems: workdir must be on the same filesystem as upperdir",
			    cfg->upperdir, cfg->workdir);
		return false;
	}
	return check_layout(cfg, mp, err);
}
