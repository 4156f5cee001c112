#!/usr/bin/env bash
# Prepares .gpu/ for a GPU host that has CUDA and Python but no JDK and no Maven (see README, "GPU tests").
#   .ci/gpu/stage.sh            build with -Pgpu, stage the JRE + libtorch parts and the application class path
# Needs the staging tool of the workplace (SA2VA_GPU_STAGE, default ../shared/gpu/stage.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
STAGE=${SA2VA_GPU_STAGE:-../shared/gpu/stage.py}
[ -f "$STAGE" ] || { echo "stage.py not found at $STAGE (set SA2VA_GPU_STAGE)" >&2; exit 2; }
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || grep -qx '/.gpu/' .gitignore || echo /.gpu/ >> .git/info/exclude

# 1. the GPU build: CUDA libtorch on the class path, native library with CUDA kernels
mvn -q -B -Pgpu -DskipTests package dependency:build-classpath -Dmdep.includeScope=test \
    -Dmdep.outputFile=target/classpath.txt
mvn -q -B dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.4 \
    -DoutputDirectory=target/gpu-tools
# 2. the class path: dependency jars of every module, module jars, test classes, the JUnit console launcher
entries=$(cat native/target/classpath.txt core/target/classpath.txt benchmarks/target/classpath.txt examples/target/classpath.txt \
          | tr ':' '\n' | grep -v '/sa2va-' | grep -vE '/(junit-|opentest4j|apiguardian)' | sort -u)
# the GPU host needs no tokenizer (the MLLM checks there use token ids): keep DJL's 20 MB of native tokenizers
# (and JNA) out of .gpu/app, which travels with every call
entries=$(echo "$entries" | grep -vE '/ai/djl/|/net/java/dev/jna/')
mods=$(ls native/target/sa2va-native-*.jar core/target/sa2va-core-*[0-9T].jar benchmarks/target/sa2va-benchmarks-*.jar \
          examples/target/sa2va-examples-*.jar | grep -v -- '-tests.jar')
python3 "$STAGE" app $entries $mods native/target/test-classes core/target/test-classes target/gpu-tools/*.jar
# 3. JRE + libtorch CUDA in parts of <= 60 MB (cached after the first run)
# parts of 48 MB: a call carries one part plus every tracked file of the repository (64 MiB in all)
python3 "$STAGE" runtime --torch --part-mb 48
cp .ci/gpu/host.sh .gpu/host.sh
echo "staged: .gpu/parts/p* (one per call), then .gpu/app + .gpu/*.sh with the command"
