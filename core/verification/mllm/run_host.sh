#!/usr/bin/env bash
# GPU-host driver for the MLLM fixtures (python3 with torch, transformers, tokenizers, safetensors, numpy, PIL).
# Run from the repository root:
#   bash core/verification/mllm/run_host.sh fixtures        tokenizer + tiling + tiny model -> $OUT/mllm-fixtures.tgz
#   bash core/verification/mllm/run_host.sh large DIR       Sa2VA-1B-size weights + references into DIR (stays on host)
#   bash core/verification/mllm/run_host.sh bench           HF speed/memory at Sa2VA-1B dims, bf16 -> $OUT/hf_bench.json
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
  *) echo "unknown: $what" >&2; exit 2 ;;
esac
