"""The bench's `uv` rows: real uv (the pinned release of uv_env.py)
installing a real dependency set (blueapi and dls-dodal with every
dependency, tests/bench/uv-wheels.txt: 190 wheels, about 16,000 files)
from a warm cache into a new venv, `uv pip install --offline --no-deps`.

    uv      the cache in the local layer (a copy of the warm cache in upperdir)
    uvseed  the cache only in the shared layer (lowerdir = the warm cache)

The warm cache is made once by uv itself, natively, and kept under the
bench directory while the pins and the uv release are unchanged.  Each
measurement creates the venv first (not timed), then times the install;
afterwards the venv must hold every file, linked (nlink >= 2) -- or, for
the copy fallback (target `copy`: cache and venv on different
filesystems), copied, with uv's warning printed."""

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import uv_env  # noqa: E402

UV_OPS = ("uv", "uvseed")
HARDLINK_FAILED = "Failed to hardlink"
SITE = os.path.join("lib", "python3.11", "site-packages")
# Files uv writes itself in every .dist-info instead of linking them.
WRITTEN = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json"}


class UvError(Exception):
    pass


def site_files(venv):
    return uv_env.files_below(os.path.join(venv, SITE))


class UvSet:
    """The pinned dependency set, its wheelhouse and its warm uv cache."""

    def __init__(self, base, log):
        self.uv = uv_env.uv_binary()
        self.wheelhouse = uv_env.wheelhouse(uv_env.BENCH_WHEELS)
        with open(uv_env.BENCH_WHEELS, "rb") as f:
            pins = f.read()
        digest = hashlib.sha256(pins + self.uv.encode()).hexdigest()[:12]
        self.root = os.path.join(base, "uv-%s" % digest)
        self.seed = os.path.join(self.root, "seed")          # lowerdir of uvseed
        self.req = os.path.join(self.root, "requirements.txt")
        if not os.path.exists(os.path.join(self.root, "manifest.json")):
            self._build(log)
        with open(os.path.join(self.root, "manifest.json")) as f:
            self.m = json.load(f)

    def _run(self, args, cache):
        p = subprocess.run([self.uv] + args, env=uv_env.run_env(cache, self.root),
                           cwd=self.root,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise UvError("uv %s failed (%d):\n%s" % (" ".join(args), p.returncode,
                                                      p.stdout[-3000:]))
        return p.stdout

    def version(self):
        out = subprocess.run([self.uv, "--version"], stdout=subprocess.PIPE, text=True).stdout
        return out.strip()

    def venv(self, path, cache):
        self._run(["venv", "-q", "--python", uv_env.VENV_PYTHON, path], cache)

    def install(self, venv, cache):
        """The measured step: returns what uv printed."""
        return self._run(["pip", "install", "--no-deps", "--offline", "--no-index",
                          "--find-links", self.wheelhouse, "--python",
                          os.path.join(venv, "bin", "python"), "-r", self.req], cache)

    def _build(self, log):
        """Warm a cache once, natively, by uv itself; count the files."""
        if os.path.exists(self.root):
            shutil.rmtree(self.root)
        tmp = self.root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(os.path.join(tmp, "seed"))
        with open(uv_env.BENCH_WHEELS) as f:
            pins = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
        with open(os.path.join(tmp, "requirements.txt"), "w") as f:
            f.write("\n".join(pins) + "\n")
        log("warming a uv cache of %d wheels in %s" % (len(pins), tmp))
        self.root, self.seed, self.req = tmp, os.path.join(tmp, "seed"), \
            os.path.join(tmp, "requirements.txt")
        cache = os.path.join(self.seed, "uvcache")
        venv = os.path.join(tmp, "venv")
        self.venv(venv, cache)
        self.install(venv, cache)
        files = site_files(venv)
        nbytes = sum(os.lstat(p).st_size for p in files)
        shutil.rmtree(venv)
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump({"wheels": len(pins), "files": len(files), "bytes": nbytes}, f)
        final = tmp[:-len(".tmp")]
        os.rename(tmp, final)
        self.root, self.seed = final, os.path.join(final, "seed")
        self.req = os.path.join(final, "requirements.txt")

    def check(self, venv, out, copied):
        """The venv holds every file; linked, or copied with uv's warning."""
        files = site_files(venv)
        if len(files) != self.m["files"]:
            raise UvError("%s: %d files, expected %d" % (venv, len(files), self.m["files"]))
        if (HARDLINK_FAILED in out) != copied:
            raise UvError("%s: uv %s the copy fallback:\n%s" % (
                venv, "took" if not copied else "did not take", out[-2000:]))
        sample = random.Random(1).sample(
            [p for p in files if os.path.basename(p) not in WRITTEN], 200)
        bad = [p for p in sample if (os.lstat(p).st_nlink == 1) != copied]
        if bad:
            raise UvError("%s: %d of 200 sampled files have nlink %s, e.g. %s" % (
                venv, len(bad), "!= 1" if copied else "1", bad[0]))
