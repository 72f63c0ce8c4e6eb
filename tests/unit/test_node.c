/* test_node.c - unit tests for the node table (src/node.c) and st_ino
 * composition (node.h): lookup counts, internal references, retirement
 * of a node and of the parents it kept alive, unhashing, renames, and
 * sfs_make_ino.  No mount: nodes are built by hand.
 *
 * A node's objects are O_PATH fds on /dev/null; a node is freed exactly
 * when its fd is closed, which is what "retired" means to the rest of
 * scratchfs (and ASan catches any use after that).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "node.h"

struct t {
	struct sfs_table *table;
	struct sfs_node *root;
};

static struct sfs_obj dev_null_obj(void)
{
	struct sfs_obj o = { .fd = open("/dev/null", O_PATH | O_CLOEXEC),
			     .layer = 1 };
	assert_true(o.fd >= 0);
	return o;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* A node of type `type` with one shared object, inserted under parent. */
static struct sfs_node *add(struct t *t, uint64_t ino, mode_t type,
			    struct sfs_node *parent, const char *name)
{
	struct sfs_obj lower = dev_null_obj();
	struct sfs_node *n = sfs_node_new(ino, type, NULL, &lower, NULL);
	return sfs_table_insert(t->table, n, parent, name);
}

static int setup(void **state)
{
	struct t *t = g_new0(struct t, 1);
	t->table = sfs_table_new();
	struct sfs_obj up = dev_null_obj();
	up.layer = 0;
	t->root = sfs_node_new(sfs_make_ino(0, 2), S_IFDIR, &up, NULL, NULL);
	sfs_table_set_root(t->table, t->root);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	sfs_table_free(t->table); /* frees what the "kernel" still holds */
	g_free(t);
	return 0;
}

static void test_forget_retires(void **state)
{
	struct t *t = *state;
	struct sfs_node *n = add(t, 100, S_IFREG, t->root, "a");
	int fd = n->lower.fd;

	assert_int_equal(n->nlookup, 1);
	assert_int_equal(t->root->refs, 1); /* the child holds its parent */
	assert_ptr_equal(sfs_table_find_ino(t->table, 100, true), n);
	assert_int_equal(n->nlookup, 2);
	assert_ptr_equal(sfs_table_find_ino(t->table, 100, false), n);
	assert_int_equal(n->nlookup, 2);

	sfs_node_forget(t->table, n, 1);
	assert_true(fd_open(fd));
	assert_ptr_equal(sfs_table_find_ino(t->table, 100, false), n);
	sfs_node_forget(t->table, n, 1);
	assert_false(fd_open(fd));
	assert_null(sfs_table_find_ino(t->table, 100, false));
	assert_int_equal(t->root->refs, 0);
}

static void test_forget_more_than_held(void **state)
{
	struct t *t = *state;
	struct sfs_node *n = add(t, 100, S_IFREG, t->root, "a");
	int fd = n->lower.fd;

	sfs_node_forget(t->table, n, 5); /* clamps, no wrap-around */
	assert_false(fd_open(fd));
	assert_null(sfs_table_find_ino(t->table, 100, false));
}

static void test_second_insert_of_same_ino(void **state)
{
	struct t *t = *state;
	struct sfs_node *a = add(t, 100, S_IFREG, t->root, "a");
	struct sfs_obj lower = dev_null_obj();
	int fd = lower.fd;
	struct sfs_node *b = sfs_node_new(100, S_IFREG, NULL, &lower, NULL);

	/* A hardlink found by another name: one node, one more lookup. */
	assert_ptr_equal(sfs_table_insert(t->table, b, t->root, "b"), a);
	assert_false(fd_open(fd)); /* the new one was freed */
	assert_int_equal(a->nlookup, 2);
	assert_string_equal(a->name, "a");
	assert_int_equal(t->root->refs, 1);
}

static void test_parent_lives_while_child_does(void **state)
{
	struct t *t = *state;
	struct sfs_node *d = add(t, 200, S_IFDIR, t->root, "d");
	struct sfs_node *e = add(t, 201, S_IFDIR, d, "e");
	struct sfs_node *f = add(t, 202, S_IFREG, e, "f");
	int dfd = d->lower.fd, efd = e->lower.fd, ffd = f->lower.fd;

	sfs_node_forget(t->table, d, 1);
	sfs_node_forget(t->table, e, 1);
	assert_true(fd_open(dfd));
	assert_true(fd_open(efd));
	assert_ptr_equal(sfs_table_find_ino(t->table, 200, false), d);

	/* The last child goes: the chain of parents follows. */
	sfs_node_forget(t->table, f, 1);
	assert_false(fd_open(ffd));
	assert_false(fd_open(efd));
	assert_false(fd_open(dfd));
	assert_null(sfs_table_find_ino(t->table, 200, false));
	assert_int_equal(t->root->refs, 0);
}

static void test_internal_ref_keeps_node(void **state)
{
	struct t *t = *state;
	struct sfs_node *n = add(t, 100, S_IFREG, t->root, "a");
	int fd = n->lower.fd;

	sfs_node_ref(t->table, n); /* an open file handle */
	sfs_node_forget(t->table, n, 1);
	assert_true(fd_open(fd));
	sfs_node_unref(t->table, n);
	assert_false(fd_open(fd));
}

static void test_unhashed_node_is_not_found_again(void **state)
{
	struct t *t = *state;
	struct sfs_node *n = add(t, 100, S_IFREG, t->root, "a");
	struct sfs_obj up = dev_null_obj();
	up.layer = 0;
	sfs_table_set_upper(t->table, n, &up, 4242);
	assert_ptr_equal(sfs_table_find_upper(t->table, 4242, false), n);

	/* Its last name was removed: the local inode number may be reused
	 * by the next file, which must get a node of its own. */
	sfs_table_unhash(t->table, n);
	assert_false(n->hashed);
	assert_null(sfs_table_find_ino(t->table, 100, false));
	assert_null(sfs_table_find_upper(t->table, 4242, false));
	struct sfs_node *m = add(t, 100, S_IFREG, t->root, "b");
	assert_ptr_not_equal(m, n);
	assert_true(fd_open(n->upper.fd)); /* the kernel still holds n */

	int fd = n->upper.fd;
	sfs_node_forget(t->table, n, 1);
	assert_false(fd_open(fd));
	assert_ptr_equal(sfs_table_find_ino(t->table, 100, false), m);
}

static void test_set_upper_of_unhashed_node(void **state)
{
	struct t *t = *state;
	struct sfs_node *n = add(t, 100, S_IFREG, t->root, "a");
	sfs_table_unhash(t->table, n);
	struct sfs_obj up = dev_null_obj();
	up.layer = 0;
	sfs_table_set_upper(t->table, n, &up, 4242);
	assert_true(sfs_node_has_upper(n));
	assert_null(sfs_table_find_upper(t->table, 4242, false));
	sfs_node_forget(t->table, n, 1);
}

static void test_rename_moves_parent_reference(void **state)
{
	struct t *t = *state;
	struct sfs_node *p1 = add(t, 300, S_IFDIR, t->root, "p1");
	struct sfs_node *p2 = add(t, 301, S_IFDIR, t->root, "p2");
	struct sfs_node *n = add(t, 302, S_IFREG, p1, "n");
	int p1fd = p1->lower.fd;

	sfs_node_forget(t->table, p1, 1); /* kept by n */
	assert_true(fd_open(p1fd));
	sfs_node_set_name(t->table, n, p2, "m");
	assert_false(fd_open(p1fd)); /* n no longer holds it */
	assert_ptr_equal(n->parent, p2);
	assert_string_equal(n->name, "m");
	assert_int_equal(p2->refs, 1);

	/* Renamed within its own directory: the reference stays. */
	sfs_node_set_name(t->table, n, p2, "k");
	assert_int_equal(p2->refs, 1);
	assert_string_equal(n->name, "k");
}

static void test_root_is_never_retired(void **state)
{
	struct t *t = *state;
	int fd = t->root->upper.fd;

	sfs_node_forget(t->table, t->root, 10);
	struct sfs_node *n = add(t, 100, S_IFREG, t->root, "a");
	sfs_node_forget(t->table, n, 1);
	assert_true(fd_open(fd));
	assert_ptr_equal(sfs_node_from_id(t->table, FUSE_ROOT_ID), t->root);
	assert_int_equal(sfs_nodeid(t->table, t->root), FUSE_ROOT_ID);
	assert_ptr_equal(sfs_table_find_ino(t->table, t->root->ino, false), t->root);
}

static void test_prunable(void **state)
{
	struct t *t = *state;
	struct sfs_node *d = add(t, 200, S_IFDIR, t->root, "d");
	struct sfs_node *f = add(t, 201, S_IFREG, d, "f");
	struct sfs_node *g = add(t, 202, S_IFREG, d, "g");
	sfs_node_forget(t->table, d, 1); /* held by children only */
	sfs_table_unhash(t->table, g);

	g_autoptr(GArray) p = sfs_table_prunable(t->table);
	assert_int_equal(p->len, 1); /* not root, d (no lookups), g (unhashed) */
	struct sfs_prunable *e = &g_array_index(p, struct sfs_prunable, 0);
	assert_int_equal(e->id, sfs_nodeid(t->table, f));
	assert_int_equal(e->parent, sfs_nodeid(t->table, d));
	assert_int_equal(e->depth, 2);
	assert_int_equal(e->fds, 1);
}

static void test_make_ino(void **state)
{
	(void)state;
	assert_int_equal(sfs_make_ino(0, 5), 5);
	assert_int_equal(sfs_make_ino(1, 5), (UINT64_C(1) << 56) | 5);
	assert_int_equal(sfs_make_ino(255, 5) >> 56, 255);
	/* The same inode number in different layers never collides. */
	for (int l = 0; l < 4; l++)
		for (int m = l + 1; m < 4; m++)
			assert_int_not_equal(sfs_make_ino(l, 77), sfs_make_ino(m, 77));
	/* Past 2^56 the high bits are folded in, not dropped: */
	ino_t big = ((ino_t)3 << 56) | 0x10;
	assert_int_equal(sfs_make_ino(2, big), (UINT64_C(2) << 56) | (0x10 ^ 3));
	assert_int_not_equal(sfs_make_ino(2, big), sfs_make_ino(2, 0x10));
	/* and the layer bits stay the layer's. */
	assert_int_equal(sfs_make_ino(2, (ino_t)-1) >> 56, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forget_retires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_more_than_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_insert_of_same_ino, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parent_lives_while_child_does, setup, teardown),
		cmocka_unit_test_setup_teardown(test_internal_ref_keeps_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unhashed_node_is_not_found_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_upper_of_unhashed_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_moves_parent_reference, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_is_never_retired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prunable, setup, teardown),
		cmocka_unit_test(test_make_ino),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
