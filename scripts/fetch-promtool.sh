#!/usr/bin/env bash
# promtool (checks and unit-tests the Prometheus alert rules in monitoring/) into the venv's
# bin: the one on PATH when there is one, else extracted from Debian's `prometheus` package
# without installing it (installing would start a Prometheus server as a service).
set -euo pipefail
bin="$1"
if found="$(command -v promtool)"; then
  ln -sf "$found" "$bin/promtool"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool not found: install Prometheus's promtool (apt-get not found)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1) || {
  echo "promtool: \`apt-get download prometheus\` failed; run \`apt-get update\` first" >&2
  exit 1
}
dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
install -m 0755 "$work/x/usr/bin/promtool" "$bin/promtool"
"$bin/promtool" --version | head -1
