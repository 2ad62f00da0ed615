#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment in .venv with glide and its test tools.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# A bare `torch` requirement would pull a multi-GB CUDA build; pin the CPU build when torch is absent.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
fi
if ! .venv/bin/python -c "import glide, pytest" 2>/dev/null || [ pyproject.toml -nt .venv/.glide-installed ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  touch .venv/.glide-installed
fi
# The CLIP BPE vocabulary ships in the open-clip-torch wheel; --no-deps keeps torchvision out.
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('open_clip') is None)" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check --no-deps "open-clip-torch>=2.20"
fi
