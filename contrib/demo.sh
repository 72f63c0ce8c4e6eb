#!/bin/bash
# demo.sh - build scratchfs and show what it is for, on a fresh Debian 12.
#
# 1. installs the build dependencies that are missing (apt-get),
# 2. builds scratchfs (autoreconf -fi && ./configure && make),
# 3. makes a shared layer with a small fake uv cache and a source tree,
# 4. mounts scratchfs over it and does what `uv pip install` does in
#    hardlink mode (cp -al from the cache into .venv, both in the mount),
# 5. shows that cache and venv are one device and the venv files are
#    hardlinks of the cache files, and that the shared layer is untouched,
# 6. unmounts and cleans up.
#
# Exits non-zero if any step fails.  Run as root or as a user who may use
# /dev/fuse (apt-get then goes through sudo).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. deps
step "checking build dependencies"
bash "$repo/contrib/install-deps.sh" libfuse3-dev fuse3 libglib2.0-dev \
	pkg-config autoconf automake make gcc

# ---------------------------------------------------------------- 2. build
step "building scratchfs (autoreconf -fi && ./configure && make)"
buildlog=$(mktemp "${TMPDIR:-/tmp}/scratchfs-demo-build.XXXXXX")
if ! (cd "$repo" && autoreconf -fi && ./configure && make -j"$(nproc)") \
	>"$buildlog" 2>&1; then
	tail -n 40 "$buildlog" >&2
	fail "build failed (full log: $buildlog)"
fi
rm -f "$buildlog"
scratchfs=$repo/src/scratchfs
"$scratchfs" --version

# ---------------------------------------------------------------- 3. layers
base=$(mktemp -d "${TMPDIR:-/tmp}/scratchfs-demo.XXXXXX")
shared_root=
mnt=$base/mnt
local_layer=$base/local

unmount() {
	if fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null; then
		return 0
	fi
	return 1
}
is_mounted() {
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' \
		/proc/self/mountinfo
}
cleanup() {
	if is_mounted "$mnt"; then
		unmount "$mnt" || fusermount3 -u -z "$mnt" 2>/dev/null || true
	fi
	rm -rf "$base"
	if [ -n "$shared_root" ]; then
		rm -rf "$shared_root"
	fi
}
trap cleanup EXIT

# The shared layer stands for the network volume: on another filesystem
# than the local layer if there is one at hand (/dev/shm), so that the
# EXDEV scratchfs removes can be seen first.
if [ -d /dev/shm ] && [ -w /dev/shm ] &&
	[ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$base")" ]; then
	shared_root=$(mktemp -d /dev/shm/scratchfs-demo-shared.XXXXXX)
	shared=$shared_root
else
	shared=$base/shared
fi
mkdir -p "$shared" "$mnt" "$local_layer/upper" "$local_layer/work"

step "making the shared layer: a fake uv cache and a source tree in $shared"
cache=$shared/.cache/uv/archive-v0
n=0
for pkg in requests urllib3 idna certifi pydantic ophyd; do
	wheel=$cache/$(printf '%s' "$pkg" | md5sum | cut -c1-21)
	for sub in "" core util tests; do
		dir=$wheel/$pkg${sub:+/$sub}
		mkdir -p "$dir"
		for i in $(seq 1 9); do
			printf '"""%s%s module %d"""\nVALUE = %d\n' \
				"$pkg" "${sub:+.$sub}" "$i" "$i" >"$dir/mod_$i.py"
			n=$((n + 1))
		done
		printf '' >"$dir/__init__.py"
		n=$((n + 1))
	done
	info=$wheel/$pkg-1.0.dist-info
	mkdir -p "$info"
	printf 'Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n' "$pkg" >"$info/METADATA"
	printf 'Wheel-Version: 1.0\n' >"$info/WHEEL"
	(cd "$wheel" && find "$pkg" -type f | sort | sed 's/$/,,/') >"$info/RECORD"
	n=$((n + 3))
done
src=$shared/dodal
mkdir -p "$src/src/dodal/devices"
printf '[project]\nname = "dodal"\nversion = "0.0.1"\n' >"$src/pyproject.toml"
printf '"""dodal"""\n' >"$src/src/dodal/__init__.py"
for i in $(seq 1 20); do
	printf 'class Device%d:\n    pass\n' "$i" >"$src/src/dodal/devices/device_$i.py"
done
echo "$n files in the cache, $(find "$src" -type f | wc -l) in the source tree"

snapshot() {
	(cd "$shared" && find . -printf '%p %y %s %m %n %U %G %T@ %C@ %l\n' |
		LC_ALL=C sort)
}
atimes() { (cd "$shared" && find . -printf '%p %A@\n' | LC_ALL=C sort); }
before=$(snapshot)
atimes_before=$(atimes)

some_cache_file=$(find "$cache" -type f -name mod_1.py | LC_ALL=C sort | head -n 1)
if [ "$(stat -c %d "$shared")" != "$(stat -c %d "$local_layer")" ]; then
	step "without scratchfs: hardlinking from the shared layer to local disk"
	if ln "$some_cache_file" "$local_layer/probe" 2>"$base/ln.err"; then
		rm -f "$local_layer/probe"
		echo "(the link worked: same filesystem after all)"
	else
		sed 's/^/    /' "$base/ln.err"
		echo "    -> uv would copy every file instead"
	fi
fi

# ---------------------------------------------------------------- 4. mount
step "mounting scratchfs at $mnt"
echo "$scratchfs -o lowerdir=$shared,upperdir=$local_layer/upper,workdir=$local_layer/work $mnt"
"$scratchfs" -o "lowerdir=$shared,upperdir=$local_layer/upper,workdir=$local_layer/work" "$mnt" ||
	fail "scratchfs did not mount (exit status $?)"
for _ in $(seq 1 100); do
	is_mounted "$mnt" && break
	sleep 0.1
done
is_mounted "$mnt" || fail "no mount at $mnt after 10 s"
grep " $mnt " /proc/self/mounts

step "uv-style install: cp -al from the cache into .venv, both in the mount"
mcache=$mnt/.cache/uv/archive-v0
venv=$mnt/.venv
site=$venv/lib/python3.11/site-packages
mkdir -p "$site" || fail "mkdir $site in the mount"
printf 'home = /usr/bin\nversion = 3.11\n' >"$venv/pyvenv.cfg" ||
	fail "cannot create files in the mount"
t0=$(date +%s%N)
for wheel in "$mcache"/*/; do
	cp -al "$wheel." "$site/" || fail "cp -al $wheel $site/ (hardlinks in the mount)"
done
t1=$(date +%s%N)
# uv pip install -e: a .pth file pointing at the source tree
printf '%s\n' "$mnt/dodal/src" >"$site/_dodal.pth"
linked=$(find "$site" -type f ! -name '*.pth' | wc -l)
printf 'linked %d files in %d ms\n' "$linked" $(((t1 - t0) / 1000000))

# ---------------------------------------------------------------- 5. proof
step "one device: st_dev of the cache and of the venv"
stat -c '%d %n' "$mnt/.cache/uv" "$venv"
[ "$(stat -c %d "$mnt/.cache/uv")" = "$(stat -c %d "$venv")" ] ||
	fail "cache and venv have different st_dev"

step "real hardlinks: st_dev, inode, link count, name"
sample_rel=${some_cache_file#"$cache"/*/}
wheel_dir=${some_cache_file#"$cache"/}
wheel_dir=${wheel_dir%%/*}
stat -c '%d %i %h %n' "$mcache/$wheel_dir/$sample_rel" "$site/$sample_rel"
for rel in "$sample_rel" "${sample_rel%/*}/__init__.py"; do
	a=$(stat -c '%d %i' "$mcache/$wheel_dir/$rel")
	b=$(stat -c '%d %i' "$site/$rel")
	[ "$a" = "$b" ] || fail "$rel: cache ($a) and venv ($b) are not one file"
done

# Every venv file must be the very inode of its cache file, with 2 links.
for wheel in "$mcache"/*/; do
	(cd "$wheel" && find . -type f -printf '%i %P\n')
done | LC_ALL=C sort >"$base/cache.lst"
(cd "$site" && find . -type f ! -name '*.pth' -printf '%i %P\n') |
	LC_ALL=C sort >"$base/venv.lst"
cmp -s "$base/cache.lst" "$base/venv.lst" ||
	fail "venv files are not the cache's inodes (diff $base/cache.lst $base/venv.lst)"
single=$(find "$site" -type f ! -name '*.pth' -links 1 | wc -l)
[ "$single" -eq 0 ] || fail "$single venv files have a link count of 1"
echo "all $linked venv files are hardlinks of their cache files (same inode, 2 links)"

step "editing a shared source file through the mount"
printf '# edited in the mount\n' >>"$mnt/dodal/src/dodal/__init__.py" ||
	fail "cannot write to a shared file through the mount"
grep -q 'edited in the mount' "$mnt/dodal/src/dodal/__init__.py" ||
	fail "the edit does not show in the mount"
grep -q 'edited in the mount' "$local_layer/upper/dodal/src/dodal/__init__.py" ||
	fail "the edit did not land in the local layer"
echo "the edit is in the mount and in the local layer"
echo "local layer: $(find "$local_layer/upper" -type f | wc -l) files, $(du -sh "$local_layer/upper" | cut -f1)"

# ---------------------------------------------------------------- 6. done
step "unmounting"
unmount "$mnt" || fail "cannot unmount $mnt"
for _ in $(seq 1 50); do
	is_mounted "$mnt" || break
	sleep 0.1
done
is_mounted "$mnt" && fail "$mnt is still mounted"

step "checking that nothing was written to the shared layer"
after=$(snapshot)
atimes_after=$(atimes)
if [ "$before" != "$after" ]; then
	diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | head -n 20 >&2 || true
	fail "the shared layer changed"
fi
grep -q 'edited in the mount' "$src/src/dodal/__init__.py" &&
	fail "the edit reached the shared layer"
if [ "$atimes_before" != "$atimes_after" ]; then
	diff <(printf '%s\n' "$atimes_before") <(printf '%s\n' "$atimes_after") |
		sed -n 's/^> \(.*\) [0-9.]*$/    \1/p' | head -n 5 >&2 || true
	fail "access times changed in the shared layer"
fi
echo "shared layer unchanged: names, sizes, modes, link counts, all times"

step "demo passed"
