#!/usr/bin/env bash
# Builds the segmesh image offline and runs it with no network (issue 10,
# item 5): deploy/Dockerfile's final stage (FROM scratch) from a locally
# built static binary, with Debian's podman; then `segmesh roles` inside it
# (segmesh has no --version yet). Nothing is pulled: FROM scratch needs no
# base image.
#
# `podman run` needs an OCI runtime that can set rlimits and cgroups; in a
# gVisor sandbox crun fails ("setrlimit RLIMIT_NOFILE: Operation not
# permitted", then "cgroups in hybrid mode not supported"). There the script
# runs the built image's own filesystem instead: `podman image mount`, then
# chroot as the image's USER inside a new network namespace (only lo, down).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
for c in podman:podman unshare:util-linux; do
  command -v "${c%%:*}" >/dev/null || { apt-get update -qq; apt-get install -y -qq "${c#*:}" >/dev/null; }
done
[ -f /etc/ssl/certs/ca-certificates.crt ] || apt-get install -y -qq ca-certificates >/dev/null

work=$(mktemp -d)
tag=localhost/segmesh:ci-$$
mounted=""
cleanup() {
  [ -n "$mounted" ] && podman image unmount "$tag" >/dev/null 2>&1
  podman rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The root filesystem, laid out as deploy/Dockerfile's build stage does.
root=$work/rootfs
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$root/usr/local/bin/segmesh" ./cmd/segmesh
mkdir -p "$root/etc/ssl/certs" "$root/var/lib/segmesh" "$root/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
echo 'segmesh:x:65532:65532:segmesh:/nonexistent:/sbin/nologin' >"$root/etc/passwd"
echo 'segmesh:x:65532:' >"$root/etc/group"
chmod 1777 "$root/tmp"

# The Dockerfile's final stage, copying from the build context instead of the build stage.
awk '/^FROM scratch/{f=1} f' deploy/Dockerfile | sed 's#^COPY --from=build /out/rootfs/ /$#COPY rootfs/ /#' >"$work/Containerfile"
if ! grep -qx 'COPY rootfs/ /' "$work/Containerfile" || grep -q -- '--from' "$work/Containerfile"; then
  echo "image.sh: deploy/Dockerfile's final stage is not 'FROM scratch' + 'COPY --from=build /out/rootfs/ /': update this script"
  cat "$work/Containerfile"
  exit 1
fi
podman build -q --network=none -t "$tag" -f "$work/Containerfile" "$work" >/dev/null
user=$(podman image inspect --format '{{.Config.User}}' "$tag")
case "$user" in
  ""|0|0:*|root|root:*) echo "image.sh: the image runs as root (USER '$user')"; exit 1 ;;
esac
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "image $tag: $((size / 1024 / 1024)) MiB, USER $user"

if out=$(podman run --rm --network=none "$tag" roles 2>&1); then
  how="podman run --network=none"
else
  echo "podman run cannot run containers here: $out"
  mnt=$(podman image mount "$tag")
  mounted=1
  out=$(unshare --net chroot --userspec="$user" "$mnt" /usr/local/bin/segmesh roles 2>&1)
  how="the image's filesystem in a new network namespace as $user"
fi
for r in crl identity ticket edge; do
  if ! grep -q "^$r " <<<"$out"; then
    echo "image.sh: 'segmesh roles' in the image did not list $r:"
    echo "$out"
    exit 1
  fi
done
echo "segmesh roles ran in the image ($how): 4 roles listed"
