#!/usr/bin/env bash
# SAM2-L host cost and batch-1 latency on the GPU host, in one call (from the project root, after
# `bash .gpu/host.sh unpack`; ~2.5 min):
#
#   OUT=$OUT bash benchmarks/sam2-host-gpu.sh
#
# 1. dev.sa2va.bench.Sam2HostCost --device cuda: host time to enqueue one SAM2-L bf16 forward (median of 30 after
#    warm-up, no sync inside a call) and the cost of one JavaCPP object on this host; twice: with the library's
#    JavaCPP default (maxPhysicalBytes=0) and with JavaCPP's own (4 x -Xmx = 32g, what runs before this change got).
#    Each run also samples the forward thread every ~1 ms and prints the top frames (JFR is not in that JRE).
# 2. The SAM2 side-by-side of benchmarks/side-by-side-gpu.sh at batch 1, 4, 8 (HF hf_speed.py, then JMH
#    Sam2ImageBench with 3 warm-up iterations instead of 1 (GPU diagnostic d1: one 1-s warm-up left batch 1 under-
#    JITted, 27 vs 17 ms) and 5 measured instead of 3, so the batch-1 error bar means something), and the table.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
t0=$SECONDS
HOST=(dev.sa2va.bench.Sam2HostCost --device cuda --config hiera-large --dtype bf16 --warmup 40 --iters 40)
timeout -k 5 70 bash .gpu/host.sh java -Xmx8g "${HOST[@]}" > "$OUT/sam2-host-new.txt" 2>&1
echo "host cost, library default: rc=$? at $((SECONDS - t0))s"; grep SAM2HOST "$OUT/sam2-host-new.txt"
timeout -k 5 60 bash .gpu/host.sh java -Xmx8g -Dorg.bytedeco.javacpp.maxPhysicalBytes=32g "${HOST[@]}" \
  > "$OUT/sam2-host-old.txt" 2>&1
echo "host cost, JavaCPP default: rc=$? at $((SECONDS - t0))s"; grep SAM2HOST "$OUT/sam2-host-old.txt"
timeout -k 5 45 python3 core/verification/sam2/hf_speed.py --config hiera-large --batches 1,4,8 --dtype bf16 \
  --warmup 3 --seconds 2 --out "$OUT/sam2-hf-speed.json" > "$OUT/sam2-hf.log" 2>&1
echo "sam2 hf rc=$? at $((SECONDS - t0))s"
SA2VA_BENCH_MEM_OUT=$OUT/sam2-java-mem.jsonl timeout -k 5 90 bash .gpu/host.sh java -Xmx8g -Djmh.ignoreLock=true \
  org.openjdk.jmh.Main Sam2ImageBench -f 0 -wi 3 -w 1s -i 5 -r 1s -p batch=1,4,8 -p dtype=bf16 -p config=hiera-large \
  -rf json -rff "$OUT/sam2-jmh.json" > "$OUT/sam2-java.log" 2>&1
echo "sam2 java rc=$? at $((SECONDS - t0))s"
python3 benchmarks/sam2_report.py "$OUT/sam2-jmh.json" "$OUT/sam2-java-mem.jsonl" "$OUT/sam2-hf-speed.json" \
  | tee "$OUT/sam2-table.md"
