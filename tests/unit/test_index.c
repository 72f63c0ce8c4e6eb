/* test_index.c - unit tests for the link counts of shared hardlinks
 * (src/index.c) and for st_ino across layers and copy-up, on plain
 * directories with a struct sfs_fs and no FUSE.
 *
 * The shared layer holds one file with three names, h, d/h2 and e/h3.
 * Copying up one name indexes the local inode as workdir/index/<st_ino>,
 * whose scratchfs.nlink attribute counts the names still only shared:
 * st_nlink = (local links - 1 for the index link) + pending.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "attr.h"
#include "copyup.h"
#include "fixture.h"
#include "index.h"

static int setup(void **state)
{
	struct fx *f = fx_new(1);
	fx_file(f->lower[0], "h", "hardlinked");
	fx_mkdir(f->lower[0], "d");
	fx_mkdir(f->lower[0], "e");
	g_autofree char *h = g_build_filename(f->lower[0], "h", NULL);
	g_autofree char *h2 = g_build_filename(f->lower[0], "d", "h2", NULL);
	g_autofree char *h3 = g_build_filename(f->lower[0], "e", "h3", NULL);
	assert_int_equal(link(h, h2), 0);
	assert_int_equal(link(h, h3), 0);
	fx_file(f->lower[0], "plain", "p");
	fx_file(f->upper, "local", "l");
	fx_start(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

static struct sfs_node *look(struct fx *f, const char *path)
{
	int err;
	struct sfs_node *n = fx_lookup(f, path, &err);
	if (!n)
		fail_msg("lookup %s: %s", path, g_strerror(-err));
	return n;
}

static nlink_t nlink_of(struct fx *f, struct sfs_node *n)
{
	struct stat st;
	assert_int_equal(sfs_node_getattr(&f->fs, n, &st), 0);
	assert_int_equal(st.st_ino, n->ino);
	return st.st_nlink;
}

static ino_t real_ino(const char *dir, const char *rel)
{
	g_autofree char *p = g_build_filename(dir, rel, NULL);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	return st.st_ino;
}

/* The pending count stored on the index file of n. */
static long pending_on_disk(struct fx *f, struct sfs_node *n)
{
	char name[24], val[32];
	snprintf(name, sizeof(name), "%016" PRIx64, n->ino);
	g_autofree char *p = g_build_filename(f->work, "index", name, NULL);
	ssize_t len = lgetxattr(p, f->fs.layers.xa.nlink, val, sizeof(val) - 1);
	if (len < 0)
		return -errno;
	val[len] = '\0';
	return strtol(val, NULL, 10);
}

static void test_nlink_arithmetic(void **state)
{
	(void)state;
	struct sfs_node n = { 0 };

	n.lower_pending = 2;
	assert_int_equal(sfs_index_nlink(&n, 1), 2); /* only the index link */
	assert_int_equal(sfs_index_nlink(&n, 2), 3); /* one local name */
	n.lower_pending = 0;
	assert_int_equal(sfs_index_nlink(&n, 4), 3); /* all names local */
	assert_int_equal(sfs_index_nlink(&n, 0), 0); /* never wraps */
}

static void test_copy_up_one_name_then_another(void **state)
{
	struct fx *f = *state;
	struct sfs_node *h = look(f, "h");
	assert_int_equal(h->ino, sfs_make_ino(1, real_ino(f->lower[0], "h")));
	assert_int_equal(nlink_of(f, h), 3);

	assert_int_equal(sfs_copyup(&f->fs, h, SFS_COPY_META), 0);
	assert_true(h->indexed);
	assert_int_equal(h->lower_pending, 2);
	assert_int_equal(pending_on_disk(f, h), 2);
	assert_int_equal(nlink_of(f, h), 3);

	/* another name of the same shared file: the same node */
	struct sfs_node *h2 = look(f, "d/h2");
	assert_ptr_equal(h2, h);
	struct sfs_node *d = look(f, "d");
	assert_int_equal(sfs_copyup(&f->fs, d, SFS_COPY_META), 0);
	assert_int_equal(sfs_copyup_name(&f->fs, d, "h2", h), 0);
	assert_int_equal(h->lower_pending, 1);
	assert_int_equal(pending_on_disk(f, h), 1);
	assert_int_equal(nlink_of(f, h), 3);
	/* linking a name that is already local changes nothing */
	assert_int_equal(sfs_copyup_name(&f->fs, d, "h2", h), 0);
	assert_int_equal(h->lower_pending, 1);
	assert_int_equal(real_ino(f->upper, "h"), real_ino(f->upper, "d/h2"));
	fx_forget(f, d);
	fx_forget(f, h2);
	fx_forget(f, h);
}

static void test_index_survives_remount(void **state)
{
	struct fx *f = *state;
	struct sfs_node *h = look(f, "h");
	uint64_t ino = h->ino;
	assert_int_equal(sfs_copyup(&f->fs, h, SFS_COPY_DATA), 0);
	fx_forget(f, h);

	sfs_fs_destroy(&f->fs);
	f->fs_ready = false;
	fx_start(f);
	/* a shared-only name finds the local inode through the index */
	struct sfs_node *h3 = look(f, "e/h3");
	assert_int_equal(h3->ino, ino);
	assert_true(sfs_node_has_upper(h3));
	assert_int_equal(nlink_of(f, h3), 3);
	struct sfs_node *h1 = look(f, "h");
	assert_ptr_equal(h1, h3);
	fx_forget(f, h1);
	fx_forget(f, h3);
}

static void test_st_ino_by_layer(void **state)
{
	struct fx *f = *state;
	struct sfs_node *local = look(f, "local");
	struct sfs_node *plain = look(f, "plain");
	assert_int_equal(local->ino, sfs_make_ino(0, real_ino(f->upper, "local")));
	uint64_t shared = sfs_make_ino(1, real_ino(f->lower[0], "plain"));
	assert_int_equal(plain->ino, shared);

	/* copied up: the number stays (kept in scratchfs.ino) */
	assert_int_equal(sfs_copyup(&f->fs, plain, SFS_COPY_DATA), 0);
	assert_int_equal(nlink_of(f, plain), 1);
	fx_forget(f, plain);
	fx_forget(f, local);
	sfs_fs_destroy(&f->fs);
	f->fs_ready = false;
	fx_start(f);
	plain = look(f, "plain");
	assert_true(sfs_node_has_upper(plain));
	assert_int_equal(plain->ino, shared);
	fx_forget(f, plain);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nlink_arithmetic),
		cmocka_unit_test_setup_teardown(test_copy_up_one_name_then_another, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_survives_remount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_st_ino_by_layer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
