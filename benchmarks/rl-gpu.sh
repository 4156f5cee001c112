#!/usr/bin/env bash
# Issue 4 (RL kernels) on the GPU host, from the repo root, after .ci/gpu/stage.sh and `bash .gpu/host.sh unpack`:
#   OUT=<dir> bash benchmarks/rl-gpu.sh [all|tests|times|baselines|profile]
# Writes into $OUT: gpu.txt, rl-tests.txt (MaskEvaluate/Rl/MaskMetrics GPU tests), rl-device.jsonl + rl-device.txt
# (RlDeviceTimes: device and host time per call of every RL kernel shape, with a device copy of the same bytes as
# the yardstick), rl-baselines.json (benchmarks/python/rl_baselines.py: the PyTorch baselines, same call);
# `profile` (also part of `all`) writes rl-ncu.txt: ncu of the reward kernel at 8x262144 and 32x1M and of the GAE
# scan at 2048x16 (duration, DRAM and SM throughput, occupancy, warp states). Every step has its own time limit; a
# failed step does not stop the next. Measured on the H200 (2026-12-03): tests ~15 s, times ~5 s, baselines ~20 s,
# profile ~20 s, plus JVM start-ups.
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
GPU_TAG=rl-gpu
source benchmarks/gpu-common.sh  # checks OUT, creates it, writes OUT/gpu.txt; step
case "$what" in
  all|tests)
    step 100 "$OUT/rl-tests.txt" bash .gpu/host.sh tests --include-classname '.*(MaskEvaluate|Rl|MaskMetrics)GpuTest' ;;
esac
case "$what" in
  all|times)
    step 100 "$OUT/rl-device.txt" bash .gpu/host.sh java dev.sa2va.bench.RlDeviceTimes "$OUT/rl-device.jsonl" ;;
esac
case "$what" in
  all|baselines)
    step 60 "$OUT/rl-py.log" python3 benchmarks/python/rl_baselines.py --out "$OUT/rl-baselines.json" ;;
esac
case "$what" in
  all|profile)
    # 3 kernels each (the first calls: warm-up, same code); RlDeviceTimes --only/--size runs just that shape
    for spec in "evaluate 8x262144 reward_kernel" "evaluate 32x1048576 reward_kernel" "gae 2048x16 gae_warp_kernel"; do
      set -- $spec
      echo "== ncu: $spec" >> "$OUT/rl-ncu.txt"
      step 40 "$OUT/rl-ncu.txt" ncu --target-processes all --clock-control none -k "regex:$3" --launch-skip 2 \
        --launch-count 1 --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
        bash .gpu/host.sh java dev.sa2va.bench.RlDeviceTimes /tmp/rl-ncu.jsonl --only "$1" --size "$2"
    done ;;
esac
