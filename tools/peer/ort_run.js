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

const { readNpy: readNpyWith, writeNpy: writeNpyWith, sanitize } = require('./npy');
const readNpy = (f) => readNpyWith(f, die);
const writeNpy = (f, t) => writeNpyWith(f, t, die);

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
