// Backends and their registry: what a backend can run (answered without a device), compiling a
// network into an Executor, and the device key that tactics and timing caches are recorded for.
// The CPU backend is built in; the CUDA backend lives in a plugin (libtandem_cuda.so) that is
// loaded with dlopen only when something asks it to compile, to time or to name its device, so
// CPU-only commands never load a CUDA library (docs/cuda-backend.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/dla.h"  // Support{ok, reason}: the one capability answer of every stage
#include "tandem/network.h"
#include "tandem/runtime.h"

namespace tandem {

// How a layer's tensors are laid out in memory, as a backend is asked about them.
// kLinear: the network's own dense row-major layout (NCHW for 4-D tensors).
enum class BackendLayout : uint8_t { kLinear, kNHWC };
std::string_view to_string(BackendLayout l);  // "linear" | "nhwc"

// Whether a backend can be used on this machine, and why not (one line naming what is missing:
// "no CUDA device: ...", "libtandem_cuda.so: not found (looked in ...)", "libcudnn.so.9: ...").
struct Availability {
  bool ok = false;
  std::string reason;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu", "cuda"
  // Can this backend run layer `id` of `net` at `precision` with its tensors in `layout`?
  // Answered from the layer alone, without a device or a device library; the reason names the
  // layer ("layer 'conv1' (Convolution): ...").
  virtual Support supports(const Network& net, LayerId id, Precision precision,
                           BackendLayout layout = BackendLayout::kLinear) const = 0;
  // Whether compile() can work here (the CUDA backend: plugin, libraries, a device).
  virtual Availability availability() const = 0;
  // Compiles `net`; throws Error with one line when the backend is not available or a layer is
  // not supported (naming it).
  virtual std::unique_ptr<Executor> compile(const Network& net, const ExecOptions& opt,
                                            bool keep_all = false) const = 0;
  // The device that compiled executors run on, as tactics and timing caches record it:
  // "cpu:<model name>:<n>cores:onednn-<ver>", "cuda:<gpu name>|sm_<xy>|cuda ...|cudnn ...".
  // Throws Error (one line) when the backend is not available.
  virtual std::string device_key() const = 0;
};

// The backend called `name` ("cpu" or "cuda"); throws Error naming the known ones otherwise.
// Backends live for the whole process. Finding "cuda" loads nothing: the plugin is loaded on the
// first availability(), compile() or device_key().
const Backend& find_backend(std::string_view name);
std::vector<std::string> backend_names();

// The CUDA plugin's entry, for the registry and for tests. Version of the interface between
// the registry and the plugin: bumped whenever backend.h, runtime.h or network.h change layout.
inline constexpr uint32_t kBackendPluginAbi = 3;  // 2: Executor gained last_run_split() and profile(); 3: ExecOptions::emulate_numerics
inline constexpr const char* kCudaPluginFile = "libtandem_cuda.so";
inline constexpr const char* kBackendPluginEntry = "tandem_backend_plugin";

// The sizes of the types that cross the plugin boundary, folded into one number: a header
// change that moves them is caught even where kBackendPluginAbi was not bumped.
inline constexpr uint64_t backend_plugin_layout() {
  return uint64_t(sizeof(Network)) * 1000003u ^ uint64_t(sizeof(Layer)) * 10007u ^
         uint64_t(sizeof(Tensor)) * 101u ^ uint64_t(sizeof(ExecOptions)) * 7u ^ uint64_t(sizeof(Numerics)) ^
         (uint64_t(sizeof(HostTensor)) << 40) ^ (uint64_t(sizeof(Support)) << 48);
}

// What the plugin's exported entry returns. The plugin is built from the same sources with the
// same compiler as the loader; abi, tandem_version and layout are checked before `backend` is used.
struct BackendPlugin {
  uint32_t abi = 0;
  const char* tandem_version = "";
  uint64_t layout = 0;  // backend_plugin_layout() of the plugin's build
  // Non-null when the backend could be created; else `error` says why in one line.
  const Backend* backend = nullptr;
  const char* error = "";
};
using BackendPluginEntry = const BackendPlugin* (*)();

// Where the registry looks for the CUDA plugin, in order: the directory of the running
// executable, the directory of the shared object the registry is linked into (the Python
// module), $TANDEM_PLUGIN_PATH (':'-separated directories), then dlopen's own search
// (LD_LIBRARY_PATH, the system's directories).
std::vector<std::string> cuda_plugin_candidates();

}  // namespace tandem
