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
download() { (cd "$work" && apt-get download -qq prometheus 2>"$work/apt.err" >/dev/null); }
if ! download; then
  # the package lists may be missing (a fresh machine): refresh them once, then say why
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  if ! download; then
    echo "promtool: \`apt-get download prometheus\` failed: $(grep -v '^W:' "$work/apt.err" | head -1)" >&2
    exit 1
  fi
fi
dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
install -m 0755 "$work/x/usr/bin/promtool" "$bin/promtool"
version="$("$bin/promtool" --version 2>&1 || true)"
echo "${version%%$'\n'*}"
