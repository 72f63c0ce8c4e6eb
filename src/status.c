/* status.c - the status channel on the mount's root (see status.h). */
#include "config.h"

#include "log.h"
#include "status.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* The text may grow between a size probe and the read (a new errno, a
 * bigger number): the probe answers with room to spare. */
#define SIZE_SLACK 4096

bool sfs_status_is_virtual(fuse_ino_t ino, const char *name)
{
	return ino == FUSE_ROOT_ID && (strcmp(name, SFS_STATUS_XATTR) == 0 ||
				       strcmp(name, SFS_LOGLEVEL_XATTR) == 0);
}

static GString *render(struct sfs_fs *fs, const char *name)
{
	GString *s = g_string_new(NULL);
	if (strcmp(name, SFS_LOGLEVEL_XATTR) == 0) {
		g_string_append(s, sfs_log_level_name(sfs_log_get_level()));
		return s;
	}
	struct sfs_status_info info = {
		.mountpoint = fs->mountpoint,
		.upperdir = fs->layers.upper.path,
		.upper_limit = fs->upper_limit,
		.inode_limit = fs->inode_limit,
	};
	sfs_counters_render(&fs->counters, &info, s);
	return s;
}

void sfs_status_getxattr(fuse_req_t req, const char *name, size_t size)
{
	g_autoptr(GString) s = render(sfs_req_fs(req), name);
	if (size == 0)
		fuse_reply_xattr(req, s->len + SIZE_SLACK);
	else if (s->len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, s->str, s->len);
}

/* Root, or whoever mounted (the daemon's own user). */
static bool may_change(fuse_req_t req)
{
	uid_t uid = fuse_req_ctx(req)->uid;
	return uid == 0 || uid == getuid();
}

void sfs_status_setxattr(fuse_req_t req, const char *name, const char *value,
			 size_t size)
{
	if (strcmp(name, SFS_LOGLEVEL_XATTR) != 0 || !may_change(req)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	g_autofree char *v = g_strndup(value ? value : "", size);
	int level = sfs_log_level_parse(g_strstrip(v));
	if (level < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	sfs_log_set_level(level);
	sfs_warn("log level set to %s by uid %u", sfs_log_level_name(level),
		 (unsigned)fuse_req_ctx(req)->uid);
	fuse_reply_err(req, 0);
}
