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
ARGS=("$@")

# emu_test NAME DIR CUDA_SOURCE... -- CPU_SOURCE...: builds $OUT/NAME from HERE/NAME.cpp, the CUDA sources (under
# SRC, compiled as C++ for the emulation) and their CPU implementations, when it is missing or a file under SRC/DIR,
# SRC/common or HERE is newer; then runs it with this script's arguments.
emu_test() {
  local name=$1 dir=$2 cu=() cpp=()
  shift 2
  while [ "$1" != "--" ]; do cu+=("$SRC/$1"); shift; done
  shift
  for f in "$@"; do cpp+=("$SRC/$f"); done
  local bin="$OUT/$name"
  local newest
  newest=$(find "$SRC/$dir" "$SRC/common" "$HERE" -type f -newer "$bin" 2>/dev/null | head -1 || true)
  if [ ! -x "$bin" ] || [ -n "$newest" ]; then
    "$CXX" "${FLAGS[@]}" -x c++ "${cu[@]}" "$SRC/common/workspace.cu" -x none "${cpp[@]}" "$SRC/common/runtime.cpp" \
      "$HERE/$name.cpp" -o "$bin"
  fi
  SA2VA_NUM_THREADS=${SA2VA_NUM_THREADS:-2} ASAN_OPTIONS=detect_leaks=0 "$bin" ${ARGS[@]+"${ARGS[@]}"}
}

# LoRA (lora/lora.cu: every product, dropout, multi-adapter) against lora/lora_cpu.cpp.
emu_test lora_emu_test lora lora/lora.cu -- lora/lora_cpu.cpp
# The mask pass (statistics, rewards, sampling) of masks/mask_pass.cuh against masks/*_cpu.cpp.
emu_test mask_emu_test masks masks/mask_stats.cu masks/mask_policy.cu -- masks/mask_stats_cpu.cpp \
  masks/mask_policy_cpu.cpp
# GAE (rl/gae.cu: every schedule, the cooperative normalisation) against rl/gae_cpu.cpp.
emu_test gae_emu_test rl rl/gae.cu -- rl/gae_cpu.cpp
# The PPO loss of rl/ppo_loss.cu (both GRPO schedules, the CleanRL path) against rl/ppo_loss_cpu.cpp.
emu_test ppo_emu_test rl rl/ppo_loss.cu -- rl/ppo_loss_cpu.cpp
