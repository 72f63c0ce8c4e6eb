/* fs.c - the filesystem's state ("super"): set up and torn down. */
#include "config.h"

#include "fs.h"
#include "health.h"
#include "log.h"
#include "listing.h"
#include "lookup.h"
#include "readdir.h"
#include "options.h"
#include "usage.h"
#include "passthrough.h"

#include <string.h>

bool sfs_fs_init(struct sfs_fs *fs, const struct sfs_config *cfg,
		 GError **err)
{
	memset(fs, 0, sizeof(*fs));
	g_rw_lock_init(&fs->ns_lock);
	for (int i = 0; i < SFS_COPY_STRIPES; i++)
		g_mutex_init(&fs->copy_stripes[i]);
	g_mutex_init(&fs->dirs_lock);
	fs->timeout = cfg->timeout;
	fs->metacopy = cfg->metacopy;
	fs->read_only = cfg->read_only;
	fs->writeback = cfg->writeback_cache;
	fs->no_open = cfg->no_open;
	fs->mountpoint = g_strdup(cfg->mountpoint);
	fs->upper_limit = cfg->upper_limit;
	fs->inode_limit = cfg->upper_inodes;
	sfs_counters_init(&fs->counters);
	fs->no_opendir = cfg->no_opendir;
	fs->listings = sfs_listings_new();
	if (!sfs_layers_open(cfg, &fs->layers, err) || !sfs_usage_scan(fs, err))
		return false;
	sfs_health_init(&fs->layers);
	fs->table = sfs_table_new();
	fs->pt = sfs_pt_new();
	struct sfs_node *root = sfs_root_node(fs, err);
	if (!root)
		return false;
	sfs_table_set_root(fs->table, root);
	return true;
}

void sfs_fs_destroy(struct sfs_fs *fs)
{
	GList *l;
	while ((l = g_queue_pop_head_link(&fs->open_dirs))) {
		sfs_dir_clear(l->data);
		g_free(l->data);
	}
	g_mutex_clear(&fs->dirs_lock);
	sfs_listings_free(fs->listings);
	fs->listings = NULL;
	sfs_pt_free(fs->pt);
	fs->pt = NULL;
	if (fs->table)
		sfs_table_free(fs->table);
	fs->table = NULL;
	sfs_layers_close(&fs->layers);
	g_free(fs->mountpoint);
	sfs_health_free();
	for (int i = 0; i < SFS_COPY_STRIPES; i++)
		g_mutex_clear(&fs->copy_stripes[i]);
	g_rw_lock_clear(&fs->ns_lock);
}
