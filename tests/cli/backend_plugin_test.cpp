// The backend registry and the CUDA plugin (docs/cuda-backend.md): CPU-only commands load no CUDA
// library; a missing plugin, a missing library or a missing GPU is one line and exit 2, never a
// crash; a tandem::Error thrown inside the plugin is caught as tandem::Error; supports() answers
// without a device and without loading the plugin.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../dla/net_builder.h"
#include "tandem/backend.h"
#include "tandem/engine.h"
#include "tandem/npy.h"

#include "../common/shell.h"

namespace fs = std::filesystem;
using namespace tandem;

namespace {
const std::string kCliDir = std::string(TANDEM_BINARY_DIR) + "/tools/tandem";
const std::string kTandem = kCliDir + "/tandem";
const std::string kModels = std::string(TANDEM_SOURCE_DIR) + "/.data/models";
const std::string kCls = kModels + "/ch_ppocr_mobile_v2.0_cls_infer.onnx";
const std::string kDet = kModels + "/ch_PP-OCRv4_det_infer.onnx";
// A plugin whose library dependency is missing (tests/cli/CMakeLists.txt builds it).
const std::string kBrokenPluginDir = std::string(TANDEM_BINARY_DIR) + "/tests/cli/missing_dep_plugin";
// In this process, the registry finds the plugin next to the CLI (it loads it once per process).
const bool kPluginPathSet = ::setenv("TANDEM_PLUGIN_PATH", kCliDir.c_str(), 1) == 0;

using Result = tandem::test::ShellResult;
// Runs a shell command line, stdout and stderr together.
Result sh(const std::string& cmd) { return tandem::test::run_shell(cmd + " 2>&1"); }
int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}
bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

// The shared objects ld.so loaded for a command (LD_DEBUG=libs lines "calling init: PATH").
std::string loaded_libraries(const std::string& args) {
  Result r = sh("LD_DEBUG=libs " + kTandem + " " + args);
  std::istringstream in(r.out);
  std::string line, libs;
  while (std::getline(in, line))
    if (has(line, "calling init:")) libs += line.substr(line.find("calling init:") + 13) + "\n";
  return libs;
}

std::string maps_of_this_process() {
  std::ifstream f("/proc/self/maps");
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class CudaPluginCli : public tandem::test::TempDirTest {
 protected:
  CudaPluginCli() : TempDirTest("tandem_backend_plugin_") {}
  // A copy of the CLI in an empty folder: the registry finds no plugin next to it.
  std::string lone_cli() const {
    fs::copy_file(kTandem, dir / "tandem", fs::copy_options::overwrite_existing);
    return (dir / "tandem").string();
  }
  // A small FP32 engine (cls) and an input for it.
  void make_cls_engine() {
    ASSERT_TRUE(fs::exists(kCls)) << kCls << " is missing: run scripts/fetch-data.sh";
    engine = (dir / "cls.engine").string();
    Result b = sh(kTandem + " build " + kCls + " -o " + engine + " -s x:1x3x48x192 --optimization-level 0");
    ASSERT_EQ(b.rc, 0) << b.out;
    HostTensor x;
    x.type = DataType::kFloat;
    x.dims = {1, 3, 48, 192};
    x.data.assign(size_t(volume(x.dims)) * 4, 0);
    input = (dir / "x.npy").string();
    write_npy(input, x);
  }
  std::string run_args() const { return " run " + engine + " --input x=" + input + " --output-dir " + dir.string(); }
  std::string engine, input;
};

bool cuda_plugin_built() { return fs::exists(kCliDir + "/" + kCudaPluginFile); }
}  // namespace

// `tandem --version` and `tandem dla-check` load no CUDA library (issue 12's acceptance).
TEST_F(CudaPluginCli, VersionAndDlaCheckLoadNoCudaLibrary) {
  ASSERT_TRUE(fs::exists(kDet)) << kDet << " is missing: run scripts/fetch-data.sh";
  for (const std::string& args : {std::string("--version"), "dla-check " + kDet + " --shapes x:1x3x640x640"}) {
    std::string libs = loaded_libraries(args);
    // LD_DEBUG works here: the C++ runtime is always among them (else this test could not fail).
    ASSERT_TRUE(has(libs, "libstdc++")) << args << ": LD_DEBUG=libs listed no libraries:\n" << libs;
    for (const char* cuda : {"libcud", "libcublas", "libnvrtc", kCudaPluginFile})
      EXPECT_FALSE(has(libs, cuda)) << "tandem " << args << " loaded " << cuda << ":\n" << libs;
  }
}

// The CLI links no CUDA library at all (it may only dlopen the plugin).
TEST_F(CudaPluginCli, CliLinksNoCudaLibrary) {
  Result r = sh("readelf -d " + kTandem);
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_TRUE(has(r.out, "NEEDED")) << r.out;
  for (const char* cuda : {"libcud", "libcublas", "libtandem_cuda"}) EXPECT_FALSE(has(r.out, cuda)) << r.out;
}

// --backend cuda on this machine: runs where a GPU is, else exactly one line naming what is missing.
TEST_F(CudaPluginCli, RunOnCudaIsOneLineWithoutGpu) {
  make_cls_engine();
  Result r = sh(kTandem + run_args() + " --backend cuda");
  Availability a = find_backend("cuda").availability();
  if (a.ok) {
    EXPECT_EQ(r.rc, 0) << r.out;
    return;
  }
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_TRUE(has(r.out, "tandem: error: " + engine + ": --backend cuda: cuda backend: ")) << r.out;
  if (cuda_plugin_built())
    EXPECT_TRUE(has(r.out, "no CUDA device")) << r.out;
  else
    EXPECT_TRUE(has(r.out, "built without the CUDA backend")) << r.out;
  // The CPU backend runs the same engine; an unknown backend is named.
  Result cpu = sh(kTandem + run_args() + " --backend cpu");
  EXPECT_EQ(cpu.rc, 0) << cpu.out;
  Result tpu = sh(kTandem + run_args() + " --backend tpu");
  EXPECT_EQ(tpu.rc, 2) << tpu.out;
  EXPECT_EQ(tpu.out, "tandem: error: --backend 'tpu': expected cpu or cuda\n");
}

// No plugin next to the executable nor on TANDEM_PLUGIN_PATH: one line saying where it looked.
TEST_F(CudaPluginCli, MissingPluginIsOneLine) {
  make_cls_engine();
  Result r = sh("env -u TANDEM_PLUGIN_PATH " + lone_cli() + run_args() + " --backend cuda");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  if (!cuda_plugin_built()) {
    EXPECT_TRUE(has(r.out, "built without the CUDA backend")) << r.out;
    return;
  }
  EXPECT_TRUE(has(r.out, "cuda backend: libtandem_cuda.so not found (looked in " + dir.string())) << r.out;
  // TANDEM_PLUGIN_PATH finds it again (then: a GPU, or the no-device line).
  Result found = sh("TANDEM_PLUGIN_PATH=/nonexistent:" + kCliDir + " " + lone_cli() + run_args() + " --backend cuda");
  EXPECT_FALSE(has(found.out, "not found")) << found.out;
  if (found.rc != 0) {
    EXPECT_TRUE(has(found.out, "no CUDA device")) << found.out;
  }
}

// A plugin whose library (as libcudnn would be) is missing: one line naming that library.
TEST_F(CudaPluginCli, MissingLibraryIsOneLine) {
  if (!cuda_plugin_built()) GTEST_SKIP() << "this build has no CUDA plugin (TANDEM_CUDA=OFF): skipped";
  ASSERT_TRUE(fs::exists(kBrokenPluginDir + "/" + kCudaPluginFile)) << kBrokenPluginDir;
  make_cls_engine();
  Result r = sh("TANDEM_PLUGIN_PATH=" + kBrokenPluginDir + " " + lone_cli() + run_args() + " --backend cuda");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_TRUE(has(r.out, "cuda backend: cannot load " + kBrokenPluginDir + "/libtandem_cuda.so: "
                         "libtandem_missing_dep.so: cannot open shared object file")) << r.out;
}

// A plugin built from other sources (another interface version): refused in one line.
TEST_F(CudaPluginCli, OtherPluginVersionIsOneLine) {
  if (!cuda_plugin_built()) GTEST_SKIP() << "this build has no CUDA plugin (TANDEM_CUDA=OFF): skipped";
  const std::string other = std::string(TANDEM_BINARY_DIR) + "/tests/cli/wrong_abi_plugin";
  make_cls_engine();
  Result r = sh("TANDEM_PLUGIN_PATH=" + other + " " + lone_cli() + run_args() + " --backend cuda");
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_TRUE(has(r.out, "cuda backend: " + other + "/libtandem_cuda.so: built from other tandem sources (tandem "
                         "0.0.0-other, plugin interface " + std::to_string(kBackendPluginAbi + 1))) << r.out;
  EXPECT_TRUE(has(r.out, "): rebuild them together")) << r.out;
}

// An Error thrown inside the plugin (make_cuda_executor without a device) reaches the caller as
// tandem::Error, through the registry's compile.
TEST(BackendRegistry, ErrorFromThePluginIsATandemError) {
  ASSERT_TRUE(kPluginPathSet);
  tandem::testing::NetBuilder b;
  TensorId x = b.input("x", {1, 4});
  ActivationParams relu;
  b.output(b.layer(LayerKind::kActivation, "relu", {x}, {1, 4}, relu));
  const Backend& cuda = find_backend("cuda");
  EXPECT_EQ(cuda.name(), "cuda");
  if (cuda.availability().ok) {
    auto ex = cuda.compile(b.net, {});
    EXPECT_EQ(ex->backend_name(), "cuda");
    EXPECT_EQ(cuda.device_key().rfind("cuda:", 0), 0u) << cuda.device_key();
    return;
  }
  for (int what = 0; what < 2; ++what) {
    try {
      if (what == 0) cuda.compile(b.net, {});
      else cuda.device_key();
      ADD_FAILURE() << "no exception without a CUDA device";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      EXPECT_EQ(msg.rfind("cuda backend: ", 0), 0u) << msg;
      EXPECT_TRUE(has(msg, cuda_plugin_built() ? "no CUDA device" : "built without the CUDA backend")) << msg;
    }
  }
  if (cuda_plugin_built()) {
    EXPECT_TRUE(has(maps_of_this_process(), kCudaPluginFile));
  }
}

// supports(): the CUDA table and the CPU backend answer without a device, and finding or asking
// the CUDA backend loads nothing.
TEST(BackendRegistry, SupportsWithoutDeviceOrPlugin) {
  // (ctest runs each test in its own process; a whole-binary run may have loaded it already.)
  const bool loaded_before = has(maps_of_this_process(), kCudaPluginFile);
  tandem::testing::NetBuilder b;
  TensorId x = b.input("x", {1, 3, 8, 8});
  TensorId c = b.conv(x, "conv2d", 4, {3, 3});
  TensorId x3 = b.input("x3", {1, 3, 4, 8, 8});
  ConvolutionParams p3;
  p3.kernel = {1, 1, 1};
  p3.out_maps = 2;
  p3.kernel_weights = b.weights("w3", {2, 3, 1, 1, 1});
  TensorId c3 = b.layer(LayerKind::kConvolution, "conv3d", {x3}, {1, 2, 4, 8, 8}, p3);
  ResizeParams cubic;
  cubic.mode = ResizeMode::kCubic;
  TensorId r = b.layer(LayerKind::kResize, "cubic", {c}, {1, 4, 12, 12}, cubic);
  b.output(r);
  b.output(c3);
  const Backend& cuda = find_backend("cuda");
  const Backend& cpu = find_backend("cpu");
  const LayerId conv2d = b.net.find_layer("conv2d"), conv3d = b.net.find_layer("conv3d"),
                resize = b.net.find_layer("cubic");

  Support s = cuda.supports(b.net, conv2d, Precision::kFP32);
  EXPECT_TRUE(s.ok) << s.reason;
  EXPECT_TRUE(cuda.supports(b.net, conv2d, Precision::kINT8).ok);
  s = cuda.supports(b.net, conv3d, Precision::kFP32);
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.reason, "layer 'conv3d' (Convolution): only 2D convolution over NCHW is supported (kernel rank 3) (CUDA backend)");
  s = cuda.supports(b.net, resize, Precision::kFP32);
  EXPECT_EQ(s.reason, "layer 'cubic' (Resize): cubic resize is not supported (CUDA backend)");
  s = cuda.supports(b.net, conv2d, Precision::kFP8);
  EXPECT_EQ(s.reason, "layer 'conv2d' (Convolution): FP8 numerics are not supported by the CUDA backend");
  EXPECT_FALSE(cuda.supports(b.net, conv2d, Precision::kFP32, BackendLayout::kNHWC).ok);
  EXPECT_FALSE(cuda.supports(b.net, 99, Precision::kFP32).ok);

  EXPECT_TRUE(cpu.supports(b.net, conv3d, Precision::kFP32).ok);  // oneDNN takes 1-3-d kernels
  EXPECT_TRUE(cpu.supports(b.net, resize, Precision::kFP16).ok);
  s = cpu.supports(b.net, conv2d, Precision::kFP8);
  EXPECT_FALSE(s.ok);
  EXPECT_TRUE(has(s.reason, "layer 'conv2d'")) << s.reason;
  // An fp16 tensor into a convolution: the CPU backend's own reason names the layer and tensor.
  tandem::testing::NetBuilder h;
  TensorId xh = h.input("xh", {1, 3, 8, 8}, DataType::kHalf);
  h.output(h.conv(xh, "conv_half", 4, {3, 3}));
  s = cpu.supports(h.net, 0, Precision::kFP32);
  EXPECT_FALSE(s.ok);
  EXPECT_TRUE(has(s.reason, "layer 'conv_half'") && has(s.reason, "'xh' is fp16")) << s.reason;
  s = cuda.supports(h.net, 0, Precision::kFP32);
  EXPECT_EQ(s.reason, "layer 'conv_half' (Convolution): tensor 'xh' is fp16, only fp32 is supported here (CUDA backend)");

  if (!loaded_before) {
    EXPECT_FALSE(has(maps_of_this_process(), kCudaPluginFile));
    EXPECT_FALSE(has(maps_of_this_process(), "libcud"));
  }
  EXPECT_THROW(find_backend("tpu"), Error);
}

// The CPU backend names the device that engines record their tactics for.
TEST(BackendRegistry, CpuDeviceKeyIsTheTimingCacheKey) {
  const Backend& cpu = find_backend("cpu");
  EXPECT_TRUE(cpu.availability().ok);
  std::string key = cpu.device_key();
  EXPECT_EQ(key.rfind("cpu:", 0), 0u) << key;
  EXPECT_TRUE(has(key, "cores:onednn-")) << key;
  EXPECT_EQ(key, host_device_key());
}
