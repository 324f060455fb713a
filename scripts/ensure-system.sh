#!/usr/bin/env bash
# Make sure the programs the incident lab runs are installed: Prometheus (with promtool) and
# the PostgreSQL server binaries. Installs Debian's prometheus when it is missing and we may;
# otherwise says exactly what is missing and the command that installs it.
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $* with apt-get…" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  else
    echo "missing: $*. Install it with: sudo apt-get update && sudo apt-get install -y $*" >&2
    return 1
  fi
}

status=0
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus || status=1
fi
if ! have_pg; then
  apt_install postgresql || status=1
fi
# The lab stops Debian's own prometheus service if the package started one: it would
# otherwise hold port 9090 and scrape nothing we need. Harmless when there is none.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi
exit $status
