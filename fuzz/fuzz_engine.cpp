// Engine deserialization followed by a run on tiny zero inputs: a corrupt or hostile engine file
// must be one tandem::Error (checksums, bounds, verify(), the memory cap), never a crash.
#include <cstdint>

#include "tandem/engine.h"
#include "tandem/runtime.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    tandem::EngineContents c = tandem::deserialize_engine(data, size, "fuzz.engine");
    auto engine = tandem::Engine::from_contents(std::move(c), "fuzz.engine");
    const tandem::Network& net = engine->network();
    tandem::TensorMap inputs;
    for (size_t i = 0; i < net.inputs.size(); ++i) {
      const tandem::Tensor& t = net.tensors[net.inputs[i]];
      const auto& f = engine->input_formats().at(i);
      tandem::Dims d = t.dims;
      if (f.layout == tandem::TensorLayout::kNHWC && d.size() == 4) d = {d[0], d[2], d[3], d[1]};
      inputs[t.name] = tandem::HostTensor::zeros(t.name, f.type, d);
    }
    auto ctx = engine->create_context(1);
    ctx->run(inputs);
  } catch (const tandem::Error&) {
  }
  return 0;
}
