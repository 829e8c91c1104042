// Structure-aware: the fuzzer's bytes choose a valid ONNX graph (onnx_gen.h), which is imported,
// checked for the DLA, planned with both strategies and run on the CPU backend. This reaches the
// importer's, planner's and kernels' logic instead of stopping in the protobuf parser.
#include <fuzzer/FuzzedDataProvider.h>

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
  FuzzedDataProvider fdp(data, size);
  auto pick = [&fdp](uint32_t n) { return fdp.ConsumeIntegralInRange<uint32_t>(0, n - 1); };
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
