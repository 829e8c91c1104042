// libtandem_cuda.so's one exported symbol: the CUDA backend behind the Backend interface. The
// registry (src/backend/registry.cpp) dlopens this library only when a command asks for CUDA.
// Everything else in the library is hidden (-fvisibility=hidden and a version script).
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string>

#include "backend/registry_internal.h"
#include "tandem/cuda.h"

namespace tandem {
namespace {

class CudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda"; }
  Support supports(const Network& net, LayerId id, Precision precision, BackendLayout layout) const override {
    return backend_detail::cuda_layer_support(net, id, precision, layout);
  }
  Availability availability() const override {
    Availability a;
    a.ok = cuda_available(&a.reason);
    if (!a.ok) a.reason = "cuda backend: " + a.reason;
    return a;
  }
  std::unique_ptr<Executor> compile(const Network& net, const ExecOptions& opt, bool keep_all) const override {
    return make_cuda_executor(net, opt, keep_all);  // throws "cuda backend: no CUDA device: ..."
  }
  // As the executor's own key (executor.cpp), without its tf32/fp32 suffix: the device, not an
  // executor's options.
  std::string device_key() const override {
    Availability a = availability();
    if (!a.ok) throw Error(a.reason);
    int dev = 0;
    cudaDeviceProp prop{};
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, dev);
    if (e != cudaSuccess) throw Error(std::string("cuda backend: cudaGetDeviceProperties: ") + cudaGetErrorString(e));
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    return "cuda:" + std::string(prop.name) + "|sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
           "|cuda " + std::to_string(rt) + "|cudnn " + std::to_string(cudnnGetVersion()) + "|cublasLt " +
           std::to_string(cublasLtGetVersion());
  }
};

}  // namespace
}  // namespace tandem

extern "C" __attribute__((visibility("default"))) const tandem::BackendPlugin* tandem_backend_plugin() {
  static const tandem::CudaBackend backend;
  static const tandem::BackendPlugin plugin{tandem::kBackendPluginAbi, TANDEM_VERSION,
                                            tandem::backend_plugin_layout(), &backend, ""};
  return &plugin;
}
