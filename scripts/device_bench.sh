#!/usr/bin/env bash
# The fast-sampling issue's GPU figures as one script for a lent GPU machine, run from the repo root:
# ours against the official glide-text2im in one process, same random weights, the ANCHORS workloads
# (bench/official_speed.py), plus the fp32 match and the bf16-vs-fp32 PSNR. Inputs (git-ignored, carried):
#   .ref/glide-text2im   a checkout of openai/glide-text2im (never committed)
#   .whl/device/         wheels the official code and our GPT-2 tokenizer need (regex, tiktoken, ...), for
#                        several Python versions; pip picks the matching ones
# The tracked tree is larger than a carry allows: move glide/weights and tests/fixtures aside for the call.
# Outputs in $OUT: official_speed.jsonl and log.txt. QUICK=1: the tiny CPU smoke test.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH=$PWD:${PYTHONPATH:-}
if ! $PY -c "import regex, tiktoken" 2>/dev/null; then
  $PY -m pip install -q --no-index --find-links .whl/device --target /tmp/site regex tiktoken requests \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
log() { echo "=== $(date +%T) $*" | tee -a "$OUT/log.txt"; }
log "start"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$OUT/log.txt"
$PY -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.is_available())" \
  2>&1 | tee -a "$OUT/log.txt"
if [ "${QUICK:-0}" = 1 ]; then
  ARGS=(--tiny --batches 1,2 --up-batches 1 --forward-batch 4 --ours fp32,fp32+compile)
else
  ARGS=()
fi
$PY bench/official_speed.py --reference-src .ref/glide-text2im --out "$OUT/official_speed.jsonl" "${ARGS[@]}" \
  2>&1 | tee -a "$OUT/log.txt"
log "done"
