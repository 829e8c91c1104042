#!/usr/bin/env python3
"""PyTorch side of the GPU benchmark (bench/gpu/run_device.sh runs it on the device machine).

export MODEL DIR   : torchvision model (random weights, seed 0) -> DIR/MODEL.onnx, DIR/MODEL_in.npy
                     (input 1x3x224x224) and DIR/MODEL_ref.npy (PyTorch eager FP32 output on the GPU).
                     The ONNX batch axis is dynamic: tandem picks the batch with --shape x:Nx3x224x224.
                     --bn-stats N: first set the BatchNorm running statistics from N batches of 8
                     inputs uniform in [-1, 1) (a forward pass in train mode, cumulative averages):
                     random weights with default statistics drive mobilenet_v3_large and
                     efficientnet_b0 past the FP16 range; with their own statistics every layer's
                     output is normalized, as in a trained network. --bn-inputs smooth: those
                     batches are accuracy_common.py's smooth synthetic images instead.
time MODEL DIR     : PyTorch eager and torch.compile latency (median of --iters after warm-up),
                     one JSON line per variant. --half: FP16 weights and input, channels_last
                     (the issue's PyTorch baseline); --batch N: random input of batch N.
compare A.npy B.npy: max |a-b| / max |b| and the cosine of a and b.
FP32 everywhere: TF32 off for cuDNN and matmul unless --tf32.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accuracy_common import agreement, synthetic_inputs  # noqa: E402


def build(name):
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None)
    return m.eval()


def set_tf32(on):
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.set_float32_matmul_precision("high" if on else "highest")


def set_bn_stats(m, batches, inputs="uniform"):
    """BatchNorm running statistics from `batches` forward passes in train mode (no gradients)."""
    for mod in m.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative moving average over the passes
    g = torch.Generator().manual_seed(2)
    m.train()
    with torch.no_grad():
        for i in range(batches):
            if inputs == "smooth":
                m(torch.from_numpy(synthetic_inputs("smooth", 8, 2000 + i)))
            else:
                m(torch.rand(8, 3, 224, 224, generator=g) * 2 - 1)
    return m.eval()


def cmd_export(a):
    set_tf32(False)
    m = build(a.model)
    if a.bn_stats > 0:
        m = set_bn_stats(m, a.bn_stats, a.bn_inputs)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    path = os.path.join(a.dir, a.model + ".onnx")
    try:
        torch.onnx.export(m, (x,), path, opset_version=17, input_names=["x"], output_names=["y"], dynamo=False,
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        how = "torchscript exporter, opset 17"
    except Exception as e:  # the legacy exporter may be gone: the dynamo exporter then
        print("legacy export failed (%s); trying dynamo=True" % e, file=sys.stderr)
        torch.onnx.export(m, (x,), path, opset_version=18, input_names=["x"], output_names=["y"], dynamo=True)
        how = "dynamo exporter, opset 18"
    np.save(os.path.join(a.dir, a.model + "_in.npy"), x.numpy())
    with torch.inference_mode():
        y = m.cuda()(x.cuda()).float().cpu().numpy()
    np.save(os.path.join(a.dir, a.model + "_ref.npy"), y)
    print(json.dumps({"model": a.model, "onnx": path, "export": how, "out_shape": list(y.shape)}))


def time_fn(fn, x, warmup, iters):
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        torch.cuda.synchronize()
        ts = []
        for _ in range(iters):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn(x)
            e.record()
            e.synchronize()
            ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[len(ts) // 2], ts[0]


def cmd_time(a):
    set_tf32(a.tf32)
    torch.backends.cudnn.benchmark = True
    m = build(a.model).cuda()
    if a.batch:
        x = torch.randn(a.batch, 3, 224, 224, generator=torch.Generator().manual_seed(1)).cuda()
    else:
        x = torch.from_numpy(np.load(os.path.join(a.dir, a.model + "_in.npy"))).cuda()
    if a.half:
        m = m.half().to(memory_format=torch.channels_last)
        x = x.half().contiguous(memory_format=torch.channels_last)
    variants = [("eager", m)]
    for mode in a.compile_modes.split(","):
        if not mode:
            continue
        t0 = time.time()
        cm = torch.compile(m, mode=None if mode == "default" else mode)
        with torch.inference_mode():
            cm(x)  # compile
            torch.cuda.synchronize()
        variants.append(("compile:" + mode, cm, time.time() - t0))
    for v in variants:
        name, fn = v[0], v[1]
        med, mn = time_fn(fn, x, a.warmup, a.iters)
        rec = {"model": a.model, "variant": name, "median_ms": round(med, 4), "min_ms": round(mn, 4),
               "iters": a.iters, "tf32": a.tf32, "torch": torch.__version__, "batch": int(x.shape[0]),
               "precision": "fp16" if a.half else ("tf32" if a.tf32 else "fp32"),
               "device": torch.cuda.get_device_name()}
        if len(v) > 2:
            rec["compile_s"] = round(v[2], 1)
        print(json.dumps(rec), flush=True)


def cmd_compare(a):
    cos, rel = agreement(np.load(a.a), np.load(a.b))
    print(json.dumps({"a": a.a, "b": a.b, "max_rel_err": rel, "cosine": cos}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export"); e.add_argument("model"); e.add_argument("dir")
    e.add_argument("--bn-stats", type=int, default=0)
    e.add_argument("--bn-inputs", default="uniform", choices=["uniform", "smooth"])
    t = sub.add_parser("time"); t.add_argument("model"); t.add_argument("dir")
    t.add_argument("--iters", type=int, default=50); t.add_argument("--warmup", type=int, default=10)
    t.add_argument("--tf32", action="store_true")
    t.add_argument("--half", action="store_true"); t.add_argument("--batch", type=int, default=0)
    t.add_argument("--compile-modes", default="default,reduce-overhead")
    c = sub.add_parser("compare"); c.add_argument("a"); c.add_argument("b")
    a = p.parse_args()
    {"export": cmd_export, "time": cmd_time, "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    main()
