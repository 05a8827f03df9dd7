#!/usr/bin/env bash
# Sets sluice up on a fresh Debian 12 machine and runs it on the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
scripts/fetch-model.sh
printf 'The quick brown fox jumps over the lazy dog.\nPostgreSQL keeps the data.\nEmbeddings turn text into vectors.\n' |
  build/sluice embed --model models/all-MiniLM-L6-v2
