#!/usr/bin/env bash
# One GPU session's work, as one script: build the emoji data there, then train the bundled base model and
# the upsampler side by side on the one GPU (neither fills it), each bounded in time.
# Run from the repo root on the lent GPU machine. Inputs (git-ignored, carried):
#   .whl/                 wheels the machine lacks (resvg-py, ...),
#   .gpu/npm/*.tgz        the npm packages of the art, trimmed to the SVGs and CLDR data (xz, ~2 MB),
#   .gpu/noto_64.npz      the Noto rows of emoji_64.npz (the Noto font is a Debian package, absent there).
# Outputs in $OUT: log.txt and the exported models as a split tarball (results.tgz.part-*).
# QUICK=1 makes everything tiny, for a dry run on a CPU. INIT_BASE=DIR / INIT_UP=DIR continue training from
# exported model folders (e.g. the bundled ones, carried outside the tree: see docs/models.md).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
QUICK=${QUICK:-0}
BASE_MIN=${BASE_MIN:-6.0}; UP_MIN=${UP_MIN:-6.0}
PY=${PY:-python3}
WORKERS=${WORKERS:-6}
WORK=${WORK:-/tmp/glide-work}; mkdir -p "$WORK"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PWD:/tmp/site:${PYTHONPATH:-}
else
  export PYTHONPATH=$PWD:${PYTHONPATH:-}
fi
log() { echo "=== $(date +%T) $*" | tee -a "$OUT/log.txt"; }
log "start"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$OUT/log.txt"
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" 2>&1 | tee -a "$OUT/log.txt"

# 1. The emoji data: SVG styles rendered here at 64 and 256 px, Noto (64 px only) merged in from the carry.
log "render"
DATA="$WORK/emoji"
if [ ! -f "$DATA/emoji_64.npz" ]; then
  $PY - <<'PYEOF' 2>&1 | tee -a "$OUT/log.txt"
import os, tempfile
from pathlib import Path
from glide.data.emoji import safe_extract
cache = Path(".gpu/npm")
for tgz in sorted(cache.glob("*.tgz")):
    dest = cache / tgz.name[:-4]
    if not dest.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=cache))
        safe_extract(tgz, tmp)
        os.replace(tmp / "package", dest)
    print("unpacked", dest)
PYEOF
  $PY -m glide data emoji --out "$WORK/svg" --size 64 --size 256 --no-noto --work-dir .gpu/npm --workers 14 -q \
    2>&1 | tail -8 | tee -a "$OUT/log.txt"
  $PY - "$WORK/svg" "$DATA" <<'PYEOF' 2>&1 | tee -a "$OUT/log.txt"
import shutil, sys
from collections import Counter
from pathlib import Path
import numpy as np
from glide.data.arrays import load_arrays, save_arrays
svg, out = Path(sys.argv[1]), Path(sys.argv[2])
tmp = out.with_name(out.name + ".tmp"); tmp.mkdir(parents=True, exist_ok=True)
parts = [load_arrays(svg / "emoji_64.npz"), load_arrays(".gpu/noto_64.npz")]
keys = ("split", "style", "emoji", "hexcode", "label")
rows = [{"caption": p["captions"][i], "captions_alt": p["captions_alt"][i], **{k: p[k][i] for k in keys}}
        for p in parts for i in range(len(p["captions"]))]
save_arrays(tmp / "emoji_64.npz", np.concatenate([p["images"] for p in parts]), rows)
shutil.copy(svg / "emoji_256.npz", tmp / "emoji_256.npz")
tmp.rename(out)
print("64 px:", Counter((r["style"], r["split"]) for r in rows))
PYEOF
fi

# 2. Train both models at once, each bounded in time (a checkpoint is written at the limit).
if [ "$QUICK" = 1 ]; then
  QB=(--batch-size 4 --set max_steps=6 --set sample_steps=2 --set sample_every=3 --set checkpoint_every=3); QU=("${QB[@]}")
else
  QB=(); QU=()
fi
[ -n "${INIT_BASE:-}" ] && QB+=(--init-from "$INIT_BASE")
[ -n "${INIT_UP:-}" ] && QU+=(--init-from "$INIT_UP")
filter() { tr '\r' '\n' | grep -v "^train: .*/it\]$\|^train: .*it/s\]$"; }
log "train base ($BASE_MIN min) + upsampler ($UP_MIN min)"  # a time of 0 skips that model
PIDS=()
if [ "$BASE_MIN" != 0 ]; then
  $PY -m glide train configs/emoji-base.toml --data "$DATA" --out "$WORK/runs/base" \
    --set time_limit_minutes=$BASE_MIN --set workers=$WORKERS "${QB[@]}" > "$WORK/base.log" 2>&1 &
  PIDS+=($!)
fi
if [ "$UP_MIN" != 0 ]; then
  $PY -m glide train configs/emoji-upsampler.toml --data "$DATA" --out "$WORK/runs/upsampler" \
    --set time_limit_minutes=$UP_MIN --set workers=$WORKERS "${QU[@]}" > "$WORK/upsampler.log" 2>&1 &
  PIDS+=($!)
fi
running() { for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do
  sleep 30; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | tee -a "$OUT/log.txt"
done
for p in "${PIDS[@]}"; do wait "$p"; echo "training process exit $?" | tee -a "$OUT/log.txt"; done
for run in base upsampler; do [ -f "$WORK/$run.log" ] && filter < "$WORK/$run.log" | tail -6 | tee -a "$OUT/log.txt"; done

# 3. Export the EMA weights as fp16 safetensors, and pack everything into <= 16 MB parts.
log "export"
mkdir -p "$WORK/results"
for run in base upsampler; do
  [ -d "$WORK/runs/$run/checkpoints" ] || continue
  $PY -m glide export "$WORK/runs/$run" --out "$WORK/results/$run" --dtype fp16 2>&1 | tee -a "$OUT/log.txt"
  cp "$WORK/runs/$run/metrics.jsonl" "$WORK/results/$run/" 2>/dev/null
  cp -r "$WORK/runs/$run/samples" "$WORK/results/$run/samples" 2>/dev/null
  cp "$WORK/runs/$run/config.json" "$WORK/results/$run/run_config.json" 2>/dev/null
  [ -f "$WORK/$run.log" ] && filter < "$WORK/$run.log" > "$WORK/results/$run/train.log"
done
cp "$OUT/log.txt" "$WORK/results/" 2>/dev/null
tar -C "$WORK" -cf - results | split -b 16000000 - "$OUT/results.tar.part-"
ls -la "$OUT" | tee -a "$OUT/log.txt"
log "done"
