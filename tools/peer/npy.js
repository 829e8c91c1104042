// .npy read/write for the ONNX Runtime peer scripts (ort_run.js, ort_batch.js).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

const DTYPES = {
  '<f4': ['float32', Float32Array], '<f2': ['float16', Uint16Array],
  '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array], '<i4': ['int32', Int32Array],
  '<i8': ['int64', BigInt64Array], '|b1': ['bool', Uint8Array],
};
const DESCR = {
  float32: '<f4', float16: '<f2', int8: '|i1', uint8: '|u1', int32: '<i4', int64: '<i8', bool: '|b1',
};

function readNpy(file, die) {
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

function writeNpy(file, tensor, die) {
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

module.exports = { readNpy, writeNpy, sanitize };
