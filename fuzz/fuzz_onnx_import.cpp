// ONNX import with shape inference and folding: any bytes must give a Network that verifies, or
// one tandem::Error. Inputs the model leaves dynamic are fixed to 1 in every dim (as trtutils'
// make_onnx_static), so the importer's shape logic runs on every model.
#include <cstdint>

#include "fuzz_util.h"
#include "tandem/onnx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = tandem::fuzz::write_scratch("model.onnx", data, size);
  try {
    tandem::ImportOptions opt;
    for (const auto& [name, dims] : tandem::summarize_onnx(path).inputs) {
      tandem::Dims d = dims;
      for (auto& x : d) x = x > 0 && x <= 64 ? x : 1;
      opt.shapes.emplace_back(name, d);
    }
    tandem::Network net = tandem::import_onnx(path, opt);
    net.verify();
  } catch (const tandem::Error&) {
  }
  return 0;
}
