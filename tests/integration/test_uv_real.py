"""Real uv (the pinned release of uv_env.py) through real mounts: the six
scenarios of the deployment scratchfs exists for.  Every install runs
offline from the pinned wheelhouse (numpy and markupsafe bring compiled
extensions); two small source packages with pyproject.toml stand in for
the per-version repositories (`b` gets its version from git through
setuptools-scm, which writes b/_version.py at build time).

What uv printed in each scenario goes to this test's log (lines starting
with `uv$`), so a run documents uv's behaviour through the mount."""

import os
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
import uv_env  # noqa: E402
from sfs import write_file  # noqa: E402

PY = uv_env.VENV_PYTHON
SITE = os.path.join("lib", "python3.11", "site-packages")
WHEELS = ["numpy==2.2.6", "six==1.17.0", "markupsafe==3.0.4"]
HARDLINK_FAILED = "Failed to hardlink"
# What uv writes itself instead of linking from the cache.
WRITTEN = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json",
           "uv_build.json"}

A_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"
[project]
name = "a"
version = "1.0"
dependencies = ["numpy", "six"]
"""
B_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64", "setuptools-scm>=8"]
build-backend = "setuptools.build_meta"
[project]
name = "b"
dynamic = ["version"]
dependencies = ["markupsafe"]
[tool.setuptools_scm]
version_file = "b/_version.py"
"""


def make_sources(root):
    """src/a (static version) and src/b (a git checkout tagged v2.1.0 whose
    version setuptools-scm derives), as the per-version volume holds
    them."""
    write_file(os.path.join(root, "src", "a", "pyproject.toml"), A_PYPROJECT)
    write_file(os.path.join(root, "src", "a", "a", "__init__.py"), "VALUE = 'a'\n")
    b = os.path.join(root, "src", "b")
    write_file(os.path.join(b, "pyproject.toml"), B_PYPROJECT)
    write_file(os.path.join(b, "b", "__init__.py"), "from ._version import version\n")
    write_file(os.path.join(b, ".gitignore"), "b/_version.py\n*.egg-info/\n")
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=root, GIT_AUTHOR_DATE="2026-01-01T00:00:00",
               GIT_COMMITTER_DATE="2026-01-01T00:00:00")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c",
           "init.defaultBranch=main"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "v2.1.0"],
                ["tag", "v2.1.0"]):
        sfs.run(git + cmd, cwd=b, env=env)


files_below = uv_env.files_below


class Uv:
    """Runs the pinned uv with a clean environment; logs what it printed."""

    def __init__(self, home, cache):
        self.bin = uv_env.uv_binary()
        self.wheelhouse = uv_env.wheelhouse()
        self.home = home
        self.cache = cache
        os.makedirs(home, exist_ok=True)

    def env(self, **extra):
        return uv_env.run_env(self.cache, self.home, **extra)

    def argv(self, *args):
        if args[:2] == ("pip", "install"):
            args = args + ("--no-index", "--offline", "--find-links", self.wheelhouse)
        return [self.bin] + list(args)

    def __call__(self, *args, check=True, prefix=(), env=None, timeout=300):
        argv = self.argv(*args)
        p = subprocess.run(list(prefix) + argv, env=env or self.env(), cwd=self.home,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        log(argv, p)
        if check and p.returncode != 0:
            raise AssertionError("uv %s failed with %d:\n%s" % (" ".join(args), p.returncode,
                                                                p.stdout))
        return p

    def popen(self, *args, env=None):
        argv = self.argv(*args)
        return subprocess.Popen(argv, env=env or self.env(), cwd=self.home,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def venv(self, path, **kw):
        return self("venv", "--python", PY, path, **kw)

    def install(self, venv, *reqs, **kw):
        return self("pip", "install", "--python", os.path.join(venv, "bin", "python"), *reqs,
                    **kw)


def log(argv, p):
    """Print what uv printed (the test log documents each scenario)."""
    shown = [os.path.basename(argv[0])] + [a for a in argv[1:]]
    print("uv$ %s  [exit %d]" % (" ".join(shown), p.returncode))
    for line in (p.stdout or "").splitlines():
        print("    " + line)


def archive_twins(cache):
    """{path relative to an archive entry: set of inode numbers} over every
    unpacked wheel in the cache."""
    twins = {}
    root = os.path.join(cache, "archive-v0")
    for entry in os.listdir(root):
        base = os.path.join(root, entry)
        for p in files_below(base):
            twins.setdefault(os.path.relpath(p, base), set()).add(os.lstat(p).st_ino)
    return twins


def link_problems(venv, cache, dev):
    """Every venv file uv links must be its cache file: same st_ino, one
    st_dev, nlink >= 2; what uv writes itself (RECORD, INSTALLER, ...)
    has nlink 1.  Returns (number checked, problems)."""
    twins = archive_twins(cache)
    site = os.path.join(venv, SITE)
    checked, bad = 0, []
    for p in files_below(site):
        rel = os.path.relpath(p, site)
        st = os.lstat(p)
        if os.path.basename(p) in WRITTEN and st.st_nlink != 1:
            bad.append("%s: written by uv, yet nlink %d" % (rel, st.st_nlink))
        if os.path.basename(p) in WRITTEN or rel.endswith(".pyc"):
            continue
        checked += 1
        if rel not in twins:
            bad.append("%s: no cache twin" % rel)
        elif st.st_ino not in twins[rel] or st.st_nlink < 2 or st.st_dev != dev:
            bad.append("%s: ino %d (cache %s) nlink %d dev %d/%d" % (
                rel, st.st_ino, sorted(twins[rel]), st.st_nlink, st.st_dev, dev))
    return checked, bad


def cache_digest(cache, pattern="numpy"):
    """{relpath: sha256} of the cache's unpacked files under `pattern`."""
    out = {}
    root = os.path.join(cache, "archive-v0")
    for p in files_below(root):
        if "/%s/" % pattern in p:
            out[os.path.relpath(p, root)] = sfs.sha_file(p)
    return out


def pycs(venv):
    """{path: (st_ino, st_mtime_ns, st_size)} of the venv's .pyc files."""
    out = {}
    for p in files_below(os.path.join(venv, SITE)):
        if p.endswith(".pyc"):
            st = os.lstat(p)
            out[p] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


IMPORT_ALL = "import numpy, a, b, six, markupsafe; print(numpy.__version__, a.VALUE, b.version)"


class UvTestCase(sfs.TestCase):

    def setUp(self):
        super().setUp()
        self.home = os.path.join(self.layers.base, "home")

    def uv_in(self, m, cache=".cache/uv"):
        return Uv(self.home, m.M(cache))

    def assertLinked(self, m, venv, cache, at_least=1000):
        n, bad = link_problems(venv, cache, os.stat(m.mnt).st_dev)
        self.assertGreaterEqual(n, at_least, "too few venv files checked")
        self.assertEqual(bad[:10], [], "%d of %d venv files are not links of the cache"
                         % (len(bad), n))

    def assertBuiltLocally(self, upper, lower):
        """Build artefacts of the editables (egg-info, setuptools-scm's
        _version.py) are in the local layer, not in the shared one."""
        for rel in ("src/b/b/_version.py", "src/b/b.egg-info/PKG-INFO",
                    "src/a/a.egg-info/PKG-INFO"):
            self.assertTrue(os.path.isfile(os.path.join(upper, rel)), rel)
            self.assertFalse(os.path.lexists(os.path.join(lower, rel)), rel)
        self.assertIn("2.1.0", sfs.read_file(os.path.join(upper, "src/b/b/_version.py")).decode())

    def assertNoCopyFallback(self, p):
        self.assertNotIn(HARDLINK_FAILED, p.stdout)

    def python(self, venv, code, **kw):
        return sfs.run([os.path.join(venv, "bin", "python"), "-c", code], cwd=self.home, **kw)

    def prewarm_shared_cache(self):
        """Fill .cache/uv in the shared layer directly, by an earlier uv run
        (the init container of the deployment), with a venv elsewhere."""
        uv = Uv(self.home, self.layers.L(".cache", "uv"))
        venv = os.path.join(self.layers.base, "warmup-venv")
        uv.venv(venv)
        uv.install(venv, *WHEELS)
        return uv


class InitTest(UvTestCase):
    """1. The deployment's init: sources in the shared layer, venv and
    cache in the mount, in uv's default link mode (clone, which must fall
    back to hardlinks).  UV_LINK_MODE=hardlink: EntrypointTest."""

    def test_init_default_link_mode(self):
        make_sources(self.layers.lower)
        m = self.mount()
        uv = self.uv_in(m)
        venv = m.M("venv")
        uv.venv(venv)
        p = uv.install(venv, "-e", m.M("src", "a"), "-e", m.M("src", "b"))
        self.assertNoCopyFallback(p)
        self.assertIn("+ numpy==2.2.6", p.stdout)
        self.assertLinked(m, venv, m.M(".cache", "uv"))
        self.assertEqual(self.python(venv, IMPORT_ALL).stdout.split(), ["2.2.6", "a", "2.1.0"])
        self.assertBuiltLocally(self.layers.upper, self.layers.lower)
        # the shared layer is checked unchanged at unmount (harness)


class EntrypointTest(UvTestCase):
    """1. The init once more, as the container example of README.md does
    it: contrib/entrypoint.sh mounts scratchfs itself, sets
    UV_LINK_MODE=hardlink and runs the install command in the mount."""

    def test_container_entrypoint(self):
        lw = self.layers
        make_sources(lw.lower)
        os.chmod(lw.lower, 0o775)
        before = sfs.lower_digest(lw.lower)
        srcdir = os.environ.get("SCRATCHFS_SRCDIR") or os.path.join(sfs.HERE, "..", "..")
        uv = Uv(self.home, "unused")
        env = {k: v for k, v in uv.env().items() if k != "UV_CACHE_DIR"}
        env.update(SCRATCH_SHARED=lw.lower, SCRATCH_LOCAL=os.path.join(lw.base, "local"),
                   SCRATCH_MOUNT=lw.mnt,
                   PATH="%s:%s:/usr/bin:/bin" % (os.path.dirname(sfs.binary()),
                                                 os.path.dirname(uv.bin)))
        offline = "--offline --no-index --find-links %s" % uv.wheelhouse
        cmd = ('uv venv --python %s "$VIRTUAL_ENV" && uv pip install %s '
               '-e /MNT/src/a -e /MNT/src/b' % (PY, offline)).replace("/MNT", lw.mnt)
        try:
            p = sfs.run(["sh", os.path.join(srcdir, "contrib", "entrypoint.sh"), "sh", "-c",
                         cmd + ' && python -c "%s"' % IMPORT_ALL], env=env, cwd=self.home,
                        stderr=subprocess.STDOUT, timeout=300)
            log(["entrypoint.sh", "sh", "-c", cmd], p)
            self.assertNoCopyFallback(p)
            self.assertIn("2.2.6 a 2.1.0", p.stdout)
            venv = lw.M(".venv")
            self.assertLinked(sfs.Mount(lw), venv, lw.M(".cache", "uv"))
            st = os.stat(lw.mnt)  # the new local layer's root: the shared root's
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o775)
            self.assertBuiltLocally(os.path.join(lw.base, "local", "upper"), lw.lower)
        finally:
            pids = sfs.daemon_pids(lw.mnt)
            sfs.run(["fusermount3", "-u", lw.mnt], check=False)
            for pid in pids:
                sfs.wait_for(lambda: not os.path.exists("/proc/%d" % pid), timeout=10)
        self.assertEqual(sfs.daemon_pids(lw.mnt), [])
        self.assertEqual(sfs.lower_digest(lw.lower), before)


class RestartTest(UvTestCase):
    """2. Restart with the same local layer: nothing rebuilt or relinked;
    touching one pyproject.toml rebuilds that package only; compiled
    bytecode stays valid across the remount."""

    def test_restart_same_local_layer(self):
        make_sources(self.layers.lower)
        m = self.mount()
        uv = self.uv_in(m)
        venv = m.M("venv")
        req = os.path.join(self.home, "requirements.txt")
        write_file(req, "-e %s\n-e %s\n%s\n" % (m.M("src", "a"), m.M("src", "b"),
                                               "\n".join(WHEELS)))
        uv.venv(venv)
        p = uv.install(venv, "--compile-bytecode", "-r", req)
        self.assertIn("Bytecode compiled", p.stdout)
        before = {p: os.lstat(p) for p in files_below(os.path.join(venv, SITE))}
        pyc_before = pycs(venv)
        self.assertGreater(len(pyc_before), 300)
        m.remount(resnapshot=False)  # the shared layer's ctimes stay as they are
        p = uv.install(venv, "-r", req)
        self.assertIn("Checked 5 packages", p.stdout)
        for word in ("Built", "Installed", "Uninstalled", "Prepared"):
            self.assertNotIn(word, p.stdout)
        after = {p: os.lstat(p) for p in files_below(os.path.join(venv, SITE))}
        self.assertEqual(sorted(after), sorted(before))
        moved = [q for q in before if (before[q].st_ino, before[q].st_ctime_ns, before[q].st_mtime_ns)
                 != (after[q].st_ino, after[q].st_ctime_ns, after[q].st_mtime_ns)]
        self.assertEqual(moved[:10], [], "st_ino/ctime/mtime changed across the remount")
        # importing after the remount rewrites no .pyc
        self.python(venv, IMPORT_ALL)
        self.assertEqual(pycs(venv), pyc_before)
        # touch one pyproject.toml through the mount: only b is rebuilt
        os.utime(m.M("src", "b", "pyproject.toml"))
        p = uv.install(venv, "-r", req)
        self.assertIn("Built b @", p.stdout)
        self.assertNotIn("Built a @", p.stdout)
        self.assertIn("Installed 1 package", p.stdout)
        self.assertEqual(self.python(venv, IMPORT_ALL).stdout.split(), ["2.2.6", "a", "2.1.0"])


class PrewarmedSharedCacheTest(UvTestCase):
    """3. A read-only shared layer whose cache an earlier uv run filled: a
    fresh local layer installs from it by links, offline; uv's cache
    writes land in the local layer."""

    def test_readonly_prewarmed_cache(self):
        self.prewarm_shared_cache()
        lower = self.layers.lower
        sfs.run(["mount", "--bind", lower, lower])
        self.layers.fs_mounts.append(lower)
        sfs.run(["mount", "-o", "remount,bind,ro", lower])
        self.assertFalse(os.access(lower, os.W_OK))
        before = sfs.lower_digest(lower)
        m = self.mount(check_lower=False)
        uv = self.uv_in(m)
        venv = m.M("venv")
        uv.venv(venv)
        p = uv.install(venv, *WHEELS)
        self.assertNoCopyFallback(p)
        self.assertIn("Installed 3 packages", p.stdout)
        self.assertNotIn("Prepared", p.stdout)  # nothing unpacked or built
        self.assertLinked(m, venv, m.M(".cache", "uv"))
        self.python(venv, "import numpy, markupsafe._speedups, six")
        # uv's lock file went to the local layer; linked cache files are
        # metadata-only copies there (no data copied)
        self.assertTrue(os.path.isdir(self.layers.U(".cache", "uv", "archive-v0")))
        m.umount()
        self.assertEqual(sfs.lower_digest(lower), before)


class ReinstallInUseTest(UvTestCase):
    """4. uv pip install --reinstall while a process has numpy imported."""

    def installed(self):
        """A mount over a warm shared cache, WHEELS installed in m/venv."""
        self.prewarm_shared_cache()
        m = self.mount()
        uv = self.uv_in(m)
        venv = m.M("venv")
        uv.venv(venv)
        uv.install(venv, *WHEELS)
        return m, uv, venv

    def test_reinstall_while_imported(self):
        m, uv, venv = self.installed()
        cache = m.M(".cache", "uv")
        digest = cache_digest(cache)
        self.assertGreater(len(digest), 500)
        user = subprocess.Popen(
            [os.path.join(venv, "bin", "python"), "-u", "-c",
             "import sys, numpy, markupsafe\n"
             "print('ready', flush=True)\n"
             "for line in sys.stdin:\n"
             "    a = numpy.arange(16.0).reshape(4, 4) + numpy.eye(4)\n"
             "    print(round(float(numpy.linalg.det(a)), 3), markupsafe.escape('<'),"
             " flush=True)\n"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=self.home)
        try:
            self.assertEqual(user.stdout.readline().strip(), "ready")
            user.stdin.write("go\n")
            user.stdin.flush()
            answer = user.stdout.readline().split()
            self.assertEqual(answer[1:], ["&lt;"])
            p = uv.install(venv, "--reinstall", *WHEELS)
            self.assertIn("~ numpy==2.2.6", p.stdout)
            for bad in ("ENOTEMPTY", "EBUSY", "not empty", "busy", HARDLINK_FAILED):
                self.assertNotIn(bad, p.stdout)
            user.stdin.write("go\n")
            user.stdin.flush()
            self.assertEqual(user.stdout.readline().split(), answer)
        finally:
            user.stdin.close()
            user.wait(timeout=30)
            user.stdout.close()
            err = user.stderr.read()
            user.stderr.close()
        self.assertEqual(user.returncode, 0, err)
        self.assertEqual(cache_digest(cache), digest)
        self.assertLinked(m, venv, cache)
        self.python(venv, "import numpy.linalg, markupsafe._speedups")

    def test_install_over_existing_files(self):
        """Files already in place (a package whose metadata is gone): uv
        links each into a .tmpXXXX name and renames it over the old one."""
        m, uv, venv = self.installed()
        site = os.path.join(venv, SITE)
        for n in ("six-1.17.0.dist-info", "markupsafe-3.0.4.dist-info"):
            subprocess.run(["rm", "-rf", os.path.join(site, n)], check=True)
        os.unlink(os.path.join(site, "six.py"))
        write_file(os.path.join(site, "six.py"), "raise ImportError('stale')\n")
        old = os.lstat(os.path.join(site, "markupsafe", "__init__.py")).st_ino
        p = uv.install(venv, *WHEELS)
        self.assertIn("+ six==1.17.0", p.stdout)
        self.assertNoCopyFallback(p)
        self.assertEqual([n for n in os.listdir(site) if n.startswith(".tmp")], [])
        self.assertLinked(m, venv, m.M(".cache", "uv"))
        self.assertEqual(os.lstat(os.path.join(site, "markupsafe", "__init__.py")).st_ino, old)
        self.assertEqual(self.python(venv, "import six; print(six.__version__)").stdout.strip(),
                         "1.17.0")


class ConcurrencyTest(UvTestCase):
    """5. Two installs at once in one mount; `uv cache clean` during an
    install; two mounts (two pods) over one shared directory."""

    def test_two_installs_one_mount(self):
        m = self.mount()
        uv = self.uv_in(m)
        venvs = [m.M("venv%d" % i) for i in range(2)]
        for v in venvs:
            uv.venv(v)
        procs = [uv.popen("pip", "install", "--python", os.path.join(v, "bin", "python"), *WHEELS)
                 for v in venvs]
        for v, p in zip(venvs, procs):
            out, _ = p.communicate(timeout=300)
            log(p.args, subprocess.CompletedProcess(p.args, p.returncode, out))
            self.assertEqual(p.returncode, 0, out)
            self.assertNotIn(HARDLINK_FAILED, out)
            self.assertLinked(m, v, m.M(".cache", "uv"))
            self.python(v, "import numpy, markupsafe._speedups")

    def test_cache_clean_waits_for_install(self):
        m = self.mount()
        uv = self.uv_in(m)
        venv = m.M("venv")
        uv.venv(venv)
        inst = uv.popen("pip", "install", "--python", os.path.join(venv, "bin", "python"), *WHEELS)
        # wait until the install unpacks wheels into the cache
        busy = sfs.wait_for(lambda: inst.poll() is not None or any(
            n.startswith(".tmp") for n in os.listdir(m.M(".cache", "uv"))), timeout=60,
            interval=0.02)
        self.assertTrue(busy and inst.poll() is None, "install finished before it could be raced")
        clean = uv.popen("cache", "clean")
        out_inst, _ = inst.communicate(timeout=300)
        t_inst = time.monotonic()
        out_clean, _ = clean.communicate(timeout=300)
        t_clean = time.monotonic()
        log(inst.args, subprocess.CompletedProcess(inst.args, inst.returncode, out_inst))
        log(clean.args, subprocess.CompletedProcess(clean.args, clean.returncode, out_clean))
        self.assertEqual(inst.returncode, 0, out_inst)
        self.assertEqual(clean.returncode, 0, out_clean)
        self.assertIn("waiting for other uv processes", out_clean)
        self.assertGreaterEqual(t_clean, t_inst)
        self.assertFalse(os.path.exists(m.M(".cache", "uv", "archive-v0")))
        # the venv's files were links: they outlive the cache
        self.python(venv, "import numpy, markupsafe._speedups")

    def test_two_mounts_one_shared_dir(self):
        self.prewarm_shared_cache()
        mounts = [self.mount()]
        base = self.layers.base
        for d in ("upper2", "work2", "mnt2"):
            os.makedirs(os.path.join(base, d))
        second = sfs.Mount(self.layers, mnt=os.path.join(base, "mnt2"),
                           upperdir=os.path.join(base, "upper2"),
                           workdir=os.path.join(base, "work2"))
        self._mounts.append(second)
        mounts.append(second.start())
        uvs = [self.uv_in(m) for m in mounts]
        for m, uv in zip(mounts, uvs):
            uv.venv(m.M("venv"))
        procs = [uv.popen("pip", "install", "--python", m.M("venv", "bin", "python"), *WHEELS)
                 for m, uv in zip(mounts, uvs)]
        for m, p in zip(mounts, procs):
            out, _ = p.communicate(timeout=300)
            log(p.args, subprocess.CompletedProcess(p.args, p.returncode, out))
            self.assertEqual(p.returncode, 0, out)
            self.assertNotIn(HARDLINK_FAILED, out)
            self.assertNotIn("Prepared", out)
            self.assertLinked(m, m.M("venv"), m.M(".cache", "uv"))
            self.python(m.M("venv"), "import numpy, markupsafe._speedups")


def set_sysctl(name, value):
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path) as f:
        old = f.read().strip()
    with open(path, "w") as f:
        f.write(str(value))
    return old


class UsersTest(UvTestCase):
    """6a. uv as uid 1000 with no writable HOME, over a shared cache that
    root warmed (root-owned, 0644 files)."""

    UID = 1000
    PREFIX = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "--"]

    def user_uv(self, m):
        uv = Uv("/nonexistent", m.M(".cache", "uv"))
        env = uv.env(PATH="/usr/bin:/bin")
        return uv, env

    def test_user_over_root_owned_cache(self):
        self.prewarm_shared_cache()
        os.makedirs(self.layers.L("work"))
        os.chown(self.layers.L("work"), self.UID, self.UID)
        m = self.mount()
        uv, env = self.user_uv(m)
        # as it is: the cache is root's, uv cannot even open it
        p = uv.venv(m.M("work", "venv"), prefix=self.PREFIX, env=env, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied", p.stdout)
        # make the cache's directories writable (files stay root's 0644):
        # fs.protected_hardlinks=1 refuses links, uv copies
        for dp, dns, fns in os.walk(m.M(".cache", "uv")):
            os.chmod(dp, 0o777)
        os.chmod(m.M(".cache", "uv", "sdists-v11", ".git"), 0o666)
        old = set_sysctl("fs.protected_hardlinks", 1)
        try:
            uv.venv(m.M("work", "venv"), prefix=self.PREFIX, env=env)
            p = uv.install(m.M("work", "venv"), *WHEELS, prefix=self.PREFIX, env=env)
            self.assertIn(HARDLINK_FAILED, p.stdout)
            st = os.lstat(m.M("work", "venv", SITE, "numpy", "__init__.py"))
            self.assertEqual((st.st_nlink, st.st_uid), (1, self.UID))
            # the remedy of scratchfs(8): chown the cache through the mount
            # (metadata-only copy-up), the user then owns what uv links
            sfs.run(["chown", "-R", "%d:%d" % (self.UID, self.UID), m.M(".cache", "uv")])
            uv.venv(m.M("work", "venv2"), prefix=self.PREFIX, env=env)
            p = uv.install(m.M("work", "venv2"), *WHEELS, prefix=self.PREFIX, env=env)
            self.assertNoCopyFallback(p)
            self.assertLinked(m, m.M("work", "venv2"), m.M(".cache", "uv"))
        finally:
            set_sysctl("fs.protected_hardlinks", old)
        sfs.run(self.PREFIX + [m.M("work", "venv2", "bin", "python"), "-c",
                               "import numpy, markupsafe._speedups"], cwd="/")


class SpaceTest(UvTestCase):
    """6b. The local layer runs full while uv unpacks numpy into the cache."""

    UPPER_SIZE = "100m"

    def test_local_layer_full_mid_install(self):
        fsdir = os.path.dirname(self.layers.upper)
        ballast = os.path.join(fsdir, "ballast")
        m = self.mount()
        uv = self.uv_in(m)
        venv = m.M("venv")
        uv.venv(venv)
        free = os.statvfs(fsdir)
        with open(ballast, "wb") as f:  # leave ~25 MiB: numpy needs more
            f.write(b"\0" * (free.f_bavail * free.f_frsize - (25 << 20)))
        p = uv.install(venv, *WHEELS, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("No space left on device", p.stdout)
        site = os.path.join(venv, SITE)
        self.assertEqual([n for n in os.listdir(site) if n.startswith("numpy")], [])
        self.assertNotEqual(self.python(venv, "import numpy", check=False).returncode, 0)
        # uv may leave the temporary directory of a wheel it was unpacking
        # in parallel (it is never used; `uv cache prune` removes it)
        print("cache root after ENOSPC: %s" % sorted(os.listdir(m.M(".cache", "uv"))))
        os.unlink(ballast)
        p = uv.install(venv, *WHEELS)
        self.assertNoCopyFallback(p)
        self.assertLinked(m, venv, m.M(".cache", "uv"))
        self.python(venv, "import numpy, markupsafe._speedups")

    def test_local_layer_out_of_inodes_while_linking(self):
        """From a shared-layer cache every link is a metadata-only copy-up
        (one local inode): run out of inodes halfway through numpy.  uv
        does not roll back: the half-linked package stays listed and a
        plain rerun only checks it, `--reinstall` repairs (scratchfs(8))."""
        self.prewarm_shared_cache()
        fsdir = os.path.dirname(self.layers.upper)
        m = self.mount()
        uv = self.uv_in(m)
        venv = m.M("venv")
        uv.venv(venv)
        st = os.statvfs(fsdir)
        used = st.f_files - st.f_ffree
        sfs.run(["mount", "-o", "remount,nr_inodes=%d" % (used + 600), fsdir])
        p = uv.install(venv, *WHEELS, check=False)
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stdout, r"failed to hardlink file .*: No space left on device")
        linked = len(files_below(os.path.join(venv, SITE, "numpy")))
        self.assertLess(linked, 900)  # of numpy's 1000+ files
        python = os.path.join(venv, "bin", "python")
        self.assertIn("numpy ", uv("pip", "list", "--python", python).stdout)
        sfs.run(["mount", "-o", "remount,nr_inodes=%d" % (used + 100000), fsdir])
        p = uv.install(venv, *WHEELS)
        self.assertIn("Checked 3 packages", p.stdout)
        self.assertEqual(len(files_below(os.path.join(venv, SITE, "numpy"))), linked)
        p = uv.install(venv, "--reinstall-package", "numpy", *WHEELS)
        self.assertIn("~ numpy==2.2.6", p.stdout)
        self.assertNoCopyFallback(p)
        self.assertLinked(m, venv, m.M(".cache", "uv"))
        self.python(venv, "import numpy.linalg, numpy.fft, markupsafe._speedups")

if __name__ == "__main__":
    uv_env.uv_binary()
    uv_env.wheelhouse()
    # eleven real installs: about 80 s alone, four times that on a loaded
    # machine; the watchdog's default of 300 s is too tight for this file
    os.environ.setdefault("SFS_TIMEOUT", "900")
    sfs.main()
