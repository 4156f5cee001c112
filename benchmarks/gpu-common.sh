# Sourced by the benchmarks/*-gpu.sh scripts on the GPU host, from the repo root, with GPU_TAG set to the prefix of
# their log lines (e.g. GPU_TAG=lora-gpu) and OUT to the output folder: creates OUT and writes OUT/gpu.txt.
: "${GPU_TAG:?set GPU_TAG before sourcing benchmarks/gpu-common.sh}"
: "${OUT:?set OUT to the output directory}"

# step SECONDS LOGFILE COMMAND...: COMMAND's output goes to LOGFILE; its exit status and time are logged and printed
# but never stop the caller, and the time limit keeps one hang from eating the device budget.
step() {
  local limit=$1 log=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  echo "[$GPU_TAG] $* -> rc $rc in $((SECONDS - t0)) s" | tee -a "$log"
}

# gpu_info DIR: DIR/gpu.txt names the GPU, its driver and the commit, so that results can be told apart later.
gpu_info() {
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv > "$1/gpu.txt" 2>&1 || true
  git log -1 --format='commit %H %s' >> "$1/gpu.txt" 2>/dev/null || true
}

mkdir -p "$OUT"
gpu_info "$OUT"
