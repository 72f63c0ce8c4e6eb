/* listing.h - directory listings served without an open handle.
 *
 * With FUSE_CAP_NO_OPENDIR_SUPPORT the kernel sends no OPENDIR or
 * RELEASEDIR and keeps every listing it reads (until it changes the
 * directory itself, or is told to drop it).  READDIR then names only the
 * inode and an offset, so the offset carries the listing: the upper 31
 * bits are a listing generation, the lower 32 the position in that
 * snapshot plus one.  Offset 0 takes a new snapshot; a later offset finds
 * its snapshot again, so entries removed meanwhile (rm -rf) never make a
 * reader skip or repeat a name.  A snapshot goes when its end was read or,
 * past a bound, least recently used first; a reader that comes back to a
 * forgotten one gets a fresh snapshot read from the same position.
 *
 * A listing that depends on a shared layer is dropped from the kernel's
 * cache `timeout` seconds after it was read (notify.c), so that changes
 * made directly in the shared layers show as they do for names.
 */
#pragma once

#include "readdir.h"

struct sfs_listings;

struct sfs_listing {
	struct sfs_dir dir;
	guint32 gen;          /* 0: a handle's listing (offsets i + 1) */
	fuse_ino_t ino;
	int refs;             /* under the table's lock */
	bool kept;            /* in the table */
	GList lru;
};

/* The offset that follows entry i of a listing of generation gen. */
static inline off_t sfs_listing_offset(guint32 gen, size_t i)
{
	return (off_t)(((guint64)gen << 32) | (guint64)(i + 1));
}

struct sfs_listings *sfs_listings_new(void);
void sfs_listings_free(struct sfs_listings *ls);

/* The listing that READDIR(ino, off) reads, and in *pos the index of its
 * next entry; NULL with *err = -errno on failure. */
struct sfs_listing *sfs_listing_get(struct sfs_fs *fs, struct sfs_node *n,
				    fuse_ino_t ino, off_t off, size_t *pos,
				    int *err);
/* Done with l; at_end: its last entry was read, it may go. */
void sfs_listing_put(struct sfs_fs *fs, struct sfs_listing *l, bool at_end);
