#!/usr/bin/env bash
# The comparisons that the README and BENCHMARKS.md quote: LoRA vs full finetuning on the SMS spam split
# (minilm-l6 and smollm2-135m) and instruction tuning of smollm2-135m. Run from the repository root, on an
# otherwise idle machine. DATA defaults to the shared datasets folder beside the checkout. The SMS spam run on
# SmolLM2 trains one epoch: 131 steps of batch 8, about 12 minutes for both methods on two idle cores. The
# instruction run stops after INSTRUCTION_STEPS optimizer steps (default 60, or 480 examples at batch 8). It
# takes about 10 minutes with the base, LoRA and full evaluations.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-../shared/datasets}
OUT=${OUT:-benchmarks/results}
export LORA_PLAYGROUND_ADAPTERS=${LORA_PLAYGROUND_ADAPTERS:-/tmp/lora-playground-bench/adapters}
export LORA_PLAYGROUND_RUNS=${LORA_PLAYGROUND_RUNS:-/tmp/lora-playground-bench/runs}
mkdir -p "$OUT"

run() {
  local name=$1
  shift
  echo "== $name: python -m lora_playground $*"
  local started=$SECONDS
  python -m lora_playground "$@" --output "$OUT/$name" --force >"$OUT/$name.log" 2>&1
  echo "   done in $((SECONDS - started)) s; report in $OUT/$name/comparison.md"
}

case "${1:-all}" in
  sms-minilm | all)
    run sms-minilm compare --base minilm-l6 --data "$DATA/sms_spam" --name sms-minilm ;;&
  sms-smollm2 | all)
    run sms-smollm2 compare --base smollm2-135m --data "$DATA/sms_spam" --name sms-smollm2 \
      --epochs 1 --batch-size 8 ;;&
  instructions | all)
    run instructions compare --base smollm2-135m --task-type generation \
      --data "$DATA/instructions/instruction-data.json" --ordered-split \
      --validation-fraction 0.05 --test-fraction 0.1 --name instructions \
      --epochs 1 --batch-size 8 --max-length 256 --max-steps "${INSTRUCTION_STEPS:-60}" ;;
esac
