#!/usr/bin/env bash
# Issue 3 (fused LoRA) on the GPU host, from the repo root, after .ci/gpu/stage.sh and `bash .gpu/host.sh unpack`:
#   OUT=<dir> bash benchmarks/lora-gpu.sh [all|tests|bench|profile]
# Writes into $OUT: gpu.txt, lora-tests.txt, lora-device.jsonl, lora-baselines.jsonl, jmh-lora.json, lora-bench.log,
# lora-report.md (the tables for benchmarks/RESULTS.md); `profile` writes lora-ncu.txt instead. Every step has its
# own time limit, so one hang cannot eat the budget; a failed step is reported and the next one still runs.
# Expected on an H100: all ~3.5 min (tests ~40 s, device times ~50 s, PyTorch ~50 s, JMH ~45 s); profile ~80 s.
# Results are written as they come (one JSON line per point), so a step cut short still leaves its data.
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
GPU_TAG=lora-gpu
source benchmarks/gpu-common.sh  # checks OUT, creates it, writes OUT/gpu.txt; step
case "$what" in
  all|tests)
    step 90 "$OUT/lora-tests.txt" bash .gpu/host.sh tests --include-classname '.*Lora.*Test' ;;
esac
case "$what" in
  all|bench)
    step 110 "$OUT/lora-bench.log" bash .gpu/host.sh java dev.sa2va.bench.LoraDeviceTimes "$OUT/lora-device.jsonl"
    step 90 "$OUT/lora-bench.log" python3 benchmarks/python/lora_baselines.py "$OUT/lora-baselines.jsonl"
    # T = 4096 only, to stay within the 4-minute budget (LoraDeviceTimes covers T = 2600; drop -p tokens=4096 for
    # the host-inclusive T = 2600 numbers, ~45 s more)
    step 100 "$OUT/lora-bench.log" bash .gpu/host.sh bench 'Lora(Base)?Bench\.' -f 0 -wi 1 -i 2 -w 100ms -r 200ms \
      -p tokens=4096 -rf json -rff "$OUT/jmh-lora.json"
    step 30 "$OUT/lora-bench.log" sh -c "python3 benchmarks/python/lora_report.py --device '$OUT/lora-device.jsonl' \
      --baselines '$OUT/lora-baselines.jsonl' --jmh '$OUT/jmh-lora.json' > '$OUT/lora-report.md'" ;;
esac
case "$what" in
  profile)
    # one training step at d = 4096, r = 16, T = 4096: duration, DRAM and SM throughput of each of our kernels and of
    # the cuBLAS GEMMs (the 5th step; the first four warm up)
    step 100 "$OUT/lora-ncu.txt" ncu --target-processes all --launch-skip 50 --launch-count 24 \
      --section SpeedOfLight --section LaunchStats --section Occupancy \
      bash .gpu/host.sh java dev.sa2va.bench.LoraDeviceTimes --one 4096 4096 16 4096
    # r = 128 (no kernel-name filter: our lowrank/masked_expand kernels and the cuBLAS GEMMs of the same step)
    step 100 "$OUT/lora-ncu-r128.txt" ncu --target-processes all --launch-skip 50 --launch-count 24 \
      --section SpeedOfLight --section LaunchStats --section Occupancy \
      bash .gpu/host.sh java dev.sa2va.bench.LoraDeviceTimes --one 4096 4096 128 4096
    python3 - "$OUT/lora-ncu.txt" "$OUT/lora-ncu-r128.txt" > "$OUT/lora-ncu-summary.txt" <<'PY'
import re, sys
for f in sys.argv[1:]:
    print("==", f)
    name = None
    vals = {}
    for line in open(f, errors="replace"):
        m = re.match(r"\s{2}(\S.*) \((\d+, \d+, \d+)\)x\((\d+, \d+, \d+)\), Context", line)
        if m:
            if name: print(name, vals)
            kernel = re.sub(r"\(sa2va::.*", "", m.group(1)).replace("sa2va::<unnamed>::", "")
            name, vals = f"{kernel[:64]:64s} grid {m.group(2):12s}", {}
            continue
        for key in ("Duration", "DRAM Throughput", "Compute (SM) Throughput", "Registers Per Thread", "Achieved Occupancy"):
            if line.strip().startswith(key):
                vals[key] = line.split()[-1]
    if name: print(name, vals)
PY
    ;;
esac
