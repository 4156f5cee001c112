#!/usr/bin/env bash
# Per-stage GPU memory, Java vs HF transformers, in one call on the GPU host (from the project root, after
# `bash .gpu/host.sh unpack`):
#
#   OUT=$OUT bash benchmarks/memory_trace.sh [SAM2_BATCHES]    (default 1; e.g. 1,8; ~1-1.5 min)
#
# 1. HF: benchmarks/python/memory_trace.py sam2 mllm (SAM2-L bf16 at each batch; Sa2VA-1B dims bf16, 10 tiles)
# 2. Java: dev.sa2va.bench.MemoryTrace sam2 B1 sam2 B2 .. mllm (same models, input shapes and stage names)
# 3. side-by-side table: benchmarks/memory_trace_report.py -> $OUT/memtrace.md (and the raw $OUT/memtrace.jsonl)
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
B=${1:-1}
J=$OUT/memtrace.jsonl
: > "$J"
rc=0
timeout -k 5 80 python3 benchmarks/python/memory_trace.py sam2 mllm --batch "$B" --out "$J" 2>&1 \
  | grep -v '^MEMTRACE' | tee "$OUT/memtrace-hf.log" || rc=1
JARGS=()
for b in ${B//,/ }; do JARGS+=(sam2 "$b"); done
timeout -k 5 80 env MEMTRACE_OUT="$J" bash .gpu/host.sh java -Xmx8g dev.sa2va.bench.MemoryTrace "${JARGS[@]}" mllm 2>&1 \
  | grep -v '^MEMTRACE' | tee "$OUT/memtrace-java.log" || rc=1
python3 benchmarks/memory_trace_report.py "$J" | tee "$OUT/memtrace.md"
exit $rc
