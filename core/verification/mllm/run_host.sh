#!/usr/bin/env bash
# GPU-host driver for the MLLM fixtures (python3 with torch, transformers, tokenizers, safetensors, numpy, PIL).
# Run from the repository root:
#   bash core/verification/mllm/run_host.sh fixtures        tokenizer + tiling + tiny model -> $OUT/mllm-fixtures.tgz
#   bash core/verification/mllm/run_host.sh large DIR       Sa2VA-1B-size weights + references into DIR (stays on host)
#   bash core/verification/mllm/run_host.sh bench           HF speed/memory at Sa2VA-1B dims, bf16 -> $OUT/hf_bench.json
#   OUT=... bash core/verification/mllm/run_host.sh all     (phase 2, after `bash .gpu/host.sh unpack`) everything below in
#       one call, each step with its own time limit, going on after a failed step; 7 files in $OUT:
#       mllm-all.log           the whole console output, with one "=== step: rc=..., N s" line per step
#       1b-reference.json      HF reference metadata at Sa2VA-1B dims (self-checks, HF bf16 errors, greedy tokens)
#       java-vs-hf-1b.json     MllmGpuTest: Java vs HF per stage (fp32, bf16), greedy tokens, verdict
#       hf_bench.json          HF transformers bf16/sdpa: vision+prefill ms, decode tok/s, peak GiB
#       java_bench.json        sa2va-java, same protocol as HF's, same card: the same numbers
#       jmh-mllm.json          JMH (MllmBench): vision+prefill ms/op, decode ms/token
#       mllm-results.md        the comparison table for benchmarks/RESULTS.md (benchmarks/mllm_report.py)
set -euo pipefail
here=core/verification/mllm
out=${OUT:?set OUT}
what=${1:-fixtures}
case "$what" in
  fixtures)
    d=$(mktemp -d)
    {
      python3 -c "import sys, torch, transformers, tokenizers, safetensors, numpy, PIL; print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, 'safetensors', safetensors.__version__, 'numpy', numpy.__version__, 'Pillow', PIL.__version__)"
      python3 $here/tokenizer_fixture.py "$d/tokenizer"
      python3 $here/tiling_fixture.py "$d/tiling"
      python3 $here/mllm_reference.py "$d/tiny" --config tiny --tokenizer "$d/tokenizer/tokenizer.json" --device cpu
      du -sh "$d"/*
    } 2>&1 | tee "$out/mllm-fixtures.log"
    tar -C "$d" -czf "$out/mllm-fixtures.tgz" tokenizer tiling tiny
    cp "$d/tiny/reference.json" "$out/tiny-reference.json"
    ;;
  large)
    dir=${2:?target directory}
    python3 $here/mllm_reference.py "$dir" --config sa2va-1b --device cuda 2>&1 | tee "$out/mllm-1b-reference.log"
    cp "$dir/reference.json" "$out/1b-reference.json"
    ;;
  bench)
    d=$(mktemp -d)
    python3 $here/mllm_reference.py "$d" --config sa2va-1b --device cuda --bench-only 2>&1 | tee "$out/hf-bench.log"
    cp "$d/hf_bench.json" "$out/hf_bench.json"
    ;;
  all)
    dir=${MLLM_1B_DIR:-/tmp/sa2va-mllm-1b}
    log=$out/mllm-all.log
    : > "$log"
    failed=()
    step() {  # NAME LIMIT_S COMMAND...: runs it under a time limit, logs, records the exit status, never aborts
      local name=$1 limit=$2 t0 rc
      shift 2
      t0=$(date +%s)
      echo "=== $name (limit ${limit}s): $*" | tee -a "$log"
      set +e
      timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$log"
      rc=${PIPESTATUS[0]}
      set -e
      echo "=== $name: rc=$rc, $(( $(date +%s) - t0 )) s$([ "$rc" = 124 ] && echo ' (TIME LIMIT)')" | tee -a "$log"
      [ "$rc" = 0 ] || failed+=("$name (rc=$rc)")
    }
    rm -rf "$dir"   # never compare against a previous call's reference
    # limits add up to 270 s, the 4.5-minute GPU cap; a normal run should take about half of that
    step "0 versions" 15 bash -c '(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true);
      python3 -c "import torch, transformers; print(\"torch\", torch.__version__, \"transformers\", transformers.__version__, torch.cuda.get_device_name(0))" || true'
    step "1 HF reference at Sa2VA-1B dims (fp32 weights, ~3.3 GB, 4 shards)" 95 \
      python3 $here/mllm_reference.py "$dir" --config sa2va-1b --device cuda
    [ -f "$dir/reference.json" ] && cp "$dir/reference.json" "$out/1b-reference.json"
    step "2 Java vs HF on CUDA: tiny fixture + Sa2VA-1B dims (MllmGpuTest)" 65 \
      env SA2VA_MLLM_1B_DIR="$dir" SA2VA_MLLM_REPORT="$out/java-vs-hf-1b.json" bash .gpu/host.sh java -Xmx16g \
      org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --fail-if-no-tests \
      --select-class dev.sa2va.mllm.MllmGpuTest
    bdir=$(mktemp -d)
    # MLLM_SKIP_HF_BENCH=1 skips it when an earlier call on the same card has it
    [ -n "${MLLM_SKIP_HF_BENCH:-}" ] || step "3 HF speed/memory, bf16 sdpa, 1024x1024 image (10 tiles)" 40 \
      python3 $here/mllm_reference.py "$bdir" --config sa2va-1b --device cuda --bench-only
    [ -f "$bdir/hf_bench.json" ] && cp "$bdir/hf_bench.json" "$out/hf_bench.json"
    step "4 Java speed/memory, same model size and prompt (MllmBench, JMH -f 0)" 45 \
      env SA2VA_MLLM_BENCH_JSON="$out/java_bench.json" bash .gpu/host.sh bench 'MllmBench' -f 0 -wi 1 -w 1 -i 3 -r 1 \
      -rf json -rff "$out/jmh-mllm.json"
    step "5 comparison table" 10 bash -c "python3 benchmarks/mllm_report.py '$out/hf_bench.json' '$out/java_bench.json' \
      '$out/jmh-mllm.json' > '$out/mllm-results.md'; cat '$out/mllm-results.md'"
    rm -rf "$bdir"
    if [ ${#failed[@]} -gt 0 ]; then
      printf 'FAILED STEPS: %s\n' "${failed[*]}" | tee -a "$log"
      exit 1
    fi
    echo "ALL STEPS PASSED" | tee -a "$log"
    ;;
  *) echo "unknown: $what" >&2; exit 2 ;;
esac
