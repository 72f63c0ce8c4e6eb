/* fixture.h - layers in a temporary directory and a struct sfs_fs over
 * them, for unit tests of the core that need real directories but no
 * FUSE session (readdir, index, markers).  Every helper fails the
 * running cmocka test on an unexpected error. */
#pragma once

#include <stdbool.h>

#include "fs.h"

#define FX_MAX_LOWER 3

struct fx {
	char *root;                 /* the temporary directory */
	char *lower[FX_MAX_LOWER];  /* lower[0] is the top shared layer */
	int nlower;
	char *upper, *work;
	struct sfs_fs fs;
	bool fs_ready;
};

/* Make root/{lower0..,upper,work}. */
struct fx *fx_new(int nlower);
/* sfs_fs_init over the layers, as at mount (no FUSE session). */
void fx_start(struct fx *f);
/* sfs_fs_destroy if started, then remove the directory. */
void fx_free(struct fx *f);

/* dir/rel with its parents; a regular file holding `data`. */
void fx_file(const char *dir, const char *rel, const char *data);
void fx_mkdir(const char *dir, const char *rel);
/* A char 0/0 whiteout at dir/rel; false where mknod is not permitted. */
bool fx_whiteout(const char *dir, const char *rel);
/* The opaque marker the mount reads (trusted.* as root, else user.*). */
void fx_opaque(const char *dir, const char *rel);

/* The node of a path below the root ("" for the root itself), with one
 * lookup reference (give it back with fx_forget); NULL and *err set
 * (-errno) if a lookup failed. */
struct sfs_node *fx_lookup(struct fx *f, const char *path, int *err);
void fx_forget(struct fx *f, struct sfs_node *n);
