#!/bin/sh
# segmesh post-install (deb: postinst configure; rpm: %post): the service
# user, the configuration directory, a starting config.json on first install
# (segmesh config init), and the unit enabled but not started: it needs the
# site's settings first.
set -e
case "$1" in
  configure|1|2) ;;
  *) exit 0 ;;
esac
if ! getent group segmesh >/dev/null; then
  groupadd --system segmesh
fi
if ! getent passwd segmesh >/dev/null; then
  useradd --system --gid segmesh --home-dir /var/lib/segmesh --no-create-home \
    --shell /usr/sbin/nologin --comment "segmesh KCD email gateway" segmesh
fi
install -d -m 0750 -o segmesh -g segmesh /etc/segmesh
if [ ! -e /etc/segmesh/config.json ]; then
  # /etc/segmesh is the service user's: it can swap a file written here for
  # a symbolic link before the next command, so nothing below follows one.
  # config init creates the files (O_EXCL, config.json 0600, notes 0640
  # under this umask); chown -h changes a link, never its target.
  (umask 027 && segmesh config init /etc/segmesh/config.json >/dev/null)
  chown -h segmesh:segmesh /etc/segmesh/config.json /etc/segmesh/config.json.md
  echo "segmesh: wrote /etc/segmesh/config.json (explained in config.json.md beside it)."
  echo "segmesh: fill in your site's values, check with 'segmesh config check /etc/segmesh/config.json',"
  echo "segmesh: then 'systemctl start segmesh'."
fi
# Debian's helpers for the .deb (dpkg passes "configure"; they refuse to
# run outside dpkg); systemctl for the .rpm (rpm passes 1 or 2).
if [ "$1" = configure ] && command -v deb-systemd-helper >/dev/null 2>&1; then
  deb-systemd-helper unmask segmesh.service >/dev/null || true
  deb-systemd-helper enable segmesh.service >/dev/null || true
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    # An upgrade restarts a running gateway (SIGTERM drains it first).
    deb-systemd-invoke try-restart segmesh.service >/dev/null || true
  fi
elif [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null 2>&1 || true
  systemctl enable segmesh.service >/dev/null 2>&1 || true
  systemctl try-restart segmesh.service >/dev/null 2>&1 || true
fi
exit 0
