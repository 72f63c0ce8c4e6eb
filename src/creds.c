/* creds.c - act as the calling user while creating objects (see creds.h). */
#include "config.h"

#include "creds.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <linux/securebits.h>
#include <unistd.h>

static bool creds_enabled;

bool sfs_creds_init(void)
{
	if (geteuid() != 0)
		return creds_enabled = false;
	if (prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP) != 0) {
		sfs_warn("cannot keep capabilities across fsuid switch (%s): "
			 "new files will be created as root and chowned",
			 strerror(errno));
		return creds_enabled = false;
	}
	return creds_enabled = true;
}

void sfs_creds_enter(fuse_req_t req, struct sfs_creds *c)
{
	c->switched = false;
	if (!creds_enabled)
		return;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	if (ctx->uid == 0 && ctx->gid == 0)
		return;
	setfsgid(ctx->gid);
	setfsuid(ctx->uid);
	c->switched = true;
}

void sfs_creds_leave(struct sfs_creds *c)
{
	if (!c->switched)
		return;
	setfsuid(0);
	setfsgid(0);
	c->switched = false;
}
