#!/usr/bin/env bash
# Everything the open kernel issues need on the GPU host, in ONE call (~3 min on the H200; from the repo root,
# after .ci/gpu/stage.sh here and every part unpacked there):
#   OUT=$OUT bash benchmarks/open-issues-gpu.sh
# $OUT/gpu-tests.txt: every GPU-tagged test; $OUT/rl/: benchmarks/rl-gpu.sh times, baselines and profile (issue 4);
# $OUT/lora/: benchmarks/lora-gpu.sh bench (issue 3: device times with the A/B rows, PyTorch baselines, JMH, the
# tables of lora-report.md). SAM2 (issue 5, resolved) has its own: core/verification/sam2/run_host.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
GPU_TAG=open-issues
source benchmarks/gpu-common.sh  # checks OUT, creates it, writes OUT/gpu.txt; step
step 120 "$OUT/gpu-tests.txt" bash .gpu/host.sh tests
grep -E "tests (successful|failed|skipped)" "$OUT/gpu-tests.txt"
for what in times baselines profile; do OUT=$OUT/rl bash benchmarks/rl-gpu.sh "$what"; done
OUT=$OUT/lora bash benchmarks/lora-gpu.sh bench
