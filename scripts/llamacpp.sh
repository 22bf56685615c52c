#!/usr/bin/env bash
# Optional: llama.cpp for benchmarks/serve.py's side-by-side measurement. llama-cpp-python has no wheel on
# PyPI and its source build takes 15+ minutes on 2 cores, so this takes node-llama-cpp's prebuilt CPU binary
# from npm (only the linux-x64 CPU build, ~60 MB) into .cache/llamacpp. Needs node >= 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.cache/llamacpp
VERSION=3.22.1
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"name": "twin-llamacpp-bench", "private": true, "type": "module"}' > package.json
npm install --no-audit --no-fund --omit=optional --ignore-scripts "node-llama-cpp@$VERSION" "@node-llama-cpp/linux-x64@$VERSION"
echo "llama.cpp (node-llama-cpp $VERSION) in $DIR"
