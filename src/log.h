/* log.h - logging: stderr in the foreground, syslog once daemonized. */
#pragma once

#include <stdbool.h>

void sfs_log_init(bool to_syslog, bool debug);
void sfs_log_to_syslog(void);
bool sfs_log_debug_enabled(void);

void sfs_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sfs_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sfs_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sfs_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
