/* readdir.c - merged directory listings (see readdir.h). */
#include "config.h"

#include "nslock.h"
#include "health.h"
#include "readdir.h"
#include "sys.h"
#include "whiteout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static void dirent_clear(gpointer p)
{
	g_free(((struct sfs_dirent *)p)->name);
}

/* d_ino for a name not looked up: the node's st_ino when the node is
 * known, else the layer-tagged inode number (exact for shared files and
 * for local files that never were copied up). */
static uint64_t guess_ino(struct sfs_fs *fs, int layer, ino_t real)
{
	struct sfs_node *n = layer == 0
				     ? sfs_table_find_upper(fs->table, real, false)
				     : sfs_table_find_ino(fs->table,
							  sfs_make_ino(layer, real),
							  false);
	return n ? n->ino : sfs_make_ino(layer, real);
}

/* Whiteouts and ".wh." markers are never listed; a marker's target is
 * hidden in the layers below (through `added`, NULL if there are none),
 * not in its own. */
static int is_hidden_entry(int dfd, struct dirent *de, GPtrArray *added)
{
	if (sfs_is_wh_name(de->d_name)) {
		if (added)
			g_ptr_array_add(added, g_strdup(de->d_name +
							strlen(SFS_WH_PREFIX)));
		return 1;
	}
	if (de->d_type != DT_CHR && de->d_type != DT_UNKNOWN)
		return 0;
	struct stat st;
	if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return sfs_is_whiteout_stat(&st);
	return errno == ENOENT ? 1 : -errno; /* gone meanwhile: not listed */
}

/* Add the entries of one layer's directory not hidden by the ones above
 * (`seen`); unless it is the last layer, record its names in `seen`. */
static int scan_layer(struct sfs_fs *fs, int opath_fd, int layer,
		      GHashTable *seen, bool last, GArray *out)
{
	int fd = sfs_reopen(opath_fd, O_RDONLY | O_DIRECTORY | O_NOATIME);
	if (fd < 0) {
		sfs_health_note(layer, fd);
		return fd;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	/* Names first seen in this layer hide lower ones only after the
	 * whole layer is read: collect, then merge into `seen`. */
	g_autoptr(GPtrArray) added = last ? NULL : g_ptr_array_new();
	struct dirent *de;
	/* readdir() reports errors only through errno: clear it before each
	 * call, as the loop body may leave it set (a contended mutex). */
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (g_hash_table_contains(seen, de->d_name))
			continue;
		if (added)
			g_ptr_array_add(added, g_strdup(de->d_name));
		int hidden = is_hidden_entry(dirfd(d), de, added);
		if (hidden < 0) {
			errno = -hidden;
			break;
		}
		if (hidden)
			continue;
		struct sfs_dirent e = {
			.name = g_strdup(de->d_name),
			.ino = guess_ino(fs, layer, de->d_ino),
			.type = de->d_type,
		};
		g_array_append_val(out, e);
	}
	int r = errno ? -errno : 0;
	sfs_health_note(layer, r);
	closedir(d);
	for (guint i = 0; added && i < added->len; i++)
		g_hash_table_add(seen, added->pdata[i]);
	return r;
}

static int merge(struct sfs_fs *fs, struct sfs_node *n, GArray *out)
{
	g_autoptr(GHashTable) seen =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	int r = 0;
	int upper = sfs_node_upper(n);
	bool merges = sfs_node_merges(n);
	if (upper >= 0)
		r = scan_layer(fs, upper, 0, seen, !merges, out);
	if (r < 0 || !merges)
		return r;
	for (guint i = 0; i < n->lowerdirs->len && r == 0; i++) {
		struct sfs_lowerdir *ld =
			&g_array_index(n->lowerdirs, struct sfs_lowerdir, i);
		r = scan_layer(fs, ld->fd, ld->layer, seen,
			       i + 1 == n->lowerdirs->len, out);
	}
	return r;
}

static GArray *entries_new(void)
{
	GArray *a = g_array_new(FALSE, FALSE, sizeof(struct sfs_dirent));
	g_array_set_clear_func(a, dirent_clear);
	return a;
}

int sfs_dir_snapshot(struct sfs_fs *fs, struct sfs_node *n,
		     struct sfs_dir *d)
{
	d->node = n;
	d->entries = entries_new();
	struct sfs_dirent dot = { g_strdup("."), n->ino, DT_DIR };
	/* d_ino 0 would make readdir(3) skip the entry. */
	bool taken = sfs_ns_lock_shared(fs); /* parent changes under it */
	uint64_t up = n->parent ? n->parent->ino : n->ino;
	sfs_ns_unlock_shared(fs, taken);
	struct sfs_dirent dotdot = { g_strdup(".."), up, DT_DIR };
	g_array_append_val(d->entries, dot);
	g_array_append_val(d->entries, dotdot);
	int r = merge(fs, n, d->entries);
	if (r < 0)
		sfs_dir_clear(d);
	return r;
}

void sfs_dir_clear(struct sfs_dir *d)
{
	if (d->entries)
		g_array_free(d->entries, TRUE);
	d->entries = NULL;
}

int sfs_dir_names(struct sfs_fs *fs, struct sfs_node *n, GPtrArray **out)
{
	g_autoptr(GArray) entries = entries_new();
	*out = g_ptr_array_new_with_free_func(g_free);
	int r = merge(fs, n, entries);
	for (guint i = 0; r == 0 && i < entries->len; i++) {
		struct sfs_dirent *e = &g_array_index(entries, struct sfs_dirent, i);
		g_ptr_array_add(*out, g_steal_pointer(&e->name));
	}
	return r;
}

int sfs_dir_check_empty(struct sfs_fs *fs, struct sfs_node *n)
{
	g_autoptr(GArray) entries = entries_new();
	int r = merge(fs, n, entries);
	if (r < 0)
		return r;
	return entries->len ? -ENOTEMPTY : 0;
}
