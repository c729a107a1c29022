# Sourced by .ci/package.sh: what to do when segmesh is already on the
# machine before the package step installs it.
#
# The package step installs the .deb (then the .rpm) and removes it at the
# end. A run stopped between the two (a killed CI job, a timeout, a machine
# a CI system reuses for a retry) leaves segmesh installed, and the next run
# refused forever: "segmesh is already installed on this machine". That is
# right on an admin's or a developer's machine, where the installed segmesh
# may be the real one, and wrong for what this script itself left. So the
# script writes a marker before it installs and removes it after the
# removal; a leftover is cleared when
#   - the marker names its version (this script installed that version and
#     did not finish), or
#   - CI=true and the installed version is a checkout build (~git: never a
#     release), which only a CI run puts on a CI machine;
# anything else is refused as before, with what dpkg and rpm say of it. Each
# package (.deb, .rpm) is judged alone, and the marker goes when a failed
# run's own cleanup has removed the package: a marker that outlived its
# install would otherwise clear whatever an admin installed later, with
# /etc/segmesh and /var/lib/segmesh.
#
# SEGMESH_PACKAGE_ROOT puts the marker and the paths looked at and removed
# under another root (the tests use a temporary one, with fake dpkg-query,
# dpkg and rpm on PATH).

package_root=${SEGMESH_PACKAGE_ROOT:-}
package_marker=$package_root/var/lib/segmesh-package-step
# The step's lock: in /run, which only root writes (in the world-writable
# /run/lock another local user could put a link there that root's open
# follows, and truncates, or hold the lock for good).
package_lock=$package_root/run/segmesh-package-step.lock

# installed_deb prints the installed .deb's version, or nothing.
installed_deb() {
  dpkg-query -W -f='${db:Status-Status} ${Version}\n' segmesh 2>/dev/null |
    awk '$1 != "not-installed" {print $2; exit}' || true
}

# installed_rpm prints the installed .rpm's version, or nothing.
installed_rpm() {
  command -v rpm >/dev/null 2>&1 || return 0
  rpm -q --qf '%{VERSION}\n' segmesh 2>/dev/null | grep -v 'not installed' || true
}

# ours VERSION: true when the leftover may be cleared (see above). "" is
# files without a package (rpm -e done, /etc/segmesh not yet removed).
ours() {
  if [ -z "$1" ]; then
    [ -f "$package_marker" ]
    return
  fi
  if [ -f "$package_marker" ] && grep -qxF -- "$1" "$package_marker"; then
    return 0
  fi
  if [ "${CI:-}" = true ]; then
    case "$1" in *~git*) return 0 ;; esac
  fi
  return 1
}

# clear_leftover: nothing on the machine, or a leftover of this script's
# that it removes; exits 1 (the refusal) for anything else.
clear_leftover() {
  local deb rpmv
  deb=$(installed_deb)
  rpmv=$(installed_rpm)
  if [ -z "$deb" ] && [ -z "$rpmv" ] && [ ! -e "$package_root/usr/bin/segmesh" ] && [ ! -e "$package_root/etc/segmesh" ]; then
    return 0
  fi
  local bad=""
  if [ -n "$deb" ]; then ours "$deb" || bad=1; fi
  if [ -n "$rpmv" ]; then ours "$rpmv" || bad=1; fi
  if [ -z "$deb$rpmv" ]; then ours "" || bad=1; fi
  if [ -n "$bad" ]; then
    echo "segmesh is already installed on this machine: refusing to replace it"
    echo "  dpkg: ${deb:-not installed}; rpm: ${rpmv:-not installed}; no marker $package_marker naming it (this script did not leave it)"
    echo "  remove it (dpkg --purge segmesh, or rpm -e segmesh) if it is not in use, then run again"
    exit 1
  fi
  echo "a segmesh left by an earlier package step (dpkg: ${deb:-none}; rpm: ${rpmv:-none}): removing it"
  if [ -n "$deb" ]; then dpkg --purge segmesh; fi
  if [ -n "$rpmv" ]; then rpm -e segmesh; fi
  rm -rf "$package_root/etc/segmesh" "$package_root/var/lib/segmesh"
  if [ -e "$package_root/usr/bin/segmesh" ]; then
    echo "$package_root/usr/bin/segmesh is still there after the removal: refusing to install over it"; exit 1
  fi
}

# mark_installing VERSION: before this script installs a package, the
# version it installs (dpkg's, or rpm's %{VERSION}) is added to the marker.
mark_installing() {
  [ -n "$1" ] || { echo "mark_installing: no version"; return 1; }
  mkdir -p "$(dirname "$package_marker")" && printf '%s\n' "$1" >>"$package_marker"
}

# mark_removed: removed once this script has removed what it installed.
mark_removed() { rm -f "$package_marker"; }

# unmark_if_gone: a failed run's cleanup, after it removed the package: the
# marker goes when neither dpkg nor rpm reports segmesh any more.
unmark_if_gone() {
  if [ -z "$(installed_deb)" ] && [ -z "$(installed_rpm)" ]; then mark_removed; fi
}
