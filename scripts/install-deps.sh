#!/usr/bin/env bash
# install-deps.sh - install the Debian packages ablasim needs (idempotent).
#   scripts/install-deps.sh              install what is missing (root), or print the command
#   scripts/install-deps.sh --if-missing same, but silent when everything is present
#   scripts/install-deps.sh --check      exit 1 if something is missing, install nothing
set -u
PKGS="build-essential pkg-config libfftw3-dev libhdf5-dev hdf5-tools libcunit1-dev libyaml-dev libnifti2-dev libopenmpi-dev openmpi-bin python3-matplotlib python3-h5py python3-numpy"
mode=${1:-install}

missing=()
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    [ "$mode" = "--if-missing" ] || echo "install-deps: all packages present ($PKGS)"
    exit 0
fi
[ "$mode" = "--check" ] && { echo "install-deps: missing: ${missing[*]}"; exit 1; }

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root:  apt-get update && $cmd" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || { echo "install-deps: apt-get update failed" >&2; exit 1; }
$cmd || { echo "install-deps: apt-get install failed" >&2; exit 1; }
