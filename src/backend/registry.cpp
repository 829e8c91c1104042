// The backend registry: the built-in CPU backend, and the CUDA backend's stand-in that answers
// supports() from the device-free table and loads libtandem_cuda.so (dlopen) only when asked to
// compile, to time or to name its device.
#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "backend/registry_internal.h"

namespace tandem {

std::string_view to_string(BackendLayout l) {
  switch (l) {
    case BackendLayout::kLinear: return "linear";
    case BackendLayout::kNHWC: return "nhwc";
  }
  return "?";
}

namespace {

namespace fs = std::filesystem;

std::string executable_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return fs::path(buf).parent_path().string();
}

// The directory of the executable or shared object this code is linked into.
std::string registry_object_dir() {
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&executable_dir), &info) || !info.dli_fname) return "";
  std::error_code ec;
  fs::path p = fs::canonical(info.dli_fname, ec);
  return ec ? "" : p.parent_path().string();
}

// The outcome of loading the plugin, computed once per process.
struct PluginLoad {
  const Backend* backend = nullptr;
  std::string error;  // one line, when backend is null
};

#ifdef TANDEM_CUDA_PLUGIN_BUILT
// dlopen of one candidate; "" and *out set on success, else the loader's reason.
std::string open_plugin(const std::string& path, const Backend** out) {
  // RTLD_LOCAL: the plugin's symbols (all hidden but the entry) never resolve anything else.
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    return std::string("cannot load ") + path + ": " + (e ? e : "dlopen failed");
  }
  auto entry = reinterpret_cast<BackendPluginEntry>(dlsym(h, kBackendPluginEntry));
  if (!entry) return path + ": no entry point '" + kBackendPluginEntry + "' (not a tandem backend plugin)";
  const BackendPlugin* p = entry();
  if (!p || p->abi != kBackendPluginAbi || std::strcmp(p->tandem_version, TANDEM_VERSION) != 0 ||
      p->layout != backend_plugin_layout())
    return path + ": built from other tandem sources (tandem " + (p ? p->tandem_version : "?") +
           ", plugin interface " + std::to_string(p ? p->abi : 0) + ", type layout " +
           std::to_string(p && p->abi == kBackendPluginAbi ? p->layout : 0) + "; this tandem: " + TANDEM_VERSION +
           ", " + std::to_string(kBackendPluginAbi) + ", " + std::to_string(backend_plugin_layout()) +
           "): rebuild them together";
  if (!p->backend) return path + ": " + p->error;
  // Never dlclose'd: executors and exceptions from the plugin may live until exit.
  *out = p->backend;
  return "";
}
#endif

PluginLoad load_cuda_plugin() {
  PluginLoad r;
#ifdef TANDEM_CUDA_PLUGIN_BUILT
  for (const std::string& path : cuda_plugin_candidates()) {
    bool bare = path.find('/') == std::string::npos;  // dlopen's own search
    std::error_code ec;
    if (!bare && !fs::exists(path, ec)) continue;
    r.error = open_plugin(path, &r.backend);
    if (r.backend || !bare) return r;  // a file that exists but fails to load: its reason
    // Found by the loader's search but a library it needs is missing: that library's reason.
    if (r.error.find(std::string(kCudaPluginFile) + ": cannot open shared object file") == std::string::npos) return r;
  }
  std::string dirs = executable_dir();
  if (std::string d = registry_object_dir(); !d.empty() && d != dirs) dirs += ", " + d;
  if (const char* env = std::getenv("TANDEM_PLUGIN_PATH"); env && *env) dirs += ", " + std::string(env);
  r.error = std::string(kCudaPluginFile) + " not found (looked in " + dirs +
            (std::getenv("TANDEM_PLUGIN_PATH") ? "" : ", $TANDEM_PLUGIN_PATH unset") +
            " and the loader's search path)";
#else
  r.error = "this tandem was built without the CUDA backend (TANDEM_CUDA=OFF, or no CUDA toolkit and cuDNN)";
#endif
  return r;
}

const PluginLoad& cuda_plugin() {
  static const PluginLoad load = load_cuda_plugin();
  return load;
}

// Stands for the CUDA backend in the registry: supports() needs no plugin; everything else loads it.
class CudaBackendProxy final : public Backend {
 public:
  std::string name() const override { return "cuda"; }
  Support supports(const Network& net, LayerId id, Precision precision, BackendLayout layout) const override {
    return backend_detail::cuda_layer_support(net, id, precision, layout);
  }
  Availability availability() const override {
    const PluginLoad& p = cuda_plugin();
    if (!p.backend) return {false, "cuda backend: " + p.error};
    return p.backend->availability();
  }
  std::unique_ptr<Executor> compile(const Network& net, const ExecOptions& opt, bool keep_all) const override {
    return loaded().compile(net, opt, keep_all);
  }
  std::string device_key() const override { return loaded().device_key(); }

 private:
  const Backend& loaded() const {
    const PluginLoad& p = cuda_plugin();
    if (!p.backend) throw Error("cuda backend: " + p.error);
    return *p.backend;
  }
};

}  // namespace

std::vector<std::string> cuda_plugin_candidates() {
  std::vector<std::string> out;
  if (std::string d = executable_dir(); !d.empty()) out.push_back((fs::path(d) / kCudaPluginFile).string());
  // The registry inside a shared object (the Python module): next to that object too.
  if (std::string d = registry_object_dir(); !d.empty() && d != executable_dir())
    out.push_back((fs::path(d) / kCudaPluginFile).string());
  if (const char* env = std::getenv("TANDEM_PLUGIN_PATH"); env && *env) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) out.push_back((fs::path(s.substr(start, end - start)) / kCudaPluginFile).string());
      start = end + 1;
    }
  }
  out.push_back(kCudaPluginFile);
  return out;
}

std::vector<std::string> backend_names() { return {"cpu", "cuda"}; }

const Backend& find_backend(std::string_view name) {
  static const CudaBackendProxy cuda;
  if (name == "cpu") return backend_detail::cpu_backend();
  if (name == "cuda") return cuda;
  throw Error("backend '" + std::string(name) + "': expected cpu or cuda");
}

}  // namespace tandem
