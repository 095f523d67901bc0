#!/usr/bin/env bash
# Install what regionguard runs on, only when missing: PostgreSQL (server binaries), HAProxy,
# iproute2/nftables for network partitions and the lab, MariaDB (the tests of the MySQL engine) and Chromium
# (the live page's browser tests, driven headless by Playwright through /usr/bin/chromium: no
# browser download), etcd 3.4 (the self-managed sites' arbiter, one member per site), openssl
# (the lab's CA and its sites' certificates).
# Debian/Ubuntu (apt-get); uses sudo when not root. `install-system-deps.sh run`: only what
# running regionguard needs (`make run`), not MariaDB and Chromium, which only the tests use.
set -euo pipefail
mode="${1:-test}"

need=()
ls /usr/lib/postgresql/*/bin/pg_rewind >/dev/null 2>&1 || need+=(postgresql)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
if [ "$mode" = test ]; then
  [ -x /usr/sbin/mariadbd ] && command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi
[ -x /usr/bin/etcd ] || need+=(etcd-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${need[*]}; install them with your package manager (apt-get not found)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "installing ${need[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged services; regionguard runs its own clusters and front door.
for svc in postgresql haproxy mariadb etcd; do
  if command -v service >/dev/null 2>&1; then $sudo service "$svc" stop >/dev/null 2>&1 || true; fi
done
