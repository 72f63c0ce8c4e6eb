/* fs.c - the filesystem's state ("super"): set up and torn down. */
#include "config.h"

#include "fs.h"
#include "health.h"
#include "log.h"
#include "lookup.h"
#include "readdir.h"
#include "options.h"
#include "usage.h"

#include <string.h>

bool sfs_fs_init(struct sfs_fs *fs, const struct sfs_config *cfg,
		 GError **err)
{
	memset(fs, 0, sizeof(*fs));
	g_rec_mutex_init(&fs->ns_lock);
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
	if (!sfs_layers_open(cfg, &fs->layers, err) || !sfs_usage_scan(fs, err))
		return false;
	sfs_health_init(&fs->layers);
	fs->table = sfs_table_new();
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
	if (fs->table)
		sfs_table_free(fs->table);
	fs->table = NULL;
	sfs_layers_close(&fs->layers);
	g_free(fs->mountpoint);
	sfs_health_free();
	g_rec_mutex_clear(&fs->ns_lock);
}

