/* status_cmd.c - `scratchfs --status`: fetch the counters from the
 * mount's root (user.scratchfs.status, see status.h) and print them as a
 * table, JSON, or node_exporter textfile-collector text. */
#include "config.h"

#include "status.h"
#include "status_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

struct kv {
	char *key;
	char *value;
};

static void kv_free(gpointer p)
{
	struct kv *kv = p;
	g_free(kv->key);
	g_free(kv->value);
	g_free(kv);
}

/* The daemon's "key value" lines; string values are C-escaped. */
static GPtrArray *parse_lines(const char *text)
{
	GPtrArray *a = g_ptr_array_new_with_free_func(kv_free);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		char *sp = strchr(*l, ' ');
		if (!sp)
			continue;
		struct kv *kv = g_new(struct kv, 1);
		kv->key = g_strndup(*l, sp - *l);
		kv->value = g_strcompress(sp + 1);
		g_ptr_array_add(a, kv);
	}
	return a;
}

static const char *get(GPtrArray *a, const char *key)
{
	for (guint i = 0; i < a->len; i++) {
		struct kv *kv = a->pdata[i];
		if (strcmp(kv->key, key) == 0)
			return kv->value;
	}
	return NULL;
}

static uint64_t num(GPtrArray *a, const char *key)
{
	const char *v = get(a, key);
	return v ? g_ascii_strtoull(v, NULL, 10) : 0;
}

static char *fetch(const char *mnt, GError **err)
{
	char *buf = g_malloc(1 << 16);
	ssize_t n = getxattr(mnt, SFS_STATUS_XATTR, buf, (1 << 16) - 1);
	if (n < 0) {
		int e = errno;
		g_free(buf);
		g_set_error(err, SFS_ERROR, SFS_EXIT_MOUNTPOINT, "%s: %s", mnt,
			    e == ENODATA || e == ENOTSUP
				    ? "not the root of a running scratchfs mount"
				    : g_strerror(e));
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* ------------------------------------------------------------ human */

/* Counters shown in the table and the exports, in order. */
struct metric {
	const char *key;
	const char *label;   /* for people */
	const char *prom;    /* scratchfs_NAME */
	const char *prom_label; /* extra label, or NULL */
	const char *help;
	bool bytes;
};

static const struct metric metrics[] = {
	{ "links", "links made", "links_total", NULL,
	  "link() calls that succeeded.", false },
	{ "exdev", "EXDEV returned", "exdev_total", NULL,
	  "Requests answered with EXDEV (uv then copies instead of linking).", false },
	{ "copyups_metadata", "copy-ups, metadata only", "copyups_total",
	  "kind=\"metadata\"", "Copy-ups into the local layer.", false },
	{ "copyups_data", "copy-ups with data", "copyups_total",
	  "kind=\"data\"", "Copy-ups into the local layer.", false },
	{ "copyup_bytes", "data copied up", "copyup_bytes_total", NULL,
	  "File data copied from shared layers into the local layer.", true },
	{ "whiteouts", "whiteouts created", "whiteouts_total", NULL,
	  "Whiteouts created in the local layer.", false },
	{ "fd_reclaims", "fd reclaims", "fd_reclaims_total", NULL,
	  "Nodes the kernel was asked to forget to give file descriptors back.", false },
	{ "spins_caught", "reader spins that caught a request", "reader_spins_total",
	  "result=\"caught\"", "Busy-polls of the reader thread (-o busy_poll).", false },
	{ "spins_missed", "reader spins that missed", "reader_spins_total",
	  "result=\"missed\"", "Busy-polls of the reader thread (-o busy_poll).", false },
};

/* "512 B", "1.5 MiB" (glib's own separates with a no-break space). */
static char *human_size(uint64_t v)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double x = (double)v;
	size_t u = 0;
	while (x >= 1024 && u + 1 < G_N_ELEMENTS(units)) {
		x /= 1024;
		u++;
	}
	return u ? g_strdup_printf("%.1f %s", x, units[u])
		 : g_strdup_printf("%" PRIu64 " B", v);
}

static char *human_duration(uint64_t s)
{
	if (s >= 86400)
		return g_strdup_printf("%" PRIu64 "d %02" PRIu64 "h %02" PRIu64 "m",
				       s / 86400, s / 3600 % 24, s / 60 % 60);
	return g_strdup_printf("%" PRIu64 "h %02" PRIu64 "m %02" PRIu64 "s",
			       s / 3600, s / 60 % 60, s % 60);
}

static char *usage_line(uint64_t used, uint64_t limit, bool bytes)
{
	g_autofree char *u = bytes ? human_size(used)
				   : g_strdup_printf("%" PRIu64, used);
	if (!limit)
		return g_strdup_printf("%s (no limit)", u);
	g_autofree char *l = bytes ? human_size(limit)
				   : g_strdup_printf("%" PRIu64, limit);
	return g_strdup_printf("%s of %s (%.0f%%)", u, l,
			       100.0 * (double)used / (double)limit);
}

static void row(FILE *out, const char *label, const char *value)
{
	fprintf(out, "  %-26s %s\n", label, value);
}

/* "request." or "error." entries, non-zero ones, as rows. */
static void group_rows(FILE *out, GPtrArray *a, const char *prefix,
		       const char *title, const char *total_key)
{
	fprintf(out, "\n%s: %" PRIu64 "\n", title, num(a, total_key));
	for (guint i = 0; i < a->len; i++) {
		struct kv *kv = a->pdata[i];
		if (g_str_has_prefix(kv->key, prefix) && strcmp(kv->value, "0"))
			row(out, kv->key + strlen(prefix), kv->value);
	}
}

static void print_human(FILE *out, GPtrArray *a)
{
	fprintf(out, "scratchfs on %s\n", get(a, "mountpoint"));
	row(out, "local layer", get(a, "upperdir"));
	g_autofree char *up = human_duration(num(a, "uptime_seconds"));
	row(out, "uptime", up);
	g_autofree char *b = usage_line(num(a, "upper_bytes"),
					num(a, "upper_bytes_limit"), true);
	row(out, "local layer size", b);
	g_autofree char *in = usage_line(num(a, "upper_inodes"),
					 num(a, "upper_inodes_limit"), false);
	row(out, "local layer inodes", in);
	fputc('\n', out);
	for (size_t i = 0; i < G_N_ELEMENTS(metrics); i++) {
		uint64_t v = num(a, metrics[i].key);
		g_autofree char *s = metrics[i].bytes
					     ? human_size(v)
					     : g_strdup_printf("%" PRIu64, v);
		row(out, metrics[i].label, s);
	}
	group_rows(out, a, "request.", "Requests", "requests_total");
	group_rows(out, a, "error.", "Errors returned", "errors_total");
}

/* ------------------------------------------------------------- json */

static void json_string(GString *s, const char *v)
{
	g_string_append_c(s, '"');
	for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
		if (*c == '"' || *c == '\\')
			g_string_append_printf(s, "\\%c", *c);
		else if (*c < 0x20)
			g_string_append_printf(s, "\\u%04x", *c);
		else
			g_string_append_c(s, *c);
	}
	g_string_append_c(s, '"');
}

static void json_group(GString *s, GPtrArray *a, const char *prefix)
{
	bool first = true;
	g_string_append_c(s, '{');
	for (guint i = 0; i < a->len; i++) {
		struct kv *kv = a->pdata[i];
		if (!g_str_has_prefix(kv->key, prefix))
			continue;
		g_string_append(s, first ? "" : ", ");
		json_string(s, kv->key + strlen(prefix));
		g_string_append_printf(s, ": %s", kv->value);
		first = false;
	}
	g_string_append_c(s, '}');
}

/* Flat keys as they come; "request.X" and "error.X" as objects
 * "requests" and "errors". */
static void print_json(FILE *out, GPtrArray *a)
{
	g_autoptr(GString) s = g_string_new("{");
	for (guint i = 0; i < a->len; i++) {
		struct kv *kv = a->pdata[i];
		if (strchr(kv->key, '.'))
			continue;
		g_string_append(s, i ? ", " : "");
		json_string(s, kv->key);
		g_string_append(s, ": ");
		if (g_ascii_isdigit(kv->value[0]) &&
		    kv->value[strspn(kv->value, "0123456789")] == '\0')
			g_string_append(s, kv->value);
		else
			json_string(s, kv->value);
	}
	g_string_append(s, ", \"requests\": ");
	json_group(s, a, "request.");
	g_string_append(s, ", \"errors\": ");
	json_group(s, a, "error.");
	fprintf(out, "%s}\n", s->str);
}

/* ------------------------------------------------------- prometheus */

static char *prom_escape(const char *v)
{
	GString *s = g_string_new(NULL);
	for (const char *c = v; *c; c++) {
		if (*c == '\\' || *c == '"')
			g_string_append_printf(s, "\\%c", *c);
		else if (*c == '\n')
			g_string_append(s, "\\n");
		else
			g_string_append_c(s, *c);
	}
	return g_string_free(s, FALSE);
}

static void prom_head(FILE *out, const char *name, const char *type,
		      const char *help)
{
	fprintf(out, "# HELP scratchfs_%s %s\n# TYPE scratchfs_%s %s\n", name,
		help, name, type);
}

static void prom_value(FILE *out, const char *name, const char *mnt,
		       const char *label, const char *value)
{
	fprintf(out, "scratchfs_%s{mountpoint=\"%s\"%s%s} %s\n", name, mnt,
		label ? "," : "", label ? label : "", value);
}

/* One metric with a label per "prefix.X" entry. */
static void prom_group(FILE *out, GPtrArray *a, const char *mnt,
		       const char *prefix, const char *name,
		       const char *label, const char *help)
{
	prom_head(out, name, "counter", help);
	for (guint i = 0; i < a->len; i++) {
		struct kv *kv = a->pdata[i];
		if (!g_str_has_prefix(kv->key, prefix))
			continue;
		g_autofree char *l = g_strdup_printf(
			"%s=\"%s\"", label, kv->key + strlen(prefix));
		prom_value(out, name, mnt, l, kv->value);
	}
}

static void print_prometheus(FILE *out, GPtrArray *a)
{
	g_autofree char *mnt = prom_escape(get(a, "mountpoint"));
	static const char *const gauges[][2] = {
		{ "uptime_seconds", "Seconds since the mount started." },
		{ "upper_bytes", "Bytes allocated in the local layer." },
		{ "upper_bytes_limit", "upper_limit= in bytes (0: none)." },
		{ "upper_inodes", "Inodes in the local layer." },
		{ "upper_inodes_limit", "upper_inodes= (0: none)." },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(gauges); i++) {
		prom_head(out, gauges[i][0], "gauge", gauges[i][1]);
		prom_value(out, gauges[i][0], mnt, NULL, get(a, gauges[i][0]));
	}
	const char *last = NULL;
	for (size_t i = 0; i < G_N_ELEMENTS(metrics); i++) {
		const struct metric *m = &metrics[i];
		if (!last || strcmp(last, m->prom))
			prom_head(out, m->prom, "counter", m->help);
		last = m->prom;
		prom_value(out, m->prom, mnt, m->prom_label, get(a, m->key));
	}
	prom_group(out, a, mnt, "request.", "requests_total", "op",
		   "FUSE requests served, by operation.");
	prom_group(out, a, mnt, "error.", "errors_total", "errno",
		   "Requests answered with an error, by errno.");
}

int sfs_status_command(const struct sfs_config *cfg, FILE *out)
{
	GError *err = NULL;
	g_autofree char *text = fetch(cfg->mountpoint, &err);
	if (!text) {
		fprintf(stderr, "scratchfs: %s\n", err->message);
		int code = err->code;
		g_error_free(err);
		return code;
	}
	g_autoptr(GPtrArray) a = parse_lines(text);
	if (!get(a, "mountpoint")) {
		fprintf(stderr, "scratchfs: %s: unreadable status\n",
			cfg->mountpoint);
		return SFS_EXIT_MOUNTPOINT;
	}
	if (cfg->format == SFS_FORMAT_JSON)
		print_json(out, a);
	else if (cfg->format == SFS_FORMAT_PROMETHEUS)
		print_prometheus(out, a);
	else
		print_human(out, a);
	return SFS_EXIT_OK;
}
