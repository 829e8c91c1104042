#!/usr/bin/env python3
"""INT8 accuracy of a model against its FP32 output, tandem beside ONNX Runtime's own INT8.

int8_accuracy.py MODEL.onnx WORKDIR [--tandem PATH [--backend cpu|cuda]] [--calib N] [--tests K]
                [--inputs uniform|smooth|gratings] [--ort-methods minmax,entropy]

One JSON line per (variant, test input): cosine and max |a - b| / max |b| against the FP32 output
of ONNX Runtime (CPU) on the same input. Every variant sees the same data: N calibration samples
and K test samples of --inputs (seeded; a 1x3x224x224 input named x; accuracy_common.py says what
"uniform" and "smooth" are). One more line compares ONNX Runtime's minmax and entropy models'
activation scales (how many differ), so that identical outputs can be told from an ignored method.

Variants:
- ort_int8_minmax / ort_int8_entropy: onnxruntime.quantization.quantize_static, Q/DQ, INT8
  weights per channel and INT8 activations, both symmetric (TensorRT's scheme), on the N samples.
- tandem_int8_<algorithm>: `tandem calibrate --calib-npy` on the N samples, `tandem build --int8`,
  `tandem run --input` (when --tandem is given), calibrating and running on --backend.
- fp32_input_noise: the FP32 model on the test input plus uniform noise of half an INT8 step of
  the input (1/254): how far the network moves under the rounding of its input alone.
- fp32_other_input: the FP32 output of a different test input: the cosine two unrelated inputs
  already have, the floor under which an INT8 output carries nothing of its input.
"""
import argparse
import json
import os
import subprocess

import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accuracy_common import agreement, synthetic_inputs  # noqa: E402


class Samples(CalibrationDataReader):
    def __init__(self, samples):
        self.it = iter([{"x": s[None]} for s in samples])

    def get_next(self):
        return next(self.it, None)


def run_ort(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def activation_scales(path):
    """The scale of every QuantizeLinear (activations; weights are stored quantized), by input name."""
    m = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    return {n.input[0]: init[n.input[1]] for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[1] in init}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("work")
    p.add_argument("--tandem")
    p.add_argument("--backend", default="cpu")
    p.add_argument("--calib", type=int, default=64)
    p.add_argument("--tests", type=int, default=2)
    p.add_argument("--inputs", default="uniform", choices=["uniform", "smooth", "gratings"])
    p.add_argument("--ort-methods", default="minmax,entropy", help="ONNX Runtime's calibration methods, comma-separated")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    name = os.path.splitext(os.path.basename(a.model))[0]
    calib = synthetic_inputs(a.inputs, a.calib, 100)
    tests = [synthetic_inputs(a.inputs, 1, 1000 + k) for k in range(a.tests)]
    calib_npy = os.path.join(a.work, name + "_calib.npy")
    np.save(calib_npy, calib)
    ref = [run_ort(a.model, x) for x in tests]
    out = {}  # variant -> list of outputs, one per test
    out["fp32_other_input"] = [ref[(k + 1) % len(ref)] for k in range(len(ref))]
    noise = np.random.default_rng(7)
    out["fp32_input_noise"] = [run_ort(a.model, x + noise.uniform(-1 / 254, 1 / 254, x.shape).astype(np.float32))
                               for x in tests]
    methods = [(CalibrationMethod.MinMax, "minmax"), (CalibrationMethod.Entropy, "entropy")]
    for method, tag in [mt for mt in methods if mt[1] in a.ort_methods.split(",")]:
        q = os.path.join(a.work, f"{name}_ort_{tag}.onnx")
        quantize_static(a.model, q, Samples(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=method,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
        out[f"ort_int8_{tag}"] = [run_ort(q, x) for x in tests]
    if all(t in a.ort_methods.split(",") for t in ("minmax", "entropy")):
        sm, se = (activation_scales(os.path.join(a.work, f"{name}_ort_{t}.onnx")) for t in ("minmax", "entropy"))
        differ = sum(1 for k in sm if k in se and not np.allclose(sm[k], se[k], rtol=1e-6, atol=0))
        print(json.dumps({"model": name, "ort_activation_scales": len(sm), "differ_minmax_entropy": differ}), flush=True)
    if a.tandem:
        shape = ["--shape", "x:1x3x224x224"]
        for k, x in enumerate(tests):
            np.save(os.path.join(a.work, f"{name}_test{k}.npy"), x)
        for algo in ["entropy", "minmax"]:
            cache = os.path.join(a.work, f"{name}_{algo}.cache")
            engine = os.path.join(a.work, f"{name}_int8_{algo}.engine")
            subprocess.run([a.tandem, "calibrate", a.model, *shape, "--calib-npy", f"x={calib_npy}", "--batch-size", "1",
                            "--algorithm", algo, "--calib", cache, "--backend", a.backend, "-q"], check=True)
            subprocess.run([a.tandem, "build", a.model, *shape, "--int8", "--calib", cache, "-o", engine], check=True,
                           stdout=subprocess.DEVNULL)
            outs = []
            for k in range(len(tests)):
                d = os.path.join(a.work, f"{name}_{algo}_out{k}")
                subprocess.run([a.tandem, "run", engine, "--input", f"x={os.path.join(a.work, f'{name}_test{k}.npy')}",
                                "--output-dir", d, "--backend", a.backend], check=True, stdout=subprocess.DEVNULL)
                outs.append(np.load(os.path.join(d, "y.npy")))
            out[f"tandem_int8_{algo}_{a.backend}"] = outs
    for variant, outs in out.items():
        for k, (o, r) in enumerate(zip(outs, ref)):
            cos, rel = agreement(o, r)
            print(json.dumps({"model": name, "inputs": a.inputs, "variant": variant, "test": k, "cosine": round(cos, 6),
                              "max_rel": float(f"{rel:.3e}")}), flush=True)


if __name__ == "__main__":
    main()
