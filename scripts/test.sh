#!/usr/bin/env bash
# The test command: installs what is missing, builds tandem twice (Release, and
# AddressSanitizer + UndefinedBehaviorSanitizer), and runs the test suite on both.
# GPU tests carry the label "gpu"; without a GPU they are excluded here and listed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs="$(nproc)"
"$root/scripts/setup.sh"

run_suite() {  # build dir, cmake flags...
  local dir="$1"; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DTANDEM_BENCH=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  local gpu_filter=(-LE gpu)
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then gpu_filter=(); fi
  if ((${#gpu_filter[@]})); then
    echo "== no GPU here: skipping the tests labelled 'gpu':"
    (cd "$dir" && ctest -N -L gpu | grep -E "Test +#" || echo "   (none)")
  fi
  (cd "$dir" && ctest --output-on-failure -j "$jobs" "${gpu_filter[@]}")
}

echo "== Release build and tests"
run_suite "$root/build/release"
echo "== Sanitizer build (ASan + UBSan) and tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "$root/build/asan" -DTANDEM_SANITIZE=ON -DTANDEM_CUDA=OFF
