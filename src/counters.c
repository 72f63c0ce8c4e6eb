/* counters.c - a mount's counters rendered for the status channel
 * (see counters.h). */
#include "config.h"

#include "counters.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static const char *const opcode_names[SFS_OPC_COUNT] = {
#define SFS_OPCODE_NAME(up, low) [SFS_OPC_##up] = #low,
	SFS_OPCODES(SFS_OPCODE_NAME)
#undef SFS_OPCODE_NAME
};

static __thread const char *reason;

void sfs_set_request_reason(const char *why)
{
	reason = why;
}

const char *sfs_request_reason(void)
{
	return reason ? reason : "request";
}

void sfs_counters_init(struct sfs_counters *c)
{
	memset(c, 0, sizeof(*c));
	c->start_us = g_get_monotonic_time();
}

const char *sfs_opcode_name(enum sfs_opcode op)
{
	return op < SFS_OPC_COUNT ? opcode_names[op] : "?";
}

static void put_u64(GString *out, const char *key, uint64_t v)
{
	g_string_append_printf(out, "%s %" PRIu64 "\n", key, v);
}

static void put_str(GString *out, const char *key, const char *v)
{
	g_autofree char *esc = g_strescape(v ? v : "", NULL);
	g_string_append_printf(out, "%s %s\n", key, esc);
}

static uint64_t sum(const uint64_t *v, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += sfs_count_get(&v[i]);
	return s;
}

/* "ENOENT", or "E123" where the C library has no name for it. */
static void errno_key(int e, char buf[32])
{
	const char *name = e < SFS_ERRNO_SLOTS - 1 ? strerrorname_np(e) : NULL;
	if (name)
		g_snprintf(buf, 32, "error.%s", name);
	else
		g_snprintf(buf, 32, "error.E%d%s", e,
			   e == SFS_ERRNO_SLOTS - 1 ? "+" : "");
}

static uint64_t nonneg(const int64_t *v)
{
	int64_t x = __atomic_load_n(v, __ATOMIC_RELAXED);
	return x > 0 ? (uint64_t)x : 0;
}

void sfs_counters_render(const struct sfs_counters *c,
			 const struct sfs_status_info *info, GString *out)
{
	put_u64(out, "version", 1);
	put_str(out, "mountpoint", info->mountpoint);
	put_str(out, "upperdir", info->upperdir);
	put_u64(out, "uptime_seconds",
		(uint64_t)(g_get_monotonic_time() - c->start_us) / G_USEC_PER_SEC);
	put_u64(out, "requests_total", sum(c->ops, SFS_OPC_COUNT));
	for (int i = 0; i < SFS_OPC_COUNT; i++) {
		char key[48];
		g_snprintf(key, sizeof(key), "request.%s", opcode_names[i]);
		put_u64(out, key, sfs_count_get(&c->ops[i]));
	}
	put_u64(out, "links", sfs_count_get(&c->links));
	put_u64(out, "exdev", sfs_count_get(&c->errors[EXDEV]));
	put_u64(out, "copyups_metadata", sfs_count_get(&c->copyups_meta));
	put_u64(out, "copyups_data", sfs_count_get(&c->copyups_data));
	put_u64(out, "copyup_bytes", sfs_count_get(&c->copyup_bytes));
	put_u64(out, "whiteouts", sfs_count_get(&c->whiteouts));
	put_u64(out, "fd_reclaims", sfs_count_get(&c->fd_reclaims));
	put_u64(out, "spins_caught", sfs_count_get(&c->spins_caught));
	put_u64(out, "spins_missed", sfs_count_get(&c->spins_missed));
	put_u64(out, "upper_bytes", nonneg(&c->upper_bytes));
	put_u64(out, "upper_bytes_limit", info->upper_limit);
	put_u64(out, "upper_inodes", nonneg(&c->upper_inodes));
	put_u64(out, "upper_inodes_limit", info->inode_limit);
	put_u64(out, "errors_total", sum(c->errors, SFS_ERRNO_SLOTS));
	/* Only the errors that happened: most of the 130 never do. */
	for (int e = 1; e < SFS_ERRNO_SLOTS; e++) {
		uint64_t v = sfs_count_get(&c->errors[e]);
		if (!v)
			continue;
		char key[32];
		errno_key(e, key);
		put_u64(out, key, v);
	}
}

char *sfs_counters_summary(const struct sfs_counters *c)
{
	return g_strdup_printf(
		"totals: %" PRIu64 " requests, %" PRIu64 " links, %" PRIu64
		" EXDEV, %" PRIu64 " copy-ups (%" PRIu64 " metadata-only, %"
		PRIu64 " data, %" PRIu64 " bytes), %" PRIu64 " whiteouts, %"
		PRIu64 " errors, %" PRIu64 " fd reclaims; local layer %" PRIu64
		" bytes, %" PRIu64 " inodes",
		sum(c->ops, SFS_OPC_COUNT), sfs_count_get(&c->links),
		sfs_count_get(&c->errors[EXDEV]),
		sfs_count_get(&c->copyups_meta) + sfs_count_get(&c->copyups_data),
		sfs_count_get(&c->copyups_meta), sfs_count_get(&c->copyups_data),
		sfs_count_get(&c->copyup_bytes), sfs_count_get(&c->whiteouts),
		sum(c->errors, SFS_ERRNO_SLOTS), sfs_count_get(&c->fd_reclaims),
		nonneg(&c->upper_bytes), nonneg(&c->upper_inodes));
}
