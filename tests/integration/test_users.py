"""Users stay users (design.md section 3, invariant 7), with real users on a
real mount: scratchfs runs as root for everyone (allow_other), the kernel
checks permissions (default_permissions), new objects belong to the caller,
a setgid directory passes its group down, the caller's umask applies, and a
copy-up triggered by one user keeps the owner, group, mode and xattrs of the
original.

Users (sfs_users.py): sfs-alice and sfs-bob are in sfs-team, sfs-carol is
not.  Every check looks at the merged view AND at the local layer directly.

Shared layer used by every test:
    pub/             1777 root:root      (like /tmp)
    pub/suid-root    06777 root:root     world-writable setuid+setgid file
    team/            2775 root:sfs-team  setgid group directory
    team/shared.txt  0664 alice:sfs-team user.note=hello
    team/private.txt 0600 alice:alice
    team/deep/       2775 alice:sfs-team user.dir=d
    team/deep/inner.txt 0664 alice:sfs-team user.note=inner
    team/{trunc,xattr,link}.txt 0664 alice:sfs-team user.note=NAME
    home-alice/      0755 alice:alice
    drop/            2777 root:sfs-team  setgid, writable by everyone
"""

import errno
import os
import stat
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
import sfs_users  # noqa: E402
from sfs import read_file, write_file  # noqa: E402
from sfs_users import User  # noqa: E402

INNER_MTIME_NS = 1_600_000_000_123_456_789


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class UsersTest(sfs.TestCase):

    @classmethod
    def setUpClass(cls):
        sfs_users.ensure_users()
        cls.alice = User(sfs_users.ALICE)
        cls.bob = User(sfs_users.BOB)
        cls.carol = User(sfs_users.CAROL)
        cls.team = sfs_users.grp.getgrnam(sfs_users.TEAM).gr_gid

    def setUp(self):
        super().setUp()
        os.umask(0o022)
        L = self.layers.L
        a, team = self.alice, self.team
        os.mkdir(L("pub"))
        os.chmod(L("pub"), 0o1777)
        write_file(L("pub", "suid-root"), b"#!/bin/sh\necho root\n")
        os.chmod(L("pub", "suid-root"), 0o6777)
        os.mkdir(L("team"))
        os.chown(L("team"), 0, team)
        os.chmod(L("team"), 0o2775)
        write_file(L("team", "shared.txt"), b"v1\n")
        os.chown(L("team", "shared.txt"), a.uid, team)
        os.chmod(L("team", "shared.txt"), 0o664)
        os.setxattr(L("team", "shared.txt"), "user.note", b"hello")
        write_file(L("team", "private.txt"), b"alice only\n")
        os.chown(L("team", "private.txt"), a.uid, a.gid)
        os.chmod(L("team", "private.txt"), 0o600)
        os.mkdir(L("team", "deep"))
        os.chown(L("team", "deep"), a.uid, team)
        os.chmod(L("team", "deep"), 0o2775)
        os.setxattr(L("team", "deep"), "user.dir", b"d")
        write_file(L("team", "deep", "inner.txt"), b"inner\n")
        os.chown(L("team", "deep", "inner.txt"), a.uid, team)
        os.chmod(L("team", "deep", "inner.txt"), 0o664)
        os.setxattr(L("team", "deep", "inner.txt"), "user.note", b"inner")
        os.utime(L("team", "deep", "inner.txt"), ns=(INNER_MTIME_NS, INNER_MTIME_NS))
        for n in ("trunc.txt", "xattr.txt", "link.txt"):
            write_file(L("team", n), b"alice's %s\n" % n.encode())
            os.chown(L("team", n), a.uid, team)
            os.chmod(L("team", n), 0o664)
            os.setxattr(L("team", n), "user.note", n.encode())
        os.mkdir(L("home-alice"))
        os.chown(L("home-alice"), a.uid, a.gid)
        os.mkdir(L("drop"))
        os.chown(L("drop"), 0, team)
        os.chmod(L("drop"), 0o2777)

    # -- helpers
    def assertOwner(self, rel, user_or_uid, gid, mode=None, upper=True):
        """Owner (and mode) of REL through the mount and, if upper, of its
        copy in the local layer."""
        uid = getattr(user_or_uid, "uid", user_or_uid)
        places = [("mount", self.layers.M(rel))]
        if upper:
            places.append(("upper", self.layers.U(rel)))
        for where, p in places:
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                self.fail("%s: missing in the %s" % (rel, where))
            got = (st.st_uid, st.st_gid)
            self.assertEqual(got, (uid, gid), "%s (%s): owner %d:%d, expected %d:%d"
                             % (rel, where, st.st_uid, st.st_gid, uid, gid))
            if mode is not None:
                self.assertEqual(stat.S_IMODE(st.st_mode), mode,
                                 "%s (%s): mode %04o, expected %04o"
                                 % (rel, where, stat.S_IMODE(st.st_mode), mode))

    def assertUserErrno(self, expected, got, what):
        self.assertEqual(got, expected, "%s: expected %s, got %s" % (
            what, errno.errorcode.get(expected, expected),
            errno.errorcode.get(got, got) if got else "success"))

    # ------------------------------------------------------------ tests

    def test_private_file_unreadable_by_other_users(self):
        m = self.mount()
        a, b, c = self.alice, self.bob, self.carol
        secret = m.M("pub", "alice-secret")
        self.assertEqual(a.create(secret, b"alice's secret\n", mode=0o600), 0)
        self.assertOwner("pub/alice-secret", a, a.gid, 0o600)
        self.assertEqual(a.read(secret), (0, b"alice's secret\n"))
        for u in (b, c):
            self.assertUserErrno(errno.EACCES, u.read(secret)[0], "%s reads alice's 0600 file"
                                 % u.name)
            self.assertUserErrno(errno.EACCES, u.err("os.open(%r, os.O_WRONLY)" % secret),
                                 "%s opens alice's 0600 file for writing" % u.name)
        # the same through a plain command: exit status and message
        p = b.sh("cat %s" % secret)
        self.assertNotEqual(p.returncode, 0, "cat as bob succeeded: %r" % p.stdout)
        self.assertIn("Permission denied", p.stderr)
        self.assertEqual(p.stdout, "")
        # a 0600 file that only exists in the shared layer
        priv = m.M("team", "private.txt")
        self.assertEqual(a.read(priv), (0, b"alice only\n"))
        for u in (b, c):
            self.assertUserErrno(errno.EACCES, u.read(priv)[0],
                                 "%s reads alice's 0600 shared-layer file" % u.name)
        p = c.sh("head -c 1 %s" % priv)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied", p.stderr)
        # root still reads both
        self.assertEqual(read_file(secret), b"alice's secret\n")
        self.assertFalse(os.path.lexists(self.layers.U("team", "private.txt")),
                         "a refused open copied the file up")

    def test_new_objects_belong_to_the_caller(self):
        m = self.mount()
        a, b = self.alice, self.bob
        out = a.py("""
d = sys.argv[2]
write(d + '/pub/a-file', b'a', 0o666)
os.mkdir(d + '/pub/a-dir', 0o777)
write(d + '/pub/a-dir/nested', b'n', 0o644)
os.symlink('a-file', d + '/pub/a-link')
os.mkfifo(d + '/pub/a-fifo', 0o666)
os.link(d + '/pub/a-file', d + '/pub/a-hardlink')
write(d + '/pub/a-tmp', b't', 0o644)
os.rename(d + '/pub/a-tmp', d + '/pub/a-renamed')
write(d + '/home-alice/at-home', b'h', 0o644)
os.mkdir(d + '/home-alice/subdir', 0o755)
""", args=[m.mnt])
        self.assertEqual(out, {})
        ag = a.gid
        self.assertOwner("pub/a-file", a, ag, 0o644)
        self.assertOwner("pub/a-dir", a, ag, 0o755)
        self.assertOwner("pub/a-dir/nested", a, ag, 0o644)
        self.assertOwner("pub/a-link", a, ag)
        self.assertOwner("pub/a-fifo", a, ag, 0o644)
        self.assertOwner("pub/a-hardlink", a, ag, 0o644)
        self.assertOwner("pub/a-renamed", a, ag, 0o644)
        self.assertOwner("home-alice/at-home", a, ag, 0o644)
        self.assertOwner("home-alice/subdir", a, ag, 0o755)
        # the copied-up parents keep their owners
        self.assertOwner("home-alice", a, ag, 0o755)
        self.assertOwner("pub", 0, 0, 0o1777)
        # another user, then root, then alice again: no credentials left over
        self.assertEqual(b.create(m.M("pub", "b-file"), b"b"), 0)
        self.assertOwner("pub/b-file", b, b.gid, 0o644)
        write_file(m.M("pub", "root-file"), b"r")
        self.assertOwner("pub/root-file", 0, 0, 0o644)
        os.mkdir(m.M("pub", "root-dir"))
        self.assertOwner("pub/root-dir", 0, 0, 0o755)
        self.assertEqual(a.create(m.M("pub", "a-again"), b"a"), 0)
        self.assertOwner("pub/a-again", a, ag, 0o644)
        self.assertEqual(a.err("os.mkdir(%r)" % m.M("pub", "a-dir2")), 0)
        self.assertOwner("pub/a-dir2", a, ag, 0o755)

    def _concurrent_creators(self, **opts):
        m = self.mount(**opts)
        users = (self.alice, self.bob, self.carol)
        code = """
d = sys.argv[2]
for i in range(40):
    write('%s/f%d' % (d, i), b'x', 0o644)
    if i % 4 == 0:
        os.mkdir('%s/d%d' % (d, i))
        write('%s/d%d/in' % (d, i), b'y', 0o644)
    os.rename('%s/f%d' % (d, i), '%s/g%d' % (d, i))
"""
        for u in users:
            os.mkdir(m.M("pub", u.name))
            os.chown(m.M("pub", u.name), u.uid, u.gid)
        errors = []

        def work(u):
            try:
                u.py(code, args=[m.M("pub", u.name)], timeout=60)
            except Exception as e:  # reported below
                errors.append("%s: %s" % (u.name, e))

        threads = [threading.Thread(target=work, args=(u,)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        wrong = []
        for u in users:
            for root in (m.M("pub", u.name), self.layers.U("pub", u.name)):
                for rel in sfs.walk(root):
                    st = os.lstat(os.path.join(root, rel))
                    if (st.st_uid, st.st_gid) != (u.uid, u.gid):
                        wrong.append("%s/%s: %d:%d (expected %d:%d)" % (
                            root, rel, st.st_uid, st.st_gid, u.uid, u.gid))
            self.assertEqual(len(sfs.walk(m.M("pub", u.name))), 40 + 20)
        self.assertEqual(wrong[:10], [], "%d objects with the wrong owner" % len(wrong))

    def test_concurrent_creators_single_thread(self):
        self._concurrent_creators()

    def test_concurrent_creators_multithread(self):
        self._concurrent_creators(multithread=True)

    def _check_setgid_dir(self, m, rel, dir_uid):
        """REL is a 2775 directory of group sfs-team: what alice, bob and
        carol can do in it and what they get."""
        a, b, c, team = self.alice, self.bob, self.carol, self.team
        M = lambda *p: m.M(rel, *p)  # noqa: E731
        R = lambda *p: os.path.join(rel, *p)  # noqa: E731
        # alice, umask 002: group sfs-team, mode 664 / 2775
        self.assertEqual(a.create(M("a.txt"), b"from alice\n", mode=0o666, umask=0o002), 0)
        self.assertOwner(R("a.txt"), a, team, 0o664)
        self.assertEqual(a.err("os.mkdir(%r, 0o777)" % M("sub"), umask=0o002), 0)
        self.assertOwner(R("sub"), a, team, 0o2775)
        self.assertEqual(a.create(M("sub", "n.txt"), b"n", umask=0o002), 0)
        self.assertOwner(R("sub", "n.txt"), a, team, 0o664)
        self.assertEqual(a.err("os.mkdir(%r, 0o777)" % M("sub", "subsub"), umask=0o002), 0)
        self.assertOwner(R("sub", "subsub"), a, team, 0o2775)
        # the directory itself, copied up or created, keeps setgid + group
        self.assertOwner(rel, dir_uid, team, 0o2775)
        # bob (in sfs-team) edits alice's file and creates his own
        self.assertEqual(b.append(M("a.txt"), b"from bob\n"), 0)
        self.assertEqual(read_file(M("a.txt")), b"from alice\nfrom bob\n")
        self.assertEqual(read_file(self.layers.U(R("a.txt"))), b"from alice\nfrom bob\n")
        self.assertOwner(R("a.txt"), a, team, 0o664)
        self.assertEqual(b.create(M("sub", "b.txt"), b"b", umask=0o002), 0)
        self.assertOwner(R("sub", "b.txt"), b, team, 0o664)
        # carol (not in sfs-team) reads but cannot edit nor create
        self.assertEqual(c.read(M("a.txt")), (0, b"from alice\nfrom bob\n"))
        self.assertUserErrno(errno.EACCES, c.append(M("a.txt"), b"from carol\n"),
                             "carol appends to a sfs-team 664 file")
        p = c.sh("echo carol >> %s" % M("a.txt"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied", p.stderr)
        self.assertUserErrno(errno.EACCES, c.create(M("c.txt"), b"c"),
                             "carol creates a file in a sfs-team 2775 directory")
        self.assertUserErrno(errno.EACCES, c.err("os.mkdir(%r)" % M("sub", "c-dir")),
                             "carol creates a directory in a sfs-team 2775 directory")
        self.assertEqual(read_file(M("a.txt")), b"from alice\nfrom bob\n")
        self.assertFalse(os.path.lexists(self.layers.U(R("c.txt"))))

    def test_setgid_dir_in_shared_layer(self):
        m = self.mount()
        self._check_setgid_dir(m, "team", 0)

    def test_setgid_dir_created_through_mount(self):
        m = self.mount()
        os.mkdir(m.M("proj"))
        os.chown(m.M("proj"), 0, self.team)
        os.chmod(m.M("proj"), 0o2775)
        self.assertOwner("proj", 0, self.team, 0o2775)
        self._check_setgid_dir(m, "proj", 0)
        # and one created by alice herself inside pub (her group, then chgrp)
        a = self.alice
        self.assertEqual(a.py("""
p = sys.argv[2]
os.mkdir(p, 0o775)
os.chown(p, -1, %d)
os.chmod(p, 0o2775)
""" % self.team, umask=0o002, args=[m.M("pub", "alice-proj")]), {})
        self.assertOwner("pub/alice-proj", a, self.team, 0o2775)
        self._check_setgid_dir(m, "pub/alice-proj", a.uid)

    def test_no_chmod_chown_of_other_users_files(self):
        m = self.mount()
        a, b, team = self.alice, self.bob, self.team
        f = m.M("pub", "a-file")
        self.assertEqual(a.create(f, b"mine\n", mode=0o644), 0)
        checks = [
            (errno.EPERM, "os.chmod(%r, 0o666)" % f, "bob chmods alice's file"),
            (errno.EPERM, "os.chown(%r, %d, -1)" % (f, b.uid), "bob chowns alice's file to himself"),
            (errno.EPERM, "os.chown(%r, -1, %d)" % (f, b.gid), "bob chgrps alice's file to his group"),
            (errno.EPERM, "os.chown(%r, -1, %d)" % (f, team), "bob chgrps alice's file to sfs-team"),
            (errno.EPERM, "os.utime(%r, (1, 1))" % f, "bob sets explicit times on alice's file"),
            (errno.EACCES, "os.utime(%r)" % f, "bob touches alice's read-only-for-him file"),
            (errno.EACCES, "os.truncate(%r, 0)" % f, "bob truncates alice's file"),
            (errno.EACCES, "os.setxattr(%r, 'user.x', b'1')" % f, "bob sets an xattr on alice's file"),
            (errno.EPERM, "os.unlink(%r)" % f, "bob removes alice's file from a sticky directory"),
            (errno.EPERM, "os.rename(%r, %r)" % (f, m.M("pub", "stolen")),
             "bob renames alice's file in a sticky directory"),
        ]
        for exp, expr, what in checks:
            self.assertUserErrno(exp, b.err(expr), what)
        self.assertOwner("pub/a-file", a, a.gid, 0o644)
        self.assertEqual(read_file(f), b"mine\n")
        p = b.sh("chmod 777 %s" % f)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Operation not permitted", p.stderr)
        # alice cannot give her file away, nor to a group she is not in
        self.assertUserErrno(errno.EPERM, a.err("os.chown(%r, %d, -1)" % (f, b.uid)),
                             "alice chowns her file to bob")
        self.assertUserErrno(errno.EPERM, a.err("os.chown(%r, -1, %d)" % (f, self.carol.gid)),
                             "alice chgrps her file to carol's group")
        self.assertEqual(a.err("os.chown(%r, -1, %d)" % (f, team)), 0)
        self.assertOwner("pub/a-file", a, team, 0o644)
        self.assertEqual(a.err("os.chmod(%r, 0o640)" % f), 0)
        self.assertOwner("pub/a-file", a, team, 0o640)
        # a shared-layer file of alice: refused, and nothing copied up
        g = m.M("team", "shared.txt")
        self.assertUserErrno(errno.EPERM, b.err("os.chmod(%r, 0o666)" % g),
                             "bob chmods alice's shared-layer file")
        self.assertUserErrno(errno.EPERM, b.err("os.chown(%r, %d, -1)" % (g, b.uid)),
                             "bob chowns alice's shared-layer file")
        self.assertFalse(os.path.lexists(self.layers.U("team", "shared.txt")),
                         "a refused chmod/chown copied the file up")
        self.assertOwner("team/shared.txt", a, team, 0o664, upper=False)

    def test_users_cannot_create_root_owned_objects(self):
        m = self.mount()
        b = self.bob
        out = b.py("""
d = sys.argv[2]
write(d + '/pub/b-suid', b'', 0o4755)
os.mkdir(d + '/pub/b-dir', 0o755)
os.symlink('/etc/passwd', d + '/pub/b-link')
os.mkfifo(d + '/pub/b-fifo', 0o644)
os.link(d + '/pub/b-suid', d + '/pub/b-hard')
OUT['chown_root'] = E(os.chown, d + '/pub/b-suid', 0, 0)
OUT['chgrp_root'] = E(os.chown, d + '/pub/b-suid', -1, 0)
OUT['create_in_root_dir'] = E(write, d + '/b-top', b'x', 0o644)
OUT['mkdir_in_root_dir'] = E(os.mkdir, d + '/b-topdir')
OUT['mknod_chr'] = E(os.mknod, d + '/pub/b-null', stat.S_IFCHR | 0o666, os.makedev(1, 3))
""", args=[m.mnt])
        self.assertEqual(out, {"chown_root": errno.EPERM, "chgrp_root": errno.EPERM,
                               "create_in_root_dir": errno.EACCES,
                               "mkdir_in_root_dir": errno.EACCES, "mknod_chr": errno.EPERM})
        self.assertOwner("pub/b-suid", b, b.gid, 0o4755)
        self.assertOwner("pub/b-hard", b, b.gid, 0o4755)
        self.assertOwner("pub/b-dir", b, b.gid, 0o755)
        self.assertOwner("pub/b-link", b, b.gid)
        self.assertOwner("pub/b-fifo", b, b.gid, 0o644)
        for n in ("b-top", "b-topdir", "pub/b-null"):
            self.assertFalse(os.path.lexists(m.M(n)), "%s exists in the mount" % n)
            self.assertFalse(os.path.lexists(self.layers.U(n)), "%s exists in the upper" % n)
        # nothing in the local layer belongs to root apart from what root made
        # or what was root's in the shared layer
        for rel in sfs.walk(self.layers.upper):
            st = os.lstat(self.layers.U(rel))
            if rel.startswith("pub/b-"):
                self.assertEqual(st.st_uid, b.uid, rel)
        # writing to a root-owned setuid/setgid file clears those bits (as on
        # any filesystem) and keeps the owner: no root-owned setuid file with
        # bob's content
        self.assertEqual(b.append(m.M("pub", "suid-root"), b"echo bob\n"), 0)
        self.assertEqual(read_file(m.M("pub", "suid-root")),
                         b"#!/bin/sh\necho root\necho bob\n")
        self.assertOwner("pub/suid-root", 0, 0, 0o777)

    def test_copy_up_by_another_user_keeps_owner_group_mode_xattrs(self):
        m = self.mount()
        a, b, team = self.alice, self.bob, self.team
        U = self.layers.U
        # bob appends to alice's group-writable shared-layer file
        self.assertEqual(b.append(m.M("team", "shared.txt"), b"bob was here\n"), 0)
        self.assertEqual(read_file(m.M("team", "shared.txt")), b"v1\nbob was here\n")
        self.assertEqual(read_file(U("team", "shared.txt")), b"v1\nbob was here\n")
        self.assertOwner("team/shared.txt", a, team, 0o664)
        self.assertEqual(os.getxattr(U("team", "shared.txt"), "user.note"), b"hello")
        self.assertEqual(os.getxattr(m.M("team", "shared.txt"), "user.note"), b"hello")
        # the parent was copied up for bob: still root:sfs-team 2775
        self.assertOwner("team", 0, team, 0o2775)
        # bob creates a file in alice's setgid shared-layer directory
        self.assertEqual(b.create(m.M("team", "deep", "bob.txt"), b"b", umask=0o002), 0)
        self.assertOwner("team/deep", a, team, 0o2775)
        self.assertEqual(os.getxattr(U("team", "deep"), "user.dir"), b"d")
        self.assertEqual(os.getxattr(m.M("team", "deep"), "user.dir"), b"d")
        self.assertOwner("team/deep/bob.txt", b, team, 0o664)
        # bob renames alice's file (group-writable directory, no sticky bit)
        self.assertEqual(b.err("os.rename(%r, %r)" % (m.M("team", "deep", "inner.txt"),
                                                      m.M("team", "deep", "renamed.txt"))), 0)
        self.assertFalse(os.path.lexists(m.M("team", "deep", "inner.txt")))
        self.assertOwner("team/deep/renamed.txt", a, team, 0o664)
        self.assertEqual(read_file(m.M("team", "deep", "renamed.txt")), b"inner\n")
        self.assertEqual(os.getxattr(U("team", "deep", "renamed.txt"), "user.note"), b"inner")
        self.assertEqual(os.lstat(m.M("team", "deep", "renamed.txt")).st_mtime_ns,
                         INNER_MTIME_NS)
        # alice's own chmod of her shared-layer file (metadata copy-up)
        self.assertEqual(a.err("os.chmod(%r, 0o2750)" % m.M("team", "deep")), 0)
        self.assertOwner("team/deep", a, team, 0o2750)
        # root gives a shared-layer file to carol: the copy is carol's
        os.chown(m.M("team", "private.txt"), self.carol.uid, self.carol.gid)
        self.assertOwner("team/private.txt", self.carol, self.carol.gid, 0o600)
        self.assertEqual(self.carol.read(m.M("team", "private.txt")), (0, b"alice only\n"))
        self.assertUserErrno(errno.EACCES, a.read(m.M("team", "private.txt"))[0],
                             "alice reads the file root gave to carol")

    def test_copy_up_by_truncate_xattr_link_of_another_user(self):
        m = self.mount()
        a, b, team = self.alice, self.bob, self.team
        U = self.layers.U
        out = b.py("""
d = sys.argv[2]
OUT['trunc'] = E(lambda: os.close(os.open(d + '/trunc.txt', os.O_WRONLY | os.O_TRUNC)))
OUT['xattr'] = E(os.setxattr, d + '/xattr.txt', 'user.bob', b'b')
OUT['link'] = E(os.link, d + '/link.txt', d + '/bob-link')
""", args=[m.M("team")])
        self.assertEqual(out, {"trunc": 0, "xattr": 0, "link": 0})
        self.assertEqual(read_file(m.M("team", "trunc.txt")), b"")
        self.assertEqual(read_file(U("team", "trunc.txt")), b"")
        for n in ("trunc.txt", "xattr.txt", "link.txt", "bob-link"):
            self.assertOwner("team/" + n, a, team, 0o664)
        for n in ("trunc.txt", "xattr.txt", "link.txt"):
            self.assertEqual(os.getxattr(U("team", n), "user.note"), n.encode(), n)
            self.assertEqual(os.getxattr(m.M("team", n), "user.note"), n.encode(), n)
        self.assertEqual(os.getxattr(m.M("team", "xattr.txt"), "user.bob"), b"b")
        self.assertEqual(os.stat(m.M("team", "bob-link")).st_nlink, 2)
        self.assertEqual(os.stat(m.M("team", "bob-link")).st_ino,
                         os.stat(m.M("team", "link.txt")).st_ino)
        self.assertEqual(read_file(m.M("team", "bob-link")), b"alice's link.txt\n")

    def test_rename_of_another_users_shared_directory(self):
        """bob renames alice's shared-layer directory inside a group
        directory: EXDEV (as kernel overlayfs without redirect_dir; mv then
        copies) or done, and then everything below keeps its owner."""
        m = self.mount()
        a, b, team = self.alice, self.bob, self.team
        e = b.err("os.rename(%r, %r)" % (m.M("team", "deep"), m.M("team", "deep-moved")))
        self.assertIn(e, (0, errno.EXDEV), "rename: %s" % errno.errorcode.get(e, e))
        if e == errno.EXDEV:
            self.assertOwner("team/deep", a, team, 0o2775, upper=False)
            return
        self.assertFalse(os.path.lexists(m.M("team", "deep")))
        self.assertOwner("team/deep-moved", a, team, 0o2775)
        st = os.lstat(m.M("team", "deep-moved", "inner.txt"))
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (a.uid, team, 0o664))
        self.assertEqual(read_file(m.M("team", "deep-moved", "inner.txt")), b"inner\n")
        self.assertEqual(os.getxattr(m.M("team", "deep-moved"), "user.dir"), b"d")

    def test_setgid_dir_writable_by_non_members(self):
        """drop/ is 2777 root:sfs-team: carol (not a member) gets the group
        too, but cannot make a setgid file of a group she is not in."""
        m = self.mount()
        c, team = self.carol, self.team
        out = c.py("""
d = sys.argv[2]
write(d + '/c.txt', b'c', 0o666)
os.mkdir(d + '/c-dir', 0o777)
write(d + '/c-sgid', b'', 0o2775)
OUT['chmod_sgid'] = E(os.chmod, d + '/c.txt', 0o2664)
""", umask=0o002, args=[m.M("drop")])
        self.assertEqual(out, {"chmod_sgid": 0})
        # chmod g+s by a non-member succeeds but the kernel drops the bit
        self.assertOwner("drop/c.txt", c, team, 0o664)
        self.assertOwner("drop/c-dir", c, team, 0o2775)
        self.assertOwner("drop/c-sgid", c, team, 0o775)
        self.assertOwner("drop", 0, team, 0o2777)

    def test_caller_umask_applies(self):
        m = self.mount()
        a = self.alice
        cases = [(0o077, 0o600, 0o700), (0o027, 0o640, 0o750), (0o002, 0o664, 0o775),
                 (0o000, 0o666, 0o777), (0o022, 0o644, 0o755)]
        for umask, fmode, dmode in cases:
            tag = "%03o" % umask
            out = a.py("""
d = sys.argv[2]
write(d + '/f' + sys.argv[3], b'x', 0o666)
os.mkdir(d + '/d' + sys.argv[3], 0o777)
os.mkfifo(d + '/p' + sys.argv[3], 0o666)
""", umask=umask, args=[m.M("pub"), tag])
            self.assertEqual(out, {})
            self.assertOwner("pub/f" + tag, a, a.gid, fmode)
            self.assertOwner("pub/d" + tag, a, a.gid, dmode)
            self.assertOwner("pub/p" + tag, a, a.gid, fmode)
        # the same from a shell
        p = a.sh("echo x > %s; mkdir %s" % (m.M("pub", "sh-f"), m.M("pub", "sh-d")),
                 umask=0o077)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertOwner("pub/sh-f", a, a.gid, 0o600)
        self.assertOwner("pub/sh-d", a, a.gid, 0o700)
        # umask also applies inside a copied-up shared-layer directory
        self.assertEqual(a.create(m.M("home-alice", "u077"), b"x", umask=0o077), 0)
        self.assertOwner("home-alice/u077", a, a.gid, 0o600)


if __name__ == "__main__":
    sfs.main()
