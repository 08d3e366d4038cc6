#!/usr/bin/env bash
# The GPU benchmarks of docs/benchmarks.md (#8, part 5), in one script: a random-initialised model of
# Qwen2.5-0.5B's shape in bf16 (bench/common.py), then
#   1. framework overhead against raw TRL (bench/overhead.py), training tokens/s and peak memory;
#   2. a reasonlab SFT run from that base (so the evaluator sees real chains, not random text) with
#      the full evaluator at its end;
#   3. suite against accuracy-only, evaluation tokens/s and memory (bench/eval_speed.py);
#   4. evaluation cost growth (bench/eval_growth.py);
#   tiny (only when named in PARTS): the evaluator issue's own benchmark, suite against accuracy-only on the
#      study's tiny base model (fp32, 200 prompts), from TINY_CHECKPOINT (default outputs/study/base: carry it
#      to the GPU machine, `make study` makes it).
# Each step's output goes to $OUT (default outputs/gpu_bench) as it finishes. The whole script
# took more than 9 minutes on one H200 (docs/benchmarks.md, section 5); PARTS picks steps, so a
# short lease can run them in two calls (the base and the SFT run are remade when missing).
#   bash bench/gpu.sh                              # on a GPU machine: every step
#   PARTS="speed growth" bash bench/gpu.sh         # only the evaluator benchmarks
#   SHAPE=toy SCALE=dry bash bench/gpu.sh          # a dry run of every step on a CPU, in about a minute
# REPEATS (default 2) runs per evaluator measurement; EVAL_BATCH (eval.batch_size, default 256) and TRUNC_ROWS (eval.truncation_rows, default 80) size
# the evaluator benchmarks; NAIVE_CHAINS (default 20) the chains the slow naive path is timed on;
# SFT_ARGS adds overrides to the SFT run (e.g. "eval=gpu" for its own end-of-run evaluation).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_bench}
SHAPE=${SHAPE:-qwen2.5-0.5b}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/reasonlab_gpu_bench}
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT" "$WORK"
if [ "${SCALE:-full}" = dry ]; then
  OVERHEAD="--sft-steps 4 --grpo-steps 2 --repeats 1"; SFT_STEPS=4
  SPEED="--samples 16 --repeats 1 --naive-chains 4"; GROWTH="--samples 8 16 --lengths 2 4 --chains 3 --repeats 1"
else
  OVERHEAD="--sft-steps 50 --grpo-steps 5 --repeats 2"; SFT_STEPS=200
  SPEED="--samples 200 --repeats ${REPEATS:-2} --naive-chains ${NAIVE_CHAINS:-20}"; GROWTH="--samples 50 200 --chains 10 --repeats 2"
fi

PARTS=" ${PARTS:-overhead sft speed growth} "
wants() { [[ "$PARTS" == *" $1 "* ]]; }

$PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
if wants overhead || wants sft || wants speed || wants growth; then
  [ -f "$WORK/base/final/config.json" ] || $PY bench/common.py --shape "$SHAPE" --out "$WORK/base" 2>&1 | tee "$OUT/base.txt"
fi
if wants overhead; then
  $PY bench/overhead.py --base "$WORK/base" --dtype bfloat16 $OVERHEAD 2>&1 | tee "$OUT/overhead.txt"
fi
if wants sft || { { wants speed || wants growth; } && [ ! -f "$WORK/runs/sft/metrics.json" ]; }; then
  $PY -m reasonlab.train trainer=sft model.init_from="$WORK/base" model.dtype=bfloat16 trainer.learning_rate=3e-4 \
    trainer.warmup_steps=20 budget.max_steps=$SFT_STEPS output_root="$WORK/runs" run_name=sft progress=false \
    eval.progress=false resume=force_restart ${SFT_ARGS:-} 2>&1 | tee "$OUT/sft.txt"
  cp "$WORK/runs/sft/metrics.json" "$OUT/sft_metrics.json"
fi
if wants speed; then
  $PY bench/eval_speed.py --checkpoint "$WORK/runs/sft" --dtype bfloat16 --batch-size "${EVAL_BATCH:-256}" \
    --truncation-rows "${TRUNC_ROWS:-80}" $SPEED 2>&1 | tee "$OUT/eval_speed_b${EVAL_BATCH:-256}_t${TRUNC_ROWS:-80}.txt"
fi
if wants tiny; then
  TINY=${TINY_CHECKPOINT:-outputs/study/base}
  [ -f "$TINY/final/config.json" ] || [ -f "$TINY/config.json" ] || {
    echo "bench/gpu.sh: no checkpoint at $TINY: run make study first (or set TINY_CHECKPOINT) and carry it"; exit 2; }
  $PY bench/eval_speed.py --checkpoint "$TINY" --batch-size "${EVAL_BATCH:-256}" --truncation-rows "${TRUNC_ROWS:-80}" \
    $SPEED 2>&1 | tee "$OUT/eval_speed_tiny_b${EVAL_BATCH:-256}_t${TRUNC_ROWS:-80}.txt"
fi
if wants growth; then
  $PY bench/eval_growth.py --checkpoint "$WORK/runs/sft" --dtype bfloat16 --batch-size "${EVAL_BATCH:-256}" $GROWTH \
    --png "$OUT/eval_growth_gpu.png" 2>&1 | tee "$OUT/eval_growth.txt"
fi
