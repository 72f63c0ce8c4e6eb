#!/bin/bash
# install-deps.sh PACKAGE... - install the Debian packages that are missing,
# through sudo when not root.  Used by demo.sh and tests/run-all.sh.
# A package counts as present when it is installed or provided by an
# installed one (NodeSource's nodejs provides npm, for one).
set -euo pipefail

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		echo "install-deps.sh: need root (or sudo) to run: $*" >&2
		exit 1
	fi
}

if ! command -v dpkg >/dev/null; then
	echo "not a Debian system: assuming $* are installed"
	exit 0
fi
provided=$(dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null |
	sed -n 's/^install ok installed|//p' | tr ',' '\n' |
	sed 's/^ *//; s/ .*//' | sort -u)
installed() {
	dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed' ||
		grep -qx -- "$1" <<<"$provided"
}
missing=()
for p in "$@"; do
	installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "installing: ${missing[*]}"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
else
	echo "all present"
fi
