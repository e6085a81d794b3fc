#!/usr/bin/env bash
# Builds the image of ci/dist/Dockerfile from the bundle and runs the demo in it, on a machine that reaches only
# package registries: the Debian 12 base image is made locally with debootstrap (from the Debian mirror) and
# imported under the name the Dockerfile pulls, then podman builds with --pull=never.
#
#   make container-check      (after make dist; root, as it installs podman, runc and debootstrap with apt)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bundle="${1:-$(ls -t dist/texaug-*-linux-x86_64.tar.gz 2>/dev/null | head -n1)}"
[[ -f "$bundle" ]] || { echo "container-check: no bundle in dist/; run make dist first" >&2; exit 1; }
tag="texaug:$(basename "$bundle" .tar.gz | sed 's/^texaug-//; s/-linux-x86_64$//')"

missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || { echo "container-check: needs ${missing[*]} (apt-get install ${missing[*]})" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi
# Sandboxed machines refuse the default rlimits and cgroup setup; runc without rlimits works in both.
podman=(podman --runtime "$(command -v runc)")
if [[ ! -f /etc/containers/containers.conf ]] && [[ $(id -u) == 0 ]]; then
    mkdir -p /etc/containers
    printf '[containers]\ndefault_ulimits = []\n' > /etc/containers/containers.conf
fi

base=docker.io/library/debian:bookworm-slim
if ! "${podman[@]}" image exists "$base"; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    echo "container-check: making $base with debootstrap (first use only)" >&2
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >&2
    tar -C "$work/rootfs" -c . | "${podman[@]}" import - "$base" >&2
fi
"${podman[@]}" build --pull=never -f ci/dist/Dockerfile --build-arg "BUNDLE=$bundle" -t "$tag" . >&2
"${podman[@]}" run --rm --entrypoint texaug-demo "$tag" /work/demo
echo "container-check: $tag built from $bundle and ran the demo" >&2
