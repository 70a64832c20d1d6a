#!/usr/bin/env bash
# Make sure the Prometheus tests have Debian's `prometheus` package: promtool (rule unit tests,
# tests/unit/test_prometheus_rules.py) and the server (tests/e2e/test_prometheus_e2e.py).
# Installs it when missing, like scripts/ensure-browser.sh: non-interactive, no stdin needed
# (CI runs as root), sudo -n only when not root. The package's own service is not started by
# this script; the e2e test runs its own server on loopback with its own configuration.
set -euo pipefail
if [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-prometheus: promtool/prometheus are missing and there is no apt-get: install" \
    "Prometheus (Debian/Ubuntu package 'prometheus') to run its tests" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "ensure-prometheus: prometheus is missing; run as root (or with sudo):" \
    "apt-get install prometheus" >&2
  exit 1
fi

echo "ensure-prometheus: installing Debian's prometheus"
export DEBIAN_FRONTEND=noninteractive
# Another apt run on the machine holds the dpkg lock for a while: wait for it, do not fail.
apt=(apt-get -q -y -o DPkg::Lock::Timeout=600)
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends prometheus
/usr/bin/promtool --version
