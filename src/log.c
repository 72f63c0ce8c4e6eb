/* log.c - logging: stderr in the foreground, syslog once daemonized. */
#include "config.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static bool use_syslog;
static bool debug_on;

void sfs_log_init(bool to_syslog, bool debug)
{
	debug_on = debug;
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

bool sfs_log_debug_enabled(void)
{
	return debug_on;
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

#define DEFINE_LOG(fn, prio, cond)                                             \
	void fn(const char *fmt, ...)                                          \
	{                                                                      \
		if (!(cond))                                                   \
			return;                                                \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(prio, fmt, ap);                                           \
		va_end(ap);                                                    \
	}

DEFINE_LOG(sfs_err, LOG_ERR, true)
DEFINE_LOG(sfs_warn, LOG_WARNING, true)
DEFINE_LOG(sfs_info, LOG_INFO, true)
DEFINE_LOG(sfs_debug, LOG_DEBUG, debug_on)
