/* fsck.c - offline check and repair of a local layer (see fsck.h).
 *
 * Technique after overlayfs-tools' fsck.overlay: walk the local layer
 * once, carrying for each directory the shared directories merged below
 * it (following opaque markers and redirects as a mount would), and judge
 * every marker against them; then the workdir and the index.  Repairs are
 * only those that need no guess: remove what a mount would throw away
 * anyway (workdir leftovers, index entries nothing refers to, a stale
 * .wh. marker next to a real name, an opaque marker on a non-directory)
 * and mark a metadata-only copy whose data is gone as lost.  Everything
 * else is reported and left alone.
 */
#include "config.h"

#include "fsck.h"
#include "layers.h"
#include "whiteout.h"
#include "xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

struct fsck {
	const struct sfs_config *cfg;
	int upper, work;     /* O_PATH directories */
	int nlower;
	int *lower;          /* O_PATH roots of the shared layers */
	int problems, repaired;
	GHashTable *ino_owner;  /* scratchfs.ino value -> "st_ino rel" */
	GHashTable *local_names; /* st_ino of a local file -> names seen */
};

/* A shared directory merged below a local one. */
struct below {
	int layer; /* 1-based */
	int fd;    /* O_PATH */
};

/* ------------------------------------------------------------ output */

static void __attribute__((format(printf, 4, 5)))
finding(struct fsck *f, const char *kind, const char *where, const char *fmt,
	...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	printf("%s: %s: %s\n", kind, where, what);
	if (strcmp(kind, "problem") == 0)
		f->problems++;
	else if (strcmp(kind, "repaired") == 0)
		f->repaired++;
}

/* A problem --repair can fix with fix() (0 or -errno). */
static void fixable(struct fsck *f, const char *where, const char *what,
		    const char *action, int (*fix)(int, const char *, void *),
		    int dirfd, const char *name, void *arg)
{
	if (!f->cfg->repair) {
		finding(f, "problem", where, "%s (--repair: %s)", what, action);
		return;
	}
	int r = fix(dirfd, name, arg);
	if (r == 0)
		finding(f, "repaired", where, "%s; %s", what, action);
	else
		finding(f, "problem", where, "%s; could not %s: %s", what,
			action, g_strerror(-r));
}

static char *where(const char *root, const char *rel, const char *name)
{
	return g_build_filename(root, rel, name, NULL);
}

/* ------------------------------------------------------------ xattrs */

/* A private xattr under trusted. (written as root) or user. (written
 * unprivileged).  Length, or -errno (-ENODATA: under neither). */
static ssize_t get_xa(int dirfd, const char *name, const char *suffix,
		      char *buf, size_t size)
{
	static const char *const ns[] = { "trusted.", "user." };
	ssize_t r = -ENODATA;
	for (size_t i = 0; i < G_N_ELEMENTS(ns) && r == -ENODATA; i++) {
		g_autofree char *full = g_strconcat(ns[i], suffix, NULL);
		r = sfs_getxattr_at(dirfd, name, full, buf, size);
		if (r == -ENOTSUP || r == -EPERM)
			r = -ENODATA;
	}
	return r;
}

static char *get_xa_str(int dirfd, const char *name, const char *suffix)
{
	char buf[4096];
	ssize_t n = get_xa(dirfd, name, suffix, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return g_strdup(buf);
}

static bool has_xa(int dirfd, const char *name, const char *suffix)
{
	return get_xa(dirfd, name, suffix, NULL, 0) >= 0;
}

/* The namespace a marker was found under, for repairs that write. */
static const char *xa_ns(int dirfd, const char *name, const char *suffix)
{
	g_autofree char *t = g_strconcat("trusted.", suffix, NULL);
	return sfs_getxattr_at(dirfd, name, t, NULL, 0) >= 0 ? "trusted."
							    : "user.";
}

/* ------------------------------------------------- the shared stack */

static void below_free(gpointer p)
{
	GArray *a = p;
	for (guint i = 0; a && i < a->len; i++)
		close(g_array_index(a, struct below, i).fd);
	if (a)
		g_array_free(a, TRUE);
}

static void below_add(GArray *a, int layer, int fd)
{
	struct below b = { layer, fd };
	g_array_append_val(a, b);
}

/* The shared directories named `name` below stack, top down, until one
 * is opaque or a non-directory covers the rest. */
static GArray *below_child(GArray *stack, const char *name)
{
	GArray *a = g_array_new(FALSE, FALSE, sizeof(struct below));
	for (guint i = 0; stack && i < stack->len; i++) {
		struct below *b = &g_array_index(stack, struct below, i);
		struct stat st;
		if (fstatat(b->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (!S_ISDIR(st.st_mode))
			break;
		int fd = openat(b->fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
						     O_CLOEXEC);
		if (fd < 0)
			continue;
		below_add(a, b->layer, fd);
		if (has_xa(b->fd, name, "overlay.opaque"))
			break;
	}
	return a;
}

/* "/a/b" from every layer's root, top down. */
static GArray *below_absolute(struct fsck *f, const char *path)
{
	GArray *a = g_array_new(FALSE, FALSE, sizeof(struct below));
	for (int i = 0; i < f->nlower; i++) {
		int fd = openat(f->lower[i], path[1] ? path + 1 : ".",
				O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			below_add(a, i + 1, fd);
	}
	return a;
}

/* Does stack hold name as something other than a whiteout? */
static bool below_has(GArray *stack, const char *name, struct stat *out)
{
	for (guint i = 0; stack && i < stack->len; i++) {
		struct below *b = &g_array_index(stack, struct below, i);
		struct stat st;
		if (fstatat(b->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (sfs_is_whiteout_stat(&st))
			return false;
		if (out)
			*out = st;
		return true;
	}
	return false;
}

/* ---------------------------------------------------------- repairs */

static int fix_unlink(int dirfd, const char *name, void *arg)
{
	(void)arg;
	return unlinkat(dirfd, name, 0) ? -errno : 0;
}

static int fix_rmtree(int dirfd, const char *name, void *arg)
{
	(void)arg;
	return sfs_rmtree_at(dirfd, name);
}

static int fix_drop_opaque(int dirfd, const char *name, void *arg)
{
	g_autofree char *attr = g_strconcat(arg, "overlay.opaque", NULL);
	g_autofree char *p = g_strdup_printf("/proc/self/fd/%d/%s", dirfd, name);
	return lremovexattr(p, attr) ? -errno : 0;
}

static int fix_mark_lost(int dirfd, const char *name, void *arg)
{
	const char *ns = ((const char **)arg)[0];
	const char *what = ((const char **)arg)[1];
	g_autofree char *attr = g_strconcat(ns, SFS_LOST_XATTR, NULL);
	return sfs_setxattr_at(dirfd, name, attr, what, strlen(what));
}

/* ------------------------------------------------- the local layer */

struct dir_walk {
	struct fsck *f;
	const char *rel;  /* of this directory, "" at the root */
	GArray *stack;    /* shared directories below it */
};

static void walk_dir(struct fsck *f, int dirfd, const char *rel,
		     GArray *stack);

static void check_whiteout(struct dir_walk *w, int dirfd, const char *name,
			   const char *target)
{
	g_autofree char *at = where("upperdir", w->rel, name);
	struct stat st;
	if (target != name && fstatat(dirfd, target, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !sfs_is_whiteout_stat(&st)) {
		fixable(w->f, at, "stale whiteout marker next to a real entry",
			"remove the marker", fix_unlink, dirfd, name, NULL);
		return;
	}
	if (!below_has(w->stack, target, NULL))
		finding(w->f, "note", at,
			"whiteout hides nothing in the shared layers (kept: the shared layer may bring the name back)");
}

/* Where a metadata-only copy's data should be: scratchfs.lowerdata
 * ("LAYER:/path"), else overlay.redirect, else the same name below. */
static bool find_data(struct dir_walk *w, int dirfd, const char *name,
		      struct stat *st, char **desc)
{
	g_autofree char *ld = get_xa_str(dirfd, name, "scratchfs.lowerdata");
	g_autofree char *rd = get_xa_str(dirfd, name, "overlay.redirect");
	char *colon = ld ? strchr(ld, ':') : NULL;
	if (colon && colon[1] == '/') {
		int layer = atoi(ld);
		*desc = g_strdup_printf("layer %d %s", layer, colon + 1);
		return layer >= 1 && layer <= w->f->nlower &&
		       fstatat(w->f->lower[layer - 1],
			       colon[2] ? colon + 2 : ".", st,
			       AT_SYMLINK_NOFOLLOW) == 0;
	}
	if (rd && rd[0] == '/') {
		*desc = g_strdup(rd);
		g_autofree char *dir = g_path_get_dirname(rd);
		g_autofree char *base = g_path_get_basename(rd);
		GArray *a = below_absolute(w->f, dir);
		bool found = below_has(a, base, st);
		below_free(a);
		return found;
	}
	*desc = g_build_filename("/", w->rel, rd ? rd : name, NULL);
	return below_has(w->stack, rd ? rd : name, st);
}

static void check_metacopy(struct dir_walk *w, int dirfd, const char *name,
			   const struct stat *local)
{
	g_autofree char *at = where("upperdir", w->rel, name);
	g_autofree char *lost = get_xa_str(dirfd, name, SFS_LOST_XATTR);
	if (lost) {
		finding(w->f, "note", at, "marked lost (%s): reads fail with EIO",
			lost);
		return;
	}
	struct stat st;
	g_autofree char *desc = NULL;
	if (!find_data(w, dirfd, name, &st, &desc)) {
		g_autofree char *what = g_strdup_printf(
			"metadata-only copy whose shared data (%s) is missing", desc);
		const char *arg[2] = { xa_ns(dirfd, name, "overlay.metacopy"),
				       what };
		fixable(w->f, at, what,
			"mark it lost, so reads fail with EIO instead of returning zeros",
			fix_mark_lost, dirfd, name, arg);
	} else if (!S_ISREG(st.st_mode) || st.st_size != local->st_size) {
		finding(w->f, "problem", at,
			"shared data (%s) changed: %s of %jd bytes, the copy expects %jd",
			desc, S_ISREG(st.st_mode) ? "a file" : "not a file",
			(intmax_t)st.st_size, (intmax_t)local->st_size);
	}
}

/* Directory markers; returns the shared directories below it. */
static GArray *check_dir(struct dir_walk *w, int dirfd, const char *name)
{
	g_autofree char *at = where("upperdir", w->rel, name);
	g_autofree char *opq = get_xa_str(dirfd, name, "overlay.opaque");
	g_autofree char *rd = get_xa_str(dirfd, name, "overlay.redirect");
	if (opq && strcmp(opq, "y") && strcmp(opq, "x"))
		finding(w->f, "problem", at, "opaque marker with value '%s' (expected y)",
			opq);
	if (opq && !strcmp(opq, "y"))
		return g_array_new(FALSE, FALSE, sizeof(struct below));
	if (!rd)
		return below_child(w->stack, name);
	GArray *a = rd[0] == '/' ? below_absolute(w->f, rd)
				 : below_child(w->stack, rd);
	if (a->len == 0)
		finding(w->f, "problem", at,
			"redirect to '%s' points to no shared directory", rd);
	return a;
}

static void check_ino(struct dir_walk *w, int dirfd, const char *name,
		      const struct stat *st)
{
	g_autofree char *v = get_xa_str(dirfd, name, "scratchfs.ino");
	if (!v)
		return;
	g_autofree char *rel = g_build_filename(w->rel, name, NULL);
	char *owner = g_hash_table_lookup(w->f->ino_owner, v);
	if (!owner) {
		g_hash_table_insert(w->f->ino_owner, g_steal_pointer(&v),
				    g_strdup_printf("%ju %s", (uintmax_t)st->st_ino, rel));
		return;
	}
	char *sp = strchr(owner, ' ');
	if ((ino_t)g_ascii_strtoull(owner, NULL, 10) == st->st_ino)
		return; /* another name of the same file */
	g_autofree char *at = where("upperdir", w->rel, name);
	finding(w->f, "problem", at,
		"scratchfs.ino %s is also that of a different file, %s: two files would show one st_ino",
		v, sp + 1);
}

static int walk_entry(int dirfd, const char *name, void *arg)
{
	struct dir_walk *w = arg;
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	if (sfs_is_whiteout_stat(&st)) {
		check_whiteout(w, dirfd, name, name);
		return 0;
	}
	if (sfs_is_wh_name(name)) {
		check_whiteout(w, dirfd, name, name + strlen(SFS_WH_PREFIX));
		return 0;
	}
	check_ino(w, dirfd, name, &st);
	if (S_ISDIR(st.st_mode)) {
		GArray *below = check_dir(w, dirfd, name);
		int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
						     O_CLOEXEC);
		g_autofree char *rel = g_build_filename(w->rel, name, NULL);
		if (fd >= 0) {
			walk_dir(w->f, fd, rel, below);
			close(fd);
		}
		below_free(below);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	if (st.st_nlink > 1) {
		gpointer k = GSIZE_TO_POINTER(st.st_ino);
		guint n = GPOINTER_TO_UINT(g_hash_table_lookup(w->f->local_names, k));
		g_hash_table_insert(w->f->local_names, k, GUINT_TO_POINTER(n + 1));
	}
	if (has_xa(dirfd, name, "overlay.opaque")) {
		g_autofree char *at = where("upperdir", w->rel, name);
		const char *ns = xa_ns(dirfd, name, "overlay.opaque");
		fixable(w->f, at, "opaque marker on a file (it means nothing there)",
			"remove the marker", fix_drop_opaque, dirfd, name,
			(void *)ns);
	}
	if (has_xa(dirfd, name, "overlay.metacopy"))
		check_metacopy(w, dirfd, name, &st);
	return 0;
}

static void walk_dir(struct fsck *f, int dirfd, const char *rel, GArray *stack)
{
	struct dir_walk w = { f, rel, stack };
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = fd < 0 ? -errno : sfs_foreach_entry(fd, walk_entry, &w);
	if (r < 0) {
		g_autofree char *at = where("upperdir", rel, NULL);
		finding(f, "problem", at, "cannot read: %s", g_strerror(-r));
	}
}

/* ----------------------------------------------------------- workdir */

static int check_work_entry(int dirfd, const char *name, void *arg)
{
	struct fsck *f = arg;
	g_autofree char *at = where("workdir/work", "", name);
	fixable(f, at, "leftover of an interrupted copy-up", "remove it",
		fix_rmtree, dirfd, name, NULL);
	return 0;
}

/* ------------------------------------------------------------- index */

struct index_entry {
	char *name;
	struct stat st;
	guint64 pending;    /* scratchfs.nlink: shared names not copied up */
	guint shared_left;  /* shared names found with nothing local on them */
};

struct lower_scan {
	struct fsck *f;
	GHashTable *wanted; /* scratchfs ino -> struct index_entry */
	int layer;
	char *rel;
};

/* A shared name of an indexed file still counts while the local layer
 * has nothing at its path (no copy, no whiteout). */
static bool nothing_local(struct fsck *f, const char *rel)
{
	struct stat st;
	g_autofree char *dir = g_path_get_dirname(rel);
	g_autofree char *base = g_path_get_basename(rel);
	g_autofree char *wh = g_build_filename(dir, ".wh.", NULL);
	g_autofree char *whn = g_strconcat(wh, base, NULL);
	return fstatat(f->upper, rel, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
	       fstatat(f->upper, whn, &st, AT_SYMLINK_NOFOLLOW) != 0;
}

static int scan_lower_entry(int dirfd, const char *name, void *arg)
{
	struct lower_scan *ls = arg;
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	g_autofree char *rel = g_build_filename(ls->rel, name, NULL);
	if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
		uint64_t ino = ((uint64_t)ls->layer << 56) | (uint64_t)st.st_ino;
		struct index_entry *e = g_hash_table_lookup(
			ls->wanted, &ino);
		if (e && nothing_local(ls->f, rel))
			e->shared_left++;
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC);
	if (fd < 0)
		return 0;
	char *saved = ls->rel;
	ls->rel = rel;
	sfs_foreach_entry(fd, scan_lower_entry, ls);
	ls->rel = saved;
	return 0;
}

static int read_index_entry(int dirfd, const char *name, void *arg)
{
	GHashTable *wanted = arg;
	if (strlen(name) != 16 || name[strspn(name, "0123456789abcdef")])
		return 0; /* kernel overlayfs names entries by file handle */
	struct index_entry *e = g_new0(struct index_entry, 1);
	if (fstatat(dirfd, name, &e->st, AT_SYMLINK_NOFOLLOW) != 0) {
		g_free(e);
		return 0;
	}
	e->name = g_strdup(name);
	g_autofree char *p = get_xa_str(dirfd, name, "scratchfs.nlink");
	e->pending = p ? g_ascii_strtoull(p, NULL, 10) : 0;
	uint64_t *key = g_new(uint64_t, 1);
	*key = g_ascii_strtoull(name, NULL, 16);
	g_hash_table_insert(wanted, key, e);
	return 0;
}

static void index_entry_free(gpointer p)
{
	struct index_entry *e = p;
	g_free(e->name);
	g_free(e);
}

static void judge_index_entry(struct fsck *f, int ifd, struct index_entry *e)
{
	g_autofree char *at = where("workdir/index", "", e->name);
	guint local = GPOINTER_TO_UINT(g_hash_table_lookup(
		f->local_names, GSIZE_TO_POINTER(e->st.st_ino)));
	if (!S_ISREG(e->st.st_mode)) {
		finding(f, "problem", at, "index entry is not a file");
		return;
	}
	if (local == 0 && e->shared_left == 0) {
		fixable(f, at, "index entry no name refers to any more",
			"drop it", fix_unlink, ifd, e->name, NULL);
		return;
	}
	if (e->st.st_nlink - 1 != local)
		finding(f, "problem", at,
			"link count says %ju local names, upperdir has %u",
			(uintmax_t)e->st.st_nlink - 1, local);
	if (e->pending != e->shared_left)
		finding(f, "problem", at,
			"counts %" G_GUINT64_FORMAT " shared names not yet copied up, the shared layer has %u",
			e->pending, e->shared_left);
}

static void check_index(struct fsck *f)
{
	int ifd = openat(f->work, "index", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ifd < 0)
		return;
	g_autoptr(GHashTable) wanted = g_hash_table_new_full(
		g_int64_hash, g_int64_equal, g_free, index_entry_free);
	sfs_foreach_entry(dup(ifd), read_index_entry, wanted);
	for (int layer = 1; layer <= f->nlower && g_hash_table_size(wanted); layer++) {
		struct lower_scan ls = { f, wanted, layer, "" };
		int fd = openat(f->lower[layer - 1], ".",
				O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			sfs_foreach_entry(fd, scan_lower_entry, &ls);
	}
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, wanted);
	while (g_hash_table_iter_next(&it, &k, &v))
		judge_index_entry(f, ifd, v);
	close(ifd);
}

/* ----------------------------------------------------------- driver */

/* Kernel overlayfs mounts name their upperdir and workdir in mountinfo. */
static bool kernel_overlay_uses(const char *dir)
{
	g_autofree char *txt = NULL;
	if (!g_file_get_contents("/proc/self/mountinfo", &txt, NULL, NULL))
		return false;
	g_autofree char *up = g_strdup_printf("upperdir=%s,", dir);
	g_autofree char *work = g_strdup_printf("workdir=%s,", dir);
	g_auto(GStrv) lines = g_strsplit(txt, "\n", -1);
	for (char **l = lines; *l; l++) {
		const char *sep = strstr(*l, " - overlay ");
		if (!sep)
			continue;
		g_autofree char *opts = g_strconcat(sep, ",", NULL);
		if (strstr(opts, up) || strstr(opts, work))
			return true;
	}
	return false;
}

static int open_dir(const char *path, const char *what)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "scratchfs: %s %s: %s\n", what, path,
			g_strerror(errno));
	return fd;
}

static int claim(const struct sfs_config *cfg)
{
	int fd = open(cfg->workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "scratchfs: workdir %s: %s\n", cfg->workdir,
			g_strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 ||
	    kernel_overlay_uses(cfg->upperdir) ||
	    kernel_overlay_uses(cfg->workdir)) {
		fprintf(stderr, "scratchfs: %s is in use by a mount: unmount it before --fsck\n",
			cfg->upperdir);
		close(fd);
		return -1;
	}
	return fd;
}

static void run_checks(struct fsck *f)
{
	GArray *top = g_array_new(FALSE, FALSE, sizeof(struct below));
	for (int i = 0; i < f->nlower; i++)
		below_add(top, i + 1, dup(f->lower[i]));
	walk_dir(f, f->upper, "", top);
	below_free(top);
	int wfd = openat(f->work, "work", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd >= 0)
		sfs_foreach_entry(wfd, check_work_entry, f);
	check_index(f);
}

int sfs_fsck_command(const struct sfs_config *cfg)
{
	struct fsck f = { .cfg = cfg, .upper = -1, .work = -1 };
	int code = SFS_FSCK_FAILED;
	int lock = claim(cfg);
	if (lock < 0)
		return code;
	f.nlower = (int)g_strv_length(cfg->lowerdirs);
	f.lower = g_new(int, f.nlower);
	bool ok = true;
	for (int i = 0; i < f.nlower; i++)
		ok = (f.lower[i] = open_dir(cfg->lowerdirs[i], "lowerdir")) >= 0 && ok;
	f.upper = open_dir(cfg->upperdir, "upperdir");
	f.work = open_dir(cfg->workdir, "workdir");
	if (ok && f.upper >= 0 && f.work >= 0) {
		f.ino_owner = g_hash_table_new_full(g_str_hash, g_str_equal,
						    g_free, g_free);
		f.local_names = g_hash_table_new(NULL, NULL);
		run_checks(&f);
		g_hash_table_destroy(f.ino_owner);
		g_hash_table_destroy(f.local_names);
		code = f.problems ? SFS_FSCK_PROBLEMS
			: f.repaired ? SFS_FSCK_REPAIRED : SFS_FSCK_CLEAN;
		fprintf(stderr, "scratchfs: %s: %d problem%s left, %d repaired\n",
			cfg->upperdir, f.problems, f.problems == 1 ? "" : "s",
			f.repaired);
	}
	for (int i = 0; i < f.nlower; i++)
		if (f.lower[i] >= 0)
			close(f.lower[i]);
	g_free(f.lower);
	if (f.upper >= 0)
		close(f.upper);
	if (f.work >= 0)
		close(f.work);
	close(lock);
	return code;
}
