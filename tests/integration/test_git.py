"""git inside the mount on a repository that lives in the shared layer:
status is clean, edit + commit, gc (packs and deletes shared-layer
objects), and a local `git clone` (hardlinks objects from the shared
layer).  The shared repository is untouched (checked at unmount)."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402


class GitTest(sfs.TestCase):

    def git_env(self):
        home = os.path.join(self.layers.base, "home")
        os.makedirs(home, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(HOME=home, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Test",
                   GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="Test",
                   GIT_COMMITTER_EMAIL="t@example.invalid", LC_ALL="C")
        return env

    def git(self, repo, *args, check=True):
        return sfs.run(["git", "-C", repo, "-c", "safe.directory=*",
                        "-c", "init.defaultBranch=main"] + list(args),
                       env=self.env, check=check, timeout=120)

    def test_git_workflow(self):
        self.env = self.git_env()
        L = self.layers.L
        repo = L("repo")
        os.makedirs(repo)
        self.git(repo, "init", "-q")
        for i in range(40):
            write_file(os.path.join(repo, "src", "m%d" % (i % 5), "file%d.txt" % i),
                       b"line %d\n" % i * (i + 1))
        write_file(os.path.join(repo, "README"), b"hello\n")
        os.symlink("README", os.path.join(repo, "README.link"))
        os.chmod(os.path.join(repo, "src", "m0", "file0.txt"), 0o755)
        self.git(repo, "add", "-A")
        self.git(repo, "commit", "-q", "-m", "initial")
        head0 = self.git(repo, "rev-parse", "HEAD").stdout.strip()

        m = self.mount()
        r = m.M("repo")
        self.assertEqual(self.git(r, "status", "--porcelain").stdout, "")
        self.assertEqual(self.git(r, "rev-parse", "HEAD").stdout.strip(), head0)
        self.git(r, "fsck", "--no-progress")
        # edit, add, delete, commit
        with open(os.path.join(r, "README"), "ab") as f:
            f.write(b"more\n")
        write_file(os.path.join(r, "src", "new.txt"), b"new\n")
        os.unlink(os.path.join(r, "src", "m1", "file1.txt"))
        st = self.git(r, "status", "--porcelain").stdout.splitlines()
        self.assertEqual(sorted(st), [" D src/m1/file1.txt", " M README", "?? src/new.txt"])
        self.git(r, "add", "-A")
        self.git(r, "commit", "-q", "-m", "edit")
        self.assertEqual(self.git(r, "status", "--porcelain").stdout, "")
        log = self.git(r, "log", "--format=%s").stdout.split()
        self.assertEqual(log, ["edit", "initial"])
        # local clone: hardlinks the object files, also the shared-layer ones
        clone = m.M("clone")
        sfs.run(["git", "-c", "safe.directory=*", "clone", "-q", r, clone], env=self.env,
                timeout=120)
        self.assertEqual(self.git(clone, "log", "--format=%s").stdout.split(), ["edit", "initial"])
        self.git(clone, "fsck", "--no-progress", "--full")
        self.assertEqual(sfs.read_file(os.path.join(clone, "README")), b"hello\nmore\n")
        linked = 0
        objs = os.path.join(r, ".git", "objects")
        for dp, dns, fns in os.walk(objs):
            for n in fns:
                if len(n) != 38:
                    continue
                p = os.path.join(dp, n)
                q = os.path.join(clone, ".git", "objects", os.path.relpath(p, objs))
                if os.path.exists(q) and os.stat(q).st_ino == os.stat(p).st_ino:
                    self.assertGreaterEqual(os.stat(q).st_nlink, 2)
                    linked += 1
        self.assertGreater(linked, 40, "git clone did not hardlink the objects")
        # gc: packs, then unlinks the loose (shared-layer) objects
        self.git(r, "gc", "-q", "--prune=now")
        self.git(r, "fsck", "--no-progress", "--full")
        self.assertEqual(self.git(r, "status", "--porcelain").stdout, "")
        self.git(clone, "fsck", "--no-progress", "--full")
        m.remount()
        self.assertEqual(self.git(r, "status", "--porcelain").stdout, "")
        self.assertEqual(self.git(r, "log", "--format=%s").stdout.split(), ["edit", "initial"])
        self.assertEqual(self.git(clone, "status", "--porcelain").stdout, "")
        # the shared repository still has only the first commit
        m.umount()
        self.assertEqual(self.git(repo, "rev-parse", "HEAD").stdout.strip(), head0)


if __name__ == "__main__":
    sfs.main()
