#!/usr/bin/env bash
# One-time set-up on a fresh machine: a virtual environment in .venv with glide and its test tools.
#   --browser  also the web page (Gradio), Playwright and Debian's Chromium, for the web page's tests
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="test"
BROWSER=0
for arg in "$@"; do
  case "$arg" in
    --browser) BROWSER=1; EXTRAS="test,web,browser" ;;
    *) echo "usage: bash scripts/setup.sh [--browser]" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# A bare `torch` requirement would pull a multi-GB CUDA build; pin the CPU build when torch is absent.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
fi
CHECK="import glide, pytest"
[ "$BROWSER" = 1 ] && CHECK="$CHECK, gradio, playwright"
if ! .venv/bin/python -c "$CHECK" 2>/dev/null || [ pyproject.toml -nt .venv/.glide-installed ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e ".[$EXTRAS]"
  touch .venv/.glide-installed
fi
# open-clip-torch only for tests/test_openclip.py, which checks our standard-CLIP loader against open_clip's own
# model (glide itself ships the CLIP vocabulary); --no-deps keeps torchvision out.
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('open_clip') is None)" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check --no-deps "open-clip-torch>=2.20"
fi
# The browser tests drive Debian's Chromium (Playwright's own browser download needs a network we may not have).
if [ "$BROWSER" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  if ! $SUDO apt-get install -y -q chromium >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null
  fi
fi
