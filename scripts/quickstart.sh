#!/usr/bin/env bash
# Sets sluice up on a fresh Debian 12 machine and serves the default model on port 8080
# (OpenAI and TEI APIs; try: curl localhost:8080/v1/embeddings -d '{"input":["hello"]}').
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
scripts/fetch-model.sh
exec build/sluice serve --model models/all-MiniLM-L6-v2 --host "${SLUICE_HOST:-127.0.0.1}" \
  --port "${SLUICE_PORT:-8080}"
