#!/usr/bin/env python3
"""FP16 accuracy of a torchvision model against FP32, tandem beside PyTorch's own FP16.

fp16_accuracy.py MODEL WORKDIR --tandem PATH [--tests K] [--bn-stats N] [--bn-inputs uniform|smooth]
fp16_accuracy.py MODEL WORKDIR --tandem PATH --trained DIR [--tests K]

The model is built as `torch_bench.py export MODEL WORKDIR --bn-stats N --bn-inputs I` builds it
(random weights, BatchNorm statistics of its own) and exported there. K test inputs, 1x3x224x224,
three kinds: uniform in [-1, 1), uniform in [0, 1), and accuracy_common.py's smooth synthetic
images. With --trained DIR: the network train_synthetic.py trained and left in DIR (MODEL.pt,
MODEL.onnx; 10 classes), tested on K grating images of its task. One JSON line per (variant, input kind, test input): cosine and max |a - b| / max |b|
against PyTorch's FP32 output (CUDA, TF32 off) of the same input.

Variants: torch_fp16 (model.half(), the input in half, CUDA), tandem_fp16_<backend> and
tandem_fp32_<backend> (`tandem build [--fp16]`, `tandem run --input`, backends cuda and cpu).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bench  # noqa: E402  (the same model builder as the export)
from accuracy_common import agreement, synthetic_inputs  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("work")
    p.add_argument("--tandem", required=True)
    p.add_argument("--tests", type=int, default=2)
    p.add_argument("--bn-stats", type=int, default=32)
    p.add_argument("--bn-inputs", default="uniform", choices=["uniform", "smooth"])
    p.add_argument("--trained", help="a directory of train_synthetic.py's: MODEL.pt and MODEL.onnx")
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    torch_bench.set_tf32(False)
    if a.trained:
        m, m16 = (trained(a.model, a.trained) for _ in range(2))
        m, m16 = m.cuda(), m16.cuda().half()
        onnx = os.path.join(a.trained, a.model + ".onnx")
        kinds = ["gratings"]
    else:
        m, m16 = random_weights(a)
        onnx = os.path.join(a.work, a.model + ".onnx")
        kinds = ["uniform[-1,1)", "uniform[0,1)", "smooth"]
    measure(a, m, m16, onnx, kinds)


def trained(model, directory):
    m = getattr(torchvision.models, model)(weights=None, num_classes=10)
    m.load_state_dict(torch.load(os.path.join(directory, model + ".pt"), map_location="cpu"))
    return m.eval()


def random_weights(a):
    subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_bench.py"),
                    "export", a.model, a.work, "--bn-stats", str(a.bn_stats),
                    "--bn-inputs", a.bn_inputs], check=True, stdout=subprocess.DEVNULL)
    m = torch_bench.build(a.model)
    if a.bn_stats > 0:
        m = torch_bench.set_bn_stats(m, a.bn_stats, a.bn_inputs)
    m = m.cuda()
    m16 = torch_bench.build(a.model)
    if a.bn_stats > 0:
        m16 = torch_bench.set_bn_stats(m16, a.bn_stats, a.bn_inputs)
    return m, m16.cuda().half()


def measure(a, m, m16, onnx, kinds):
    shape = ["--shape", "x:1x3x224x224"]
    engines = {}
    for prec in ["fp32", "fp16"]:
        engines[prec] = os.path.join(a.work, f"{a.model}_{prec}.engine")
        flags = ["--fp16"] if prec == "fp16" else []
        subprocess.run([a.tandem, "build", onnx, *shape, *flags, "-o", engines[prec]], check=True,
                       stdout=subprocess.DEVNULL)
    for kind in kinds:
        for k in range(a.tests):
            if kind == "gratings":
                x = synthetic_inputs("gratings", 1, 1000 + k)
            elif kind == "smooth":
                x = synthetic_inputs("smooth", 1, 1000 + k)
            else:
                lo = -1.0 if kind == "uniform[-1,1)" else 0.0
                x = np.random.default_rng(1000 + k).uniform(lo, 1, (1, 3, 224, 224)).astype(np.float32)
            xp = os.path.join(a.work, f"x_{kind}_{k}.npy")
            np.save(xp, x)
            with torch.inference_mode():
                ref = m(torch.from_numpy(x).cuda()).float().cpu().numpy()
                out = {"torch_fp16": m16(torch.from_numpy(x).cuda().half()).float().cpu().numpy()}
            for prec, engine in engines.items():
                for be in ["cuda", "cpu"]:
                    d = os.path.join(a.work, f"out_{prec}_{be}_{kind}_{k}")
                    subprocess.run([a.tandem, "run", engine, "--input", f"x={xp}", "--output-dir", d, "--backend", be],
                                   check=True, stdout=subprocess.DEVNULL)
                    out[f"tandem_{prec}_{be}"] = np.load(os.path.join(d, "y.npy"))
            for variant, o in out.items():
                cos, rel = agreement(o, ref)
                print(json.dumps({"model": a.model, "variant": variant, "input": kind, "test": k,
                                  "cosine": round(cos, 7), "max_rel": float(f"{rel:.3e}")}), flush=True)


if __name__ == "__main__":
    main()
