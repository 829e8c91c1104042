// Structure-aware: the fuzzer's bytes choose a valid ONNX graph (onnx_gen.h), which is imported,
// checked for the DLA, planned with both strategies and run on the CPU backend. This reaches the
// importer's, planner's and kernels' logic instead of stopping in the protobuf parser.
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "fuzz_util.h"
#include "onnx_gen.h"
#include "tandem/dla.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/runtime.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Each choice takes the next two bytes (0 once they run out): short inputs make small graphs.
  size_t at = 0;
  auto pick = [&](uint32_t n) -> uint32_t {
    uint32_t v = 0;
    for (int k = 0; k < 2 && at < size; ++k) v = v << 8 | data[at++];
    return n ? v % n : 0;
  };
  tandem::fuzz::GeneratedModel m = tandem::fuzz::generate_model(pick, 10);
  std::string path = tandem::fuzz::write_scratch("gen.onnx", reinterpret_cast<const uint8_t*>(m.bytes.data()), m.bytes.size());
  tandem::Network net;
  try {
    net = tandem::import_onnx(path);
  } catch (const tandem::Error& e) {
    // Every generated graph is valid ONNX of supported ops: an import error is a finding.
    std::fprintf(stderr, "generated model rejected: %s\n", e.what());
    std::abort();
  }
  for (auto strategy : {tandem::Strategy::kSeed, tandem::Strategy::kGraph}) {
    tandem::PlanOptions po;
    po.strategy = strategy;
    po.min_layers = 0;
    po.max_chunks = 0;
    (void)tandem::make_plan(net, po);
  }
  tandem::HostTensor x = tandem::HostTensor::zeros("x", tandem::DataType::kFloat, m.input_dims);
  for (int64_t i = 0; i < x.count(); ++i) x.f32()[i] = float(i % 17) / 8.f - 1.f;
  auto ex = tandem::make_cpu_executor(net, {});
  auto out = ex->run({{"x", x}});
  if (out.empty()) std::abort();
  return 0;
}
