/* fixture.c - see fixture.h. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fixture.h"
#include "lookup.h"
#include "options.h"

static char *sub(const char *dir, const char *rel)
{
	char *p = g_build_filename(dir, rel, NULL);
	g_autofree char *parent = g_path_get_dirname(p);
	if (g_mkdir_with_parents(parent, 0755) != 0)
		fail_msg("mkdir -p %s: %s", parent, g_strerror(errno));
	return p;
}

struct fx *fx_new(int nlower)
{
	struct fx *f = g_new0(struct fx, 1);
	GError *err = NULL;
	f->root = g_dir_make_tmp("sfs-unit-XXXXXX", &err);
	if (!f->root)
		fail_msg("mkdtemp: %s", err->message);
	f->nlower = nlower;
	for (int i = 0; i < nlower; i++) {
		g_autofree char *name = g_strdup_printf("lower%d", i);
		f->lower[i] = g_build_filename(f->root, name, NULL);
		fx_mkdir(f->lower[i], ".");
	}
	f->upper = g_build_filename(f->root, "upper", NULL);
	f->work = g_build_filename(f->root, "work", NULL);
	fx_mkdir(f->upper, ".");
	fx_mkdir(f->work, ".");
	return f;
}

void fx_start(struct fx *f)
{
	struct sfs_config cfg = { 0 };
	char *lowers[FX_MAX_LOWER + 1] = { NULL };
	GError *err = NULL;

	for (int i = 0; i < f->nlower; i++)
		lowers[i] = f->lower[i];
	cfg.lowerdirs = lowers;
	cfg.upperdir = f->upper;
	cfg.workdir = f->work;
	cfg.timeout = 1.0;
	cfg.metacopy = true;
	if (!sfs_fs_init(&f->fs, &cfg, &err))
		fail_msg("sfs_fs_init: %s", err->message);
	f->fs_ready = true;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

void fx_free(struct fx *f)
{
	if (f->fs_ready)
		sfs_fs_destroy(&f->fs);
	nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	for (int i = 0; i < f->nlower; i++)
		g_free(f->lower[i]);
	g_free(f->upper);
	g_free(f->work);
	g_free(f->root);
	g_free(f);
}

void fx_file(const char *dir, const char *rel, const char *data)
{
	g_autofree char *p = sub(dir, rel);
	GError *err = NULL;
	if (!g_file_set_contents(p, data, -1, &err))
		fail_msg("%s", err->message);
}

void fx_mkdir(const char *dir, const char *rel)
{
	g_autofree char *p = sub(dir, rel);
	if (g_mkdir_with_parents(p, 0755) != 0)
		fail_msg("mkdir %s: %s", p, g_strerror(errno));
}

bool fx_whiteout(const char *dir, const char *rel)
{
	g_autofree char *p = sub(dir, rel);
	if (mknod(p, S_IFCHR | 0, makedev(0, 0)) == 0)
		return true;
	if (errno != EPERM)
		fail_msg("mknod %s: %s", p, g_strerror(errno));
	return false;
}

void fx_opaque(const char *dir, const char *rel)
{
	g_autofree char *p = sub(dir, rel);
	const char *name = geteuid() == 0 ? "trusted.overlay.opaque"
					  : "user.overlay.opaque";
	if (lsetxattr(p, name, "y", 1, 0) != 0)
		fail_msg("setxattr %s %s: %s", p, name, g_strerror(errno));
}

struct sfs_node *fx_lookup(struct fx *f, const char *path, int *err)
{
	struct sfs_node *n = sfs_table_root(f->fs.table);
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);

	sfs_node_lookup_inc(f->fs.table, n);
	for (size_t i = 0; parts[i]; i++) {
		if (!*parts[i])
			continue;
		struct sfs_node *c;
		struct stat st;
		int r = sfs_lookup(&f->fs, n, parts[i], &c, &st, NULL);
		fx_forget(f, n);
		if (r < 0) {
			*err = r;
			return NULL;
		}
		n = c;
	}
	*err = 0;
	return n;
}

void fx_forget(struct fx *f, struct sfs_node *n)
{
	sfs_node_forget(f->fs.table, n, 1);
}
