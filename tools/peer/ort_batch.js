#!/usr/bin/env node
// ONNX Runtime over a folder of models, for tandem's differential test (fuzz/diff_ort.cpp):
// for each DIR/<stem>.onnx with input DIR/<stem>.x.npy (input "x"), writes DIR/<stem>.ort/<out>.npy.
// One process for all models (a session each), graph optimization level `basic` (numerics as
// ort_run.js). A model ONNX Runtime rejects is reported and skipped (<stem>.ort.err).
// Usage: node ort_batch.js DIR
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { readNpy, writeNpy, sanitize } = require('./npy');

function die(msg) {
  process.stderr.write(`ort_batch: error: ${msg}\n`);
  process.exit(2);
}

async function main() {
  const dir = process.argv[2];
  if (!dir || !fs.existsSync(dir)) die('usage: ort_batch.js DIR (a folder of <stem>.onnx + <stem>.x.npy)');
  const models = fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
  let ok = 0, rejected = 0;
  for (const m of models) {
    const stem = path.join(dir, m.slice(0, -5));
    try {
      const session = await ort.InferenceSession.create(path.join(dir, m), {
        executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1,
        graphOptimizationLevel: 'basic', executionMode: 'sequential', logSeverityLevel: 3,
      });
      const out = await session.run({ x: readNpy(`${stem}.x.npy`, die) });
      fs.mkdirSync(`${stem}.ort`, { recursive: true });
      for (const n of session.outputNames) writeNpy(path.join(`${stem}.ort`, sanitize(n) + '.npy'), out[n], die);
      ++ok;
    } catch (e) {
      ++rejected;
      fs.writeFileSync(`${stem}.ort.err`, String(e.message).split('\n')[0] + '\n');
    }
  }
  console.log(JSON.stringify({ models: models.length, ran: ok, rejected }));
}

main().catch((e) => die(e.message.split('\n')[0]));
