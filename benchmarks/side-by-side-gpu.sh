#!/usr/bin/env bash
# Usage (GPU host, repo root, after .ci/gpu/stage.sh and `bash .gpu/host.sh unpack`): OUT=<dir> bash benchmarks/side-by-side-gpu.sh
# Side by side in ONE call: Java and PyTorch/HF baselines on the same card, plus the two fixed evaluator GPU tests.
set +e; export PYTHONUNBUFFERED=1
snap() { :; }
R=${OUT:?set OUT}/s1; mkdir -p $R; t0=$SECONDS
ls /tmp/gpu-stage/lib/libjnitorch.so /tmp/gpu-stage/jre/bin/java >/dev/null || { echo "STAGING INCOMPLETE"; exit 3; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv > $R/gpu.txt 2>&1
timeout 60 bash .gpu/host.sh tests --include-classname '.*EvaluatorGpuTest$' > $R/eval-tests.txt 2>&1; echo "eval tests rc=$? at $((SECONDS-t0))s"; grep -E "tests (successful|failed)" $R/eval-tests.txt; snap
b=$(mktemp -d); timeout 50 python3 core/verification/mllm/mllm_reference.py $b --config sa2va-1b --device cuda --bench-only > $R/mllm-hf.log 2>&1; cp $b/hf_bench.json $R/ 2>/dev/null; echo "mllm hf rc=$? at $((SECONDS-t0))s"
SA2VA_MLLM_BENCH_JSON=$R/java_bench.json timeout 45 bash .gpu/host.sh bench 'MllmBench' -f 0 -wi 1 -w 1 -i 3 -r 1 -rf json -rff $R/jmh-mllm.json > $R/mllm-java.log 2>&1; echo "mllm java rc=$? at $((SECONDS-t0))s"; snap
timeout 45 python3 core/verification/sam2/hf_speed.py --config hiera-large --batches 1,4,8 --dtype bf16 --warmup 3 --seconds 2 --out $R/sam2-hf-speed.json > $R/sam2-hf.log 2>&1; echo "sam2 hf rc=$? at $((SECONDS-t0))s"
SA2VA_BENCH_MEM_OUT=$R/sam2-java-mem.jsonl timeout 90 bash .gpu/host.sh java -Xmx8g -Djmh.ignoreLock=true org.openjdk.jmh.Main Sam2ImageBench -f 0 -wi 3 -w 1s -i 5 -r 1s -p batch=1,4,8 -p dtype=bf16 -p config=hiera-large -rf json -rff $R/sam2-jmh.json > $R/sam2-java.log 2>&1; echo "sam2 java rc=$? at $((SECONDS-t0))s"; snap
timeout 60 python3 benchmarks/python/lora_baselines.py $R/lora-baselines.jsonl > $R/lora-py.log 2>&1; echo "lora py rc=$? at $((SECONDS-t0))s"
timeout 40 bash .gpu/host.sh java dev.sa2va.bench.LoraDeviceTimes $R/lora-device.jsonl > $R/lora-java.log 2>&1; echo "lora java rc=$? at $((SECONDS-t0))s"; snap
timeout 50 python3 benchmarks/python/rl_baselines.py --out $R/rl-baselines.json > $R/rl-py.log 2>&1; echo "rl py rc=$? at $((SECONDS-t0))s"
timeout 60 bash .gpu/host.sh bench 'dev.sa2va.bench.(RewardBench|GaeBench|PpoBench|MaskStatsBench.Cuda)' -f 0 -wi 1 -w 200ms -i 2 -r 200ms -rf json -rff $R/jmh-rl.json > $R/rl-java.log 2>&1; echo "rl java rc=$? at $((SECONDS-t0))s"; snap
ls -la $OUT
