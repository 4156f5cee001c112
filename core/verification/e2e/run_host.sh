#!/usr/bin/env bash
# Sa2VA end to end (issue 7) on the GPU host, in one call, from the project root, after the Java runtime is staged
# (.ci/gpu/stage.sh here, `bash .gpu/host.sh unpack` there). Meant to run right after, on the same machine,
#   OUT=$OUT bash core/verification/sam2/run_host.sh      (leaves SAM2-L random weights in /tmp/sam2-large)
#   OUT=$OUT bash core/verification/mllm/run_host.sh all  (leaves Sa2VA-1B-size MLLM weights in /tmp/sa2va-mllm-1b)
# and reuses those weights; without them it generates its own (fixed seeds), which costs ~40 s more.
#
#   OUT=$OUT bash core/verification/e2e/run_host.sh
#
# Steps (each runs even if an earlier one failed; each has a time cap inside a total budget, E2E_BUDGET_S,
# default 285 s):
#   1. assemble a Sa2VA-1B-size checkpoint from the two folders (symlinks, merged index, sam2_config)
#   2. Java side of the cross-check: E2eCrossCheck, 8 synthetic images of 8 sizes, forced answer "Sure, [SEG].",
#      fp32 (TF32 off) and bf16
#   2b. JUnit Sa2vaGpuTest: tiny model on CUDA vs CPU; a real CUDA out-of-memory error retried at fewer tiles
#   3. HF side + comparison: e2e_reference.py check (InternVL + Sam2Model wired as Sa2VA, fp32 and bf16)
#   4. memory run, random Sa2VA-1B dims: EvaluateDataset, 244 synthetic 1024x1024 images, allocator capped at 24 GB
#   5. memory run, random Sa2VA-4B dims (Qwen2.5-3B: 36 layers, hidden 2048, 16/2 heads, MLP 11008; phi3_chat)
#   6. table for benchmarks/RESULTS.md (e2e_report.py)
# Files in $OUT (8): e2e-host.log, e2e-crosscheck.json, e2e-mem-1b-summary.json, e2e-mem-1b.csv,
# e2e-mem-4b-summary.json, e2e-mem-4b.csv, e2e-results.md, e2e-java.json. Exit status: 0 only if every step passed.
set -uo pipefail
cd "$(dirname "$0")/../../.."
: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
BUDGET=${E2E_BUDGET_S:-285}
WORK=${E2E_WORK:-/tmp/e2e}
SAM2_W=${SAM2_LARGE_DIR:-/tmp/sam2-large}/sam2_hiera_large_weights.safetensors
MLLM=${MLLM_1B_DIR:-/tmp/sa2va-mllm-1b}/model
IMAGES=${E2E_IMAGES:-244}
LOG=$OUT/e2e-host.log
HERE=core/verification/e2e
SECONDS=0
declare -a STATUS=()
: > "$LOG"

say() { echo "$*" | tee -a "$LOG"; }

# step NAME CAP_SECONDS COMMAND...: runs COMMAND with a timeout of min(CAP, what is left of the budget)
step() {
  local name=$1 cap=$2
  shift 2
  local left=$((BUDGET - SECONDS))
  if (( left < 15 )); then
    say "=== SKIPPED $name: ${left}s left of the ${BUDGET}s budget"
    STATUS+=("SKIPPED $name (budget)")
    return
  fi
  local t=$(( cap < left ? cap : left ))
  say "=== $name (timeout ${t}s, at ${SECONDS}s)"
  local t0=$SECONDS
  timeout -k 10 "$t" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  local took=$((SECONDS - t0))
  if (( rc == 0 )); then
    STATUS+=("OK      $name (${took}s)")
  elif (( rc == 124 || rc == 137 )); then
    STATUS+=("TIMEOUT $name after ${took}s")
    say "!!! $name: TIMEOUT after ${took}s"
  else
    STATUS+=("FAILED  $name (exit $rc, ${took}s)")
    say "!!! $name: FAILED with exit status $rc"
  fi
}

say "=== Sa2VA end-to-end host run: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' \
  2>&1 | tee -a "$LOG"
[ -f .gpu/host.sh ] || say "!!! .gpu/host.sh missing: stage the Java runtime first (.ci/gpu/stage.sh, host.sh unpack)"
rm -rf "$WORK/xcheck" "$WORK/mem-1b" "$WORK/mem-4b"
mkdir -p "$WORK"
[ -f "$SAM2_W" ] && say "SAM2-L weights: $SAM2_W" || say "no $SAM2_W: step 1 generates SAM2-L weights"
[ -f "$MLLM/model.safetensors.index.json" ] && say "MLLM weights: $MLLM" || say "no $MLLM: step 1 generates them"

step "1 assemble the Sa2VA-1B-size checkpoint" 80 \
  python3 $HERE/e2e_reference.py assemble --sam2 "$SAM2_W" --mllm "$MLLM" --out "$WORK/sa2va-1b"

step "2 Java side of the cross-check (E2eCrossCheck, fp32 + bf16)" 75 \
  bash .gpu/host.sh java -Xmx12g dev.sa2va.model.E2eCrossCheck "$WORK/sa2va-1b" "$WORK/xcheck" --dtypes fp32,bf16
cp "$WORK/xcheck/java.json" "$OUT/e2e-java.json" 2>/dev/null || say "!!! no java.json from step 2"

step "2b JUnit Sa2vaGpuTest (tiny model: CUDA vs CPU; a real CUDA OOM retried at fewer tiles)" 40 \
  bash .gpu/host.sh java -Xmx8g org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree \
    --fail-if-no-tests --select-class dev.sa2va.model.Sa2vaGpuTest

step "3 HF transformers side + comparison (e2e_reference.py check)" 90 \
  python3 $HERE/e2e_reference.py check --model "$WORK/sa2va-1b" --java "$WORK/xcheck" --out "$OUT/e2e-crosscheck.json"

# memory runs: the documented evaluation command, with random weights built on the GPU (no files)
for m in "1b 75" "4b 110"; do
  set -- $m
  step "$(( ${1%b} == 1 ? 4 : 5 )) memory run: $IMAGES images 1024x1024, random Sa2VA-${1^^} dims, 24 GB cap" "$2" \
    bash .gpu/host.sh java -Xmx12g dev.sa2va.examples.EvaluateDataset --synthetic "$IMAGES" --size 1024 --seed 7 \
      --segmenter sa2va --model "random:sa2va-$1" --force-answer "Sure, [SEG]." --device cuda \
      --cuda-memory-cap-gb 24 --prefetch 12 --overlays 0 --out "$WORK/mem-$1"
  # the CSV is written row by row, so a run cut short still reports what it did
  cp "$WORK/mem-$1/summary.json" "$OUT/e2e-mem-$1-summary.json" 2>/dev/null || say "!!! no summary.json from the $1 run"
  cp "$WORK/mem-$1/per_sample.csv" "$OUT/e2e-mem-$1.csv" 2>/dev/null
done

step "6 table (e2e_report.py)" 15 \
  bash -c "python3 $HERE/e2e_report.py '$OUT' > '$OUT/e2e-results.md'; rc=\$?; cat '$OUT/e2e-results.md'; exit \$rc"

say "=== summary (${SECONDS}s)"
fail=0
for s in "${STATUS[@]}"; do
  say "  $s"
  [[ $s == OK* ]] || fail=1
done
ls -l "$OUT" | tee -a "$LOG"
exit $fail
