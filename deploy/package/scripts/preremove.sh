#!/bin/sh
# segmesh pre-remove (deb: prerm remove; rpm: %preun on erase): stop
# (SIGTERM drains) and disable the service. An upgrade leaves it running for
# postinstall's restart.
set -e
case "$1" in
  remove|0) ;;
  *) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
  if [ "$1" = remove ] && command -v deb-systemd-invoke >/dev/null 2>&1; then
    deb-systemd-invoke stop segmesh.service >/dev/null || true
  else
    systemctl stop segmesh.service >/dev/null 2>&1 || true
  fi
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null 2>&1; then
  deb-systemd-helper disable segmesh.service >/dev/null || true
elif [ -d /run/systemd/system ]; then
  systemctl disable segmesh.service >/dev/null 2>&1 || true
fi
exit 0
