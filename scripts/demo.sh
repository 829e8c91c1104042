#!/usr/bin/env bash
# The main job on the bundled default model (PP-OCR text-direction classifier, 1x3x48x192):
# install, build, then DLA check -> plan -> calibrate + build-dla -> run -> compare -> trtexec.
# No DLA is attached here: layers planned for the DLA run with DLA numerics (INT8/FP16
# emulation) on the CPU backend, and tandem says so.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
build="$root/build/release"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTANDEM_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target tandem
t="$build/tools/tandem/tandem"
model="$root/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
shape="x:1x3x48x192"
calib="$root/tests/data/calib"
out="$root/out/demo"
mkdir -p "$out"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "tandem inspect (first rows; full table in $out/inspect.txt)"
"$t" inspect "$model" --shape "$shape" > "$out/inspect.txt"
head -n 12 "$out/inspect.txt"

step "tandem dla-check --target orin --precision int8 (full table in $out/dla-check.txt)"
"$t" dla-check "$model" --shape "$shape" --target orin > "$out/dla-check.txt"
head -n 1 "$out/dla-check.txt"
grep -iE "loadable" "$out/dla-check.txt" || true

step "tandem plan --strategy graph (summary; full plan in $out/plan.txt)"
"$t" plan "$model" --shape "$shape" --strategy graph > "$out/plan.txt"
grep -iE "^(strategy|case|layers|regions|dla|boundary)" "$out/plan.txt" || tail -n 8 "$out/plan.txt"

# The option names and defaults are the same in every command (docs/cli.md): -s/--shape,
# --calib-dir, --calib, --range/--range-hi, --batch-size, --recalibrate.
# PaddleOCR's preprocessing for this model: images as OpenCV reads them (BGR, every command's
# default, as trtutils), pixel/255 mapped to [-1, 1], linear resize.
prep=(--range -1 --range-hi 1 --resize linear)

step "tandem build-dla: calibrate on $(ls "$calib" | wc -l) text-line images, build the engine"
"$t" build-dla "$model" --shape "$shape" --dla-core 0 --strategy graph "${prep[@]}" \
  --calib-dir "$calib" --calib "$out/cls.cache" --recalibrate -o "$out/cls.engine"

step "tandem run the engine (seeded random input)"
"$t" run "$out/cls.engine" --random-input --seed 1 --output-dir "$out/outputs"
ls "$out/outputs"

step "tandem bench the engine"
"$t" bench "$out/cls.engine" --iterations 50 --warmup 5

step "tandem compare: FP32 reference vs the plan's DLA numerics, on the 32 images"
"$t" compare "$model" --shape "$shape" --strategy graph "${prep[@]}" --calib "$out/cls.cache" \
  --calib-dir "$calib"

step "tandem export trtexec: build the same plan with TensorRT on a Jetson"
"$t" export trtexec "$model" --shape "$shape" --strategy graph --calib "$out/cls.cache" \
  --save-engine cls.engine > "$out/trtexec.sh"
cut -c1-200 "$out/trtexec.sh"
echo
echo "All outputs are in $out"
