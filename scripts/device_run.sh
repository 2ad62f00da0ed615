#!/usr/bin/env bash
# One GPU session's work, as one script: benchmark the core sampler, then train the bundled models.
# Run from the repo root on the lent GPU machine. Inputs (git-ignored, carried): .whl/ (wheels the
# machine lacks), .devdata/emoji_64.npz and .devdata/npm/ (the npm tarballs of the emoji art).
# Outputs go to $OUT: bench.jsonl, logs, and the trained models as a split tarball (results.tgz.part-*).
# QUICK=1 makes every stage tiny, for a dry run on a CPU.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
QUICK=${QUICK:-0}
BASE_MIN=${BASE_MIN:-3.5}; UP_MIN=${UP_MIN:-2.0}; CLIP_MIN=${CLIP_MIN:-0.0}
PY=${PY:-python3}
STAGES=${STAGES:-"render bench base upsampler clip"}  # a subset runs only those stages
has() { case " $STAGES " in *" $1 "*) return 0;; esac; return 1; }
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

# 1. 256 px SVG art for the upsampler, rendered here from the carried npm tarballs (too large to carry).
log "render 256"
EMOJI256=${EMOJI256:-}
if [ -z "$EMOJI256" ] && has render; then
  $PY - <<'PYEOF' 2>&1 | tee -a "$OUT/log.txt"
import os, tarfile, tempfile
from pathlib import Path
from glide.data.emoji import safe_extract
cache = Path(".devdata/npm")
for tgz in sorted(cache.glob("*.tgz")):
    dest = cache / tgz.name[:-4]
    if not dest.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=cache))
        safe_extract(tgz, tmp)
        os.replace(tmp / "package", dest)
    print("unpacked", dest)
PYEOF
  EMOJI256="$WORK/emoji256"
  $PY -m glide data emoji --out "$EMOJI256" --size 256 --no-noto --work-dir .devdata/npm --workers 14 -q \
    2>&1 | tail -8 | tee -a "$OUT/log.txt"
fi

# 2. Core sampling benchmark (issue: core), bf16 autocast, default SDPA and math attention.
has bench && log "bench"
if [ "$QUICK" = 1 ]; then B=1; S=2; DT=fp32; P=tiny; else B=1,8,32; S=100; DT=bf16; P=base; fi
has bench && $PY bench/sample_speed.py --preset $P --dtype $DT --batches $B --steps $S 2>>"$OUT/log.txt" | tee -a "$WORK/bench.jsonl" "$OUT/log.txt"
has bench && $PY bench/sample_speed.py --preset $P --dtype $DT --attention math --batches $B --steps $S 2>>"$OUT/log.txt" | tee -a "$WORK/bench.jsonl" "$OUT/log.txt"
has bench && $PY bench/sample_speed.py --preset $P --dtype fp32 --batches $B --steps $S --skip-sample 2>>"$OUT/log.txt" | tee -a "$WORK/bench.jsonl" "$OUT/log.txt"

# 3. Train the bundled models, each bounded in time (checkpoints are written at the limit).
Q=(); [ "$QUICK" = 1 ] && Q=(--batch-size 4 --set sample_steps=2)
has base && log "train base" && $PY -m glide train configs/emoji-base.toml --data .devdata/emoji_64.npz --out "$WORK/runs/base" \
  --set time_limit_minutes=$BASE_MIN --set lr_schedule='"constant"' --set ema_rate=0.998 --lr 2e-4 "${Q[@]}" \
  2>&1 | tr '\r' '\n' | grep -v "^train: .*/it\]$\|^train: .*it/s\]$" | tail -12 | tee -a "$OUT/log.txt"
has upsampler && log "train upsampler" && $PY -m glide train configs/emoji-upsampler.toml --data "$EMOJI256" --out "$WORK/runs/upsampler" \
  --set time_limit_minutes=$UP_MIN --set lr_schedule='"constant"' --set ema_rate=0.998 --lr 2e-4 "${Q[@]}" \
  2>&1 | tr '\r' '\n' | grep -v "^train: .*/it\]$\|^train: .*it/s\]$" | tail -12 | tee -a "$OUT/log.txt"
if has clip && [ "$CLIP_MIN" != "0.0" ] && [ -f configs/emoji-clip.toml ]; then
  log "train clip"
  $PY -m glide train configs/emoji-clip.toml --data .devdata/emoji_64.npz --out "$WORK/runs/clip" \
    --set time_limit_minutes=$CLIP_MIN "${Q[@]}" 2>&1 | tr '\r' '\n' | grep -v "^train: .*/it\]$\|^train: .*it/s\]$" | tail -12 | tee -a "$OUT/log.txt"
fi

# 4. Export (EMA weights, fp16) and pack everything into <=15 MB parts.
log "export"
mkdir -p "$WORK/results"
for run in base upsampler clip; do
  [ -d "$WORK/runs/$run/checkpoints" ] || continue
  $PY -m glide export "$WORK/runs/$run" --out "$WORK/results/$run" --dtype fp16 2>&1 | tee -a "$OUT/log.txt"
  $PY -m glide export "$WORK/runs/$run" --out "$WORK/results/${run}_raw" --raw --dtype fp16 2>&1 | tee -a "$OUT/log.txt"
  cp "$WORK/runs/$run/metrics.jsonl" "$WORK/runs/$run/retrieval.jsonl" "$WORK/results/$run/" 2>/dev/null
  cp -r "$WORK/runs/$run/samples" "$WORK/results/$run/samples" 2>/dev/null
  cp "$WORK/runs/$run/config.json" "$WORK/results/$run/run_config.json" 2>/dev/null
done
cp "$OUT/log.txt" "$WORK/bench.jsonl" "$WORK/results/" 2>/dev/null
tar -C "$WORK" -czf - results | split -b 16000000 - "$OUT/results.tgz.part-"
ls -la "$OUT"
log "done"
