/* test_markers.c - unit tests for the readers of the markers scratchfs
 * and kernel overlayfs leave on layer objects: decimal xattrs
 * (scratchfs.ino, scratchfs.nlink), opaque, metacopy, whiteouts, and the
 * lowerdata and redirect records (src/xattr.c, src/whiteout.c,
 * src/redirect.c), with errors injected into getxattr.
 *
 * Injection: the test is linked with -Wl,--wrap=lgetxattr,--wrap=getxattr,
 * so every getxattr the library makes goes through wrap_getxattr(), which
 * fails reads of `fail_attr` with `fail_errno`.
 *
 * sfs_getxattr_u64, sfs_is_opaque, sfs_is_metacopy_at and sfs_has_wh_file
 * answer 1 (yes), 0 (no) or -errno (issue 12): an injected error must come
 * out as the error, never as "no".
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fixture.h"
#include "redirect.h"
#include "whiteout.h"
#include "xattr.h"

static const char *fail_attr;
static int fail_errno;

ssize_t __real_lgetxattr(const char *path, const char *name, void *value,
			 size_t size);
ssize_t __real_getxattr(const char *path, const char *name, void *value,
			size_t size);
ssize_t __wrap_lgetxattr(const char *path, const char *name, void *value,
			 size_t size);
ssize_t __wrap_getxattr(const char *path, const char *name, void *value,
			size_t size);

static bool injected(const char *name)
{
	if (!fail_attr || strcmp(name, fail_attr) != 0)
		return false;
	errno = fail_errno;
	return true;
}

ssize_t __wrap_lgetxattr(const char *path, const char *name, void *value,
			 size_t size)
{
	return injected(name) ? -1 : __real_lgetxattr(path, name, value, size);
}

ssize_t __wrap_getxattr(const char *path, const char *name, void *value,
			size_t size)
{
	return injected(name) ? -1 : __real_getxattr(path, name, value, size);
}

static void inject(const char *attr, int e)
{
	fail_attr = attr;
	fail_errno = e;
}

static int setup(void **state)
{
	struct fx *f = fx_new(1);
	fx_file(f->lower[0], "data", "shared data");
	fx_file(f->lower[0], "same", "same-name data");
	fx_mkdir(f->lower[0], "src/sub");
	fx_file(f->upper, "m", "");
	fx_file(f->upper, "same", "");
	fx_file(f->upper, "plain", "p");
	fx_mkdir(f->upper, "r");
	fx_mkdir(f->upper, "o");
	fx_start(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	inject(NULL, 0);
	fx_free(*state);
	return 0;
}

static void set(struct fx *f, const char *rel, const char *attr, const char *val)
{
	g_autofree char *p = g_build_filename(f->upper, rel, NULL);
	assert_int_equal(lsetxattr(p, attr, val, strlen(val), 0), 0);
}

static int upper_fd(struct fx *f)
{
	return f->fs.layers.upper.fd;
}

static void test_u64_reader(void **state)
{
	struct fx *f = *state;
	const char *a = f->fs.layers.xa.ino;
	uint64_t v = 7;

	set(f, "plain", a, "72057594037927941");
	assert_int_equal(sfs_getxattr_u64(upper_fd(f), "plain", a, &v), 1);
	assert_int_equal(v, UINT64_C(72057594037927941));
	const char *bad[] = { "12x", "", " 5", "-5", "+5", "18446744073709551616", "-" };
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		set(f, "plain", a, bad[i]);
		v = 7;
		int r = sfs_getxattr_u64(upper_fd(f), "plain", a, &v);
		if (r != -EIO) /* damaged: an error, not a number, not "none" */
			fail_msg("'%s' read as %d (%" PRIu64 ")", bad[i], r, v);
		assert_int_equal(v, 7); /* untouched */
	}
	assert_int_equal(sfs_getxattr_u64(upper_fd(f), "m", a, &v), 0); /* absent */
	set(f, "plain", a, "5");
	inject(a, EIO);
	assert_int_equal(sfs_getxattr_u64(upper_fd(f), "plain", a, &v), -EIO);
	inject(NULL, 0);
}

static void test_opaque_reader(void **state)
{
	struct fx *f = *state;
	g_autofree char *p = g_build_filename(f->upper, "o", NULL);
	int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);

	assert_false(sfs_is_opaque(&f->fs.layers, fd));
	set(f, "o", f->fs.layers.xa.opaque, "n");
	assert_false(sfs_is_opaque(&f->fs.layers, fd));
	set(f, "o", f->fs.layers.xa.opaque, "y");
	assert_true(sfs_is_opaque(&f->fs.layers, fd));
	/* the other namespace's marker counts too (a layer written by the
	 * kernel with or without userxattr) */
	assert_int_equal(lremovexattr(p, f->fs.layers.xa.opaque), 0);
	const char *other = g_str_has_prefix(f->fs.layers.xa.opaque, "trusted.")
				    ? "user.overlay.opaque" : NULL;
	if (other) {
		set(f, "o", other, "y");
		assert_true(sfs_is_opaque(&f->fs.layers, fd));
	}
	inject(f->fs.layers.xa.opaque, EIO);
	assert_int_equal(sfs_is_opaque(&f->fs.layers, fd), -EIO);
	inject(NULL, 0);
	close(fd);
}

static void test_metacopy_and_whiteout_readers(void **state)
{
	struct fx *f = *state;
	assert_false(sfs_is_metacopy_at(&f->fs.layers, upper_fd(f), "m"));
	set(f, "m", f->fs.layers.xa.metacopy, "");
	assert_true(sfs_is_metacopy_at(&f->fs.layers, upper_fd(f), "m"));
	inject(f->fs.layers.xa.metacopy, EIO);
	assert_int_equal(sfs_is_metacopy_at(&f->fs.layers, upper_fd(f), "m"), -EIO);
	inject(NULL, 0);

	assert_false(sfs_has_wh_file(upper_fd(f), "gone"));
	fx_file(f->upper, ".wh.gone", "");
	assert_true(sfs_has_wh_file(upper_fd(f), "gone"));
	assert_false(sfs_is_whiteout_at(upper_fd(f), "plain"));
	if (fx_whiteout(f->upper, "wh"))
		assert_true(sfs_is_whiteout_at(upper_fd(f), "wh"));
}

static int find_data(struct fx *f, const char *name, char **rel)
{
	struct sfs_node *root = sfs_table_root(f->fs.table);
	struct sfs_obj o = { .fd = -1 };
	*rel = NULL;
	int r = sfs_find_lowerdata(&f->fs, root, upper_fd(f), name, &o, rel);
	sfs_obj_clear(&o);
	return r;
}

static void test_lowerdata_reader(void **state)
{
	struct fx *f = *state;
	const struct sfs_xattr_names *xa = &f->fs.layers.xa;
	char *rel;

	set(f, "m", xa->lowerdata, "1:/data");
	assert_int_equal(find_data(f, "m", &rel), 0);
	assert_string_equal(rel, "data");
	g_free(rel);
	/* the kernel's record alone: an absolute redirect */
	set(f, "plain", xa->redirect, "/data");
	assert_int_equal(find_data(f, "plain", &rel), 0);
	assert_string_equal(rel, "data");
	g_free(rel);
	/* neither: the same name below */
	assert_int_equal(find_data(f, "same", &rel), 0);
	assert_string_equal(rel, "same");
	g_free(rel);
	/* a record naming no layer */
	set(f, "m", xa->lowerdata, "9:/data");
	assert_int_equal(find_data(f, "m", &rel), -EIO);
	set(f, "m", xa->lowerdata, "1:/data");

	/* A failed read is no "no record": the same-name fallback would
	 * serve other data (or none) as this file's. */
	inject(xa->lowerdata, EIO);
	assert_int_equal(find_data(f, "m", &rel), -EIO);
	inject(xa->lowerdata, ENODATA); /* really absent: fall back */
	assert_int_equal(find_data(f, "same", &rel), 0);
	g_free(rel);
	inject(xa->redirect, EIO);
	assert_int_equal(find_data(f, "same", &rel), -EIO);
	inject(xa->redirect, ENOTSUP); /* a filesystem without xattrs */
	assert_int_equal(find_data(f, "same", &rel), 0);
	g_free(rel);
}

static int redirect_dirs(struct fx *f, const char *name, guint *len)
{
	struct sfs_node *root = sfs_table_root(f->fs.table);
	GArray *dirs = NULL;
	int r = sfs_redirect_dirs(&f->fs, root, upper_fd(f), name, &dirs);
	*len = dirs ? dirs->len : 0;
	sfs_lowerdirs_free(dirs);
	return r;
}

static void test_redirect_reader(void **state)
{
	struct fx *f = *state;
	const char *a = f->fs.layers.xa.redirect;
	guint len;

	assert_int_equal(redirect_dirs(f, "r", &len), 0);
	set(f, "r", a, "/src");
	assert_int_equal(redirect_dirs(f, "r", &len), 1);
	assert_int_equal(len, 1);
	set(f, "r", a, "src"); /* a name in the same parent */
	assert_int_equal(redirect_dirs(f, "r", &len), 1);
	assert_int_equal(len, 1);

	/* a renamed directory must not show its old place's contents, nor
	 * none, because one read failed */
	inject(a, EIO);
	assert_int_equal(redirect_dirs(f, "r", &len), -EIO);
	inject(a, ENOMEM);
	assert_int_equal(redirect_dirs(f, "r", &len), -ENOMEM);
}

static void test_reader_errors_with_a_channel(void **state)
{
	struct fx *f = *state;
	char buf[8];
	set(f, "plain", "user.x", "1");
	inject("user.x", EIO);
	assert_int_equal(sfs_getxattr_at(upper_fd(f), "plain", "user.x", buf,
					 sizeof(buf)), -EIO);
	g_autofree char *p = g_build_filename(f->upper, "plain", NULL);
	int fd = open(p, O_PATH | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(sfs_getxattr_fd(fd, "user.x", buf, sizeof(buf)), -EIO);
	inject(NULL, 0);
	assert_int_equal(sfs_getxattr_fd(fd, "user.x", buf, sizeof(buf)), 1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_u64_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opaque_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metacopy_and_whiteout_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lowerdata_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redirect_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_errors_with_a_channel, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
