#!/usr/bin/env bash
# Make sure the browser tests (tests/browser) have Debian's headless-capable Chromium at
# /usr/bin/chromium; install the `chromium` package when it is missing. Playwright drives that
# binary: it never downloads a browser of its own (`playwright install` is not used).
# Runs without a terminal (CI runs as root with no stdin): apt-get is non-interactive, and sudo
# is used only when not root, with -n so that it fails instead of waiting for a password.
set -euo pipefail
browser=/usr/bin/chromium
[ -x "$browser" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: $browser is missing and there is no apt-get: install Chromium" \
    "(Debian/Ubuntu package 'chromium') to run tests/browser" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "ensure-browser: $browser is missing; run as root (or with sudo):" \
    "apt-get install chromium" >&2
  exit 1
fi

echo "ensure-browser: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
# Another apt run on the machine holds the dpkg lock for a while: wait for it, do not fail.
apt=(apt-get -q -y -o DPkg::Lock::Timeout=600)
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends chromium
"$browser" --version
