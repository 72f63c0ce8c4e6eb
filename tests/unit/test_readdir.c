/* test_readdir.c - unit tests for merged directory listings
 * (src/readdir.c) on plain directories, without FUSE: the order of the
 * layers, each name once with the type of the layer that wins, whiteouts
 * (char 0/0 and ".wh." markers) and opaque directories hiding what is
 * below them, d_ino, and the emptiness check rmdir relies on.
 *
 * Char 0/0 whiteouts need mknod (root); without it those cases are
 * skipped, the ".wh." cases still run.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fixture.h"
#include "readdir.h"

static int setup(void **state)
{
	*state = fx_new(2);
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

/* Position of name in the snapshot, -1 if absent; asserts it is there
 * at most once. */
static int pos(struct sfs_dir *d, const char *name)
{
	int at = -1;
	for (guint i = 0; i < d->entries->len; i++) {
		struct sfs_dirent *e = &g_array_index(d->entries, struct sfs_dirent, i);
		if (strcmp(e->name, name) == 0) {
			if (at >= 0)
				fail_msg("%s listed twice", name);
			at = (int)i;
		}
	}
	return at;
}

static struct sfs_dirent *entry(struct sfs_dir *d, const char *name)
{
	int i = pos(d, name);
	if (i < 0)
		fail_msg("%s not listed", name);
	return &g_array_index(d->entries, struct sfs_dirent, i);
}

static void snapshot(struct fx *f, const char *path, struct sfs_dir *d)
{
	int err;
	struct sfs_node *n = fx_lookup(f, path, &err);
	assert_non_null(n);
	memset(d, 0, sizeof(*d));
	assert_int_equal(sfs_dir_snapshot(&f->fs, n, d), 0);
	fx_forget(f, n);
}

static uint64_t real_ino(const char *dir, const char *name)
{
	g_autofree char *p = g_build_filename(dir, name, NULL);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	return st.st_ino;
}

static void test_layer_order_and_hiding(void **state)
{
	struct fx *f = *state;
	const char *up = f->upper, *l0 = f->lower[0], *l1 = f->lower[1];

	fx_file(up, "u1", "u");
	fx_file(up, "both", "u");
	fx_file(up, ".wh.marked", "");
	bool mknod_ok = fx_whiteout(up, "gone");
	fx_mkdir(l0, "both");
	fx_file(l0, "l0", "0");
	fx_file(l0, "gone", "0");
	fx_file(l0, "marked", "0");
	fx_file(l0, "shadow", "0");
	fx_file(l0, "y", "0");
	fx_file(l0, ".wh.y", "");  /* hides y only below its own layer */
	fx_file(l0, ".wh.x", "");
	fx_file(l1, "l0", "1");
	fx_file(l1, "l1", "1");
	fx_mkdir(l1, "shadow");
	fx_file(l1, "x", "1");
	fx_file(l1, "y", "1");
	fx_start(f);

	struct sfs_dir d;
	snapshot(f, "", &d);
	assert_int_equal(pos(&d, "."), 0);
	assert_int_equal(pos(&d, ".."), 1);
	/* the local layer, then each shared layer, top first */
	const char *order[][3] = { { "u1", "both", NULL },
				   { "l0", "shadow", "y" },
				   { "l1", NULL, NULL } };
	int last_of_prev = 1;
	for (int layer = 0; layer < 3; layer++) {
		int first = G_MAXINT, last = -1;
		for (int k = 0; k < 3 && order[layer][k]; k++) {
			int p = pos(&d, order[layer][k]);
			if (p < 0)
				fail_msg("%s not listed", order[layer][k]);
			first = MIN(first, p);
			last = MAX(last, p);
		}
		assert_true(first > last_of_prev);
		last_of_prev = last;
	}
	assert_int_equal(d.entries->len, 2 + 6);
	/* hidden: by a whiteout, by markers in the layer above; markers and
	 * whiteouts themselves are never listed */
	assert_int_equal(pos(&d, "marked"), -1);
	assert_int_equal(pos(&d, "x"), -1);
	assert_int_equal(pos(&d, ".wh.marked"), -1);
	assert_int_equal(pos(&d, ".wh.x"), -1);
	assert_int_equal(pos(&d, "gone"), -1);
	if (!mknod_ok)
		print_message("no mknod: whiteout case not run\n");
	/* the winning layer gives the type */
	assert_int_equal(entry(&d, "both")->type, DT_REG);
	assert_int_equal(entry(&d, "shadow")->type, DT_REG);
	/* d_ino: the layer-tagged inode number of the winning object */
	assert_int_equal(entry(&d, "u1")->ino, sfs_make_ino(0, real_ino(up, "u1")));
	assert_int_equal(entry(&d, "l0")->ino, sfs_make_ino(1, real_ino(l0, "l0")));
	assert_int_equal(entry(&d, "l1")->ino, sfs_make_ino(2, real_ino(l1, "l1")));
	sfs_dir_clear(&d);

	g_autoptr(GPtrArray) names = NULL;
	int err;
	struct sfs_node *root = fx_lookup(f, "", &err);
	assert_int_equal(sfs_dir_names(&f->fs, root, &names), 0);
	assert_int_equal(names->len, 6); /* no "." nor ".." */
	fx_forget(f, root);
}

static void test_known_node_gives_d_ino(void **state)
{
	struct fx *f = *state;
	fx_file(f->lower[0], "a", "a");
	fx_start(f);

	int err;
	struct sfs_node *a = fx_lookup(f, "a", &err);
	assert_non_null(a);
	struct sfs_dir d;
	snapshot(f, "", &d);
	assert_int_equal(entry(&d, "a")->ino, a->ino);
	sfs_dir_clear(&d);
	fx_forget(f, a);
}

static void test_opaque_local_directory(void **state)
{
	struct fx *f = *state;
	fx_file(f->upper, "d/a", "u");
	fx_opaque(f->upper, "d");
	fx_file(f->lower[0], "d/b", "0");
	fx_file(f->lower[1], "d/c", "1");
	fx_start(f);

	struct sfs_dir d;
	snapshot(f, "d", &d);
	assert_int_equal(d.entries->len, 3);
	assert_int_equal(pos(&d, "a"), 2);
	sfs_dir_clear(&d);
}

static void test_opaque_shared_directory(void **state)
{
	struct fx *f = *state;
	fx_file(f->upper, "d/u", "u");
	fx_file(f->lower[0], "d/c", "0");
	fx_opaque(f->lower[0], "d");
	fx_file(f->lower[1], "d/e", "1");
	fx_start(f);

	struct sfs_dir d;
	snapshot(f, "d", &d);
	assert_int_equal(d.entries->len, 4);
	assert_true(pos(&d, "u") < pos(&d, "c"));
	assert_int_equal(pos(&d, "e"), -1);
	sfs_dir_clear(&d);
}

static void test_whiteout_hides_directory(void **state)
{
	struct fx *f = *state;
	fx_file(f->lower[0], "d/a", "0");
	fx_file(f->lower[1], "d/b", "1");
	fx_file(f->upper, ".wh.d", "");
	fx_start(f);

	struct sfs_dir d;
	snapshot(f, "", &d);
	assert_int_equal(pos(&d, "d"), -1);
	sfs_dir_clear(&d);
	int err;
	assert_null(fx_lookup(f, "d", &err));
	assert_int_equal(err, -ENOENT);
}

static void test_check_empty(void **state)
{
	struct fx *f = *state;
	fx_file(f->lower[0], "e/p", "0");
	fx_file(f->lower[1], "e/q", "1");
	fx_file(f->upper, "e/.wh.p", "");
	fx_file(f->upper, "e/.wh.q", "");
	fx_file(f->lower[0], "g/p", "0");
	fx_file(f->lower[1], "g/r", "1");
	fx_file(f->upper, "g/.wh.p", "");
	fx_start(f);

	int err;
	struct sfs_node *e = fx_lookup(f, "e", &err);
	struct sfs_node *g = fx_lookup(f, "g", &err);
	assert_non_null(e);
	assert_non_null(g);
	/* only whiteouts left: empty, rmdir may go ahead */
	assert_int_equal(sfs_dir_check_empty(&f->fs, e), 0);
	/* r in the bottom layer is still visible */
	assert_int_equal(sfs_dir_check_empty(&f->fs, g), -ENOTEMPTY);
	fx_forget(f, e);
	fx_forget(f, g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layer_order_and_hiding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_known_node_gives_d_ino, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opaque_local_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opaque_shared_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whiteout_hides_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_empty, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
