#!/bin/sh
# segmesh post-remove (deb: postrm; rpm: %postun). `remove` keeps
# /etc/segmesh (the site's configuration, its key and the CRL cache); `purge`
# deletes it and /var/lib/segmesh. The segmesh user stays, as Debian does for
# system users (files it owned elsewhere would otherwise fall to a new uid).
set -e
if [ "$1" = purge ]; then
  rm -rf /etc/segmesh /var/lib/segmesh
  if command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper purge segmesh.service >/dev/null || true
  fi
fi
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null 2>&1 || true
fi
exit 0
