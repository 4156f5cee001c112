#!/usr/bin/env bash
# Runs on the GPU host, from the project root, after .ci/gpu/stage.sh staged .gpu/ here.
#   bash .gpu/host.sh unpack                 unpack whatever .gpu/parts/p* arrived (one part per call is fine)
#   bash .gpu/host.sh tests [ARGS...]        JUnit console launcher: tests tagged gpu (ARGS are passed on)
#   bash .gpu/host.sh bench [JMH ARGS...]    JMH from the class path
#   bash .gpu/host.sh java MAIN [ARGS...]    any main class
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-tests}; shift || true
# A part that never arrived (a call refused, or a fresh machine after the first parts) otherwise shows up as a
# JNI "cannot open shared object file" deep inside the first test; say which staged file is missing instead.
staged() {
  local missing=()
  for f in /tmp/gpu-stage/jre/bin/java /tmp/gpu-stage/lib/libtorch_cpu.so /tmp/gpu-stage/lib/libtorch_cuda.so \
           /tmp/gpu-stage/lib/libjnitorch.so; do
    [ -e "$f" ] || missing+=("$f")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "staging incomplete on this machine, missing: ${missing[*]}" >&2
    echo "send the remaining parts (python3 .gpu/recv.py .gpu/parts/pN; each says what it still waits for)" >&2
    exit 3
  fi
}
case "$what" in
  tests|bench|java) staged ;;
esac
case "$what" in
  unpack)
    for p in .gpu/parts/p*; do [ -d "$p" ] && python3 .gpu/recv.py "$p"; done ;;
  tests)
    export SA2VA_REQUIRE_GPU=1   # on this host a GPU test that cannot see the card fails instead of skipping
    dirs=$(ls -d .gpu/app/*/ | tr '\n' ':')
    exec bash .gpu/run.sh -Xmx16g org.junit.platform.console.ConsoleLauncher execute --disable-banner \
      --details=tree --scan-classpath "$dirs" --include-tag gpu "$@" ;;
  bench)
    exec bash .gpu/run.sh -Xmx8g org.openjdk.jmh.Main "$@" ;;
  java)
    exec bash .gpu/run.sh "$@" ;;
  *) echo "unknown: $what" >&2; exit 2 ;;
esac
