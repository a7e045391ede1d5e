#!/usr/bin/env bash
# Installs Debian's redis-server when it is missing: the Redis integration
# tests start their own instances with it (they do not use a system service).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package may start a system instance; the tests do not need it.
$sudo service redis-server stop >/dev/null 2>&1 || true
redis-server --version
