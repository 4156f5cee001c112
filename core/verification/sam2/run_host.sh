#!/usr/bin/env bash
# SAM2 image path (issue 5) on the GPU host, in one call, from the project root, after the Java runtime is staged
# (.ci/gpu/stage.sh here, `bash .gpu/host.sh unpack` there):
#
#   OUT=$OUT bash core/verification/sam2/run_host.sh
#
# Steps (each runs even if an earlier one failed; each has a time cap inside a total budget, SAM2_BUDGET_S,
# default 200 s):
#   1. HF reference at the SAM2-L config: sam2_reference.py writes random weights (Sa2VA key names), inputs and
#      HF Sam2Model outputs (float64 reference, float32 and bf16 runs) to $SAM2_LARGE_DIR (default /tmp/sam2-large).
#   2. Java verification: Sam2LargeGpuTest (fp32 with TF32 off <= 1e-4 per stage, bf16 <= max(2e-2, 1.5 x HF bf16
#      error), same selected masks) and Sam2TinyGpuTest (committed tiny fixtures on CUDA).
#   3. Java speed/memory: JMH Sam2ImageBench, SAM2-L bf16, batch 1/4/8, the weights of step 1 (random if absent).
#   4. HF speed/memory: hf_speed.py, same protocol, same card.
#   5. Table for benchmarks/RESULTS.md: benchmarks/sam2_report.py.
# Files in $OUT (7): sam2-host.log, sam2_hiera_large_summary.json, sam2-java-verify.json, sam2-jmh.json,
# sam2-java-mem.jsonl, sam2-hf-speed.json, sam2-results.md. Exit status: 0 only if every step passed.
set -uo pipefail
cd "$(dirname "$0")/../../.."
: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
BUDGET=${SAM2_BUDGET_S:-200}
LARGE=${SAM2_LARGE_DIR:-/tmp/sam2-large}
LOG=$OUT/sam2-host.log
SECONDS=0
START=0
declare -a STATUS=()
: > "$LOG"

say() { echo "$*" | tee -a "$LOG"; }

# step NAME CAP_SECONDS COMMAND...: runs COMMAND with a timeout of min(CAP, what is left of the budget)
step() {
  local name=$1 cap=$2
  shift 2
  local left=$((BUDGET - (SECONDS - START)))
  if (( left < 20 )); then
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
    STATUS+=("OK     $name (${took}s)")
  elif (( rc == 124 || rc == 137 )); then
    STATUS+=("TIMEOUT $name after ${took}s")
    say "!!! $name: TIMEOUT after ${took}s"
  else
    STATUS+=("FAILED $name (exit $rc, ${took}s)")
    say "!!! $name: FAILED with exit status $rc"
  fi
}

say "=== SAM2 host run: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)' \
  2>&1 | tee -a "$LOG"
[ -f .gpu/host.sh ] || say "!!! .gpu/host.sh missing: stage the Java runtime first (.ci/gpu/stage.sh, host.sh unpack)"

# 1. HF reference at the SAM2-L config (weights generated here: too big to carry)
step "1 HF reference, SAM2-L (sam2_reference.py)" 100 \
  python3 core/verification/sam2/sam2_reference.py --config hiera-large --device cuda --batch 1 --bf16 --save-bf16 \
    --no-extra-keys --max-bytes 0 --out "$LARGE"
cp "$LARGE/sam2_hiera_large_summary.json" "$OUT/" 2>/dev/null || say "!!! no summary from step 1"

# 2. Java verification against it (+ the tiny fixtures on CUDA)
step "2 Java verification (Sam2LargeGpuTest, Sam2TinyGpuTest)" 80 \
  bash .gpu/host.sh java -Xmx8g -Dsa2va.sam2.large="$LARGE" -Dsa2va.sam2.report="$OUT/sam2-java-verify.json" \
    org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree \
    --select-class dev.sa2va.sam2.Sam2LargeGpuTest --select-class dev.sa2va.sam2.Sam2TinyGpuTest

[ -s "$OUT/sam2-java-verify.json" ] || say "!!! no Java verification report: the SAM2-L test did not run to its end"

# 3. Java speed and memory, SAM2-L bf16, batch 1/4/8
W="$LARGE/sam2_hiera_large_weights.safetensors"
WEIGHTS=(-p weights="$W")
[ -f "$W" ] || { say "!!! $W missing: the Java benchmark uses random weights"; WEIGHTS=(); }
rm -f "$OUT/sam2-java-mem.jsonl"
step "3 Java speed/memory (JMH Sam2ImageBench)" 75 \
  env SA2VA_BENCH_MEM_OUT="$OUT/sam2-java-mem.jsonl" bash .gpu/host.sh java -Xmx8g -Djmh.ignoreLock=true \
    org.openjdk.jmh.Main Sam2ImageBench -f 0 -wi 2 -w 2s -i 3 -r 2s -p batch=1,4,8 -p dtype=bf16 \
    -p config=hiera-large ${WEIGHTS[@]+"${WEIGHTS[@]}"} -rf json -rff "$OUT/sam2-jmh.json"

# 4. HF speed and memory, same protocol (SAM2_SKIP_HF_SPEED=1 skips it when an earlier call on the same card has it)
if [ -z "${SAM2_SKIP_HF_SPEED:-}" ]; then
step "4 HF speed/memory (hf_speed.py)" 60 \
  python3 core/verification/sam2/hf_speed.py --config hiera-large --batches 1,4,8 --dtype bf16 --warmup 3 \
    --seconds 3 --out "$OUT/sam2-hf-speed.json"
fi

# 5. the table
step "5 table (benchmarks/sam2_report.py)" 20 \
  bash -c "python3 benchmarks/sam2_report.py '$OUT/sam2-jmh.json' '$OUT/sam2-java-mem.jsonl' '$OUT/sam2-hf-speed.json' \
    > '$OUT/sam2-results.md' && cat '$OUT/sam2-results.md'"

say "=== summary ($((SECONDS - START))s)"
fail=0
for s in "${STATUS[@]}"; do
  say "  $s"
  [[ $s == OK* ]] || fail=1
done
ls -l "$OUT" | tee -a "$LOG"
exit $fail
