"""uv_env.py - the real uv client and the pinned wheelhouses its tests and
the bench install from.

    python3 tests/integration/uv_env.py          uv + the test wheelhouse
    python3 tests/integration/uv_env.py --bench  ... + the bench wheelhouse

Everything is downloaded once from the package index (pinned versions and
hashes: uv-release.txt, uv-wheels.txt, ../bench/uv-wheels.txt) into
SCRATCHFS_TEST_CACHE (default /var/cache/scratchfs-tests) and reused while
the pins are unchanged.  tests/run-all.sh calls this before `make check`;
the tests call it again (a no-op then).  A failed download is an error,
never a skip: the tests need the real client.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
RELEASE = os.path.join(HERE, "uv-release.txt")
TEST_WHEELS = os.path.join(HERE, "uv-wheels.txt")
BENCH_WHEELS = os.path.join(HERE, "..", "bench", "uv-wheels.txt")

# The wheels are for the interpreter the venvs use: Debian 12's python3.
VENV_PYTHON = "/usr/bin/python3"
TARGET = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
          "--abi", "abi3", "--abi", "none", "--platform", "manylinux_2_17_x86_64",
          "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
          "--platform", "any"]


class SetupError(RuntimeError):
    pass


def cache_root():
    return os.environ.get("SCRATCHFS_TEST_CACHE", "/var/cache/scratchfs-tests")


def _pins_digest(reqfile):
    with open(reqfile, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def _pinned_names(reqfile):
    """name==version of every pin in a requirements file."""
    out = []
    with open(reqfile) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line.split()[0])
    return out


def _pip_python():
    """An interpreter that has pip (the one running this, then Debian's)."""
    for py in (sys.executable, shutil.which("python3"), VENV_PYTHON):
        if py and subprocess.run([py, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL).returncode == 0:
            return py
    raise SetupError("no python3 with pip found (install python3-pip)")


def _download(reqfile, dest, target=True):
    """pip download every pin of reqfile (hash-checked, wheels only, no
    dependencies: the file pins them all) into dest."""
    cmd = [_pip_python(), "-m", "pip", "download", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", "--require-hashes", "--dest", dest,
           "-r", reqfile]
    if target:
        cmd += TARGET
    env = dict(os.environ)
    env.pop("PIP_FIND_LINKS", None)  # from the index only, nothing local
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if p.returncode != 0:
        raise SetupError("pip download -r %s failed (%d):\n%s" % (reqfile, p.returncode,
                                                                  p.stdout[-4000:]))


@contextlib.contextmanager
def _locked():
    """One setup at a time (test files may start side by side)."""
    os.makedirs(cache_root(), exist_ok=True)
    with open(os.path.join(cache_root(), ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _build_once(name, reqfile, fill):
    """cache_root()/NAME-DIGEST, built by fill(tmpdir) into a temporary
    directory and renamed into place, so a half-done download is never
    taken for a finished one."""
    final = os.path.join(cache_root(), "%s-%s" % (name, _pins_digest(reqfile)))
    with _locked():
        if os.path.isdir(final):
            return final
        tmp = tempfile.mkdtemp(prefix=".%s-" % name, dir=cache_root())
        try:
            fill(tmp)
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def wheelhouse(reqfile=TEST_WHEELS):
    """Directory holding exactly the pinned wheels of reqfile."""
    def fill(tmp):
        _download(reqfile, tmp)
        got = sorted(os.listdir(tmp))
        if len(got) != len(_pinned_names(reqfile)):
            raise SetupError("%s: expected %d wheels, got %s" % (
                reqfile, len(_pinned_names(reqfile)), got))
    name = "bench-wheels" if reqfile == BENCH_WHEELS else "wheels"
    return _build_once(name, reqfile, fill)


def uv_binary():
    """Path of the pinned uv executable (from the release's binary wheel)."""
    pin = _pinned_names(RELEASE)[0]

    def fill(tmp):
        dl = os.path.join(tmp, "dl")
        _download(RELEASE, dl, target=False)
        (whl,) = os.listdir(dl)
        with zipfile.ZipFile(os.path.join(dl, whl)) as z:
            member = next(n for n in z.namelist() if n.endswith(".data/scripts/uv"))
            with z.open(member) as src, open(os.path.join(tmp, "uv"), "wb") as dst:
                shutil.copyfileobj(src, dst)
        os.chmod(os.path.join(tmp, "uv"), 0o755)
        shutil.rmtree(dl)
    uv = os.path.join(_build_once("uv", RELEASE, fill), "uv")
    out = subprocess.run([uv, "--version"], stdout=subprocess.PIPE, text=True).stdout
    want = pin.split("==")[1]
    if out.split()[:2] != ["uv", want]:
        raise SetupError("%s --version says %r, expected uv %s" % (uv, out.strip(), want))
    return uv


def run_env(cache, home, **extra):
    """The environment to run uv in: nothing inherited that changes what
    uv does (UV_*, PIP_*, PYTHON*, VIRTUAL_ENV), no user configuration, no
    Python downloads, plain text."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=home, UV_CACHE_DIR=cache, UV_PYTHON_DOWNLOADS="never", UV_NO_CONFIG="1",
               NO_COLOR="1", LANG="C", LC_ALL="C")
    env.update(extra)
    return env


def files_below(root):
    """Every non-directory below root."""
    out = []
    for dp, dns, fns in os.walk(root):
        out.extend(os.path.join(dp, n) for n in fns)
    return out


def main():
    bench = "--bench" in sys.argv[1:]
    try:
        if not os.access(VENV_PYTHON, os.X_OK):
            raise SetupError("%s is missing (the venvs' interpreter)" % VENV_PYTHON)
        print("uv: %s" % uv_binary())
        print("wheelhouse: %s" % wheelhouse())
        if bench:
            print("bench wheelhouse: %s" % wheelhouse(BENCH_WHEELS))
    except SetupError as e:
        print("uv_env.py: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
