/* log.c - logging: stderr in the foreground, syslog once daemonized. */
#include "config.h"

#include "log.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static bool use_syslog;
/* Read on every log call from any thread, set rarely (status.c). */
static int cur_level = SFS_LOG_WARN;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void sfs_log_init(bool to_syslog, int level)
{
	sfs_log_set_level(level);
	if (to_syslog)
		sfs_log_to_syslog();
}

void sfs_log_to_syslog(void)
{
	if (use_syslog)
		return;
	openlog("scratchfs", LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

void sfs_log_set_level(int level)
{
	__atomic_store_n(&cur_level, level, __ATOMIC_RELAXED);
}

int sfs_log_get_level(void)
{
	return __atomic_load_n(&cur_level, __ATOMIC_RELAXED);
}

bool sfs_log_debug_enabled(void)
{
	return sfs_log_get_level() >= SFS_LOG_DEBUG;
}

bool sfs_log_info_enabled(void)
{
	return sfs_log_get_level() >= SFS_LOG_INFO;
}

int sfs_log_level_parse(const char *name)
{
	for (int i = 0; i < (int)G_N_ELEMENTS(level_names); i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *sfs_log_level_name(int level)
{
	return level >= 0 && level < (int)G_N_ELEMENTS(level_names)
		       ? level_names[level]
		       : "?";
}

static void __attribute__((format(printf, 2, 0)))
vlog(int prio, const char *fmt, va_list ap)
{
	if (use_syslog) {
		vsyslog(prio, fmt, ap);
		return;
	}
	fputs("scratchfs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

#define DEFINE_LOG(fn, prio, level)                                            \
	void fn(const char *fmt, ...)                                          \
	{                                                                      \
		if (sfs_log_get_level() < (level))                             \
			return;                                                \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(prio, fmt, ap);                                           \
		va_end(ap);                                                    \
	}

/* Notices (the totals at unmount) show at every level. */
DEFINE_LOG(sfs_notice, LOG_NOTICE, SFS_LOG_ERROR)
DEFINE_LOG(sfs_err, LOG_ERR, SFS_LOG_ERROR)
DEFINE_LOG(sfs_warn, LOG_WARNING, SFS_LOG_WARN)
DEFINE_LOG(sfs_info, LOG_INFO, SFS_LOG_INFO)
DEFINE_LOG(sfs_debug, LOG_DEBUG, SFS_LOG_DEBUG)
