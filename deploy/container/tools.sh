#!/bin/sh
# Installs what building and running the image needs on this machine, once, and makes the
# local base image: podman and runc (Debian's packages), mmdebstrap, a Debian bookworm
# minbase image imported as localhost/milagro-base:bookworm (no container registry is
# reachable from the machines this project is tested on), and podman-compose (from PyPI,
# pinned, into a virtual environment). The rootfs tarball and the virtual environment are
# kept in $MILAGRO_MACHINE_CACHE (default ~/.cache/milagro), so later runs reuse them.
#
# Prints two shell lines to `eval`:
#   export CONTAINERS_CONF='…'   the configuration to use (runc, cgroupfs, no default
#                                ulimits: what works here)
#   export PODMAN_COMPOSE='…'    the podman-compose executable
# Exits non-zero, naming what is missing, if anything cannot be installed.
set -eu
machine="${MILAGRO_MACHINE_CACHE:-${HOME}/.cache/milagro}"
cache="$machine/container"
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

# podman-compose and every package of its virtual environment, pinned (what pip resolved
# for podman-compose 1.6.0 on CPython 3.11, 2026-12). A venv's scripts name its own path,
# so it is built in place, under a lock, and counts only once its last step wrote
# `.complete`: an interrupted install is removed and made again.
compose_version=1.6.0
venv="$machine/podman-compose-$compose_version"
exec 9>"$venv.lock"
flock 9
if [ ! -e "$venv/.complete" ]; then
    command -v python3 >/dev/null 2>&1 || { echo "needs python3 (with venv) for podman-compose" >&2; exit 1; }
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 \
        || { echo "python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
    "$venv/bin/pip" install -q "podman-compose==$compose_version" \
        python-dotenv==1.2.4 PyYAML==6.0.4 >&2 \
        || { echo "pip could not install podman-compose $compose_version" >&2; exit 1; }
    "$venv/bin/podman-compose" --version >&2 \
        || { echo "podman-compose $compose_version does not run" >&2; exit 1; }
    touch "$venv/.complete"
fi
exec 9>&-
printf "export CONTAINERS_CONF='%s'\n" "$conf"
printf "export PODMAN_COMPOSE='%s'\n" "$venv/bin/podman-compose"
