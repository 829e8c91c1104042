#!/usr/bin/env node
// ONNX Runtime (CPU) peer for tandem: runs a model on .npy inputs, writes .npy outputs, and can
// time runs. Usage:
//   node ort_run.js MODEL.onnx --input NAME=FILE.npy ... [--output-dir DIR] [--threads 2]
//                   [--iters N] [--warmup W] [--opt-level disabled|basic|extended|all]
// Numerics use graph optimization level `basic` by default: at `extended`/`all` ONNX Runtime fuses
// Q/DQ groups into QLinearConv with u8 activations, and on CPUs without VNNI its u8 x s8 pair
// sums saturate int16 (wrong INT8 results on AVX2-only machines). Timing (--iters) defaults to
// `all`, the level users deploy with.
// With --iters N, prints one JSON line: {"median_ms", "min_ms", "iters", "threads", "peak_rss_kb"}.
// Exit 2 with one line on bad arguments or files.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function die(msg) {
  process.stderr.write(`ort_run: error: ${msg}\n`);
  process.exit(2);
}

const DTYPES = {
  '<f4': ['float32', Float32Array], '<f2': ['float16', Uint16Array],
  '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array], '<i4': ['int32', Int32Array],
  '<i8': ['int64', BigInt64Array], '|b1': ['bool', Uint8Array],
};
const DESCR = {
  float32: '<f4', float16: '<f2', int8: '|i1', uint8: '|u1', int32: '<i4', int64: '<i8', bool: '|b1',
};

function readNpy(file) {
  let buf;
  try { buf = fs.readFileSync(file); } catch (e) { die(`${file}: cannot open .npy file`); }
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') die(`${file}: not a .npy file (bad magic)`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) die(`${file}: malformed .npy header`);
  const dt = DTYPES[descr[1]];
  if (!dt) die(`${file}: unsupported .npy dtype '${descr[1]}'`);
  if (fortran[1] === 'True') die(`${file}: Fortran-order .npy arrays are not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const start = hstart + hlen;
  const bytes = count * dt[1].BYTES_PER_ELEMENT;
  if (buf.length - start < bytes) die(`${file}: truncated .npy data`);
  const copy = new ArrayBuffer(bytes);
  new Uint8Array(copy).set(buf.subarray(start, start + bytes));
  let data = new dt[1](copy);
  if (dt[0] === 'bool') data = new Uint8Array(copy);
  return new ort.Tensor(dt[0], data, dims);
}

function writeNpy(file, tensor) {
  const descr = DESCR[tensor.type];
  if (!descr) die(`${file}: cannot write dtype ${tensor.type}`);
  const dims = tensor.dims;
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + h.length + 1;
  h += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(h.length, 8);
  const d = tensor.data;
  const body = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  const tmp = `${file}.tmp.${process.pid}`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([pre, Buffer.from(h, 'latin1'), body]));
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch (_) {}
    die(`${file}: cannot write (${e.code || e.message})`);
  }
}

function sanitize(name) { return name.replace(/[^A-Za-z0-9_.-]/g, '_'); }

async function main() {
  const argv = process.argv.slice(2);
  let model = null, outDir = null, threads = 2, iters = 0, warmup = 2, optLevel = null;
  const inputs = {};
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    const next = () => { if (i + 1 >= argv.length) die(`${a} needs a value`); return argv[++i]; };
    if (a === '--input') {
      const v = next(); const eq = v.indexOf('=');
      if (eq <= 0) die(`--input wants NAME=FILE.npy, got '${v}'`);
      inputs[v.slice(0, eq)] = readNpy(v.slice(eq + 1));
    } else if (a === '--output-dir') outDir = next();
    else if (a === '--threads') threads = Number(next());
    else if (a === '--iters') iters = Number(next());
    else if (a === '--warmup') warmup = Number(next());
    else if (a === '--opt-level') {
      optLevel = next();
      if (!['disabled', 'basic', 'extended', 'all'].includes(optLevel)) die(`--opt-level: '${optLevel}' is not one of disabled, basic, extended, all`);
    }
    else if (a.startsWith('--')) die(`unknown option ${a}`);
    else if (!model) model = a;
    else die(`unexpected argument ${a}`);
  }
  if (!model) die('usage: ort_run.js MODEL.onnx --input NAME=FILE.npy ... [--output-dir DIR] [--threads N] [--iters N]');
  if (!fs.existsSync(model)) die(`${model}: no such model file`);
  if (optLevel === null) optLevel = iters > 0 ? 'all' : 'basic';
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1,
    graphOptimizationLevel: optLevel, executionMode: 'sequential',
  });
  for (const n of session.inputNames) if (!(n in inputs)) die(`missing input '${n}' (model inputs: ${session.inputNames.join(', ')})`);
  let out = await session.run(inputs);
  if (iters > 0) {
    for (let i = 0; i < warmup; ++i) out = await session.run(inputs);
    const times = [];
    for (let i = 0; i < iters; ++i) {
      const t0 = process.hrtime.bigint();
      out = await session.run(inputs);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const median = times.length % 2 ? times[(times.length - 1) / 2]
                                     : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
    console.log(JSON.stringify({ median_ms: median, min_ms: times[0], iters, threads,
                                 peak_rss_kb: process.resourceUsage().maxRSS }));
  }
  if (outDir) {
    try { fs.mkdirSync(outDir, { recursive: true }); } catch (e) { die(`${outDir}: cannot create output folder`); }
    for (const n of session.outputNames) writeNpy(path.join(outDir, sanitize(n) + '.npy'), out[n]);
  }
}

main().catch((e) => die(e.message.split('\n')[0]));
