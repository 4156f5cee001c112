#!/usr/bin/env bash
# Builds the CUDA kernels of native/src/main/cpp for the CPU emulation (cuda_emu/) with AddressSanitizer and runs
# them against the CPU implementations. No GPU or nvcc needed.
#   run-emu-tests.sh OUT_DIR [--quick]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../../main/cpp" && pwd)
OUT=${1:?out dir}; shift || true
mkdir -p "$OUT"
CXX=${CXX:-g++}
FLAGS=(-std=c++17 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -Wall -Wno-unknown-pragmas
       -Wno-unused-function -pthread -DSA2VA_CUDA_EMULATION -I"$HERE/cuda_emu" -I"$SRC")
BIN="$OUT/lora_emu_test"
newest=$(find "$SRC/lora" "$SRC/common" "$HERE" -type f -newer "$BIN" 2>/dev/null | head -1 || true)
if [ ! -x "$BIN" ] || [ -n "$newest" ]; then
  "$CXX" "${FLAGS[@]}" -x c++ "$SRC/lora/lora.cu" "$SRC/common/workspace.cu" -x none "$SRC/lora/lora_cpu.cpp" \
    "$SRC/common/runtime.cpp" \
    "$HERE/lora_emu_test.cpp" -o "$BIN"
fi
SA2VA_NUM_THREADS=${SA2VA_NUM_THREADS:-2} ASAN_OPTIONS=detect_leaks=0 "$BIN" "$@"

# The mask pass (statistics, rewards, sampling) of masks/mask_pass.cuh against masks/*_cpu.cpp.
MBIN="$OUT/mask_emu_test"
newest=$(find "$SRC/masks" "$SRC/common" "$HERE" -type f -newer "$MBIN" 2>/dev/null | head -1 || true)
if [ ! -x "$MBIN" ] || [ -n "$newest" ]; then
  "$CXX" "${FLAGS[@]}" -x c++ "$SRC/masks/mask_stats.cu" "$SRC/masks/mask_policy.cu" "$SRC/common/workspace.cu" \
    -x none "$SRC/masks/mask_stats_cpu.cpp" "$SRC/masks/mask_policy_cpu.cpp" "$SRC/common/runtime.cpp" \
    "$HERE/mask_emu_test.cpp" -o "$MBIN"
fi
SA2VA_NUM_THREADS=${SA2VA_NUM_THREADS:-2} ASAN_OPTIONS=detect_leaks=0 "$MBIN" "$@"

# GAE (rl/gae.cu: every schedule, the cooperative normalisation) against rl/gae_cpu.cpp.
GBIN="$OUT/gae_emu_test"
newest=$(find "$SRC/rl" "$SRC/common" "$HERE" -type f -newer "$GBIN" 2>/dev/null | head -1 || true)
if [ ! -x "$GBIN" ] || [ -n "$newest" ]; then
  "$CXX" "${FLAGS[@]}" -x c++ "$SRC/rl/gae.cu" "$SRC/common/workspace.cu" -x none "$SRC/rl/gae_cpu.cpp" \
    "$SRC/common/runtime.cpp" "$HERE/gae_emu_test.cpp" -o "$GBIN"
fi
SA2VA_NUM_THREADS=${SA2VA_NUM_THREADS:-2} ASAN_OPTIONS=detect_leaks=0 "$GBIN" "$@"

# The PPO loss of rl/ppo_loss.cu (both GRPO schedules, the CleanRL path) against rl/ppo_loss_cpu.cpp.
PBIN="$OUT/ppo_emu_test"
newest=$(find "$SRC/rl" "$SRC/common" "$HERE" -type f -newer "$PBIN" 2>/dev/null | head -1 || true)
if [ ! -x "$PBIN" ] || [ -n "$newest" ]; then
  "$CXX" "${FLAGS[@]}" -x c++ "$SRC/rl/ppo_loss.cu" "$SRC/common/workspace.cu" -x none "$SRC/rl/ppo_loss_cpu.cpp" \
    "$SRC/common/runtime.cpp" "$HERE/ppo_emu_test.cpp" -o "$PBIN"
fi
SA2VA_NUM_THREADS=${SA2VA_NUM_THREADS:-2} ASAN_OPTIONS=detect_leaks=0 "$PBIN" "$@"
