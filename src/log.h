/* log.h - logging: stderr in the foreground, syslog once daemonized.
 *
 * Levels (-o loglevel=): error, warn (the default), info (adds one line
 * per copy-up), debug (adds scratchfs's own detail; -d sets it and also
 * has libfuse print every request). */
#pragma once

#include <stdbool.h>

enum sfs_log_level {
	SFS_LOG_ERROR,
	SFS_LOG_WARN,
	SFS_LOG_INFO,
	SFS_LOG_DEBUG,
};

void sfs_log_init(bool to_syslog, int level);
void sfs_log_to_syslog(void);
bool sfs_log_debug_enabled(void);
bool sfs_log_info_enabled(void);
void sfs_log_set_level(int level);
int sfs_log_get_level(void);
/* "error".."debug" -> level, -1 if unknown; and back. */
int sfs_log_level_parse(const char *name);
const char *sfs_log_level_name(int level);

void sfs_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sfs_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sfs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sfs_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sfs_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
