#!/bin/sh
# Installs what building and running the image needs on this machine, once, and makes the
# local base image: podman and runc (Debian's packages), mmdebstrap, and a Debian bookworm
# minbase image imported as localhost/milagro-base:bookworm (no container registry is
# reachable from the machines this project is tested on). The rootfs tarball is kept in
# $MILAGRO_MACHINE_CACHE (default ~/.cache/milagro)/container, so later runs only import it.
#
# Prints the CONTAINERS_CONF path to use (runc, cgroupfs, no default ulimits: what works
# here). Exits non-zero, naming what is missing, if anything cannot be installed.
set -eu
cache="${MILAGRO_MACHINE_CACHE:-${HOME}/.cache/milagro}/container"
mkdir -p "$cache"
conf="$cache/containers.conf"
cat > "$conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
export CONTAINERS_CONF="$conf"

missing=""
for tool in podman runc mmdebstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "needs$missing (Debian: apt-get install podman runc mmdebstrap uidmap), as root" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc mmdebstrap uidmap >&2 \
        || { echo "apt-get could not install$missing" >&2; exit 1; }
fi

base="localhost/milagro-base:bookworm"
if ! podman image exists "$base"; then
    tarball="$cache/bookworm-minbase.tar"
    if [ ! -s "$tarball" ]; then
        mmdebstrap --variant=minbase --include=ca-certificates bookworm "$tarball.partial" >&2 \
            || { echo "mmdebstrap could not make a bookworm rootfs" >&2; exit 1; }
        mv "$tarball.partial" "$tarball"
    fi
    podman import "$tarball" "$base" >&2
fi
echo "$conf"
