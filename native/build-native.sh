#!/usr/bin/env bash
# Builds libsa2va_native.so (our C++ CPU kernels + CUDA kernels) for the JavaCPP glue to link against.
#   build-native.sh OUT_DIR RESOURCE_DIR [auto|on|off]
# auto (default): CUDA kernels when nvcc is found (NVCC, CUDA_HOME/bin, PATH, /usr/local/cuda/bin),
# otherwise a CPU-only library whose CUDA entry points throw "built without CUDA".
# Called by Maven (native/pom.xml, phase generate-resources); incremental on source timestamps.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?out dir}; RES=${2:?resource dir}; MODE=${3:-auto}
SRC=$HERE/src/main/cpp
mkdir -p "$OUT/obj" "$RES"

NVCC_BIN=""
if [ "$MODE" != "off" ]; then
  for c in "${NVCC:-}" "${CUDA_HOME:+$CUDA_HOME/bin/nvcc}" "$(command -v nvcc || true)" /usr/local/cuda/bin/nvcc; do
    if [ -n "$c" ] && [ -x "$c" ]; then NVCC_BIN=$c; break; fi
  done
  if [ -z "$NVCC_BIN" ] && [ "$MODE" = "on" ]; then echo "[sa2va-native] sa2va.cuda=on but no nvcc found" >&2; exit 1; fi
fi

CXX=${CXX:-g++}
CXXFLAGS=(-std=c++17 -O3 -fPIC -Wall -Wno-unused-function -pthread -I"$SRC")
# Device code for Ampere (sm_80, sm_86), Ada (sm_89), Hopper (sm_90) and PTX for later GPUs.
ARCHS=${SA2VA_CUDA_ARCHS:-"80 86 89 90"}
NVFLAGS=(-std=c++17 -O3 -Xcompiler=-fPIC,-Wall,-Wno-unused-function -I"$SRC" --expt-relaxed-constexpr -lineinfo)
for a in $ARCHS; do NVFLAGS+=("-gencode=arch=compute_$a,code=sm_$a"); done
last=$(echo $ARCHS | awk '{print $NF}')
NVFLAGS+=("-gencode=arch=compute_$last,code=compute_$last")

# Rebuild everything when a header or this script changed (simple and safe).
newest_hdr=$(find "$SRC" -name '*.h' -o -name '*.cuh' | xargs -r stat -c %Y | sort -n | tail -1)
script_t=$(stat -c %Y "$0")
[ "$script_t" -gt "${newest_hdr:-0}" ] && newest_hdr=$script_t
flavour=$([ -n "$NVCC_BIN" ] && echo cuda || echo cpu)
if [ "$(cat "$OUT/flavour" 2>/dev/null || true)" != "$flavour:$ARCHS" ]; then rm -f "$OUT"/obj/*.o; fi
echo "$flavour:$ARCHS" > "$OUT/flavour"

jobs=()
while IFS= read -r f; do
  rel=${f#$SRC/}; obj="$OUT/obj/$(echo "$rel" | tr '/' '_').o"
  if [ -f "$obj" ] && [ "$(stat -c %Y "$obj")" -ge "$(stat -c %Y "$f")" ] && [ "$(stat -c %Y "$obj")" -ge "${newest_hdr:-0}" ]; then continue; fi
  jobs+=("$f|$obj")
done < <(find "$SRC" -name '*.cpp' -o -name '*.cu' | sort)

compile() {
  local f=${1%%|*} obj=${1##*|}
  case "$f" in
    *.cu)
      if [ -n "$NVCC_BIN" ]; then "$NVCC_BIN" "${NVFLAGS[@]}" -c "$f" -o "$obj"
      else "$CXX" "${CXXFLAGS[@]}" -DSA2VA_NO_CUDA -x c++ -c "$f" -o "$obj"; fi ;;
    *) "$CXX" "${CXXFLAGS[@]}" -c "$f" -o "$obj" ;;
  esac
}
export -f compile; export NVCC_BIN CXX
export CXXFLAGS_S="${CXXFLAGS[*]}" NVFLAGS_S="${NVFLAGS[*]}"
if [ ${#jobs[@]} -gt 0 ]; then
  echo "[sa2va-native] compiling ${#jobs[@]} file(s) ($flavour)"
  # Arrays do not cross export: rebuild them in the subshells from the flattened strings.
  printf '%s\n' "${jobs[@]}" | xargs -P "$(nproc)" -I{} bash -c '
    read -ra CXXFLAGS <<< "$CXXFLAGS_S"; read -ra NVFLAGS <<< "$NVFLAGS_S"; '"$(declare -f compile)"'; compile "$1"' _ {}
fi

LIB="$OUT/libsa2va_native.so"
LDLIBS=(-pthread -ldl)
if [ -n "$NVCC_BIN" ]; then
  CUDA_ROOT=""
  # nvcc may be a wrapper script (as /usr/local/bin/nvcc is here): ask it where its toolkit lives.
  NV_TOP=$("$NVCC_BIN" -dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -1)
  for d in "${CUDA_HOME:-}" "$NV_TOP" "$(dirname "$(dirname "$NVCC_BIN")")" /usr/local/cuda; do
    if [ -n "$d" ] && [ -f "$d/lib64/libcudart_static.a" ]; then CUDA_ROOT=$d; break; fi
  done
  [ -f "$CUDA_ROOT/lib64/libcudart_static.a" ] || { echo "[sa2va-native] libcudart_static.a not found under $CUDA_ROOT" >&2; exit 1; }
  LDLIBS=(-L"$CUDA_ROOT/lib64" -lcudart_static -lrt -pthread -ldl)
fi
# -z defs: a CUDA entry point without a definition (or a missing stub) fails here, not at load time.
"$CXX" -shared -o "$LIB.tmp" "$OUT"/obj/*.o "${LDLIBS[@]}" -Wl,-z,defs -Wl,-soname,libsa2va_native.so -Wl,-rpath,'$ORIGIN'
mv "$LIB.tmp" "$LIB"
cp "$LIB" "$RES/"
if [ -n "$NVCC_BIN" ]; then
  echo "[sa2va-native] built WITH CUDA ($($NVCC_BIN --version | tail -1 | sed 's/^Build //'); sm_${ARCHS// /, sm_} + PTX)"
else
  echo "[sa2va-native] built WITHOUT CUDA: no nvcc found (or sa2va.cuda=off). CPU kernels only; CUDA kernels throw."
fi
