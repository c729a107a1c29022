#!/usr/bin/env bash
# The VM install as an admin does it, on the CI machine: build the linux
# binaries (amd64 and arm64) and the .deb and .rpm (deploy/package, nfpm as a
# Go library), install the .deb with dpkg, verify the systemd unit, run
# lintian (clean but for the explained overrides in
# deploy/package/lintian-overrides), run `segmesh config check` from the
# installed path as the service user on the config the package wrote, then
# purge it and check nothing is left; then the same with the .rpm and
# Debian's rpm. Needs root, dpkg, rpm, lintian and systemd-analyze (.ci/run
# installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${SEGMESH_DIST:-dist}
version=${SEGMESH_VERSION:-0.1.0~git$(git rev-parse --short=12 HEAD 2>/dev/null || echo 0)}
start=$(date +%s)
say() { printf -- '-- %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

for arch in amd64 arm64; do
  say "build linux/$arch"
  GOOS=linux GOARCH=$arch CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/linux-$arch/segmesh" ./cmd/segmesh
  go run ./deploy/package -bin "$out/linux-$arch/segmesh" -arch "$arch" -version "$version" -out "$out"
done
deb=$(ls "$out"/segmesh_*_amd64.deb)

# One package step at a time on a machine (a second would remove what the
# first is checking); a segmesh this script left when it was stopped is
# removed, anything else refused (.ci/leftover.sh).
. .ci/leftover.sh
exec 9>"$package_lock"
flock 9
clear_leftover
say "dpkg -i $deb"
mark_installing "$(dpkg-deb -f "$deb" Version)"
dpkg -i "$deb"
cleanup() { dpkg --purge segmesh >/dev/null 2>&1 || true; unmark_if_gone; }
trap cleanup EXIT

say "systemd-analyze verify"
systemd-analyze verify /usr/lib/systemd/system/segmesh.service
grep -q '^ProtectSystem=strict$' /usr/lib/systemd/system/segmesh.service

say "lintian"
lintian --fail-on error,warning "$deb"

say "config check from the installed path, as the service user"
test -f /etc/segmesh/config.json
test "$(stat -c %U /etc/segmesh/config.json)" = segmesh
# The fresh config names the site's CA files, not there yet: check says so.
if runuser -u segmesh -- /usr/bin/segmesh config check /etc/segmesh/config.json >/tmp/segmesh-check.out 2>&1 ||
   ! grep -q 'clientCertTrustStorePath = "config/ssl-certs/' /tmp/segmesh-check.out; then
  echo "config check of the fresh config did not name the missing trust store:"; cat /tmp/segmesh-check.out; exit 1
fi
# Put the CA files and the edge's certificate and key there as the admin
# would (config check reads the server pair as the edge will); then the
# configuration checks clean (warnings only: config init's placeholders).
install -d -o segmesh -g segmesh -m 0750 /etc/segmesh/config/ssl-certs
for ca in issuing-ca root-ca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$ca" \
    -keyout /dev/null -out "/etc/segmesh/config/ssl-certs/$ca.pem" 2>/dev/null
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=mail.corp.example" \
  -keyout /etc/segmesh/config/ssl-certs/seg.key -out /etc/segmesh/config/ssl-certs/seg.pem 2>/dev/null
chown segmesh:segmesh /etc/segmesh/config/ssl-certs/*.pem /etc/segmesh/config/ssl-certs/seg.key
chmod 0600 /etc/segmesh/config/ssl-certs/seg.key
runuser -u segmesh -- /usr/bin/segmesh config check /etc/segmesh/config.json >/tmp/segmesh-check.out 2>&1 ||
  { cat /tmp/segmesh-check.out; exit 1; }
/usr/bin/segmesh version
man -w segmesh >/dev/null 2>&1 || zcat /usr/share/man/man8/segmesh.8.gz | grep -q '^\.SS run'

say "dpkg --purge"
dpkg --purge segmesh
trap - EXIT
left=""
for p in /usr/bin/segmesh /usr/lib/systemd/system/segmesh.service /etc/segmesh /var/lib/segmesh /usr/share/doc/segmesh; do
  [ -e "$p" ] && left="$left $p"
done
if [ -n "$left" ]; then echo "left after purge:$left"; exit 1; fi
say "removed cleanly (the segmesh system user stays, as Debian does)"

# The .rpm, with Debian's rpm (its own database beside dpkg's): the same
# payload and scriptlets a RHEL admin's `rpm -i`/`dnf install` runs (no
# systemd as PID 1 here, so the systemctl branch is skipped, as in a
# container). Debian's rpm warns that it is not meant to install packages
# on Debian; the package requires nothing, so it installs as it would there.
rpmfile=$(ls "$out"/segmesh-*.x86_64.rpm)
say "rpm -qpi, rpm -i $rpmfile"
rpm -qpi "$rpmfile" | grep -q '^Architecture: x86_64'
clear_leftover
mark_installing "$(rpm -qp --qf '%{VERSION}' "$rpmfile")"
rpm -i "$rpmfile"
rpmcleanup() { rpm -e segmesh >/dev/null 2>&1 || true; rm -rf /etc/segmesh /var/lib/segmesh; unmark_if_gone; }
trap rpmcleanup EXIT
rpm -V segmesh
test "$(stat -c %U /etc/segmesh/config.json)" = segmesh
if runuser -u segmesh -- /usr/bin/segmesh config check /etc/segmesh/config.json >/tmp/segmesh-check.out 2>&1 ||
   ! grep -q 'clientCertTrustStorePath = "config/ssl-certs/' /tmp/segmesh-check.out; then
  echo "config check of the .rpm's fresh config did not name the missing trust store:"; cat /tmp/segmesh-check.out; exit 1
fi
say "rpm -e"
rpm -e segmesh
left=""
for p in /usr/bin/segmesh /usr/lib/systemd/system/segmesh.service /usr/share/doc/segmesh /usr/share/man/man8/segmesh.8.gz; do
  [ -e "$p" ] && left="$left $p"
done
if [ -n "$left" ]; then echo "left after rpm -e:$left"; exit 1; fi
# rpm has no purge: the site's configuration stays, as on RHEL.
test -f /etc/segmesh/config.json
rm -rf /etc/segmesh /var/lib/segmesh
mark_removed
trap - EXIT
say "the .rpm installed and removed cleanly (/etc/segmesh kept by rpm -e, removed here)"
