#!/usr/bin/env python3
"""Verify tandem's ONNX importer and CPU backend on real torch.onnx exports.

For each model (torchvision classifiers with random weights and a tiny YOLOv8-like detector) and
opset, on a machine with PyTorch, torchvision, onnx and (optionally) onnxruntime:
  1. torch.onnx.export (classic exporter, dynamo=False), eval mode, batch 1;
  2. `tandem inspect model.onnx` (exit code, layer count);
  3. `tandem run model.onnx --input <name>=in.npy --output-dir d` (CPU backend);
  4. compare with PyTorch's outputs (max abs err, rel err = max|a-b| / max|b|) and with ONNX
     Runtime's where it is installed.
One table line per (model, opset); the table also goes to OUT/summary.txt.

When tandem disagrees with ONNX Runtime (rel err > --tol), the model is re-exported with every
float intermediate as a graph output and the first node whose output disagrees is reported
(--no-localize turns this off). Failing models can be saved (weights coarsened so that xz
shrinks them) with --save-failing for debugging where PyTorch is not installed.

Usage:
  python3 scripts/verify_torch_models.py --tandem build/tools/tandem/tandem --out /tmp/verify \
      [--models resnet18,yolo_tiny] [--opsets 11,17] [--threads 16]
"""
import argparse
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
import traceback

import numpy as np

CLASSIFIERS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf",
               "shufflenet_v2_x0_5", "convnext_tiny", "densenet121", "squeezenet1_0"]
ALL_MODELS = CLASSIFIERS + ["yolo_tiny"]


# ---------------------------------------------------------------------------------------------
# A tiny YOLOv8-like detector: Conv+BN+SiLU, C2f (Split/Concat), SPPF (MaxPool), nearest Upsample,
# and a decoupled head with DFL (Reshape/Transpose/Softmax/Conv), Slice and Concat.
def make_yolo_tiny(nc=8, reg_max=16):
    import torch
    import torch.nn as nn

    class Conv(nn.Module):
        def __init__(self, c1, c2, k=1, s=1):
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
            self.bn = nn.BatchNorm2d(c2)
            self.act = nn.SiLU()

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    class Bottleneck(nn.Module):
        def __init__(self, c, shortcut=True):
            super().__init__()
            self.cv1 = Conv(c, c, 3)
            self.cv2 = Conv(c, c, 3)
            self.add = shortcut

        def forward(self, x):
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class C2f(nn.Module):
        def __init__(self, c1, c2, n=1, shortcut=True):
            super().__init__()
            self.c = c2 // 2
            self.cv1 = Conv(c1, 2 * self.c, 1)
            self.cv2 = Conv((2 + n) * self.c, c2, 1)
            self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

        def forward(self, x):
            y = list(self.cv1(x).chunk(2, 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c1, c2, k=5):
            super().__init__()
            c_ = c1 // 2
            self.cv1 = Conv(c1, c_, 1)
            self.cv2 = Conv(c_ * 4, c2, 1)
            self.m = nn.MaxPool2d(k, 1, k // 2)

        def forward(self, x):
            x = self.cv1(x)
            y1 = self.m(x)
            y2 = self.m(y1)
            return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))

    class DFL(nn.Module):
        def __init__(self, c1):
            super().__init__()
            self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
            self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
            self.c1 = c1

        def forward(self, x):
            b, _, a = x.shape
            return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)

    class Detect(nn.Module):
        def __init__(self, ch, strides):
            super().__init__()
            self.nc, self.reg_max = nc, reg_max
            self.no = nc + 4 * reg_max
            self.strides = strides
            c2, c3 = max(16, ch[0] // 4, 4 * reg_max), max(ch[0], nc)
            self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch)
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
            self.dfl = DFL(reg_max)

        def forward(self, xs):
            shapes = [x.shape for x in xs]
            xs = [torch.cat((self.cv2[i](x), self.cv3[i](x)), 1) for i, x in enumerate(xs)]
            b = xs[0].shape[0]
            # anchors and strides as constants (the export traces them; fixed input size)
            anchors, strides = [], []
            for (_, _, h, w), s in zip(shapes, self.strides):
                sy, sx = torch.meshgrid(torch.arange(h, dtype=torch.float) + 0.5, torch.arange(w, dtype=torch.float) + 0.5,
                                        indexing="ij")
                anchors.append(torch.stack((sx, sy), -1).view(-1, 2))
                strides.append(torch.full((h * w, 1), float(s)))
            anchors = torch.cat(anchors).transpose(0, 1).unsqueeze(0)
            strides = torch.cat(strides).transpose(0, 1).unsqueeze(0)
            x_cat = torch.cat([x.view(b, self.no, -1) for x in xs], 2)
            box = x_cat[:, : self.reg_max * 4]
            cls = x_cat[:, self.reg_max * 4:]
            dist = self.dfl(box)
            lt, rb = dist.chunk(2, 1)
            x1y1 = anchors - lt
            x2y2 = anchors + rb
            dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
            return torch.cat((dbox, cls.sigmoid()), 1)

    class YoloTiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.b0 = Conv(3, 16, 3, 2)          # /2
            self.b1 = Conv(16, 32, 3, 2)         # /4
            self.b2 = C2f(32, 32, 1, True)
            self.b3 = Conv(32, 64, 3, 2)         # /8
            self.b4 = C2f(64, 64, 2, True)
            self.b5 = Conv(64, 96, 3, 2)         # /16
            self.b6 = C2f(96, 96, 1, True)
            self.b7 = Conv(96, 128, 3, 2)        # /32
            self.b8 = C2f(128, 128, 1, True)
            self.b9 = SPPF(128, 128)
            self.up = nn.Upsample(None, 2, "nearest")
            self.n1 = C2f(128 + 96, 96, 1, False)
            self.n2 = C2f(96 + 64, 64, 1, False)   # P3
            self.d1 = Conv(64, 64, 3, 2)
            self.n3 = C2f(64 + 96, 96, 1, False)   # P4
            self.d2 = Conv(96, 96, 3, 2)
            self.n4 = C2f(96 + 128, 128, 1, False)  # P5
            self.head = Detect((64, 96, 128), (8, 16, 32))

        def forward(self, x):
            x = self.b2(self.b1(self.b0(x)))
            p3 = self.b4(self.b3(x))
            p4 = self.b6(self.b5(p3))
            p5 = self.b9(self.b8(self.b7(p4)))
            h4 = self.n1(torch.cat((self.up(p5), p4), 1))
            h3 = self.n2(torch.cat((self.up(h4), p3), 1))
            o4 = self.n3(torch.cat((self.d1(h3), h4), 1))
            o5 = self.n4(torch.cat((self.d2(o4), p5), 1))
            return self.head([h3, o4, o5])

    m = YoloTiny()
    # non-trivial BN statistics so the folded Conv+BN is exercised
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            mod.weight.data.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
            mod.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return m


def calibrate_bn(m, shape, batches=4, batch=8):
    """Random weights with BatchNorm's default statistics (mean 0, var 1) make activations vanish
    or explode layer by layer (logits of 1e-14 and less); re-estimating the statistics on random
    inputs keeps every layer's output at a useful scale so that the comparison means something."""
    import torch
    bns = [x for x in m.modules() if isinstance(x, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return m
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    m.train()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _ in range(batches):
            m(torch.randn(batch, *shape[1:], generator=g))
    return m.eval()


def make_model(name, bn_calib=True):
    import torch
    torch.manual_seed(0)
    if name == "yolo_tiny":
        m, shape = make_yolo_tiny(), (1, 3, 320, 320)
    else:
        import torchvision
        m, shape = getattr(torchvision.models, name)(weights=None), (1, 3, 224, 224)
    if bn_calib:
        calibrate_bn(m, shape)
    return m.eval(), shape


# ---------------------------------------------------------------------------------------------
def first_error_line(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in lines:
        if re.search(r"error|fail|unsupported|not supported|exception|what\(\)", l, re.I):
            return l[:300]
    return (lines[-1] if lines else "(no output)")[:300]


def run_cmd(cmd, timeout, env=None):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
        return p.returncode, p.stdout, time.time() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out + f"\ntimeout after {timeout}s", time.time() - t0


def sanitize(name):
    s = "".join(c if (c.isalnum() or c in "_.-") else "_" for c in name)
    return "_" + s if s in ("", ".", "..") else s


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf"), float("inf")
    d = float(np.max(np.abs(a - b))) if a.size else 0.0
    m = float(np.max(np.abs(b))) if b.size else 0.0
    return d, (d / m if m > 0 else d)


def run_tandem(tandem, model, feeds, workdir, tag, threads, timeout):
    """Writes feeds as .npy, runs `tandem run`; returns (rc, output text, {name: array})."""
    args = [tandem, "run", model, "--output-dir", os.path.join(workdir, f"out_{tag}")]
    for name, arr in feeds.items():
        f = os.path.join(workdir, f"in_{sanitize(name)}.npy")
        if not os.path.exists(f):
            np.save(f, arr)
        args += ["--input", f"{name}={f}"]
    if threads:
        args += ["--threads", str(threads)]
    rc, out, _ = run_cmd(args, timeout)
    res = {}
    if rc == 0:
        d = os.path.join(workdir, f"out_{tag}")
        for fn in os.listdir(d):
            if fn.endswith(".npy"):
                res[fn[:-4]] = np.load(os.path.join(d, fn))
    return rc, out, res


def localize(tandem, model_path, feeds, workdir, threads, timeout, tol):
    """Exposes every float intermediate as an output; returns the first node (topological order)
    whose tandem output disagrees with ONNX Runtime's."""
    import onnx
    import onnxruntime as ort
    m = onnx.load(model_path)
    m = onnx.shape_inference.infer_shapes(m)
    known = {o.name for o in m.graph.output}
    vi = {v.name: v for v in m.graph.value_info}
    order = []
    for n in m.graph.node:
        for o in n.output:
            if o in vi and o not in known and vi[o].type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
                m.graph.output.append(vi[o])
                known.add(o)
                order.append((o, n))
    dbg = os.path.join(workdir, "debug_all_outputs.onnx")
    onnx.save(m, dbg)
    sess = ort.InferenceSession(dbg, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ref = dict(zip(names, sess.run(None, feeds)))
    rc, out, res = run_tandem(tandem, dbg, feeds, workdir, "debug", threads, timeout)
    if rc != 0:
        return "localize: tandem run on the all-outputs model failed: " + first_error_line(out)
    for o, n in order:
        t = res.get(sanitize(o))
        if t is None:
            continue
        _, r = rel_err(t, ref[o])
        if not (r <= tol):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()
                     if not isinstance(v, onnx.TensorProto)}
            return (f"first mismatch: node '{n.name}' ({n.op_type}) output '{o}' rel {r:.2e} "
                    f"shape {list(ref[o].shape)} attrs {attrs}")
    return "localize: no intermediate mismatch found"


def coarsen_and_save(model_path, dest):
    """Saves model_path to dest (.onnx.xz) with big float initializers rounded to few distinct
    values so that xz shrinks them: same graph, different numbers, for offline debugging."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(model_path)
    for i, init in enumerate(m.graph.initializer):
        if init.data_type == onnx.TensorProto.FLOAT and np.prod(init.dims) >= 4096:
            a = numpy_helper.to_array(init).astype(np.float32)
            s = float(np.std(a)) or 1.0
            q = (np.clip(np.round(a / s * 4), -12, 12) * s / 4).astype(np.float32)
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(q, init.name))
    data = m.SerializeToString()
    with lzma.open(dest, "wb", preset=6) as f:
        f.write(data)
    return os.path.getsize(dest)


def verify_one(args, name, opset, log):
    import torch
    row = {"model": name, "opset": opset, "import": "-", "layers": "-", "run": "-", "rel_torch": None,
           "rel_ort": None, "ort_vs_torch": None, "note": ""}
    workdir = os.path.join(args.work, f"{name}_op{opset}")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    model_path = os.path.join(workdir, "model.onnx")
    try:
        m, shape = make_model(name, args.bn_calib)
        g = torch.Generator().manual_seed(123)
        x = torch.randn(*shape, generator=g)
        with torch.no_grad():
            y = m(x)
            ys = [y] if isinstance(y, torch.Tensor) else list(y)
        out_names = ["output"] if len(ys) == 1 else [f"output{i}" for i in range(len(ys))]
        kw = dict(opset_version=opset, input_names=["input"], output_names=out_names, do_constant_folding=True)
        try:
            torch.onnx.export(m, (x,), model_path, dynamo=False, **kw)
        except Exception as e:  # noqa: BLE001  (classic exporter missing or failing: try dynamo)
            log.write(f"[{name} op{opset}] classic export failed ({e}); trying dynamo=True\n")
            torch.onnx.export(m, (x,), model_path, dynamo=True, external_data=False, **kw)
            row["note"] = "dynamo export; "
    except Exception as e:  # noqa: BLE001
        row["note"] += "export failed: " + (str(e).splitlines() or [repr(e)])[0][:200]
        log.write(traceback.format_exc())
        return row
    xin = x.numpy()
    np.save(os.path.join(workdir, "in.npy"), xin)
    for n_, t in zip(out_names, ys):
        np.save(os.path.join(workdir, f"torch_{n_}.npy"), t.numpy())
    feeds = {"input": xin}

    # ONNX Runtime reference
    ort_out = None
    try:
        import onnxruntime as ort
        sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        ort_out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        row["ort_vs_torch"] = max(rel_err(ort_out[n_], t.numpy())[1] for n_, t in zip(out_names, ys))
    except Exception as e:  # noqa: BLE001
        log.write(f"[{name} op{opset}] onnxruntime: {e}\n")

    rc, out, _ = run_cmd([args.tandem, "inspect", model_path], args.timeout)
    log.write(f"==== {name} opset {opset}: tandem inspect rc={rc}\n{out[:4000]}\n")
    row["import"] = "ok" if rc == 0 else f"FAIL({rc})"
    mm = re.search(r"^layers\s+(\d+)", out, re.M)
    if mm:
        row["layers"] = mm.group(1)
    if rc != 0:
        row["note"] += first_error_line(out)
        return row

    rc, out, res = run_tandem(args.tandem, model_path, feeds, workdir, "tandem", args.threads, args.timeout)
    log.write(f"---- tandem run rc={rc}\n{out[-3000:]}\n")
    row["run"] = "ok" if rc == 0 else f"FAIL({rc})"
    if rc != 0:
        row["note"] += first_error_line(out)
        return row
    worst_t, worst_o, worst_abs = 0.0, 0.0, 0.0
    for n_, t in zip(out_names, ys):
        a = res.get(sanitize(n_))
        if a is None:
            row["note"] += f"output '{n_}' missing from tandem's outputs {sorted(res)}"
            return row
        if a.shape != tuple(t.shape):
            row["note"] += f"output '{n_}' shape {list(a.shape)} != torch {list(t.shape)}"
            row["rel_torch"] = float("inf")
            return row
        d, r = rel_err(a, t.numpy())
        worst_t, worst_abs = max(worst_t, r), max(worst_abs, d)
        row["ref_max"] = max(row.get("ref_max", 0.0), float(np.max(np.abs(t.numpy()))))
        if ort_out is not None:
            worst_o = max(worst_o, rel_err(a, ort_out[n_])[1])
    row["rel_torch"], row["abs_torch"] = worst_t, worst_abs
    if ort_out is not None:
        row["rel_ort"] = worst_o
    bad = not (worst_t <= args.tol) or (ort_out is not None and not (worst_o <= args.tol))
    if bad and ort_out is not None and args.localize:
        try:
            row["note"] += localize(args.tandem, model_path, feeds, workdir, args.threads, args.timeout, args.tol)
        except Exception as e:  # noqa: BLE001
            row["note"] += f"localize failed: {e}"[:300]
    row["bad"] = bad
    return row


def fmt_e(v):
    return "-" if v is None else ("inf" if v == float("inf") else f"{v:.1e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tandem", default="build/tools/tandem/tandem")
    ap.add_argument("--out", default=os.environ.get("OUT", "verify-out"))
    ap.add_argument("--work", default="/tmp/tandem-verify")
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--opsets", default="11,17")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--timeout", type=int, default=180, help="seconds per tandem command")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--no-bn-calib", dest="bn_calib", action="store_false",
                    help="keep BatchNorm's default statistics (activations then vanish in deep nets)")
    ap.add_argument("--no-localize", dest="localize", action="store_false")
    ap.add_argument("--save-failing", type=int, default=0, help="save up to N failing models to OUT as .onnx.xz")
    ap.add_argument("--budget", type=float, default=0, help="stop starting new cases after this many seconds")
    args = ap.parse_args()
    args.tandem = os.path.abspath(args.tandem)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)

    import torch
    vers = [f"torch {torch.__version__}"]
    for mod in ("torchvision", "onnx", "onnxruntime"):
        try:
            vers.append(f"{mod} {__import__(mod).__version__}")
        except Exception:  # noqa: BLE001
            vers.append(f"{mod} missing")
    if args.threads:
        torch.set_num_threads(args.threads)

    header = f"{'model':<20} {'opset':>5} {'import':<8} {'layers':>6} {'run':<8} {'rel(torch)':>10} {'abs(torch)':>10} {'max|y|':>8} {'rel(ort)':>9} {'ort~torch':>9}  note"
    lines = [" | ".join(vers), header]
    print(lines[0]); print(header, flush=True)
    rows = []
    t_start = time.time()
    with open(os.path.join(args.out, "log.txt"), "w") as log:
        for name in args.models.split(","):
            for opset in [int(o) for o in args.opsets.split(",")]:
                if args.budget and time.time() - t_start > args.budget:
                    line = f"{name:<20} {opset:>5} skipped (time budget)"
                else:
                    t0 = time.time()
                    r = verify_one(args, name, opset, log)
                    log.flush()
                    rows.append(r)
                    ok = r["import"] == "ok" and r["run"] == "ok" and not r.get("bad", True)
                    note = r["note"] + ("" if ok or r["note"].strip() else "MISMATCH")
                    line = (f"{name:<20} {opset:>5} {r['import']:<8} {r['layers']:>6} {r['run']:<8} "
                            f"{fmt_e(r['rel_torch']):>10} {fmt_e(r.get('abs_torch')):>10} {fmt_e(r.get('ref_max')):>8} {fmt_e(r['rel_ort']):>9} "
                            f"{fmt_e(r['ort_vs_torch']):>9}  {'PASS' if ok else 'FAIL'} {note} ({time.time() - t0:.0f}s)")
                print(line, flush=True)
                lines.append(line)
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    if args.save_failing:
        failing = [r for r in rows if not (r["import"] == "ok" and r["run"] == "ok" and not r.get("bad", True))]
        # one opset per model is enough for debugging; prefer opset 17, then smaller models
        seen, picked = set(), []
        for r in sorted(failing, key=lambda r: (-r["opset"])):
            if r["model"] not in seen:
                seen.add(r["model"])
                picked.append(r)
        total = 0
        for r in picked[: args.save_failing]:
            src = os.path.join(args.work, f"{r['model']}_op{r['opset']}", "model.onnx")
            if not os.path.exists(src):
                continue
            dest = os.path.join(args.out, f"{r['model']}_op{r['opset']}.onnx.xz")
            try:
                size = coarsen_and_save(src, dest)
                if size > 15 * 2**20 or total + size > 50 * 2**20:
                    os.remove(dest)
                    print(f"not saved (too big): {dest}")
                else:
                    total += size
                    print(f"saved {dest} ({size / 2**20:.1f} MiB)")
            except Exception as e:  # noqa: BLE001
                print(f"save {src}: {e}")
    fails = sum(1 for l in lines[2:] if " FAIL " in l or "skipped" in l)
    print(f"{len(lines) - 2 - fails} passed, {fails} failed/skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
