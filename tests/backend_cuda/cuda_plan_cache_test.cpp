// The persistent cache of cuDNN runtime-fusion plans (src/backend/cuda/plan_cache.h): a real FP16
// convolution + SiLU and a real INT8 convolution whose codes feed another INT8 convolution, both
// forced onto cuDNN's graph kernel (TANDEM_CUDA_GRAPH_FUSION=1, TANDEM_CUDA_INT8_GRAPH=1), are
// compiled twice over a fresh cache folder: the second compile restores every plan the first
// stored (no NVRTC) and computes the same bits. Damaged entries and entries cuDNN refuses are
// finalized again and overwritten; with TANDEM_CUDNN_PLAN_CACHE=off nothing is written. Tactics
// are not timed (CudaOptions::time_tactics off: the first plan that runs), so both compiles choose
// the same plan. Label gpu.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <optional>
#include <random>

#include "backend/cuda/plan_cache.h"
#include "test_util.h"
#include "../common/scoped.h"

using namespace tandem;
using namespace tandem::test;
using tandem::cuda_exec::PlanCacheStats;

namespace fs = std::filesystem;

namespace {



// Every regular file under dir (entries, and any temporary file a writer left).
std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path());
  return out;
}

TensorId conv(NetBuilder& b, const std::string& name, TensorId x, int64_t C, int64_t K, int k, const Dims& yd,
              uint32_t seed) {
  ConvolutionParams cp;
  cp.kernel = {k, k};
  cp.stride = cp.dilation = {1, 1};
  cp.pre_padding = cp.post_padding = {k / 2, k / 2};
  cp.out_maps = K;
  const float amp = 1.f / std::sqrt(float(C * k * k));
  cp.kernel_weights = b.weights(name + ".w", {K, C, k, k}, random_values(size_t(K * C * k * k), seed, -amp, amp));
  cp.bias_weights = b.weights(name + ".b", {K}, random_values(size_t(K), seed + 1, -0.5f, 0.5f));
  TensorId y = b.tensor(name, yd);
  b.layer(name, LayerKind::kConvolution, {x}, {y}, cp);
  return y;
}

// One of the two networks, its numerics and input, and the graph route forced for it.
struct Case {
  std::string name;
  Network net;
  ExecOptions opt;
  TensorMap in;
  std::string output, graph_tactic, force;
};

// FP16: conv 3x3 (16 -> 32) + bias, then SiLU (sigmoid times the chain's input), then an FP32
// identity as the network output (a native FP16 layer never writes one).
Case fp16_case() {
  Case c{"fp16", {}, {}, {}, "out", "cudnn_graph_fp16_nhwc", "TANDEM_CUDA_GRAPH_FUSION"};
  NetBuilder b;
  const Dims xd = {2, 16, 12, 12}, yd = {2, 32, 12, 12};
  TensorId x = b.input("x", xd);
  TensorId y = conv(b, "c", x, 16, 32, 3, yd, 11);
  TensorId s = b.tensor("sig", yd);
  b.layer("sig", LayerKind::kActivation, {y}, {s}, ActivationParams{ActivationType::kSigmoid, 0, 0});
  TensorId m = b.tensor("silu", yd);
  b.layer("silu", LayerKind::kElementWise, {y, s}, {m}, ElementWiseParams{ElementWiseOp::kProd});
  TensorId o = b.tensor("out", yd);
  b.layer("out", LayerKind::kIdentity, {m}, {o});
  b.output(o);
  c.net = b.n;
  c.opt.numerics.layer_precision.assign(c.net.layers.size(), Precision::kFP16);
  c.in = {{"x", host("x", xd, random_values(size_t(volume(xd)), 13))}};
  return c;
}

// INT8: conv 3x3 (16 -> 16) whose output, read only by the INT8 1x1 convolution after it, is
// stored as int8 codes (the graph kernel requantizes); the 1x1's output is the network output,
// unquantized. Scales max|t| / 127 of an FP32 run on the GPU.
Case int8_case() {
  Case c{"int8", {}, {}, {}, "c2", "cudnn_graph_int8_nhwc", "TANDEM_CUDA_INT8_GRAPH"};
  NetBuilder b;
  const Dims d = {2, 16, 10, 10};
  TensorId x = b.input("x", d);
  TensorId c1 = conv(b, "c1", x, 16, 16, 3, d, 21);
  b.output(conv(b, "c2", c1, 16, 16, 1, d, 23));
  c.net = b.n;
  c.in = {{"x", host("x", d, random_values(size_t(volume(d)), 25))}};
  auto fp32 = make_cuda_executor(c.net, ExecOptions{}, true);
  fp32->run(c.in);
  c.opt.numerics.layer_precision.assign(c.net.layers.size(), Precision::kINT8);
  for (const auto& [name, t] : fp32->all_tensors()) {
    float m = 0;
    for (float v : values(t)) m = std::max(m, std::fabs(v));
    c.opt.numerics.tensor_scales[name] = m / 127.f;
  }
  c.opt.numerics.unquantized.insert("c2");
  return c;
}

PlanCacheStats since(const PlanCacheStats& a) {
  const PlanCacheStats b = tandem::cuda_exec::plan_cache_stats();
  return {b.hits - a.hits, b.misses - a.misses, b.rejected - a.rejected, b.stores - a.stores};
}

struct Compiled {
  PlanCacheStats d;  // the plan cache's counters over the compile
  std::string tactics;
  std::vector<float> out;
};

// Compiles c (graph route forced, tactics untimed) over the cache folder dir and runs it once.
Compiled compile_run(const Case& c, const fs::path& dir) {
  const ScopedEnv cache("TANDEM_CACHE_DIR", dir.c_str()), forced(c.force.c_str(), "1");
  CudaOptions co;
  co.time_tactics = false;
  const PlanCacheStats before = tandem::cuda_exec::plan_cache_stats();
  auto ex = make_cuda_executor(c.net, c.opt, co);
  Compiled r;
  r.d = since(before);
  for (const auto& t : ex->tactics()) r.tactics += t.layer + ": " + t.tactic + "; ";
  r.out = values(ex->run(c.in).at(c.output));
  std::printf("[plan cache] %s: hits %lld, misses %lld, rejected %lld, stores %lld; %s\n", c.name.c_str(),
              (long long)r.d.hits, (long long)r.d.misses, (long long)r.d.rejected, (long long)r.d.stores,
              r.tactics.c_str());
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Rewrites every entry under dir with f(its bytes).
template <class F>
void rewrite_entries(const fs::path& dir, F f) {
  for (const fs::path& p : files_under(dir)) {
    std::ifstream in(p, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    in.close();
    std::ofstream(p, std::ios::binary | std::ios::trunc) << f(bytes);
  }
}

}  // namespace

// The second compile restores what the first stored: every lookup that missed and was stored
// hits, nothing is finalized into a new entry, the same tactics and output bits. The FP16 graph
// must take a runtime-fusion engine (cuDNN 9's engines for convolution + point-wise graphs);
// the INT8 one is held to the same rules where its engines are runtime-compiled.
TEST(CudaPlanCache, SecondCompileRestoresThePlans) {
  SKIP_WITHOUT_CUDA();
  for (const Case& c : {fp16_case(), int8_case()}) {
    SCOPED_TRACE(c.name);
    const ScopedTempDir dir(c.name);
    const Compiled cold = compile_run(c, dir.path), warm = compile_run(c, dir.path);
    EXPECT_NE(cold.tactics.find(c.graph_tactic), std::string::npos) << cold.tactics;
    EXPECT_EQ(cold.d.hits, 0);
    if (c.name == "fp16") {
      EXPECT_GT(cold.d.stores, 0) << "no runtime-fusion plan was stored";
    }
    EXPECT_EQ(int64_t(files_under(dir.path).size()), cold.d.stores);  // one entry each, no temporary file
    EXPECT_EQ(warm.d.hits, cold.d.stores);
    EXPECT_EQ(warm.d.hits + warm.d.misses, cold.d.misses);
    EXPECT_EQ(warm.d.stores, 0);
    EXPECT_EQ(warm.d.rejected, 0);
    EXPECT_EQ(warm.tactics, cold.tactics);
    EXPECT_TRUE(same_bits(warm.out, cold.out)) << "the restored plan computes other bits";
  }
}

// Damaged entries (a flipped payload byte, a truncated file, a stranger's key) are refused by
// their checksum, length or key, finalized again and overwritten: the same bits, and the next
// compile hits again.
TEST(CudaPlanCache, DamagedEntriesAreFinalizedAgain) {
  SKIP_WITHOUT_CUDA();
  const Case c = fp16_case();
  const ScopedTempDir dir("damaged");
  const Compiled cold = compile_run(c, dir.path);
  ASSERT_GT(cold.d.stores, 0);
  const std::vector<std::function<std::string(const std::string&)>> damages = {
      [](std::string s) { s.back() ^= 0x20; return s; },                   // a payload byte
      [](const std::string& s) { return s.substr(0, s.size() / 2); },      // truncated
      [](std::string s) { s[s.find('\n') + 1] ^= 0x01; return s; },        // another key
      [](const std::string&) { return std::string("not a plan\n"); }};
  for (const auto& damage : damages) {
    rewrite_entries(dir.path, damage);
    const Compiled again = compile_run(c, dir.path);
    EXPECT_EQ(again.d.hits, 0);
    EXPECT_EQ(again.d.rejected, cold.d.stores);
    EXPECT_EQ(again.d.stores, cold.d.stores);
    EXPECT_TRUE(same_bits(again.out, cold.out));
    const Compiled next = compile_run(c, dir.path);
    EXPECT_EQ(next.d.hits, cold.d.stores);
    EXPECT_TRUE(same_bits(next.out, cold.out));
  }
}

// A whole entry (checksum and key right) whose JSON cuDNN cannot restore: cuDNN refuses it, the
// plan is finalized again and the entry overwritten, the same bits.
TEST(CudaPlanCache, PlanTextCuDnnRefusesIsFinalizedAgain) {
  SKIP_WITHOUT_CUDA();
  const Case c = fp16_case();
  const ScopedTempDir dir("refused");
  const Compiled cold = compile_run(c, dir.path);
  ASSERT_GT(cold.d.stores, 0);
  for (const fs::path& p : files_under(dir.path)) {
    std::ifstream in(p, std::ios::binary);
    std::string magic, key;
    std::getline(in, magic);
    std::getline(in, key);
    in.close();
    ASSERT_TRUE(tandem::cuda_exec::write_plan_entry(p.string(), key, "{\"tandem\": \"not a cuDNN plan\"}"));
  }
  const Compiled again = compile_run(c, dir.path);
  EXPECT_EQ(again.d.hits, 0);
  EXPECT_EQ(again.d.rejected, cold.d.stores);
  EXPECT_EQ(again.d.stores, cold.d.stores);
  EXPECT_TRUE(same_bits(again.out, cold.out));
  EXPECT_EQ(compile_run(c, dir.path).d.hits, cold.d.stores);
}

// TANDEM_CUDNN_PLAN_CACHE=off: no lookup, no file; the graph kernel still runs.
TEST(CudaPlanCache, OffWritesNothing) {
  SKIP_WITHOUT_CUDA();
  const Case c = fp16_case();
  const ScopedTempDir dir("off");
  const ScopedEnv off("TANDEM_CUDNN_PLAN_CACHE", "off");
  const Compiled r = compile_run(c, dir.path);
  EXPECT_NE(r.tactics.find(c.graph_tactic), std::string::npos) << r.tactics;
  EXPECT_EQ(r.d.hits + r.d.misses + r.d.rejected + r.d.stores, 0);
  EXPECT_TRUE(files_under(dir.path).empty());
}
