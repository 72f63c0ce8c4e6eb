"""sfs_users.py - real unprivileged users for the scratchfs integration tests.

The users and the group are created on first use (useradd/groupadd, no home
directory, no login shell) and left in place: creating them again is a
no-op, so test files running one after the other or side by side share
them.  Nothing that this module did not create is ever modified.

    sfs-alice, sfs-bob   members of sfs-team
    sfs-carol            not a member of sfs-team
    sfs-dave             owner of rootless mounts (test_rootless.py)

Commands run as a user through setpriv(1) with the user's real and
effective uid/gid and supplementary groups, and a small, fixed environment
(LANG=C, so error messages can be matched).
"""

import grp
import json
import os
import pwd
import subprocess
import time

TEAM = "sfs-team"
ALICE, BOB, CAROL, DAVE = "sfs-alice", "sfs-bob", "sfs-carol", "sfs-dave"
MEMBERS = {TEAM: (ALICE, BOB)}
ALL_USERS = (ALICE, BOB, CAROL, DAVE)

USER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/",
            "LANG": "C", "LC_ALL": "C"}

# A python interpreter every user can run (root's own one may live under
# /root); -I -S: no site, no user paths, fast start.
USER_PYTHON = ["/usr/bin/python3", "-I", "-S"]


def _retry(cmd, tries=20):
    """Run an account tool; retry while another one holds /etc/passwd's lock
    (exit 10 for useradd/groupadd/usermod).  Returns the last exit status."""
    p = None
    for _ in range(tries):
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 10:
            return p
        time.sleep(0.2)
    return p


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def ensure_users():
    """Create the test users and group if missing (idempotent)."""
    for u in ALL_USERS:
        if not _user_exists(u):
            p = _retry(["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--user-group",
                        "--shell", "/usr/sbin/nologin", u])
            # 9: created meanwhile by a test running side by side
            if p.returncode not in (0, 9) or not _user_exists(u):
                raise RuntimeError("useradd %s failed (%d): %s" % (u, p.returncode, p.stdout))
    if not _group_exists(TEAM):
        p = _retry(["groupadd", TEAM])
        if p.returncode not in (0, 9) or not _group_exists(TEAM):
            raise RuntimeError("groupadd %s failed (%d): %s" % (TEAM, p.returncode, p.stdout))
    for u in MEMBERS[TEAM]:
        if u not in grp.getgrnam(TEAM).gr_mem:
            p = _retry(["usermod", "-a", "-G", TEAM, u])
            if p.returncode != 0:
                raise RuntimeError("usermod -a -G %s %s failed: %s" % (TEAM, u, p.stdout))
    for u in ALL_USERS:
        if u not in MEMBERS[TEAM] and u in grp.getgrnam(TEAM).gr_mem:
            raise RuntimeError("%s must not be a member of %s" % (u, TEAM))


class User:
    def __init__(self, name):
        pw = pwd.getpwnam(name)
        self.name = name
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid  # primary group (the user's private group)
        self.groups = sorted(set(os.getgrouplist(name, pw.pw_gid)))

    def __repr__(self):
        return "%s(%d:%d)" % (self.name, self.uid, self.gid)

    def prefix(self):
        """Command prefix that runs the rest of the command as this user."""
        return ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                "--init-groups", "--"]

    # -- shell
    def sh(self, script, umask=0o022, timeout=30, check=False, cwd="/"):
        """Run `sh -c SCRIPT` as the user; returns the CompletedProcess
        (text stdout/stderr)."""
        full = "umask %03o; %s" % (umask, script)
        p = subprocess.run(self.prefix() + ["/bin/sh", "-c", full], env=USER_ENV, cwd=cwd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("as %s: %r failed with %d\nstdout:\n%s\nstderr:\n%s"
                                 % (self.name, script, p.returncode, p.stdout, p.stderr))
        return p

    def popen(self, argv, **kw):
        kw.setdefault("env", USER_ENV)
        kw.setdefault("cwd", "/")
        return subprocess.Popen(self.prefix() + list(argv), **kw)

    # -- python
    def py(self, code, umask=0o022, timeout=30, args=()):
        """Run python CODE as the user.  CODE fills the dict OUT (JSON
        values) and may use E(fn, *args) -> errno (0 on success),
        write(path, data, mode, flags) and st(path) -> [uid, gid, mode].
        Returns OUT."""
        prog = _PRELUDE + code + _EPILOGUE
        p = subprocess.run(
            self.prefix() + USER_PYTHON + ["-c", prog, "%o" % umask] + [str(a) for a in args],
            env=USER_ENV, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("python as %s failed with %d\ncode:\n%s\nstderr:\n%s"
                                 % (self.name, p.returncode, code, p.stderr))
        lines = p.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else {}

    def err(self, expr, umask=0o022):
        """errno of evaluating the python expression EXPR as the user (0 if
        it succeeded)."""
        return self.py("OUT['e'] = E(lambda: %s)" % expr, umask=umask)["e"]

    def create(self, path, data=b"", mode=0o666, umask=0o022, flags=None):
        """Create (O_CREAT|O_EXCL) and write a file as the user; returns the
        errno (0 on success)."""
        return self.py("OUT['e'] = E(write, %r, %r, %d, %s)"
                       % (path, data, mode, "None" if flags is None else flags),
                       umask=umask)["e"]

    def append(self, path, data):
        return self.py("OUT['e'] = E(write, %r, %r, 0, os.O_WRONLY | os.O_APPEND)"
                       % (path, data))["e"]

    def read(self, path):
        """(errno, content or None)."""
        out = self.py("OUT['e'] = E(lambda: OUT.__setitem__('d', open(%r, 'rb').read()"
                      ".decode('latin-1')))" % path)
        return out["e"], (out.get("d").encode("latin-1") if out.get("d") is not None else None)


_PRELUDE = r"""
import errno, json, os, stat, sys
os.umask(int(sys.argv[1], 8))
OUT = {}
def E(fn, *a, **k):
    try:
        fn(*a, **k)
        return 0
    except OSError as e:
        return e.errno
def write(path, data, mode, flags=None):
    if isinstance(data, str):
        data = data.encode()
    if flags is None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, mode)
    try:
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)
def st(path):
    s = os.lstat(path)
    return [s.st_uid, s.st_gid, s.st_mode]
"""

_EPILOGUE = r"""
print(json.dumps(OUT))
"""
