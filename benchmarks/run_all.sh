#!/usr/bin/env bash
# Run every benchmark one after the other, each under a time limit, on an otherwise idle machine.
#
#   benchmarks/run_all.sh                 # everything (about 2 hours on an idle 2-core CPU)
#   benchmarks/run_all.sh flops scaling   # only the named steps (the list is in STEPS below)
#   benchmarks/run_all.sh --quick         # smoke run of every script on the embedded models (minutes)
#
# Each step writes benchmarks/results/<step>.json (figures, machine, options) and <step>.md (the printed
# tables); the SMS spam comparisons write comparison.json/.md under benchmarks/results/compare-<base>/.
# A step that fails or runs past its limit is reported, and the next one still runs. The exit status is 1
# when any step failed. Other work on the machine distorts timings: check the load average in each report.
set -uo pipefail
cd "$(dirname "$0")/.."

RESULTS=${BENCHMARK_RESULTS:-benchmarks/results}
SMS_SPAM=../shared/datasets/sms_spam
QUICK=()
SELECTED=()
for argument in "$@"; do
  if [[ "$argument" == "--quick" ]]; then QUICK=(--quick); else SELECTED+=("$argument"); fi
done
STEPS=(flops cold_start inference lora_vs_full lora_vs_full-batch16 pipeline_vs_reference
  pipeline_vs_reference-smollm2 scaling multi_adapter acceptance compare-minilm-l6 compare-smollm2-135m)
for name in "${SELECTED[@]}"; do
  if [[ " ${STEPS[*]} " != *" $name "* ]]; then
    echo "Unknown step '$name'; steps: ${STEPS[*]}" >&2
    exit 2
  fi
done
mkdir -p "$RESULTS"
export GRADIO_ANALYTICS_ENABLED=False
failed=()

# With more runnable processes than cores, torch's worker threads wait for each other on every operation,
# and small operations then take many times longer, so timings taken on a busy machine mislead.
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
cores=$(nproc)
if awk -v load="$load" -v cores="$cores" 'BEGIN { exit !(load > 0.5 * cores) }'; then
  echo "WARNING: load average $load on $cores cores; other work will distort the timings." >&2
fi

wanted() {
  [[ ${#SELECTED[@]} -eq 0 ]] && return 0
  local name
  for name in "${SELECTED[@]}"; do [[ "$name" == "$1" ]] && return 0; done
  return 1
}

# step NAME LIMIT_SECONDS MODULE [ARGUMENTS...]: run `python -m benchmarks.MODULE` as step NAME.
step() {
  local name=$1 limit=$2 module=$3
  shift 3
  wanted "$name" || return 0
  echo "=== $name: python -m benchmarks.$module $* (limit ${limit} s) $(date -u +%H:%M:%S)" >&2
  local started=$SECONDS
  if timeout "$limit" python -m "benchmarks.$module" --output "$RESULTS/$name.json" "${QUICK[@]}" "$@" \
      > "$RESULTS/$name.md"; then
    echo "=== $name finished in $((SECONDS - started)) s" >&2
  else
    echo "=== $name FAILED or timed out after $((SECONDS - started)) s" >&2
    failed+=("$name")
  fi
}

# compare_step NAME LIMIT BASE: the product's own `compare` command on the SMS spam split, with a scratch store.
compare_step() {
  local name=$1 limit=$2 base=$3
  wanted "$name" || return 0
  if [[ ! -d "$SMS_SPAM" ]]; then
    echo "=== $name skipped: $SMS_SPAM not found" >&2
    return 0
  fi
  local store extra=()
  store=$(mktemp -d)
  [[ ${#QUICK[@]} -gt 0 ]] && extra=(--max-steps 2)
  echo "=== $name: python -m lora_playground compare --base $base (limit ${limit} s) $(date -u +%H:%M:%S)" >&2
  local started=$SECONDS
  if LORA_PLAYGROUND_ADAPTERS="$store/adapters" LORA_PLAYGROUND_RUNS="$store/runs" timeout "$limit" \
      python -m lora_playground compare --base "$base" --data "$SMS_SPAM" --name "sms-$base" \
      --output "$RESULTS/$name" --force "${extra[@]}" > "$RESULTS/$name.log" 2>&1; then
    echo "=== $name finished in $((SECONDS - started)) s" >&2
  else
    echo "=== $name FAILED or timed out after $((SECONDS - started)) s (see $RESULTS/$name.log)" >&2
    failed+=("$name")
  fi
  rm -rf "$store"
}

# Bash reads a script while running it, so everything runs from this function, which is parsed whole
# before it starts: editing or updating this file during a run does not change the run.
main() {
  # Cheap and independent first, then the long training comparisons.
  step flops 1800 flops
  step cold_start 900 cold_start
  step inference 1800 inference
  step lora_vs_full 7200 lora_vs_full --lora-variant nodropout:dropout=0 \
    --lora-variant checkpointing:activation_checkpointing=true --lora-variant last10blocks:lora_last_n_blocks=10
  step lora_vs_full-batch16 2400 lora_vs_full --batch-size 16 --max-steps 30
  step pipeline_vs_reference 3600 pipeline_vs_reference
  step pipeline_vs_reference-smollm2 5400 pipeline_vs_reference --base smollm2-135m --epochs 1 --ablation-steps 10
  step scaling 3600 scaling
  if [[ -f benchmarks/multi_adapter.py ]]; then
    step multi_adapter 1800 multi_adapter
  fi
  # The product's own comparisons on the SMS spam split. benchmarks/acceptance_runs.sh, where present, is the
  # script whose settings the README quotes, so it runs instead of the default-settings fallback below.
  if [[ -f benchmarks/acceptance_runs.sh ]]; then
    if wanted acceptance && [[ ${#QUICK[@]} -eq 0 ]]; then
      echo "=== acceptance: benchmarks/acceptance_runs.sh (limit 14400 s) $(date -u +%H:%M:%S)" >&2
      OUT="$RESULTS" timeout 14400 bash benchmarks/acceptance_runs.sh all >&2 || failed+=(acceptance)
    fi
  else
    compare_step compare-minilm-l6 3600 minilm-l6
    compare_step compare-smollm2-135m 7200 smollm2-135m
  fi

  if [[ ${#failed[@]} -gt 0 ]]; then
    echo "Failed or timed out: ${failed[*]}" >&2
    exit 1
  fi
  echo "All benchmarks finished; figures are in $RESULTS/" >&2
}

main
exit
