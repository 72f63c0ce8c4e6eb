#!/bin/sh
# entrypoint.sh - container entrypoint: mount scratchfs, then run the
# container's command in it.
#
#   SCRATCH_SHARED   shared layer(s), e.g. the per-version PersistentVolume;
#                    several are separated by ':' (leftmost on top). Required.
#   SCRATCH_LOCAL    local disk for the writable layer (an emptyDir, the
#                    container's own disk). Default /var/cache/scratchfs.
#   SCRATCH_MOUNT    where the merged tree appears. Default /mnt/scratch.
#   SCRATCH_LOCAL_SIZE  the size limit of SCRATCH_LOCAL, as a Kubernetes
#                    quantity (the emptyDir's sizeLimit: 10Gi, 500M, 2G).
#                    The local layer is then limited to 95% of it
#                    (-o upper_limit=): a write that would pass that fails
#                    with ENOSPC, instead of the kubelet evicting the whole
#                    pod some time after the emptyDir went past its limit.
#                    The 5% leave room for what scratchfs counts only at the
#                    next mount (directories growing a block as they fill,
#                    attribute blocks) and for files deleted while still
#                    open, which the kubelet's du no longer sees either but
#                    the disk still holds until they are closed.
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

# 95% of a Kubernetes quantity, in bytes ("" if it is not one).
limit_of() {
	awk -v q="$1" 'BEGIN {
		if (!match(q, /^[0-9]+/))
			exit 1
		n = substr(q, 1, RLENGTH); u = substr(q, RLENGTH + 1)
		m[""] = 1; m["k"] = 1e3; m["M"] = 1e6; m["G"] = 1e9; m["T"] = 1e12
		m["Ki"] = 2^10; m["Mi"] = 2^20; m["Gi"] = 2^30; m["Ti"] = 2^40
		if (!(u in m))
			exit 1
		printf "%.0f\n", n * m[u] * 0.95
	}'
}

opts="lowerdir=$SCRATCH_SHARED,upperdir=$local_dir/upper,workdir=$local_dir/work"
if [ -n "${SCRATCH_LOCAL_SIZE:-}" ]; then
	if ! limit=$(limit_of "$SCRATCH_LOCAL_SIZE"); then
		echo "entrypoint.sh: SCRATCH_LOCAL_SIZE=$SCRATCH_LOCAL_SIZE is not a size (e.g. 10Gi)" >&2
		exit 1
	fi
	opts="$opts,upper_limit=$limit"
fi

# A new local layer's root is the mount's root: give it the owner, group and
# mode of the (top) shared layer's root, so users reach the mount as they
# reach the shared volume (scratchfs does the same for its built-in layer).
if [ ! -d "$local_dir/upper" ]; then
	mkdir -p "$local_dir/upper"
	chown --reference="${SCRATCH_SHARED%%:*}" "$local_dir/upper"
	chmod --reference="${SCRATCH_SHARED%%:*}" "$local_dir/upper"
fi
mkdir -p "$local_dir/work" "$mnt"
scratchfs -o "$opts${SCRATCH_OPTIONS:+,$SCRATCH_OPTIONS}" scratch "$mnt"

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
