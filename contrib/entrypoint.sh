#!/bin/sh
# entrypoint.sh - container entrypoint: mount scratchfs, then run the
# container's command in it.
#
#   SCRATCH_SHARED   shared layer(s), e.g. the per-version PersistentVolume;
#                    several are separated by ':' (leftmost on top). Required.
#   SCRATCH_LOCAL    local disk for the writable layer (an emptyDir, the
#                    container's own disk). Default /var/cache/scratchfs.
#   SCRATCH_MOUNT    where the merged tree appears. Default /mnt/scratch.
#   SCRATCH_OPTIONS  more -o options for scratchfs, comma-separated.
#
# Then UV_CACHE_DIR and VIRTUAL_ENV point into the mount, so uv's cache (in
# the shared layer) and the venv (written to the local layer) are on one
# device and uv hardlinks instead of copying:
#
#   entrypoint.sh sh -c 'uv venv "$VIRTUAL_ENV" && uv pip install -e /mnt/scratch/src/a -e /mnt/scratch/src/b'
#
# (tests/integration/test_uv_real.py runs exactly this with real uv, offline.)
#
# Needs /dev/fuse and CAP_SYS_ADMIN in the container.
set -eu

: "${SCRATCH_SHARED:?set SCRATCH_SHARED to the shared layer directory}"
local_dir=${SCRATCH_LOCAL:-/var/cache/scratchfs}
mnt=${SCRATCH_MOUNT:-/mnt/scratch}

# A new local layer's root is the mount's root: give it the owner, group and
# mode of the (top) shared layer's root, so users reach the mount as they
# reach the shared volume (scratchfs does the same for its built-in layer).
if [ ! -d "$local_dir/upper" ]; then
	mkdir -p "$local_dir/upper"
	chown --reference="${SCRATCH_SHARED%%:*}" "$local_dir/upper"
	chmod --reference="${SCRATCH_SHARED%%:*}" "$local_dir/upper"
fi
mkdir -p "$local_dir/work" "$mnt"
scratchfs -o "lowerdir=$SCRATCH_SHARED,upperdir=$local_dir/upper,workdir=$local_dir/work${SCRATCH_OPTIONS:+,$SCRATCH_OPTIONS}" \
	scratch "$mnt"

# scratchfs returns once the mount is up; check anyway, for 10 s at most.
mounted() {
	awk -v m="$mnt" '$5 == m && / - fuse\.scratchfs / { found = 1 }
		END { exit !found }' /proc/self/mountinfo
}
tries=0
until mounted; do
	tries=$((tries + 1))
	if [ "$tries" -ge 100 ]; then
		echo "entrypoint.sh: scratchfs did not appear at $mnt" >&2
		exit 1
	fi
	sleep 0.1
done

export UV_CACHE_DIR="$mnt/.cache/uv"
# hardlink, not uv's default clone: FICLONE never works through FUSE, so clone only adds a failed try per wheel.
export UV_LINK_MODE=hardlink
export VIRTUAL_ENV="${VIRTUAL_ENV:-$mnt/.venv}"
export PATH="$VIRTUAL_ENV/bin:$PATH"

if [ "$#" -eq 0 ]; then
	set -- sh
fi
exec "$@"
