#!/usr/bin/env bash
# Configures and builds sluice into build/ (the binary lands at build/sluice).
#   scripts/build.sh            release build, CUDA backend when the toolkit is present
#   scripts/build.sh asan       unit tests under AddressSanitizer + UBSan, in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
case "${1:-release}" in
  release)
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_CUDA="${SLUICE_CUDA:-AUTO}" >/dev/null
    cmake --build build -j"$jobs"
    ;;
  asan)
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON \
      -DSLUICE_CUDA=OFF -DSLUICE_BENCH=OFF >/dev/null
    cmake --build build-asan -j"$jobs"
    ;;
  *)
    echo "usage: scripts/build.sh [release|asan]" >&2
    exit 2
    ;;
esac
