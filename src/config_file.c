/* config_file.c - the config file: a GKeyFile with a [defaults] group and
 * one group per mount point (scratchfs.conf(5)).
 *
 * Only the file's shape is handled here: reading it, finding the groups
 * that apply, and giving line numbers to mistakes.  What a key means is
 * options.c's business (apply_option, through sfs_apply_option_fn).
 */
#include "config.h"

#include "config_file.h"
#include "options.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Line (1-based) of `key` in `[group]` of a key file's text, or of the
 * group header when key is NULL; 0 when not found. */
static unsigned find_line(const char *text, const char *group,
			  const char *key)
{
	unsigned lineno = 0;
	bool in_group = false;
	size_t glen = strlen(group);

	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		lineno++;
		while (len && g_ascii_isspace(*line)) {
			line++;
			len--;
		}
		while (len && g_ascii_isspace(line[len - 1]))
			len--;
		if (len >= 2 && line[0] == '[' && line[len - 1] == ']') {
			in_group = len - 2 == glen &&
				   memcmp(line + 1, group, glen) == 0;
			if (in_group && !key)
				return lineno;
		} else if (in_group && key && len && line[0] != '#') {
			const char *eq = memchr(line, '=', len);
			if (eq) {
				size_t klen = (size_t)(eq - line);
				while (klen && g_ascii_isspace(line[klen - 1]))
					klen--;
				if (klen == strlen(key) &&
				    memcmp(line, key, klen) == 0)
					return lineno;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return 0;
}

void sfs_option_error(GError **err, const struct sfs_origin *o,
		      const char *name, const char *value, const char *fmt,
		      ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *problem = g_strdup_vprintf(fmt, ap);
	va_end(ap);

	g_autofree char *opt = value ? g_strdup_printf("%s=%s", name, value)
				     : g_strdup(name);
	if (!o->file) {
		g_set_error(err, SFS_ERROR, o->code, "-o %s: %s", opt, problem);
		return;
	}
	unsigned line = find_line(o->contents, o->group, name);
	g_autofree char *where = line ? g_strdup_printf("%s:%u", o->file, line)
				      : g_strdup(o->file);
	g_set_error(err, SFS_ERROR, o->code, "%s: [%s] %s: %s", where,
		    o->group, opt, problem);
}

/* The whole file in *contents; *contents stays NULL when the file does
 * not exist and need not. */
static bool read_file(const char *path, bool must_exist, char **contents,
		      GError **err)
{
	*contents = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return true;
		g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
			    "config file %s: %s", path, g_strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
			    "config file %s is a directory", path);
		return false;
	}
	GString *buf = g_string_new(NULL);
	char chunk[4096];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			g_string_free(buf, TRUE);
			g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
				    "config file %s: %s", path, g_strerror(e));
			return false;
		}
		if (n == 0)
			break;
		g_string_append_len(buf, chunk, n);
	}
	close(fd);
	*contents = g_string_free(buf, FALSE);
	return true;
}

/* GKeyFile does not say where a syntax error is: find the first line
 * such that the text up to and including it fails to load.  Config files
 * are a few dozen lines, so the quadratic search costs nothing. */
static unsigned locate_syntax_error(const char *text)
{
	unsigned lineno = 0;

	for (const char *p = text; *p;) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end + 1 - text) : strlen(text);
		lineno++;
		g_autoptr(GKeyFile) kf = g_key_file_new();
		if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE,
					       NULL))
			return lineno;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* [/mnt/scratch/] names the mount point /mnt/scratch, spelled either as
 * given or resolved. */
static bool group_matches(const char *group, const char *mountpoint,
			  const char *resolved)
{
	if (group[0] != '/')
		return false;
	g_autofree char *g = g_canonicalize_filename(group, "/");
	return strcmp(g, mountpoint) == 0 ||
	       (resolved && strcmp(g, resolved) == 0);
}

static bool apply_group(GKeyFile *kf, struct sfs_origin *o,
			const char *group, sfs_apply_option_fn apply,
			struct sfs_parser *p, GError **err)
{
	g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);

	o->group = group;
	for (size_t i = 0; keys && keys[i]; i++) {
		GError *e = NULL;
		g_autofree char *value = g_key_file_get_string(kf, group,
							       keys[i], &e);
		if (!value) {
			sfs_option_error(err, o, keys[i], NULL, "%s",
					 e->message);
			g_error_free(e);
			return false;
		}
		if (!apply(p, o, keys[i], value, err))
			return false;
	}
	return true;
}

bool sfs_config_file_load(const char *path, bool must_exist,
			  const char *mountpoint, sfs_apply_option_fn apply,
			  struct sfs_parser *p, GError **err)
{
	g_autofree char *text = NULL;
	GError *e = NULL;

	if (!read_file(path, must_exist, &text, err))
		return false;
	if (!text)
		return true; /* the default file is optional */

	g_autoptr(GKeyFile) kf = g_key_file_new();
	if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE,
				       &e)) {
		unsigned line = locate_syntax_error(text);
		if (line)
			g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
				    "%s:%u: %s", path, line, e->message);
		else
			g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG, "%s: %s",
				    path, e->message);
		g_error_free(e);
		return false;
	}

	struct sfs_origin o = { SFS_EXIT_CONFIG, path, text, NULL };
	g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
	for (size_t i = 0; groups[i]; i++) {
		if (strcmp(groups[i], "defaults") != 0 && groups[i][0] != '/') {
			g_set_error(err, SFS_ERROR, SFS_EXIT_CONFIG,
				    "%s:%u: group [%s] is neither [defaults] nor an absolute mount point path",
				    path, find_line(text, groups[i], NULL),
				    groups[i]);
			return false;
		}
	}
	if (g_key_file_has_group(kf, "defaults") &&
	    !apply_group(kf, &o, "defaults", apply, p, err))
		return false;

	g_autofree char *resolved = sfs_resolve_mountpoint(mountpoint);
	for (size_t i = 0; groups[i]; i++)
		if (group_matches(groups[i], mountpoint, resolved) &&
		    !apply_group(kf, &o, groups[i], apply, p, err))
			return false;
	return true;
}
