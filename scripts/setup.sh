#!/usr/bin/env bash
# Installs every Debian package that building and testing imd needs. Idempotent:
# packages already present are skipped, so a second run costs one dpkg query.
# Boost comes from the 1.81 packages; never libboost-dev (1.74), which conflicts.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libsodium-dev libssl-dev libcurl4-openssl-dev
  libcpp-jwt-dev nlohmann-json3-dev libtomlplusplus-dev
  libgtest-dev libvips-dev
  python3-websockets
  curl procps
  chromium
  mariadb-server-core mariadb-client libmariadb-dev mariadb-plugin-mroonga mariadb-backup
  redis-server redis-tools libhiredis-dev
  nats-server libnats-dev etcd-server etcd-client
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  nginx-light
  iproute2 socat
  prometheus prometheus-alertmanager
)
# Node.js: keep the one the machine has (it may come from another repository than Debian's,
# whose npm package would conflict with it); install Debian's only when there is none.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
