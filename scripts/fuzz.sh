#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser tandem has (docs/reliability.md): a clang build with
# libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer (build/fuzz), seed corpora made from
# ONNX's conformance models, generated graphs, small engines and caches, then each harness for a
# time budget. Executions per harness are appended to build/fuzz/stats.tsv; a crash, leak, UB
# report, timeout or out-of-memory stops with its input in build/fuzz/artifacts/<harness>/.
# Usage: scripts/fuzz.sh [HOURS]          (default: the short CI budget: seed 1, a fixed number of
#                                          inputs per harness, about two minutes in all)
#        FUZZ_ONLY=npy scripts/fuzz.sh 0.1 (one harness)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/asan"  # the instrumented build scripts/test.sh also tests
harnesses=(onnx_import onnx_plan onnx_gen engine caches npy image cli_args)
[[ -n "${FUZZ_ONLY:-}" ]] && harnesses=($FUZZ_ONLY)
# CI budget (no argument): a fixed seed and a fixed number of inputs per harness (about 15 s each
# here), so a CI run is reproducible: it fails only on a change that breaks something, and the
# failing input comes back the same. With HOURS: time budgets and fresh random seeds, to explore.
declare -A ci_runs=([onnx_import]=150000 [onnx_plan]=100000 [onnx_gen]=5000 [engine]=400000
                    [caches]=300000 [npy]=500000 [image]=20000 [cli_args]=1000000)
if [[ $# -ge 1 ]]; then
  secs=$(awk -v h="$1" -v n="${#harnesses[@]}" 'BEGIN { s = int(h * 3600 / n); print (s < 1 ? 1 : s) }')
  ci=0
else
  secs=120  # a ceiling only: the CI budget counts inputs
  ci=1
fi
command -v clang++-14 >/dev/null && [[ -f /usr/lib/llvm-14/lib/libFuzzer.a || -d /usr/lib/llvm-14/lib/clang ]] \
  || "$root/scripts/setup.sh" >/dev/null

source "$root/scripts/asan-flags.sh"
cmake -S "$root" -B "$build" "${asan_cmake_flags[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target tandem $(printf 'fuzz_%s ' "${harnesses[@]}") tandem_diff_ort >/dev/null

# ---- Seed corpora (made, never committed; the committed regressions are in fuzz/regressions) ----
corpus="$build/corpus"
tandem="$build/tools/tandem/tandem"
export ASAN_OPTIONS=detect_leaks=0
seed() { mkdir -p "$corpus/$1"; }
if [[ ! -f "$corpus/.done" ]]; then
  for h in "${harnesses[@]}" onnx_import onnx_plan engine caches npy image cli_args; do seed "$h"; done
  testdata=/usr/share/libonnx-testdata/data/node
  i=0
  for m in "$testdata"/*/model.onnx; do
    cp "$m" "$corpus/onnx_import/$(basename "$(dirname "$m")").onnx"
    i=$((i + 1))
  done
  "$build/fuzz/tandem_diff_ort" gen 64 7 "$corpus/gen" >/dev/null
  cp "$corpus"/gen/*.onnx "$corpus/onnx_import/" && cp "$corpus"/gen/*.onnx "$corpus/onnx_plan/"
  cp "$corpus"/gen/*.x.npy "$corpus/npy/"
  for t in test_conv_with_strides_padding test_relu test_maxpool_2d_default test_add_bcast test_softmax_axis_1; do
    [[ -f "$testdata/$t/model.onnx" ]] || continue
    cp "$testdata/$t/model.onnx" "$corpus/onnx_plan/$t.onnx"
    "$tandem" build "$testdata/$t/model.onnx" -o "$corpus/engine/$t.engine" --optimization-level 0 >/dev/null 2>&1 || true
    "$tandem" build "$testdata/$t/model.onnx" -o "$corpus/engine/$t.int8.engine" --int8 --synthetic-calibration \
      --optimization-level 1 --timing-cache "$corpus/gen/$t.timing" \
      --calibration-cache "$corpus/gen/$t.cache" >/dev/null 2>&1 || true
    [[ -f "$corpus/gen/$t.cache" ]] && { printf '\x00'; cat "$corpus/gen/$t.cache"; } > "$corpus/caches/$t.calib"
    [[ -f "$corpus/gen/$t.timing" ]] && { printf '\x01'; cat "$corpus/gen/$t.timing"; } > "$corpus/caches/$t.timing"
  done
  for p in "$root"/tests/data/calib/text_0*.png; do { printf '\x01'; cat "$p"; } > "$corpus/image/$(basename "$p")"; done
  for s in x:1x3x640x640 'images:1,3,224,224' 'a:b:1x2' x:fp16:nhwc y:int8 int8 fp16 dla GPU graph xavier \
           keep letterbox entropy 'x:1x3x48x192,y:1x2'; do
    printf '%s' "$s" > "$corpus/cli_args/$(printf '%s' "$s" | md5sum | cut -c1-12)"
  done
  rm -rf "$corpus/gen"
  touch "$corpus/.done"
fi

# ---- Run -----------------------------------------------------------------------------------
stats="$build/stats.tsv"
[[ -f "$stats" ]] || printf 'date\tcommit\tharness\tseconds\texecutions\tcoverage\tfeatures\tresult\n' > "$stats"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
for h in "${harnesses[@]}"; do
  art="$build/artifacts/$h/"
  mkdir -p "$art" "$corpus/$h"
  dict=()
  [[ "$h" == onnx_import || "$h" == onnx_plan ]] && dict=(-dict="$root/fuzz/onnx.dict")
  regress=()
  [[ -d "$root/fuzz/regressions/$h" ]] && regress=("$root/fuzz/regressions/$h")
  log="$build/$h.log"
  result=ok
  t0=$SECONDS
  budget=(-max_total_time="$secs")
  ((ci)) && budget+=(-seed=1 -runs="${ci_runs[$h]}")
  "$build/fuzz/fuzz_$h" "$corpus/$h" "${regress[@]}" "${dict[@]}" "${budget[@]}" -timeout=20 \
    -rss_limit_mb=3072 -malloc_limit_mb=2048 -max_len=262144 -artifact_prefix="$art" -print_final_stats=1 \
    > "$log" 2>&1 || { result=FAILED; failed=1; }
  took=$((SECONDS - t0))
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | awk '{ print $2 }')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | awk '{ print $2 }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$commit" "$h" "$took" "${execs:-0}" "${cov:-0}" \
    "${ft:-0}" "$result" >> "$stats"
  printf '%-12s %6ss  %10s executions  cov %6s  %s\n' "$h" "$took" "${execs:-0}" "${cov:-0}" "$result"
  if [[ "$result" != ok ]]; then grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -n 5 || true; fi
done
awk -F'\t' 'NR > 1 { s += $5 } END { printf "total executions (all runs in %s): %d\n", FILENAME, s }' "$stats"
exit "$failed"
