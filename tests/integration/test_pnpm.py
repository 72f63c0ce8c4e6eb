"""pnpm with its content-addressed store inside the mount: `pnpm install
--store-dir MNT/.pnpm-store` of a project (whose package.json lives in the
shared layer) with a few tiny dependencies.  pnpm tries a clone (FICLONE)
first, then hardlinks: node_modules files must be hardlinks of the store's
files (nlink > 1, same st_ino).

Needs the npm registry: when it cannot be reached (or pnpm cannot be
installed from it) this file is skipped (exit 77) with a message."""

import json
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402

DEPS = {"is-number": "7.0.0", "ms": "2.1.3", "escape-string-regexp": "4.0.0"}


def ensure_pnpm():
    """Return the pnpm command, installing it with npm if missing; None and
    a reason when the registry is not reachable."""
    if shutil.which("pnpm"):
        return shutil.which("pnpm"), None
    if not shutil.which("npm"):
        return None, "neither pnpm nor npm is installed"
    try:
        p = subprocess.run(["npm", "install", "-g", "pnpm@10"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "npm install -g pnpm timed out (registry unreachable?)"
    if p.returncode != 0 or not shutil.which("pnpm"):
        return None, "npm install -g pnpm failed (registry unreachable?):\n" + p.stdout[-2000:]
    return shutil.which("pnpm"), None


def registry_reachable():
    try:
        p = subprocess.run(["npm", "view", "ms@2.1.3", "version"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=90)
    except (subprocess.TimeoutExpired, FileNotFoundError) as e:
        return False, str(e)
    return p.returncode == 0 and "2.1.3" in p.stdout, p.stdout[-2000:]


class PnpmTest(sfs.TestCase):

    def test_pnpm_install_hardlinks_store(self):
        L = self.layers.L
        write_file(L("proj", "package.json"), json.dumps(
            {"name": "proj", "version": "1.0.0", "private": True, "dependencies": DEPS},
            indent=2).encode())
        write_file(L("proj", "index.js"),
                   b"const ms = require('ms'); const isn = require('is-number');\n"
                   b"console.log(ms('2h'), isn(5));\n")
        xdg = os.path.join(self.layers.base, "xdg")
        env = dict(os.environ, HOME=xdg, XDG_CACHE_HOME=os.path.join(xdg, "cache"),
                   XDG_DATA_HOME=os.path.join(xdg, "data"),
                   XDG_CONFIG_HOME=os.path.join(xdg, "config"),
                   XDG_STATE_HOME=os.path.join(xdg, "state"), CI="true")
        m = self.mount()
        proj = m.M("proj")
        store = m.M(".pnpm-store")
        p = sfs.run([self.pnpm, "install", "--store-dir", store, "--reporter=append-only",
                     "--config.package-import-method=auto", "--config.confirm-modules-purge=false"],
                    cwd=proj, env=env, timeout=300, check=False)
        if p.returncode != 0 and ("ENOTFOUND" in p.stdout + p.stderr or
                                  "ECONNREFUSED" in p.stdout + p.stderr or
                                  "ETIMEDOUT" in p.stdout + p.stderr):
            self.skipTest("npm registry unreachable:\n" + (p.stdout + p.stderr)[-1500:])
        self.assertEqual(p.returncode, 0, "pnpm install failed:\n%s\n%s" % (p.stdout, p.stderr))
        # the modules resolve
        out = sfs.run(["node", "index.js"], cwd=proj, env=env).stdout.split()
        self.assertEqual(out, ["7200000", "true"])
        # node_modules files are hardlinks of the store's files
        store_inos = {}
        for dp, dns, fns in os.walk(store):
            for n in fns:
                st = os.lstat(os.path.join(dp, n))
                store_inos[st.st_ino] = os.path.join(dp, n)
        checked = 0
        bad = []
        pn = os.path.join(proj, "node_modules", ".pnpm")
        for dp, dns, fns in os.walk(pn):
            for n in fns:
                path = os.path.join(dp, n)
                if "/node_modules/" not in path[len(pn):] or n.startswith("."):
                    continue
                st = os.lstat(path)
                checked += 1
                if st.st_nlink < 2 or st.st_ino not in store_inos:
                    bad.append("%s nlink=%d in_store=%s" % (os.path.relpath(path, proj),
                                                            st.st_nlink, st.st_ino in store_inos))
                elif sfs.read_file(path) != sfs.read_file(store_inos[st.st_ino]):
                    bad.append("%s: content differs from its store twin" % path)
        self.assertGreaterEqual(checked, len(DEPS) * 2)
        self.assertEqual(bad, [], "node_modules files not hardlinked to the store")
        ms = os.path.join(proj, "node_modules", "ms", "index.js")
        self.assertGreater(os.stat(ms).st_nlink, 1)
        # everything pnpm wrote is in the local layer
        self.assertTrue(os.path.isfile(self.layers.U("proj", "pnpm-lock.yaml")))
        self.assertTrue(os.path.isdir(self.layers.U(".pnpm-store")))
        # a second install (e.g. in CI) is a no-op that keeps the links
        sfs.run([self.pnpm, "install", "--store-dir", store, "--frozen-lockfile", "--offline",
                 "--reporter=append-only"], cwd=proj, env=env, timeout=300)
        self.assertGreater(os.stat(ms).st_nlink, 1)
        m.remount()
        self.assertEqual(sfs.run(["node", "index.js"], cwd=proj, env=env).stdout.split(),
                         ["7200000", "true"])
        self.assertGreater(os.stat(ms).st_nlink, 1)


if __name__ == "__main__":
    sfs.require_environment()
    ok, why = registry_reachable()
    if not ok:
        sfs.skip_file("npm registry unreachable, pnpm test not run: %s" % why)
    PnpmTest.pnpm, reason = ensure_pnpm()
    if PnpmTest.pnpm is None:
        sfs.skip_file(reason)
    sfs.main()
