// Q/DQ export: the ONNX model with QuantizeLinear/DequantizeLinear pairs carrying tandem's INT8
// scales (explicit quantization, as TensorRT 10+ and ONNX Runtime read it). See docs/quantization.md.
#pragma once

#include <string>
#include <vector>

#include "tandem/network.h"
#include "tandem/runtime.h"

namespace tandem {

struct QdqExportOptions {
  int opset = 13;  // at least 13 (per-axis DequantizeLinear); older models are converted up
};

struct QdqExportReport {
  int int8_layers = 0;
  int activations = 0;   // tensors given a per-tensor Q/DQ pair
  int weights = 0;       // conv / deconv weights stored as int8 with a per-channel DQ
  int from_opset = 0, to_opset = 0;
  int converted_nodes = 0;             // nodes rewritten for the new opset
  std::vector<std::string> skipped;    // INT8 tensors with no ONNX name (made by the importer)
  std::vector<std::string> notes;
};

// Reads onnx_in (the model `net` was imported from), inserts, for every float tensor an INT8
// layer reads or writes (numerics.layer_precision / tensor_scales, as make_numerics gives):
//   x -> QuantizeLinear(scale, zero point 0 int8) -> DequantizeLinear -> consumers
// (per tensor), and per output channel weights (Conv axis 0, ConvTranspose axis 1) as an int8
// initializer + DequantizeLinear. Writes onnx_out atomically. Throws Error naming the file, node
// or tensor at fault (e.g. an op whose semantics changed below opset 13 and cannot be converted).
QdqExportReport export_qdq(const std::string& onnx_in, const std::string& onnx_out, const Network& net,
                           const Numerics& numerics, const QdqExportOptions& opt = {});

}  // namespace tandem
