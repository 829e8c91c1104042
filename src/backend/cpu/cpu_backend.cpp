// The CPU backend as a registry Backend: make_cpu_executor and cpu_unsupported_reason behind the
// Backend interface, and the host's device key (the only place that names oneDNN's version).
#include <oneapi/dnnl/dnnl_version.h>

#include <fstream>
#include <string>
#include <thread>

#include "backend/registry_internal.h"

namespace tandem::backend_detail {

namespace {

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    auto p = line.find(':');
    if (p == std::string::npos) break;
    std::string model = line.substr(p + 1);
    model.erase(0, model.find_first_not_of(" \t"));
    return model;
  }
  return "unknown-cpu";
}

// A network of the one layer `id` (its tensors, no weights): what cpu_unsupported_reason needs to
// judge that layer alone.
Network single_layer(const Network& net, LayerId id) {
  Network one;
  Layer l = net.layers[size_t(id)];
  auto copy_tensor = [&](TensorId t) {
    Tensor tt = net.tensors[size_t(t)];
    tt.producer = -1;
    return one.add_tensor(std::move(tt));
  };
  for (TensorId& t : l.inputs) t = copy_tensor(t);
  for (TensorId& t : l.outputs) t = copy_tensor(t);
  one.layers.push_back(std::move(l));
  return one;
}

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  Support supports(const Network& net, LayerId id, Precision precision, BackendLayout layout) const override {
    if (id < 0 || size_t(id) >= net.layers.size())
      return {false, "layer id " + std::to_string(id) + " is outside the network (" +
                         std::to_string(net.layers.size()) + " layers)"};
    const Layer& l = net.layers[size_t(id)];
    const std::string where = "layer '" + l.name + "' (" + std::string(to_string(l.kind)) + ")";
    switch (precision) {
      case Precision::kFP8:
        return {false, where + ": FP8 numerics are not emulated by the CPU backend"};
      case Precision::kUnset:
      case Precision::kFP32:
      case Precision::kFP16:  // emulated: FP32 compute with FP16/INT8 rounding
      case Precision::kINT8:
        break;
    }
    switch (layout) {
      case BackendLayout::kNHWC:
        return {false, where + ": the CPU backend computes in the network's linear (NCHW) layout only"};
      case BackendLayout::kLinear:
        break;
    }
    std::string why = cpu_unsupported_reason(single_layer(net, id));
    if (!why.empty()) return {false, why};
    return {true, ""};
  }

  Availability availability() const override { return {true, ""}; }

  std::unique_ptr<Executor> compile(const Network& net, const ExecOptions& opt, bool keep_all) const override {
    return make_cpu_executor(net, opt, keep_all);
  }

  // "cpu:<model name>:<n>cores:onednn-<ver>": what the timing cache and engine tactics record.
  std::string device_key() const override {
    return "cpu:" + cpu_model_name() + ":" + std::to_string(std::thread::hardware_concurrency()) +
           "cores:onednn-" + std::to_string(DNNL_VERSION_MAJOR) + "." + std::to_string(DNNL_VERSION_MINOR) +
           "." + std::to_string(DNNL_VERSION_PATCH);
  }
};

}  // namespace

const Backend& cpu_backend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace tandem::backend_detail
