#!/usr/bin/env bash
# Runs every test: installs what is missing, builds (release and ASan+UBSan), then the unit
# tests of both builds and the end-to-end tests against the real binary and the real model.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/setup-python.sh
scripts/fetch-model.sh
scripts/check-format.sh

scripts/build.sh release
scripts/build.sh asan

echo "== unit tests (release)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
echo "== unit tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$(nproc)"
echo "== end-to-end tests"
.venv/bin/python -m pytest -q tests/e2e
