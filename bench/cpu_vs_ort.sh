#!/usr/bin/env bash
# CPU backend vs ONNX Runtime (onnxruntime-node, CPU EP), same machine, same run, 2 threads each:
# median latency of N runs (after 2 warm-ups) and peak RSS (max RSS of each process, from
# /usr/bin/time -v, which includes loading the model and N+2 runs).
# Usage: bench/cpu_vs_ort.sh [BUILD_DIR] [ITERS]   (default build-cpu, 20)
# MODELS="det cls rec" picks rows. INT8 rows (INT8=0 leaves them out): the DLA plan with every DLA chunk in INT8 (seed strategy,
# --max-chunks 0 --min-layers 0: the plan whose INT8 layers are most), calibrated on
# tests/data/calib; tandem runs its engine (`tandem build-dla`, `tandem bench --threads 2`), ONNX
# Runtime runs tandem's own Q/DQ export of the same plan and cache (`tandem export qdq`) at its
# deployment level `all` (QLinearConv). The engine's GPU layers are FP16 where the Q/DQ model keeps
# them FP32, so the rows compare what each runtime makes of the same INT8 plan.
# Needs scripts/setup.sh (models, node, tools/peer/node_modules) and the bench_cpu target.
# OMP_WAIT_POLICY=passive: oneDNN uses OpenMP; on a shared/loaded 2-core box active spinning
# turns every barrier into a time-slice wait (10x slower). Set it to active to see that.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-cpu}"
iters="${2:-20}"
rounds="${ROUNDS:-1}"  # ROUNDS=N: each FP32 row N times, tandem and ORT alternating (noisy shared machines)
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
models="$root/.data/models"
[[ -x "$build/bench/bench_cpu" ]] || cmake --build "$build" -j2 --target bench_cpu >/dev/null
[[ -d "$root/tools/peer/node_modules/onnxruntime-node" ]] || { echo "run scripts/setup.sh first (ONNX Runtime peer)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Same input for both: bench_cpu's seeded uniform [0,1) input, written by node for ORT.
mk_input() {  # file dims...
  node -e '
const fs=require("fs");const [f,...d]=process.argv.slice(1);const dims=d.map(Number);const n=dims.reduce((a,b)=>a*b,1);
const x=new Float32Array(n);let s=12345;for(let i=0;i<n;i++){s=(Math.imul(s,1103515245)+12345)>>>0;x[i]=(s>>>8)/16777216;}
let h=`{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (${dims.join(", ")}), }`;h+=" ".repeat((64-(11+h.length)%64)%64)+"\n";
const p=Buffer.alloc(10);p.write("\x93NUMPY",0,"latin1");p[6]=1;p.writeUInt16LE(h.length,8);fs.writeFileSync(f,Buffer.concat([p,Buffer.from(h,"latin1"),Buffer.from(x.buffer)]));' "$@"
}
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
printf "%-8s %-14s %12s %12s %8s %14s %14s\n" model input "tandem ms" "ORT ms" "speed" "tandem MiB" "ORT MiB"
for spec in "det ch_PP-OCRv4_det_infer.onnx 1x3x640x640" "cls ch_ppocr_mobile_v2.0_cls_infer.onnx 1x3x48x192" \
            "rec ch_PP-OCRv4_rec_infer.onnx 1x3x48x320"; do
  read -r name file shape <<<"$spec"
  [[ " ${MODELS:-det cls rec} " == *" $name "* ]] || continue
  mk_input "$tmp/x.npy" ${shape//x/ }
  t=; o=; tr=0; orr=0
  for ((round = 0; round < rounds; ++round)); do  # alternating; the best median of each, the largest RSS
    /usr/bin/time -v "$build/bench/bench_cpu" "$models/$file" --shape "x:$shape" --input "x=$tmp/x.npy" \
      --iters "$iters" --threads 2 > "$tmp/t.json" 2> "$tmp/t.time"
    /usr/bin/time -v node "$root/tools/peer/ort_run.js" "$models/$file" --input "x=$tmp/x.npy" \
      --iters "$iters" --threads 2 > "$tmp/o.json" 2> "$tmp/o.time"
    t=$(awk -v a="$t" -v b="$(field median_ms < "$tmp/t.json")" 'BEGIN { print (a == "" || b < a) ? b : a }')
    o=$(awk -v a="$o" -v b="$(field median_ms < "$tmp/o.json")" 'BEGIN { print (a == "" || b < a) ? b : a }')
    tr=$(( $(rss "$tmp/t.time") > tr ? $(rss "$tmp/t.time") : tr )); orr=$(( $(rss "$tmp/o.time") > orr ? $(rss "$tmp/o.time") : orr ))
  done
  awk -v n="$name" -v s="$shape" -v t="$t" -v o="$o" -v tr="$tr" -v orr="$orr" \
    'BEGIN { printf "%-8s %-14s %12.2f %12.2f %7.2fx %14.1f %14.1f\n", n, s, t, o, o / t, tr / 1024, orr / 1024 }'
done
tandem="$build/tools/tandem/tandem"
if [[ "${INT8:-1}" != 0 ]]; then
  [[ -x "$tandem" ]] || cmake --build "$build" -j2 --target tandem >/dev/null
  plan=(--strategy seed --max-chunks 0 --min-layers 0)
  for spec in "det ch_PP-OCRv4_det_infer.onnx 1x3x640x640" "cls ch_ppocr_mobile_v2.0_cls_infer.onnx 1x3x48x192" \
              "rec ch_PP-OCRv4_rec_infer.onnx 1x3x48x320"; do
    read -r name file shape <<<"$spec"
    [[ " ${MODELS:-det cls rec} " == *" $name "* ]] || continue
    mk_input "$tmp/x.npy" ${shape//x/ }
    "$tandem" build-dla "$models/$file" --shape "x:$shape" "${plan[@]}" --calib-dir "$root/tests/data/calib" \
      --calib "$tmp/$name.cache" -o "$tmp/$name.engine" > /dev/null
    "$tandem" export qdq "$models/$file" --shape "x:$shape" "${plan[@]}" --calib "$tmp/$name.cache" \
      -o "$tmp/$name.qdq.onnx" > /dev/null
    /usr/bin/time -v "$tandem" bench "$tmp/$name.engine" --input "x=$tmp/x.npy" --iterations "$iters" --warmup 2 \
      --threads 2 --json > "$tmp/t.json" 2> "$tmp/t.time"
    /usr/bin/time -v node "$root/tools/peer/ort_run.js" "$tmp/$name.qdq.onnx" --input "x=$tmp/x.npy" \
      --iters "$iters" --threads 2 > "$tmp/o.json" 2> "$tmp/o.time"
    t=$(node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(j.latency_ms.median)' "$tmp/t.json")
    o=$(field median_ms < "$tmp/o.json")
    tr=$(rss "$tmp/t.time"); orr=$(rss "$tmp/o.time")
    awk -v n="$name-int8" -v s="$shape" -v t="$t" -v o="$o" -v tr="$tr" -v orr="$orr" \
      'BEGIN { printf "%-8s %-14s %12.2f %12.2f %7.2fx %14.1f %14.1f\n", n, s, t, o, o / t, tr / 1024, orr / 1024 }'
  done
fi
echo "(speed = ORT time / tandem time: > 1 means tandem is faster; $iters iterations, 2 threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY; FP32 rows: best median of $rounds alternating rounds)"
echo "($(lscpu | sed -n 's/^Model name: *//p'); ISA: $(grep -o -w -E 'avx512_vnni|avx512f|avx_vnni|avx2' /proc/cpuinfo | sort -u | tr '\n' ' '); load $(cut -d' ' -f1-3 /proc/loadavg))"
