/* passthrough.c - per-inode backing files (see passthrough.h). */
#include "config.h"

#include "kernel_io.h"
#include "log.h"
#include "objref.h"
#include "passthrough.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

struct pt_inode {
	int id;               /* backing id, 0 while none */
	bool rw;              /* the backing file is open read-write */
	unsigned pt_opens;    /* open files passing through to id */
	unsigned other_opens; /* open files the daemon serves */
};

struct sfs_pt {
	GMutex lock;
	GHashTable *inodes;   /* fuse_ino_t -> struct pt_inode */
	bool refused;         /* the kernel refused a backing file: EPERM */
};

struct sfs_pt *sfs_pt_new(void)
{
	struct sfs_pt *pt = g_new0(struct sfs_pt, 1);
	g_mutex_init(&pt->lock);
	pt->inodes = g_hash_table_new_full(g_int64_hash, g_int64_equal,
					   g_free, g_free);
	return pt;
}

void sfs_pt_free(struct sfs_pt *pt)
{
	if (!pt)
		return;
	g_hash_table_destroy(pt->inodes);
	g_mutex_clear(&pt->lock);
	g_free(pt);
}

static struct pt_inode *get_inode(struct sfs_pt *pt, fuse_ino_t ino)
{
	gint64 key = (gint64)ino;
	struct pt_inode *pi = g_hash_table_lookup(pt->inodes, &key);
	if (!pi) {
		pi = g_new0(struct pt_inode, 1);
		g_hash_table_insert(pt->inodes, g_memdup2(&key, sizeof key), pi);
	}
	return pi;
}

/* A backing file for the local object of n: read-write when the layer
 * allows, so that a later open for writing can share it. */
static int backing_new(struct sfs_fs *fs, struct sfs_pt *pt,
		       struct sfs_node *n, struct pt_inode *pi)
{
	int fd = sfs_obj_open(&fs->layers, &n->upper, O_RDWR | O_NOATIME);
	pi->rw = fd >= 0;
	if (fd < 0)
		fd = sfs_obj_open(&fs->layers, &n->upper, O_RDONLY | O_NOATIME);
	if (fd < 0)
		return fd;
	int id = sfs_kio_backing_open(fd);
	close(fd); /* the kernel holds the file from here on */
	if (id == -EPERM) {
		sfs_info("passthrough refused by the kernel (EPERM): off");
		pt->refused = true;
	}
	if (id > 0)
		pi->id = id;
	return id;
}

static bool try_passthrough(struct sfs_fs *fs, struct sfs_pt *pt,
			    struct sfs_node *n, struct pt_inode *pi, bool write,
			    bool prefer)
{
	if (pt->refused || pi->other_opens ||
	    sfs_node_data_obj(n)->layer != 0)
		return false;
	if (!pi->pt_opens && !prefer)
		return false;
	if (!pi->id && backing_new(fs, pt, n, pi) < 0)
		return false;
	return !write || pi->rw;
}

int64_t sfs_pt_open(struct sfs_fs *fs, fuse_ino_t ino, struct sfs_node *n,
		    bool write, bool prefer)
{
	struct sfs_pt *pt = fs->pt;
	int64_t r = 0;
	g_mutex_lock(&pt->lock);
	struct pt_inode *pi = get_inode(pt, ino);
	if (try_passthrough(fs, pt, n, pi, write, prefer)) {
		pi->pt_opens++;
		sfs_kio_reply_passthrough(pi->id);
		r = (int64_t)SFS_FH_PASSTHROUGH;
	} else if (pi->pt_opens) {
		/* The kernel would refuse a mixed inode; it only happens
		 * when the backing file could not be opened read-write. */
		r = -ETXTBSY;
	} else {
		pi->other_opens++;
	}
	g_mutex_unlock(&pt->lock);
	return r;
}

void sfs_pt_release(struct sfs_fs *fs, fuse_ino_t ino, uint64_t fh)
{
	struct sfs_pt *pt = fs->pt;
	gint64 key = (gint64)ino;
	g_mutex_lock(&pt->lock);
	struct pt_inode *pi = g_hash_table_lookup(pt->inodes, &key);
	if (pi && (fh & SFS_FH_PASSTHROUGH) && pi->pt_opens)
		pi->pt_opens--;
	else if (pi && !(fh & SFS_FH_PASSTHROUGH) && pi->other_opens)
		pi->other_opens--;
	if (pi && !pi->pt_opens && !pi->other_opens) {
		if (pi->id)
			sfs_kio_backing_close(pi->id);
		g_hash_table_remove(pt->inodes, &key);
	}
	g_mutex_unlock(&pt->lock);
}
