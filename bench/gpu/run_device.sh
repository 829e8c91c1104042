#!/usr/bin/env bash
# The whole GPU check in ONE device call: gtest gpu tests (layers, models, the cross-backend op
# test, the ONNX node tests), tandem GPU latency on PP-OCR det/cls,
# and tandem vs PyTorch (eager, torch.compile) on torchvision models exported to ONNX there.
# Runs from the repo root on the device machine, with binaries in .carry/ (bench/gpu/pack.sh).
#   run(command="bash bench/gpu/run_device.sh", carry=[".carry", ".data/models/..."])
# Env: MODELS (default "resnet18 mobilenet_v3_small"); ITERS (50); COMPILE_MODES
# (default,reduce-overhead); SKIP_TORCH=1 skips PyTorch timing; PROFILE=N adds per-layer profiles;
# INT8_KERNELS=1 lists the kernels two INT8 tests launch (ncu); INT8_ROWS="model:batch ..." times
# INT8 against FP16 (see below);
# MODELS_FILTER: a gtest filter for the models binary; SKIP_TESTS=1 skips the gtest binaries, SKIP_OPS=1 the op and ONNX node tests, SKIP_PPOCR=1 the
# PP-OCR latency; TABLE=1 runs issue 13's table (tandem FP32, tandem FP16 with its agreement with
# FP32, PyTorch FP16 channels_last eager and torch.compile reduce-overhead) on ROWS
# (model:batch ..., default the issue's seven rows) and prints it with ratios (summarize.py --table);
# TABLE_FP16_ENV="NAME=VALUE ..." adds the FP16 row under each setting (table_env.jsonl);
# ACCURACY=1: FP16 and INT8 against FP32 through the CLI on ACC_MODELS (see below); EXTRA: see the end.
set -u
OUT=${OUT:-/tmp/tandem_gpu_out}
mkdir -p "$OUT"
ITERS=${ITERS:-50}
MODELS=${MODELS:-"resnet18 mobilenet_v3_small"}
COMPILE_MODES=${COMPILE_MODES:-default,reduce-overhead}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
C=${CARRY:-.carry}
if [[ -f $C/lib/libdnnl.so.2.xz && ! -f $C/lib/libdnnl.so.2 ]]; then xz -dk $C/lib/libdnnl.so.2.xz; fi
for f in "$C"/bin/*.xz; do [[ -f $f ]] && xz -df "$f"; done  # pack.sh compresses the binaries
CUDNN_LIB=$(python3 -c "import nvidia.cudnn as m, os; print(os.path.join(list(m.__path__)[0], 'lib'))")
NV=$(python3 -c "import nvidia, os; print(list(nvidia.__path__)[0])")
CUBLAS_LIB=$(dirname "$(find "$NV" -name 'libcublasLt.so.13*' | head -1)" 2>/dev/null)
# NVRTC: cuDNN's runtime fusion engines (the graph API's fused convolutions) compile with it.
NVRTC_LIB=$(dirname "$(find "$NV" -name 'libnvrtc.so*' | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=$PWD/$C/lib:$CUDNN_LIB:${NVRTC_LIB:+$NVRTC_LIB:}${CUBLAS_LIB:-/usr/local/cuda/lib64}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
date -u +%FT%TZ; echo "cudnn lib: $CUDNN_LIB; cublasLt lib: ${CUBLAS_LIB:-none}; nvrtc lib: ${NVRTC_LIB:-none}"
ls "$CUDNN_LIB" | grep -m1 'libcudnn.so.9\.'

if [[ -z "${SKIP_TESTS:-}" ]]; then
echo "== gtest: per-layer"
$C/bin/tandem_tests_cuda --gtest_brief=1 2>&1 | tee "$OUT/gtest_layers.log" | tail -40
if [[ -x $C/bin/tandem_dynamic_shapes_cuda ]]; then
  echo "== gtest: data-dependent shapes (NonZero, NMS)"
  $C/bin/tandem_dynamic_shapes_cuda --gtest_brief=1 2>&1 | tee "$OUT/gtest_dynamic.log" | tail -8
fi
echo "== gtest: models vs CPU backend"
OMP_NUM_THREADS=16 $C/bin/tandem_tests_cuda_models --gtest_filter="${MODELS_FILTER:-*}" 2>&1 | tee "$OUT/gtest_models.log" | grep -E "\[model\]|\[fp16|\[int8|OK|FAILED|PASSED|Failure|error|Expected|Which|actual|no step" | awk "NR <= 80"
fi
if [[ -n "${INT8_KERNELS:-}" ]]; then
  # Which kernels the INT8 convolutions launch (cuBLASLt's INT8 GEMMs name their tensor-core
  # instruction: imma / s8): Nsight Compute's kernel names for two INT8 tests.
  echo "== INT8 kernels (ncu)"
  ncu --clock-control none --metrics gpu__time_duration.sum $C/bin/tandem_tests_cuda_models \
    --gtest_filter='CudaInt8.Conv1x1*:CudaInt8.Conv3x3*' 2>&1 | grep ", Context" | cut -c1-160 | sort | uniq -c | head -30
fi

if [[ -z "${SKIP_OPS:-}" && -x $C/bin/tandem_backend_ops_cuda && -f $C/testdata.tar.xz ]]; then
  # The tests find their tables under the source path they were built from: point it here.
  src=$(strings $C/bin/tandem_conformance_cuda | grep -m1 -o '^/[^ ]*/tests/conformance/' | sed 's|/tests/conformance/||')
  [[ -n "$src" && ! -e "$src" ]] && mkdir -p "$(dirname "$src")" && ln -s "$PWD" "$src"
  tar -xJf $C/testdata.tar.xz -C /usr/share
  echo "== gtest: cross-backend op test (cuda vs the CPU reference)"
  OMP_NUM_THREADS=16 $C/bin/tandem_backend_ops_cuda --gtest_brief=1 2>&1 | tee "$OUT/gtest_ops.log" | tail -28
  echo "== gtest: ONNX node tests on the CUDA backend"
  OMP_NUM_THREADS=16 $C/bin/tandem_conformance_cuda 2>&1 | tee "$OUT/gtest_conformance.log" | grep -E "conformance \(|changed status|PASSED|FAILED" | head -8
fi

if [[ -z "${SKIP_TESTS:-}" && -x $C/bin/tandem_tests_cli_quant_backend_gpu ]]; then
  echo "== gtest: calibrate / compare / build-dla --backend cuda (CLI)"
  TANDEM_CLI=$PWD/$C/bin/tandem TANDEM_MODELS_DIR=$PWD/.data/models OMP_NUM_THREADS=16 \
    $C/bin/tandem_tests_cli_quant_backend_gpu --gtest_brief=1 2>&1 | tee "$OUT/gtest_cli_gpu.log" | tail -12
fi

echo "== CLI: --backend cuda through the plugin ($C/bin/libtandem_cuda.so, next to the CLI)"
T=$C/bin/tandem
if [[ -x $T && -f $C/bin/libtandem_cuda.so ]]; then
  $T --version
  $T build .data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx -o "$OUT/cls.engine" -s x:1x3x48x192 2>&1 | tail -1
  python3 -c "import numpy as np; np.save('$OUT/cls_x.npy', np.random.default_rng(0).standard_normal((1,3,48,192)).astype(np.float32))"
  for be in cpu cuda; do
    mkdir -p "$OUT/cls_$be"
    $T run "$OUT/cls.engine" --input x="$OUT/cls_x.npy" --output-dir "$OUT/cls_$be" --backend $be 2>&1 | tail -2
  done
  python3 -c "
import glob, numpy as np
for c in sorted(glob.glob('$OUT/cls_cpu/*.npy')):
    a, b = np.load(c), np.load(c.replace('cls_cpu', 'cls_cuda'))
    print('cli cpu vs cuda', c.split('/')[-1], 'max abs diff', float(np.abs(a - b).max()))
"
  rm -rf "$OUT/cls_cpu" "$OUT/cls_cuda" "$OUT/cls.engine" "$OUT/cls_x.npy"
else
  echo "no CLI + plugin in $C/bin (bench/gpu/pack.sh): skipped"
fi

B=$C/bin/tandem_cuda_bench
: > "$OUT/bench.jsonl"
if [[ -n "${BISECT:-}" ]]; then
  # BISECT="model ..." (torchvision names or .data/models files): where FP16 departs from FP32.
  W=/tmp/tvb; mkdir -p $W
  for m in $BISECT; do
    # PP-OCR files (x:1x3x640x640 unless BISECT_SHAPE): the emulation check only.
    if [[ -f .data/models/$m ]]; then f=.data/models/$m; shape=${BISECT_SHAPE:-x:1x3x640x640}
    else [[ -f $W/$m.onnx ]] || python3 bench/gpu/torch_bench.py export $m $W 2>&1 | tail -1; f=$W/$m.onnx; shape=x:1x3x224x224
      echo "== bisect $m"
      $B $f --shape $shape --bisect-fp16 ${BISECT_POINTS:-24} 2>&1 | tee "$OUT/bisect_${m%%.onnx}.txt"
    fi
    $B $f --shape $shape --iters 5 --fp16 --emulate-fp16 --check-fp32 2>&1 | grep -o '"precision.*'
  done
fi
if [[ -n "${TABLE:-}" ]]; then
  echo "== issue 13 table: tandem FP32 / FP16, PyTorch FP16 channels_last eager / torch.compile"
  ROWS=${ROWS:-"resnet50:1 resnet50:32 resnet50:256 mobilenet_v3_large:1 mobilenet_v3_large:32 efficientnet_b0:1 efficientnet_b0:32"}
  W=/tmp/tvb; mkdir -p $W; : > "$OUT/table.jsonl"
  for row in $ROWS; do
    m=${row%%:*}; n=${row##*:}; it=$ITERS; [[ $n -ge 256 ]] && it=20
    [[ -f $W/$m.onnx ]] || python3 bench/gpu/torch_bench.py export $m $W 2>&1 | tail -1
    $B $W/$m.onnx --shape x:${n}x3x224x224 --iters $it 2>&1 | tee -a "$OUT/table.jsonl"
    $B $W/$m.onnx --shape x:${n}x3x224x224 --iters $it --fp16 --check-fp32 2>&1 | tee -a "$OUT/table.jsonl"
    # TABLE_FP16_ENV="NAME=VALUE ...": the FP16 row again under each setting (e.g.
    # TANDEM_CUDA_FUSE_RESIDUAL=0), tagged "env", into table_env.jsonl (not the table).
    for v in ${TABLE_FP16_ENV:-}; do
      env "$v" $B $W/$m.onnx --shape x:${n}x3x224x224 --iters $it --fp16 2>&1 | sed "s/^{/{\"env\": \"$v\", /" | tee -a "$OUT/table_env.jsonl"
    done
    if [[ -n "${PROFILE:-}" ]]; then
      $B $W/$m.onnx --shape x:${n}x3x224x224 --iters 5 --fp16 --profile "$PROFILE" 2> "$OUT/profile_${m}_b$n.txt" > /dev/null
      grep -E "profile|kind" "$OUT/profile_${m}_b$n.txt" | head -30
    fi
    [[ -n "${SKIP_TORCH:-}" ]] && continue
    python3 bench/gpu/torch_bench.py time $m $W --iters $it --half --batch $n --compile-modes reduce-overhead 2>&1 | grep '^{' | tee -a "$OUT/table.jsonl"
  done
  python3 bench/gpu/summarize.py --table "$OUT/table.jsonl" | tee "$OUT/table.md"
fi
if [[ -n "${INT8_ROWS:-}" ]]; then
  # INT8_ROWS="resnet50:256 ...": tandem INT8 (as `build --int8`: real INT8 convolutions, FP16
  # elsewhere, scales from a batch-1 FP32 run) with its agreement with FP32, the same with the
  # INT8 emulation, and tandem FP16, per row.
  echo "== INT8 rows"
  W=/tmp/tvb; mkdir -p $W; : > "$OUT/int8.jsonl"
  for row in $INT8_ROWS; do
    m=${row%%:*}; n=${row##*:}; it=$ITERS; [[ $n -ge 256 ]] && it=20
    [[ -f $W/$m.onnx ]] || python3 bench/gpu/torch_bench.py export $m $W 2>&1 | tail -1
    for flags in "--int8 --check-fp32" "--int8 --emulate-int8" "--fp16"; do
      $B $W/$m.onnx --shape x:${n}x3x224x224 --iters $it $flags 2>&1 | tee -a "$OUT/int8.jsonl"
    done
    if [[ -n "${PROFILE:-}" ]]; then
      $B $W/$m.onnx --shape x:${n}x3x224x224 --iters 5 --int8 --profile "$PROFILE" 2> "$OUT/profile_int8_${m}_b$n.txt" > /dev/null
      grep -E "profile|kind" "$OUT/profile_int8_${m}_b$n.txt" | head -30
    fi
  done
fi
if [[ -n "${ACCURACY:-}" ]]; then
  # ACCURACY=1: issue 13's accuracy item through the CLI, as a user runs it: each model of
  # ACC_MODELS exported with BatchNorm statistics of its own (torch_bench.py export --bn-stats),
  # INT8 calibrated on 64 synthetic batches on the GPU (`tandem calibrate --backend cuda`),
  # FP32 / FP16 / INT8 engines at batch 1 (`tandem build`), run on the GPU on the same seeded
  # inputs (`tandem run --backend cuda`), FP16 and INT8 against FP32: cosine, max relative error.
  # ACC_INPUTS=smooth: the statistics, the calibration and the tests on accuracy_common.py's
  # smooth synthetic images instead of uniform noise (the CLI part, uniform only, then skipped);
  # ACC_INPUTS=gratings: each model trained first on train_synthetic.py's 10-class grating task
  # (ACC_STEPS steps, default 300; ACC_LR its peak learning rate, default 2e-3,
  # ACC_LR_<model> and ACC_STEPS_<model> for one model), calibrated and
  # tested on its images (ACC_FP16 then compares FP16 on the trained network);
  # ACC_FP16="model ..." adds fp16_accuracy.py (tandem's FP16 beside PyTorch's) for those models.
  inputs=${ACC_INPUTS:-uniform}
  echo "== accuracy: FP16 and INT8 against FP32 (tandem CLI, --backend cuda), inputs $inputs"
  W=/tmp/tvacc_$inputs; mkdir -p $W; : > "$OUT/accuracy_$inputs.jsonl"
  T=$C/bin/tandem
  for m in ${ACC_MODELS:-resnet50 mobilenet_v3_large efficientnet_b0}; do
    if [[ $inputs == gratings ]]; then  # trained on the 10-class grating task (train_synthetic.py)
      lr_of_model=ACC_LR_$m; lr=${!lr_of_model:-${ACC_LR:-2e-3}}  # ACC_LR_<model> overrides ACC_LR
      steps_of_model=ACC_STEPS_$m; steps=${!steps_of_model:-${ACC_STEPS:-300}}  # and ACC_STEPS_<model>
      python3 bench/gpu/train_synthetic.py $m $W --steps $steps --lr $lr 2>&1 | tail -1 |
        tee -a "$OUT/accuracy_$inputs.jsonl"
    else
      python3 bench/gpu/torch_bench.py export $m $W --bn-stats 32 --bn-inputs $inputs 2>&1 | tail -1
    fi
    if [[ $inputs == uniform ]]; then
      S="--shape x:1x3x224x224"
      $T calibrate $W/$m.onnx $S --synthetic 64 --batch-size 1 --range -1 --range-hi 1 --calib $W/$m.cache \
        --backend cuda 2>&1 | tail -1
      $T build $W/$m.onnx $S -o $W/${m}_fp32.engine > /dev/null || echo "build fp32 $m failed"
      $T build $W/$m.onnx $S --fp16 -o $W/${m}_fp16.engine > /dev/null || echo "build fp16 $m failed"
      $T build $W/$m.onnx $S --int8 --calib $W/$m.cache -o $W/${m}_int8.engine > /dev/null || echo "build int8 $m failed"
      for seed in 3 4; do
        for p in fp32 fp16 int8; do
          $T run $W/${m}_$p.engine --backend cuda --random-input --seed $seed --output-dir $W/${m}_${p}_$seed > /dev/null ||
            echo "run $p $m failed"
        done
        for p in fp16 int8; do
          python3 bench/gpu/torch_bench.py compare $W/${m}_${p}_$seed/y.npy $W/${m}_fp32_$seed/y.npy |
            sed "s/^{/{\"model\": \"$m\", \"precision\": \"$p\", \"seed\": $seed, /" | tee -a "$OUT/accuracy_$inputs.jsonl"
        done
      done
    fi
    # The same INT8 question with ONNX Runtime's own INT8 (quantize_static, the same 64 samples) and
    # the FP32 network's own sensitivity beside it (bench/gpu/int8_accuracy.py).
    [[ -z "${ACC_SKIP_INT8:-}" ]] &&  # ACC_SKIP_INT8=1: FP16 only (ACC_FP16)
    python3 bench/gpu/int8_accuracy.py $W/$m.onnx $W/peer --tandem $PWD/$T --backend cuda --inputs $inputs \
      --ort-methods ${ACC_ORT:-minmax,entropy} 2>&1 |
      grep '^{' | tee -a "$OUT/accuracy_$inputs.jsonl"
    if [[ " ${ACC_FP16:-} " == *" $m "* ]]; then
      if [[ $inputs == gratings ]]; then fp16_from=(--trained $W --tests 4); else fp16_from=(--bn-inputs $inputs); fi
      python3 bench/gpu/fp16_accuracy.py $m $W/fp16 --tandem $PWD/$T "${fp16_from[@]}" 2>&1 |
        grep '^{' | tee -a "$OUT/accuracy_$inputs.jsonl"
    fi
  done
fi
if [[ -z "${SKIP_PPOCR:-}" ]]; then
echo "== tandem GPU latency: PP-OCR"
for spec in "ch_PP-OCRv4_det_infer.onnx x:1x3x640x640" "ch_ppocr_mobile_v2.0_cls_infer.onnx x:1x3x48x192"; do
  set -- $spec
  for flag in "" "--tf32" "--no-graph" "--no-fuse" "--cudnn-depthwise" "--fp16 --check-fp32"; do
    $B .data/models/$1 --shape $2 --iters "$ITERS" $flag 2>&1 | tee -a "$OUT/bench.jsonl"
  done
  if [[ -n "${PROFILE:-}" ]]; then
    $B .data/models/$1 --shape $2 --iters 5 --profile "$PROFILE" --tactics "$OUT/tactics_${1%%.onnx}.jsonl" 2> "$OUT/profile_${1%%.onnx}.txt" > /dev/null
    head -22 "$OUT/profile_${1%%.onnx}.txt"; grep "kind" "$OUT/profile_${1%%.onnx}.txt"
  fi
done
fi

echo "== torchvision: export, tandem GPU, PyTorch eager / torch.compile"
W=/tmp/tvb; mkdir -p $W
for m in $MODELS; do
  python3 bench/gpu/torch_bench.py export $m $W 2>&1 | tail -2
  if [[ -f $W/$m.onnx ]]; then
    $B $W/$m.onnx --shape x:1x3x224x224 --input $W/${m}_in.npy --output $W/${m}_tandem.npy --iters "$ITERS" 2>&1 | tee -a "$OUT/bench.jsonl"
    $B $W/$m.onnx --shape x:1x3x224x224 --iters "$ITERS" --tf32 2>&1 | tee -a "$OUT/bench.jsonl"
    [[ -f $W/${m}_tandem.npy ]] && python3 bench/gpu/torch_bench.py compare $W/${m}_tandem.npy $W/${m}_ref.npy | tee -a "$OUT/bench.jsonl"
    if [[ -n "${PROFILE:-}" ]]; then
      $B $W/$m.onnx --shape x:1x3x224x224 --iters 5 --profile "$PROFILE" 2> "$OUT/profile_$m.txt" > /dev/null
      head -12 "$OUT/profile_$m.txt"
    fi
  fi
  [[ -n "${SKIP_TORCH:-}" ]] && continue
  python3 bench/gpu/torch_bench.py time $m $W --iters "$ITERS" --compile-modes "$COMPILE_MODES" 2>&1 | grep '^{' | tee -a "$OUT/bench.jsonl"
  python3 bench/gpu/torch_bench.py time $m $W --iters "$ITERS" --compile-modes "" --tf32 2>&1 | grep '^{' | tee -a "$OUT/bench.jsonl"
done
# EXTRA="commands": run here, with the libraries, $B (the bench binary) and $C/bin/tandem set up:
# one-off measurements that need no script of their own (docs/benchmarks.md quotes them whole).
if [[ -n "${EXTRA:-}" ]]; then echo "== extra: $EXTRA"; eval "$EXTRA"; fi
echo "== summary"
python3 bench/gpu/summarize.py "$OUT/bench.jsonl" | tee "$OUT/summary.md"
# At most 8 files come back from the device: profiles and tactic dumps travel as one archive.
(cd "$OUT" && shopt -s nullglob && f=(profile_* tactics_* bisect_*) && ((${#f[@]})) && tar czf details.tgz "${f[@]}" && rm -f "${f[@]}")
ls "$OUT"
