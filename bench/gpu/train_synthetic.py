#!/usr/bin/env python3
"""Trains a torchvision architecture on a synthetic 10-class task, then exports it to ONNX.

train_synthetic.py MODEL DIR [--steps N] [--batch B] [--lr L]   (a CUDA device; numpy, torch, torchvision)

The device machine reaches no network and no dataset, and random weights make chaotic networks
(docs/benchmarks.md: half an INT8 step of input noise moves mobilenet_v3_large's FP32 output to
0.98 cosine), so INT8 accuracy is measured on networks trained here instead: MODEL with 10
classes, trained from scratch on accuracy_common.py's grating images (the class is the
grating's orientation), AdamW, bf16 autocast, channels_last, fresh images every step. The
BatchNorm statistics come from the training itself. Prints one JSON line (held-out accuracy,
time) and writes DIR/MODEL.onnx (input x, output y: the 10 logits, batch axis dynamic) and its
weights, DIR/MODEL.pt (a state_dict, for fp16_accuracy.py --trained). --lr: the one-cycle
schedule's peak learning rate (2e-3; mobilenet_v3_large stays at chance with it in 250 steps).
"""
import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accuracy_common import gratings  # noqa: E402


def batch(args):
    seed, n = args
    return gratings(np.random.default_rng(seed), n)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("dir")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    torch.manual_seed(0)
    m = getattr(torchvision.models, a.model)(weights=None, num_classes=10).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=a.lr / 2, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.2)
    t0 = time.time()
    m.train()
    # The images are made on the CPU cores, a batch per worker, ahead of the GPU.
    pool = multiprocessing.get_context("spawn").Pool(max(1, (os.cpu_count() or 2) - 2))
    for step, (x, y) in enumerate(pool.imap(batch, [(5000 + s, a.batch) for s in range(a.steps)])):
        x = torch.from_numpy(x).cuda().to(memory_format=torch.channels_last)
        y = torch.from_numpy(y).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    pool.close()
    train_s = time.time() - t0
    m.eval()
    x, y = gratings(np.random.default_rng(6), 256)
    with torch.inference_mode():
        pred = torch.cat([m(torch.from_numpy(x[i:i + 64]).cuda()).argmax(1) for i in range(0, 256, 64)]).cpu().numpy()
    m = m.float().to(memory_format=torch.contiguous_format)
    torch.save(m.state_dict(), os.path.join(a.dir, a.model + ".pt"))
    path = os.path.join(a.dir, a.model + ".onnx")
    torch.onnx.export(m.cpu(), (torch.from_numpy(x[:1]),), path, opset_version=17, input_names=["x"], output_names=["y"],
                      dynamo=False, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    print(json.dumps({"model": a.model, "trained_steps": a.steps, "batch": a.batch, "peak_lr": a.lr, "last_loss": round(float(loss), 4),
                      "heldout_accuracy": float((pred == y).mean()), "train_s": round(train_s, 1), "onnx": path}),
          flush=True)


if __name__ == "__main__":
    main()
