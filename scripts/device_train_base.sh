#!/usr/bin/env bash
# One device call that trains the bundled base, alone on the GPU, on the fast path (configs/emoji-base-gpu.toml:
# resident data, compiled step with CUDA graphs, bf16, channels_last, fused AdamW), continuing from the bundled
# weights (or INIT=DIR). Two halves (docs/models.md, "Continuing training", has the exact commands):
#
#   bash scripts/device_train_base.sh prepare   # HERE: fill the git-ignored .gpu/train/ and check the carry size
#   bash scripts/device_train_base.sh           # THERE (the device call, carrying .gpu/train): train, export
#
# Carried in .gpu/train/: base/ (the weights to continue from), data/ (the train split, xz: scripts/pack_train_data.py),
# and, when a previous lease brought one back, cache.tar.xz (torch's compile cache, so this lease skips compiling).
# Outputs in $OUT (at most 8 files, each < 16 MiB): log.txt; results.tar.part-* (the exported fp16 EMA weights,
# metrics.jsonl, train.log, profile.txt: 3 parts of 16.5 MB); compile_cache.tar.xz.part-* (when it fits beside them, else left out).
# Settings: TRAIN_MIN (training minutes, default 6.5, the time limit of the whole call is 10), COMPILE_MODE
# (default: the config's reduce-overhead; a failed start is retried once with compile_mode=default), BATCH, LR.
# QUICK=1: a dry run on a CPU: the tiny preset from a tiny random init, 6 steps, same code path otherwise.
# FRESH=1 (prepare and call alike): a fresh base with the recipe study's whole recipe instead, the pruned GPT-2 table
# as well as v (configs/emoji-base.toml's model on this fast path); carries no weights. docs/training.md, "Why: the
# base uses the style and not the name", has the evidence for trying it.
# CONTINUE=1: a second call while the machine is still warm (it stays so for 30 s): continues from the first call's
# exported weights at lr 2e-4, reusing its data and compile cache; carries nothing. The first lease did this by
# hand: 7 + 2.2 minutes of training in 755 s of device time.
# DISTILL=1: like CONTINUE=1, but guidance-distils the first call's exported weights instead
# (configs/emoji-base-distill-gpu.toml, TRAIN_MIN minutes): the base it brings back samples with one forward pass
# per image and step where classifier-free guidance needs two (docs/training.md, "Guidance distillation").
set -uo pipefail
export PYTHONUNBUFFERED=1
PY=${PY:-python3}
QUICK=${QUICK:-0}
FRESH=${FRESH:-0}
CARRY=.gpu/train
MIB=$((1 << 20))

# ---------------------------------------------------------------------------------------------------------------
if [ "${1:-}" = prepare ]; then
  # Here, on the project's machine. DATA=path of emoji_64.npz (default data/emoji/emoji_64.npz); LIMIT=N packs only
  # N images (dry runs); CACHE=a compile cache a previous lease brought back: the joined compile_cache.tar.xz, or a dir.
  # INIT=a model dir to continue from (default: the bundled base).
  DATA=${DATA:-data/emoji/emoji_64.npz}
  INIT=${INIT:-glide/weights/base}
  mkdir -p "$CARRY"
  rm -rf "$CARRY/base"
  if [ "$FRESH" != 1 ]; then
    mkdir -p "$CARRY/base" && cp "$INIT/config.json" "$INIT/model.safetensors" "$CARRY/base/" || exit 1
  fi
  # Packing checks the data has every art style the base knows, which needs the project's venv (glide, Pillow).
  HERE_PY=$([ -x .venv/bin/python ] && echo .venv/bin/python || echo "$PY")
  if [ ! -f "$CARRY/data/meta.json.xz" ] || [ -n "${LIMIT:-}" ]; then
    $HERE_PY scripts/pack_train_data.py pack "$DATA" "$CARRY/data" --limit "${LIMIT:-0}" || exit 1
  fi
  if [ -n "${CACHE:-}" ]; then  # carried compressed (a cache is mostly text and compresses ~20x)
    rm -f "$CARRY/cache.tar.xz"
    if [ -d "$CACHE" ]; then tar -C "$CACHE" -cf - . | xz -T0 -6 > "$CARRY/cache.tar.xz"; else cp "$CACHE" "$CARRY/cache.tar.xz"; fi
  fi
  # What travels: tracked files minus the folders moved aside for the call, plus the carry.
  tracked=$(git ls-files -z | grep -zv '^glide/weights/\|^tests/fixtures/\|^docs/' | xargs -0 stat -c %s | awk '{s+=$1} END {print s}')
  carried=$(du -sb "$CARRY" | cut -f1)
  total=$((tracked + carried))
  mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
  echo "tracked files (without glide/weights, tests/fixtures, docs): $(mib "$tracked")"
  for d in "$CARRY"/*; do echo "  $d: $(mib "$(du -sb "$d" | cut -f1)")"; done
  echo "total: $(mib "$total") of 64 MiB"
  if [ "$total" -ge $((64 * MIB)) ]; then
    echo "error: over the 64 MiB carry; drop $CARRY/cache.tar.xz (the lease then compiles again, about a minute)" >&2
    exit 1
  fi
  echo "ready. Before the device call: mkdir -p /tmp/aside && mv glide/weights tests/fixtures docs /tmp/aside/"
  echo "after it: mv /tmp/aside/weights glide/ && mv /tmp/aside/fixtures tests/ && mv /tmp/aside/docs ."
  exit 0
fi

# ---------------------------------------------------------------------------------------------------------------
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
WORK=${WORK:-/tmp/glide-train}; mkdir -p "$WORK"
CONTINUE=${CONTINUE:-0}
DISTILL=${DISTILL:-0}
[ "$DISTILL" = 1 ] && CONTINUE=1  # the same start: the last call's weights, data and compile cache
CONFIG=$([ "$DISTILL" = 1 ] && echo configs/emoji-base-distill-gpu.toml || echo configs/emoji-base-gpu.toml)
if [ "$CONTINUE" = 1 ]; then
  # A second call on the still-warm machine: start from the last call's exported EMA weights, with its unpacked
  # data and its compile cache (the compile then takes seconds, not minutes). Needs no carry.
  if [ ! -f "$WORK/results/base/model.safetensors" ] || [ ! -f "$WORK/emoji_64.npz" ]; then
    echo "error: CONTINUE=1 and DISTILL=1 need a previous call's $WORK/results/base and $WORK/emoji_64.npz on this machine" \
         "(it went back? then run without CONTINUE)" >&2
    exit 1
  fi
  rm -rf "$WORK/prev" && mv "$WORK/results/base" "$WORK/prev"
  rm -rf "$WORK/run" "$WORK/results"
else
  rm -rf "$WORK/run" "$WORK/results" "$WORK/compile-cache" "$WORK/init" "$WORK/prev"
fi
mkdir -p "$WORK/results"
TRAIN_MIN=${TRAIN_MIN:-$([ "$QUICK" = 1 ] && echo 30 || echo 6.5)}  # a CPU compiles for minutes
export PYTHONPATH=$PWD:${PYTHONPATH:-}
T0=$(date +%s)
log() { echo "=== $(date +%T) $*" | tee -a "$OUT/log.txt"; }
log "start"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$OUT/log.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tee -a "$OUT/log.txt"

# torch's compile caches (FX graphs, AOTAutograd, Triton kernels) in one folder, seeded from the carry.
export TORCHINDUCTOR_CACHE_DIR=$WORK/compile-cache TRITON_CACHE_DIR=$WORK/compile-cache/triton
export TORCHINDUCTOR_FX_GRAPH_CACHE=1 TORCHINDUCTOR_AUTOGRAD_CACHE=1
mkdir -p "$TORCHINDUCTOR_CACHE_DIR"
[ -f "$CARRY/cache.tar.xz" ] && tar -C "$TORCHINDUCTOR_CACHE_DIR" -xJf "$CARRY/cache.tar.xz" \
  && log "compile cache carried in: $(du -sh "$TORCHINDUCTOR_CACHE_DIR" | cut -f1)"

if [ "$CONTINUE" != 1 ]; then
  log "data"
  $PY scripts/pack_train_data.py unpack "$CARRY/data" "$WORK/emoji_64.npz" 2>&1 | tee -a "$OUT/log.txt" || exit 1
fi

ARGS=(--data "$WORK/emoji_64.npz" --out "$WORK/run" --set time_limit_minutes=$TRAIN_MIN)
[ -n "${BATCH:-}" ] && ARGS+=(--batch-size "$BATCH")
# A continuation starts lower (the first lease's second call: 2e-4 after 50 warm-up steps), unless LR says otherwise.
if [ -n "${LR:-}" ]; then ARGS+=(--lr "$LR"); elif [ "$CONTINUE" = 1 ] && [ "$DISTILL" != 1 ]; then ARGS+=(--lr 2e-4); fi
[ -n "${COMPILE_MODE:-}" ] && ARGS+=(--set "compile_mode=\"$COMPILE_MODE\"")
if [ "$QUICK" = 1 ] && [ "$CONTINUE" != 1 ] && [ "$FRESH" != 1 ]; then
  # A tiny random model in place of the bundled base, so the init-from path runs too.
  $PY - "$WORK/init" <<'PYEOF' 2>&1 | tee -a "$OUT/log.txt"
import sys
from glide.checkpoint import save_model_dir
from glide.config import get_preset
from glide.models import GLIDE
cfg = get_preset("tiny").with_kind("inpaint")
save_model_dir(sys.argv[1], GLIDE(cfg).state_dict(), cfg, preset="tiny")
print("tiny init written to", sys.argv[1])
PYEOF
fi
# The first call also profiles 5 steps after the compile (RUN/profile.txt: where a step's GPU time goes).
if [ "$QUICK" = 1 ]; then
  ARGS+=(--batch-size 8 --set max_steps=6 --set log_every=3 --set checkpoint_every=3 --set warmup_steps=2 --set workers=1)
  [ "$CONTINUE" != 1 ] && ARGS+=(--set profile_at=1)
elif [ "$CONTINUE" = 1 ] && [ "$DISTILL" != 1 ]; then
  ARGS+=(--set warmup_steps=50)
else
  ARGS+=(--set profile_at=300)
fi
if [ "$CONTINUE" = 1 ]; then ARGS+=(--init-from "$WORK/prev")
elif [ "$FRESH" = 1 ]; then
  # v and the GPT-2 table pruned to the training captions, freshly initialised (the dry run: the tiny preset)
  ARGS+=(--set 'model={"prediction":"v","text":{"tokenizer":"gpt2","context":32}}' --set fit_vocab=true)
  [ "$QUICK" = 1 ] && ARGS+=(--set 'preset="tiny"')
elif [ "$QUICK" = 1 ]; then ARGS+=(--init-from "$WORK/init")
else ARGS+=(--init-from "$CARRY/base"); fi
filter() { tr '\r' '\n' | grep -v "^train: .*/it\]$\|^train: .*it/s\]$"; }

log "$([ "$DISTILL" = 1 ] && echo "guidance-distil" || echo train) the base alone on the GPU ($TRAIN_MIN min$([ "$FRESH" = 1 ] && [ "$CONTINUE" != 1 ] && echo ", fresh, pruned GPT-2 table"))"
$PY -m glide train "$CONFIG" "${ARGS[@]}" > "$WORK/train.log" 2>&1 &
PID=$!
while kill -0 $PID 2>/dev/null; do
  sleep 30; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | tee -a "$OUT/log.txt"
done
wait $PID; rc=$?
echo "training exit $rc" | tee -a "$OUT/log.txt"
filter < "$WORK/train.log" | tail -15 | tee -a "$OUT/log.txt"
if [ $rc != 0 ] && [ ! -d "$WORK/run/checkpoints" ]; then
  # The compiled start failed before any checkpoint: spend the rest of the time on a plainer compile.
  left=$(awk -v m="$TRAIN_MIN" -v s=$(( $(date +%s) - T0 )) 'BEGIN { printf "%.2f", m - s / 60 }')
  log "retry with compile_mode=default for $left min"
  rm -rf "$WORK/run"
  ARGS+=(--set "compile_mode=\"default\"" --set time_limit_minutes=$left)
  $PY -m glide train "$CONFIG" "${ARGS[@]}" > "$WORK/train2.log" 2>&1
  echo "training exit $?" | tee -a "$OUT/log.txt"
  filter < "$WORK/train2.log" | tail -15 | tee -a "$OUT/log.txt"
  filter < "$WORK/train2.log" >> "$WORK/train.log"
fi

log "export"
if [ -d "$WORK/run/checkpoints" ]; then
  $PY -m glide export "$WORK/run" --out "$WORK/results/base" --dtype fp16 2>&1 | tee -a "$OUT/log.txt"
  cp "$WORK/run/metrics.jsonl" "$WORK/run/config.json" "$WORK/run/profile.txt" "$WORK/results/" 2>/dev/null
  [ -f "$WORK/run/profile.txt" ] && head -30 "$WORK/run/profile.txt" | cut -c1-200 | tee -a "$OUT/log.txt"
  $PY - "$WORK/run/metrics.jsonl" <<'PYEOF' 2>&1 | tee -a "$OUT/log.txt"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ips = [r["img_per_s"] for r in rows[1:]] or [r["img_per_s"] for r in rows]
print(f"steps {rows[-1]['step']}, loss {rows[0]['loss']} -> {rows[-1]['loss']}, images/s median {statistics.median(ips):.0f} "
      f"(after the first log interval, which holds the compile), max {max(ips):.0f}")
PYEOF
fi
filter < "$WORK/train.log" > "$WORK/results/train.log"
tar -C "$WORK" -cf - results | split -b 16500000 -d - "$OUT/results.tar.part-"
# The compile cache, for the next lease to carry (.gpu/train/cache): only if it fits beside the results in what
# comes back (64 MiB in all). The results come first: on the first lease a 22 MB cache beside 47.5 MB of results
# made the last part of the weights stay behind.
tar -C "$TORCHINDUCTOR_CACHE_DIR" -cf - . 2>/dev/null | xz -T0 -6 > "$WORK/compile_cache.tar.xz"  # all cores
cs=$(stat -c %s "$WORK/compile_cache.tar.xz")
rs=$(du -cb "$OUT"/results.tar.part-* | tail -1 | cut -f1)
if [ $((rs + cs + MIB)) -le $((64 * MIB)) ] && [ "$cs" -le 33000000 ]; then
  split -b 16500000 -d "$WORK/compile_cache.tar.xz" "$OUT/compile_cache.tar.xz.part-"
  log "compile cache: $cs bytes"
else
  log "compile cache of $cs bytes left out (with the $rs bytes of results it is over the 64 MiB that come back)"
fi
n=$(ls "$OUT" | wc -l)
[ "$n" -gt 8 ] && log "warning: $n files in \$OUT, only 8 come back"
ls -l "$OUT" | tee -a "$OUT/log.txt"
log "done in $(( $(date +%s) - T0 )) s"
