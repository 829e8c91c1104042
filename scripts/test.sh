#!/usr/bin/env bash
# The test command: installs what is missing, builds tandem twice (Release, and
# AddressSanitizer + UndefinedBehaviorSanitizer), and runs the test suite on both.
# GPU tests carry the label "gpu"; without a GPU they are excluded here and listed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs="$(nproc)"
"$root/scripts/setup.sh"

run_suite() {  # build dir, label regex to exclude, test-name regex to exclude, cmake flags...
  local dir="$1" exclude_labels="$2" exclude_names="$3"; shift 3
  cmake -S "$root" -B "$dir" -DTANDEM_BENCH=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  if ! { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }; then
    echo "== no GPU here: skipping the tests labelled 'gpu':"
    (cd "$dir" && ctest -N -L gpu | grep -E "Test +#" || echo "   (none)")
    exclude_labels="gpu${exclude_labels:+|$exclude_labels}"
  fi
  local filters=()
  [[ -n "$exclude_labels" ]] && filters+=(-LE "$exclude_labels")
  [[ -n "$exclude_names" ]] && filters+=(-E "$exclude_names")
  (cd "$dir" && ctest --output-on-failure -j "$jobs" "${filters[@]}")
}

echo "== Release build and tests"
run_suite "$root/build/release" "" "" -DCMAKE_BUILD_TYPE=Release
echo "== Every Debian package the build used is installed by scripts/setup.sh"
"$root/scripts/check-deps.sh" "$root/build/release"
# The sanitizer pass runs the whole suite again, in the clang build the fuzzers use (ASan, UBSan,
# libFuzzer coverage; -O1 keeps it quick). Its Fuzz.Replay tests run the committed crash inputs.
echo "== Sanitizer build (clang: ASan + UBSan + fuzzer coverage) and tests"
source "$root/scripts/asan-flags.sh"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "$root/build/asan" "" "" "${asan_cmake_flags[@]}"
"$root/scripts/check-deps.sh" "$root/build/asan"
echo "== Fuzzing: every harness, CI budget (seed 1, fixed inputs; scripts/fuzz.sh HOURS runs them at length)"
"$root/scripts/fuzz.sh"
