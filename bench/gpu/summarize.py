#!/usr/bin/env python3
"""Markdown table from bench/gpu/run_device.sh's JSON lines: latency per model and variant, and
each variant's time over tandem's (FP32, CUDA graph). Usage: summarize.py bench.jsonl"""
import json
import os
import sys

rows, errs = [], {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "max_rel_err" in r:
        errs[os.path.basename(r["a"]).replace("_tandem.npy", "")] = r["max_rel_err"]
        continue
    model = os.path.basename(r["model"]).replace(".onnx", "")
    if "variant" in r:
        variant = "pytorch " + r["variant"] + (" tf32" if r.get("tf32") else "")
    else:
        variant = ("tandem" + (" tf32" if r.get("tf32") else "") + ("" if r.get("cuda_graph") else " no-graph")
                   + ("" if r.get("fuse", True) else " no-fuse")
                   + (" cudnn-depthwise" if r.get("own_depthwise", -1) == 0 else ""))
    rows.append((model, variant, r["median_ms"], r))
base = {m: t for m, v, t, _ in rows if v == "tandem"}
print("| model | variant | median ms | vs tandem FP32 |")
print("|---|---|---:|---:|")
for m, v, t, r in rows:
    ratio = "%.2fx" % (t / base[m]) if m in base and base[m] > 0 else "-"
    print("| %s | %s | %.3f | %s |" % (m, v, t, ratio))
for m, e in errs.items():
    print("\n%s: tandem GPU output vs PyTorch eager FP32: max rel err %.2e" % (m, e))
dev = next((r.get("device") for _, _, _, r in rows if r.get("device")), "")
print("\ndevice: %s" % dev)
