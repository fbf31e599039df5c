#!/usr/bin/env bash
# install-deps.sh - install the Debian packages ablasim needs (idempotent).
#   scripts/install-deps.sh              install what is missing (root), or print the command
#   scripts/install-deps.sh --if-missing same, but silent when everything is present
#   scripts/install-deps.sh --check      exit 1 if something is missing, install nothing
#
# Only the missing packages are named to apt-get, with --no-upgrade: a package that is already
# installed is never upgraded, and nothing else is (apt-get install upgrades no unrelated
# package; a dependency of a missing package is upgraded only if that package cannot be
# installed otherwise). apt's output is kept in a temporary log and shown only when it fails.
set -u
PKGS="build-essential pkg-config libfftw3-dev libhdf5-dev hdf5-tools libcunit1-dev libyaml-dev libnifti2-dev libnlopt-dev libopenmpi-dev openmpi-bin python3-matplotlib python3-h5py python3-numpy python3-scipy"
mode=${1:-install}
case "$mode" in
    install|--if-missing|--check) ;;
    *) echo "usage: scripts/install-deps.sh [--if-missing|--check]" >&2; exit 1 ;;
esac

missing=()
for p in $PKGS; do
    # installed = dpkg's status word "installed" (also when held); anything else (not known,
    # removed with its configuration left, half-installed) counts as missing
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    [ "$mode" = "--if-missing" ] || echo "install-deps: all packages present ($PKGS)"
    exit 0
fi
[ "$mode" = "--check" ] && { echo "install-deps: missing: ${missing[*]}"; exit 1; }

cmd="apt-get install -y -qq --no-install-recommends --no-upgrade ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root:  apt-get update && $cmd" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp "${TMPDIR:-/tmp}/install-deps.XXXXXX") || exit 1
trap 'rm -f "$log"' EXIT
run() {  # run "what" command...: quiet, its output only on failure
    local what=$1; shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "install-deps: $what failed: $*" >&2
        exit 1
    fi
}
run "apt-get update" apt-get update -qq
run "apt-get install" $cmd
echo "install-deps: installed ${missing[*]}"
