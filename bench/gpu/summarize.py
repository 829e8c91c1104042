#!/usr/bin/env python3
"""Markdown table from bench/gpu/run_device.sh's JSON lines: latency per model and variant, and
each variant's time over tandem's (FP32, CUDA graph). Usage: summarize.py bench.jsonl
summarize.py --table table.jsonl: issue 13's table (TABLE=1): images/s per (model, batch) for
tandem FP32, tandem FP16, PyTorch FP16 channels_last eager and torch.compile reduce-overhead,
tandem FP16 over each, and tandem FP16's agreement with its FP32 (cosine, max rel error)."""
import json
import os
import sys


def table(path):
    cells = {}  # (model, batch) -> {column: record}
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        key = (os.path.basename(r["model"]).replace(".onnx", ""), int(r.get("batch", 1)))
        col = ("torch " + r["variant"]) if "variant" in r else ("tandem " + r.get("precision", "fp32"))
        cells.setdefault(key, {})[col] = r

    def ips(c, col):
        r = c.get(col)
        return key[1] * 1000.0 / r["median_ms"] if r and r["median_ms"] > 0 else None

    fmt = lambda v: "-" if v is None else "{:,.0f}".format(v)
    ratio = lambda a, b: "-" if a is None or b is None else "%.2fx" % (a / b)
    print("| model | batch | tandem fp32 | tandem fp16 | torch fp16 eager | torch fp16 compile (reduce-overhead) "
          "| fp16 / compile | fp16 / eager | fp16 / fp32 | fp16 vs fp32: cosine, max rel |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for key in cells:
        c = cells[key]
        f32, f16 = ips(c, "tandem fp32"), ips(c, "tandem fp16")
        eager, comp = ips(c, "torch eager"), ips(c, "torch compile:reduce-overhead")
        h = c.get("tandem fp16", {})
        acc = ("%.6f, %.2e" % (h["cosine_vs_fp32"], h["max_rel_vs_fp32"])) if "cosine_vs_fp32" in h else "-"
        print("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (key[0], key[1], fmt(f32), fmt(f16), fmt(eager),
              fmt(comp), ratio(f16, comp), ratio(f16, eager), ratio(f16, f32), acc))
    devs = {r.get("device", "").split("|")[0] for c in cells.values() for r in c.values() if r.get("device")}
    print("\nimages/s = batch / median device time (CUDA events, no host copies); device: %s" % ", ".join(sorted(devs)))


if len(sys.argv) > 2 and sys.argv[1] == "--table":
    table(sys.argv[2])
    sys.exit(0)

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
