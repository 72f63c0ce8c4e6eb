"""make_seeds.py - (re)write the seed corpora of the fuzz targets from real
option strings and config files: the man pages, contrib/ and the tests.

    python3 tests/fuzz/make_seeds.py     (from the source tree)

corpus/options/NAME: argv[1..] NUL-separated (fuzz_options.c);
corpus/config_file/NAME: a config file (fuzz_config_file.c)."""

import hashlib
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.join(HERE, "..", "..")

ARGVS = [
    ["/mnt/scratch"],
    ["-o", "lowerdir=/pv/scratch,upperdir=/var/cache/scratchfs/u,workdir=/var/cache/scratchfs/w",
     "/mnt/scratch"],
    ["-f", "-d", "-s", "/shared", "/mnt/scratch"],
    ["-fs", "-o", "timeout=2.5,metacopy=off,writeback_cache,ro", "/srv/a", "/mnt/b"],
    ["scratch", "/mnt/scratch", "-o",
     "rw,lowerdir=/nfs/scratch,upperdir=/var/lib/scratchfs/upper,"
     "workdir=/var/lib/scratchfs/work,nofail,_netdev"],
    ["-o", "lowerdir=/a\\:b:/c,fsname=x\\,y", "/m"],
    ["-o", "lowerdir=/a::/c", "/m"],
    ["-o", "nometacopy,metacopy,nono_open,no_open=off,multithread=0", "/s", "/m"],
    ["-o", "noallow_other,default_permissions,dev,suid,nosuid,nodev,noexec,noatime",
     "/s", "/m"],
    ["-o", "x-systemd.automount,comment=foo,defaults,auto,user", "/s", "/m"],
    ["-o", "timeout=1e3", "-o", "timeout=0.000", "/s", "/m"],
    ["-o", "upperdir=relative/u,workdir=../w", "/s", "rel/mnt"],
    ["--", "-weird", "/m"],
    ["-h"], ["--help"], ["-V"], ["--version"],
    ["-oallow_other=yes", "/s", "/m"],
    ["", "/m"],
]

CONFIGS = [
    "[defaults]\nno_open=true\n",
    "[/mnt/scratch]\nno_open=yes\n[defaults]\nno_open=off\n",
    "[defaults]\ntimeout=2\nthis is junk\n",
    "# comment\n\n[defaults\ntimeout=2\n",
    "timeout=2\n[defaults]\n",
    "[defaults]\n[default]\ntimeout=1\n",
    "[defaults]\ntimeout=2\nlowerdirs=/x\n",
    "[/mnt/scratch]\n\ntimeout = abc\n",
    "[defaults]\nallow_other=perhaps\n",
    "[defaults]\nupperdir=relative/dir\nworkdir=/w\n",
    "[defaults]\nnofail=true\n",
    "[/mnt/scratch//]\nlowerdir=/a\\:b:/c\nupperdir=/u\nworkdir=/w\n",
    "[defaults]\ndefault_permissions=false\nwriteback_cache=1\nro=no\nfsname=x\n",
    "[/elsewhere]\nbogus=1\n",
    "[defaults]\nkey[de]=localized\nmultithread=true\nmetacopy=off\n",
    "[defaults]\nlowerdir=/a;/b\nfsname=\\s\\t\\n\\\\\n",
]


def from_file(path):
    """Config file examples: whole files, and the example in scratchfs.conf(5)."""
    with open(path) as f:
        text = f.read()
    if path.endswith(".5"):
        blocks = re.findall(r"^\.nf\n(.*?)^\.fi", text, re.S | re.M)
        return [b.replace("\\-", "-") for b in blocks if "[" in b]
    return [text]


def write(d, data):
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(HERE, "corpus", d, name), "wb") as f:
        f.write(data)


def main():
    for argv in ARGVS:
        write("options", b"\0".join(a.encode() for a in argv))
    configs = list(CONFIGS)
    configs += from_file(os.path.join(TOP, "contrib", "scratchfs.conf.example"))
    configs += from_file(os.path.join(TOP, "man", "scratchfs.conf.5"))
    for c in configs:
        write("config_file", c.encode())


if __name__ == "__main__":
    main()
