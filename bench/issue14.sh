#!/usr/bin/env bash
# Issue 14's acceptance figures on this machine, in one run (numbers for docs/benchmarks.md):
#   1. the CPU and its instruction sets (the figures depend on them: VNNI or not);
#   2. FP32 and INT8 against ONNX Runtime at 2 threads, peak memory (bench/cpu_vs_ort.sh);
#   3. det and cls: FP32, build-dla (graph strategy) and det `build --int8` engines, medians of
#      `tandem bench --threads 2`, alternating rounds, and the ratios to FP32;
#   4. `tandem build-dla` of det with calibration on the 32 committed images, cold (fresh caches),
#      and `tandem compare` of det on 8 images: whole-process wall time;
#   5. det engine load: `tandem bench --iterations 1`'s load line, a fresh process each.
# Usage: bench/issue14.sh [BUILD_DIR] [ROUNDS]   (default build/r, 3). Needs scripts/setup.sh and a
# Release build with the benchmarks (-DTANDEM_BENCH=ON). ORT_ITERS (20), DET_ITERS (30), CLS_ITERS (500).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build/r}" && pwd)"
rounds="${2:-3}"
T="$build/tools/tandem/tandem"
models="$root/.data/models"
[[ -x "$T" ]] || { echo "issue14.sh: no tandem CLI in $build/tools/tandem (build it first)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

echo "== machine: $(date -u +%FT%TZ), commit $(git -C "$root" rev-parse --short HEAD)"
lscpu | grep -E "^Model name|^CPU\(s\)|^Thread" | sed 's/  */ /g'
echo "ISA: $(grep -o -w -E 'avx2|avx512f|avx512bw|avx512_vnni|avx_vnni|amx_int8|f16c|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== FP32 and INT8 against ONNX Runtime (bench/cpu_vs_ort.sh, 2 threads, ROUNDS=$rounds)"
ROUNDS="$rounds" "$root/bench/cpu_vs_ort.sh" "$build" "${ORT_ITERS:-20}"

echo "== engines: tandem bench --threads 2 (median ms), $rounds alternating rounds"
det=(--shape x:1x3x640x640) cls=(--shape x:1x3x48x192)
calib=(--calib-dir "$root/tests/data/calib")
"$T" build "$models/ch_PP-OCRv4_det_infer.onnx" "${det[@]}" -o "$work/det_fp32.engine" > /dev/null
"$T" build-dla "$models/ch_PP-OCRv4_det_infer.onnx" "${det[@]}" --strategy graph "${calib[@]}" \
  --calib "$work/det.cache" -o "$work/det_dla.engine" > /dev/null
"$T" build "$models/ch_PP-OCRv4_det_infer.onnx" "${det[@]}" --int8 --calib "$work/det.cache" -o "$work/det_int8.engine" > /dev/null
"$T" build "$models/ch_ppocr_mobile_v2.0_cls_infer.onnx" "${cls[@]}" -o "$work/cls_fp32.engine" > /dev/null
"$T" build-dla "$models/ch_ppocr_mobile_v2.0_cls_infer.onnx" "${cls[@]}" --strategy graph "${calib[@]}" \
  --resize linear --calib "$work/cls.cache" -o "$work/cls_dla.engine" > /dev/null
median() {  # engine iterations warmup
  "$T" bench "$1" --threads 2 --iterations "$2" --warmup "$3" 2>&1 | sed -n 's/^latency ms:.* median \([0-9.]*\) .*/\1/p'
}
printf "%-6s %10s %10s %10s %10s %10s %8s %8s %8s\n" round det_fp32 det_dla det_int8 cls_fp32 cls_dla "dla/fp32" "int8/fp32" "cls"
for ((r = 1; r <= rounds; ++r)); do
  df=$(median "$work/det_fp32.engine" "${DET_ITERS:-30}" 3); dd=$(median "$work/det_dla.engine" "${DET_ITERS:-30}" 3)
  di=$(median "$work/det_int8.engine" "${DET_ITERS:-30}" 3)
  cf=$(median "$work/cls_fp32.engine" "${CLS_ITERS:-500}" 50); cd_=$(median "$work/cls_dla.engine" "${CLS_ITERS:-500}" 50)
  printf "%-6s %10s %10s %10s %10s %10s %8s %8s %8s\n" "$r" "$df" "$dd" "$di" "$cf" "$cd_" \
    "$(awk "BEGIN{printf \"%.2fx\", $dd/$df}")" "$(awk "BEGIN{printf \"%.2fx\", $di/$df}")" \
    "$(awk "BEGIN{printf \"%.2fx\", $cd_/$cf}")"
done

echo "== build-dla det, calibration on the 32 committed images, cold caches; compare det on 8 images"
export XDG_CACHE_HOME="$work/cache"
/usr/bin/time -f "build-dla det: wall %e s, user %U s, peak RSS %M KiB" \
  "$T" build-dla "$models/ch_PP-OCRv4_det_infer.onnx" "${det[@]}" --strategy graph "${calib[@]}" \
  --calib "$work/det_cold.cache" -o "$work/det_cold.engine" -v 2>&1 | grep -E "calibrat|build-dla det" | tail -3
/usr/bin/time -f "compare det (8 images): wall %e s, user %U s, peak RSS %M KiB" \
  "$T" compare "$models/ch_PP-OCRv4_det_infer.onnx" "${det[@]}" --strategy graph --calib "$work/det_cold.cache" \
  "${calib[@]}" --num-batches 1 2>&1 | tail -3

echo "== det engine load (tandem bench --iterations 1, a fresh process each)"
for e in det_fp32 det_dla det_int8; do
  for ((r = 1; r <= 3; ++r)); do
    printf "%s %s: %s\n" "$e" "$r" "$("$T" bench "$work/$e.engine" --threads 2 --iterations 1 --warmup 0 2>&1 |
      grep -o -m1 'load [0-9.]* ms.*')"
  done
done
