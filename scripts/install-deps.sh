#!/usr/bin/env bash
# Installs the Debian 12 packages sluice builds and tests with. Idempotent; needs root or sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl unzip
  libsimdjson-dev libboost1.74-dev libopenblas-dev libutf8proc-dev libpcre2-dev
  libcli11-dev libspdlog-dev libfmt-dev libssl-dev libcurl4-openssl-dev libpq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 clang-format
  python3 python3-venv python3-pip
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
