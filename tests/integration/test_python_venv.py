"""A real python workflow inside the mount: `python3 -m venv`, an editable
`pip install -e` (offline) of a package whose source tree is in the shared
layer, imports, byte-compilation and an sdist build.  Build artefacts land
in the local layer; the shared tree stays clean (checked at unmount)."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sfs  # noqa: E402
from sfs import write_file  # noqa: E402

# setup.py + `pip install --no-use-pep517 -e` (setup.py develop) builds
# offline with nothing but the setuptools that `python3 -m venv` installs
# from Debian's bundled wheels; a PEP 660 editable build would also need
# the `wheel` package, which a plain venv does not have.
SETUP_PY = b"""\
from setuptools import setup
setup(name="mypkg", version="0.1.0", description="scratchfs test package",
      packages=["mypkg"])
"""


def system_python():
    # Debian's python3 ships setuptools, wheel and pip wheels for offline
    # venvs; other interpreters may not.
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def clean_env(home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=home, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               PIP_NO_CACHE_DIR="1")
    return env


class PythonVenvTest(sfs.TestCase):

    def test_venv_editable_install(self):
        L = self.layers.L
        write_file(L("src", "mypkg", "setup.py"), SETUP_PY)
        write_file(L("src", "mypkg", "mypkg", "__init__.py"),
                   b"from .util import VALUE\n__all__ = ['VALUE']\n")
        write_file(L("src", "mypkg", "mypkg", "util.py"), b"VALUE = 41\n")
        write_file(L("src", "mypkg", "README.md"), b"readme\n")
        home = os.path.join(self.layers.base, "home")
        os.makedirs(home)
        env = clean_env(home)
        m = self.mount()
        venv = m.M("venv")
        src = m.M("src", "mypkg")
        py = os.path.join(venv, "bin", "python")
        sfs.run([system_python(), "-m", "venv", venv], env=env, timeout=300)
        p = sfs.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-use-pep517",
                     "--no-index", "--no-deps", "-e", src], env=env, timeout=300, cwd=home)
        self.assertIn("Successfully installed mypkg", p.stdout)
        p = sfs.run([py, "-c", "import mypkg, mypkg.util; print(mypkg.__file__); print(mypkg.VALUE)"],
                    env=env, cwd=home)
        self.assertEqual(p.stdout.split(), [os.path.join(src, "mypkg", "__init__.py"), "41"])
        # editable: an edit of the source through the mount is live
        write_file(os.path.join(src, "mypkg", "util.py"), b"VALUE = 42\n")
        p = sfs.run([py, "-c", "import mypkg; print(mypkg.VALUE)"], env=env, cwd=home)
        self.assertEqual(p.stdout.strip(), "42")
        # byte-compile in the source tree, and build an sdist from it
        sfs.run([py, "-m", "compileall", "-q", src], env=env)
        sfs.run([py, "setup.py", "-q", "sdist", "-d", m.M("dist")], env=env, cwd=src,
                timeout=300)
        self.assertEqual(os.listdir(m.M("dist")), ["mypkg-0.1.0.tar.gz"])
        p = sfs.run([py, "-m", "pip", "list", "--format=freeze"], env=env, cwd=home)
        self.assertIn("mypkg==0.1.0", p.stdout)
        # every new object in the source tree lives in the local layer
        lower_names = set(sfs.walk(L("src")))
        new = [n for n in sfs.walk(m.M("src")) if n not in lower_names]
        self.assertTrue(any("__pycache__" in n for n in new), new)
        self.assertIn("mypkg/mypkg.egg-info", new)
        for n in new:
            self.assertTrue(os.path.lexists(self.layers.U("src", n)), n)
        self.assertTrue(os.path.isfile(self.layers.U("src", "mypkg", "mypkg", "__pycache__",
                                                     "util.cpython-%d%d.pyc" % self._pyver(py))))
        # python's own files in the venv are complete and importable
        sfs.run([py, "-c", "import pip, json, sqlite3, email.mime.text"], env=env, cwd=home)
        m.remount()
        p = sfs.run([py, "-c", "import mypkg; print(mypkg.VALUE)"], env=env, cwd=home)
        self.assertEqual(p.stdout.strip(), "42")

    def _pyver(self, py):
        out = sfs.run([py, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"])
        a, b = out.stdout.split()
        return int(a), int(b)


if __name__ == "__main__":
    sfs.main()
