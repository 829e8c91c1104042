// tandem_cuda_bench: GPU latency of an ONNX model through the CUDA backend (bench/gpu uses it).
//   tandem_cuda_bench MODEL.onnx --shape NAME:1x3x224x224 [--input in.npy] [--output out.npy]
//                     [--warmup 10] [--iters 50] [--tf32] [--no-graph] [--no-fuse]
//                     [--cudnn-depthwise] [--profile N] [--fp16 [--emulate-fp16] [--check-fp32]]
//                     [--int8 [--emulate-int8]]
// Prints one JSON line: median/min/p90 of device time per inference (events around the launch
// sequence, no host copies), end-to-end run() median (with H2D/D2H), compile time, tactics.
// --fp16: the layers `tandem build --fp16` makes FP16 (src/engine/builder.cpp) run in FP16 (real
// half kernels; --emulate-fp16: the rounding emulation); --check-fp32 also runs an FP32 executor
// on the same input and reports the first output's cosine and max |fp16 - fp32| / max |fp32|.
// --int8: as `tandem build --int8` (convolutions, deconvolutions and matrix multiplies INT8, the
// rest FP16), per-tensor scales max|t| / 127 from an FP32 run of the model at batch 1 on random
// input (a stand-in for calibration); --emulate-int8: the rounding emulation instead of the real
// INT8 kernels.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "tandem/cuda.h"
#include "tandem/npy.h"
#include "tandem/onnx.h"

using namespace tandem;

namespace {
// What `tandem build --fp16` leaves at FP32 (default_gpu_precision in src/engine/builder.cpp).
bool stays_fp32(LayerKind k) {
  return k == LayerKind::kConstant || k == LayerKind::kShuffle || k == LayerKind::kGather || k == LayerKind::kCast ||
         k == LayerKind::kSlice || k == LayerKind::kConcatenation;
}
// Cosine similarity and max |a - b| / max |b| of two float tensors.
std::pair<double, double> agreement(const HostTensor& a, const HostTensor& b) {
  double dot = 0, na = 0, nb = 0, maxdiff = 0, maxb = 0;
  for (int64_t i = 0; i < a.count() && i < b.count(); ++i) {
    double x = a.f32()[i], y = b.f32()[i];
    dot += x * y, na += x * x, nb += y * y;
    maxdiff = std::max(maxdiff, std::fabs(x - y));
    maxb = std::max(maxb, std::fabs(y));
  }
  return {dot / std::sqrt(std::max(na * nb, 1e-300)), maxdiff / std::max(maxb, 1e-30)};
}
// Where real FP16 departs from FP32 (--bisect-fp16 N): FP16 for the first k layers only, k at N
// points, then for all layers but one kind at a time; one line each, with the cosine against FP32.
int bisect_fp16(const Network& net, const CudaOptions& co, int points) {
  TensorMap in;
  for (TensorId t : net.inputs) {
    const Tensor& T = net.tensors[t];
    HostTensor h = HostTensor::zeros(T.name, T.type, T.dims);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    if (T.type == DataType::kFloat)
      for (int64_t k = 0; k < h.count(); ++k) h.f32()[k] = u(rng);
    in[T.name] = h;
  }
  const HostTensor ref = make_cuda_executor(net, {}, co)->run(in).begin()->second;
  auto try_numerics = [&](const std::vector<Precision>& p, const std::string& what) {
    ExecOptions eo;
    eo.numerics.layer_precision = p;
    const HostTensor got = make_cuda_executor(net, eo, co)->run(in).begin()->second;
    auto [cosine, max_rel] = agreement(got, ref);
    std::printf("bisect %s: cosine %.6f max_rel %.3e\n", what.c_str(), cosine, max_rel);
  };
  const size_t n = net.layers.size();
  for (int i = 1; i <= points; ++i) {
    const size_t k = n * size_t(i) / size_t(points);
    std::vector<Precision> p(n, Precision::kUnset);
    for (size_t l = 0; l < k; ++l) p[l] = stays_fp32(net.layers[l].kind) ? Precision::kUnset : Precision::kFP16;
    try_numerics(p, "first " + std::to_string(k) + " layers (last: " + net.layers[k - 1].name + " " +
                        std::string(to_string(net.layers[k - 1].kind)) + ")");
  }
  std::map<LayerKind, int> kinds;
  for (const Layer& l : net.layers) kinds[l.kind]++;
  for (const auto& [kind, count] : kinds) {
    std::vector<Precision> p(n, Precision::kUnset);
    for (size_t l = 0; l < n; ++l)
      if (!stays_fp32(net.layers[l].kind) && net.layers[l].kind != kind) p[l] = Precision::kFP16;
    try_numerics(p, "all but " + std::string(to_string(kind)) + " (" + std::to_string(count) + ")");
  }
  return 0;
}

// --int8: the numerics `tandem build --int8` gives (src/engine/builder.cpp: default_gpu_precision),
// with per-tensor scales max|t| / 127 of an FP32 run at batch 1 (every input's batch set to 1).
Numerics int8_numerics(const Network& net, const std::string& model, ImportOptions io, const CudaOptions& co) {
  for (auto& [name, dims] : io.shapes)
    if (!dims.empty()) dims[0] = 1;
  const Network one = import_onnx(model, io);
  TensorMap in;
  for (TensorId t : one.inputs) {
    const Tensor& T = one.tensors[t];
    HostTensor h = HostTensor::zeros(T.name, T.type, T.dims);
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1, 1);
    if (T.type == DataType::kFloat)
      for (int64_t k = 0; k < h.count(); ++k) h.f32()[k] = u(rng);
    in[T.name] = h;
  }
  auto fp32 = make_cuda_executor(one, {}, co, true);
  fp32->run(in);
  Numerics n;
  for (const auto& [name, t] : fp32->all_tensors()) {
    if (t.type != DataType::kFloat) continue;
    float m = 0;
    for (int64_t k = 0; k < t.count(); ++k) m = std::max(m, std::fabs(t.f32()[k]));
    n.tensor_scales[name] = m > 0 ? m / 127.f : 1.f;
  }
  n.layer_precision.assign(net.layers.size(), Precision::kUnset);
  for (size_t l = 0; l < net.layers.size(); ++l) {
    const LayerKind k = net.layers[l].kind;
    const bool compute = k == LayerKind::kConvolution || k == LayerKind::kDeconvolution || k == LayerKind::kMatrixMultiply;
    n.layer_precision[l] = compute ? Precision::kINT8 : stays_fp32(k) ? Precision::kUnset : Precision::kFP16;
  }
  return n;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr, "usage: tandem_cuda_bench MODEL.onnx --shape NAME:DIMS [--input in.npy] [--output out.npy] "
                           "[--warmup N] [--iters N] [--tf32] [--no-graph] [--no-timing] [--compile-twice]\n");
      return 2;
    }
    std::string model = argv[1], input_npy, output_npy, tactics_path;
    ImportOptions io;
    int warmup = 10, iters = 50, profile = 0;
    bool fp16 = false, int8 = false, check_fp32 = false;
    bool compile_twice = false;  // report the second compile: without the process's CUDA and library start
    int bisect = 0;
    CudaOptions co;
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw Error("missing value after " + a);
        return argv[++i];
      };
      if (a == "--shape") io.shapes.push_back(parse_shape_arg(next()));
      else if (a == "--input") input_npy = next();
      else if (a == "--output") output_npy = next();
      else if (a == "--warmup") warmup = std::stoi(next());
      else if (a == "--iters") iters = std::stoi(next());
      else if (a == "--tf32") co.allow_tf32 = true;
      else if (a == "--no-graph") co.cuda_graph = false;
      else if (a == "--no-fuse") co.fuse_pointwise = false;
      else if (a == "--cudnn-depthwise") co.own_depthwise = 0;
      else if (a == "--profile") profile = std::stoi(next());
      else if (a == "--tactics") tactics_path = next();
      else if (a == "--fp16") fp16 = true;
      else if (a == "--emulate-fp16") co.real_fp16 = false;
      else if (a == "--int8") int8 = true;
      else if (a == "--emulate-int8") co.real_int8 = false;
      else if (a == "--check-fp32") check_fp32 = true;
      else if (a == "--bisect-fp16") bisect = std::stoi(next());
      else if (a == "--no-timing") co.time_tactics = false;
      else if (a == "--compile-twice") compile_twice = true;
      else throw Error("unknown argument " + a);
    }
    Network net = import_onnx(model, io);
    auto t0 = std::chrono::steady_clock::now();
    ExecOptions eo;
    if (fp16) {
      eo.numerics.layer_precision.assign(net.layers.size(), Precision::kUnset);
      for (size_t l = 0; l < net.layers.size(); ++l)
        if (!stays_fp32(net.layers[l].kind)) eo.numerics.layer_precision[l] = Precision::kFP16;
    }
    if (int8) eo.numerics = int8_numerics(net, model, io, co);
    if (bisect > 0) return bisect_fp16(net, co, bisect);
    auto ex = make_cuda_executor(net, eo, co);
    if (compile_twice) {
      ex.reset();
      t0 = std::chrono::steady_clock::now();
      ex = make_cuda_executor(net, eo, co);
    }
    double compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    TensorMap in;
    for (TensorId t : net.inputs) {
      const Tensor& T = net.tensors[t];
      HostTensor h;
      if (!input_npy.empty() && net.inputs.size() == 1) {
        h = read_npy(input_npy);
        h.name = T.name;
      } else {
        h = HostTensor::zeros(T.name, T.type, T.dims);
        if (T.type == DataType::kFloat) {
          std::mt19937 rng(1);
          std::uniform_real_distribution<float> u(-1, 1);
          for (int64_t k = 0; k < h.count(); ++k) h.f32()[k] = u(rng);
        }
      }
      in[T.name] = h;
    }
    TensorMap out;
    std::vector<double> e2e;
    for (int i = 0; i < warmup; ++i) out = ex->run(in);
    for (int i = 0; i < std::max(5, iters / 5); ++i) {
      auto a = std::chrono::steady_clock::now();
      out = ex->run(in);
      e2e.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    }
    std::vector<float> ts = ex->time_device(iters);
    std::sort(ts.begin(), ts.end());
    std::sort(e2e.begin(), e2e.end());
    if (!output_npy.empty()) write_npy(output_npy, out.begin()->second);
    std::string check;
    if (check_fp32) {  // the same input through an FP32 executor
      CudaOptions c32 = co;
      c32.allow_tf32 = false;
      TensorMap ref = make_cuda_executor(net, {}, c32)->run(in);
      auto [cosine, max_rel] = agreement(out.begin()->second, ref.begin()->second);
      char buf[128];
      std::snprintf(buf, sizeof buf, ", \"cosine_vs_fp32\": %.7f, \"max_rel_vs_fp32\": %.3e", cosine, max_rel);
      check = buf;
    }
    const Tensor& in0 = net.tensors[net.inputs[0]];
    const char* precision = int8 ? (co.real_int8 ? "int8" : "int8-emulated")
                            : fp16 ? (co.real_fp16 ? "fp16" : "fp16-emulated") : co.allow_tf32 ? "tf32" : "fp32";
    if (!tactics_path.empty()) {  // the timing-cache view: one JSON line per TacticRecord
      FILE* f = std::fopen(tactics_path.c_str(), "w");
      if (!f) throw Error("cannot write " + tactics_path);
      for (const auto& t : ex->tactics())
        std::fprintf(f, "{\"layer\": \"%s\", \"kind\": \"%s\", \"key\": \"%s\", \"tactic\": \"%s\", "
                        "\"tactic_id\": %lld, \"time_ms\": %.5f, \"workspace\": %zu}\n",
                     t.layer.c_str(), t.kind.c_str(), t.key.c_str(), t.tactic.c_str(), (long long)t.tactic_id,
                     t.time_ms, t.workspace);
      std::fclose(f);
    }
    if (profile > 0) {  // per-step device times, eager: the slowest steps and the sum per kind
      auto st = ex->profile(profile);
      std::map<std::string, std::pair<float, int>> by_kind;
      float total = 0;
      for (auto& s : st) by_kind[s.kind].first += s.ms, by_kind[s.kind].second++, total += s.ms;
      std::sort(st.begin(), st.end(), [](const StepTime& a, const StepTime& b) { return a.ms > b.ms; });
      std::fprintf(stderr, "profile (eager, %d iters): %zu steps, %.3f ms\n", profile, st.size(), total);
      for (size_t i = 0; i < st.size() && i < 15; ++i)
        std::fprintf(stderr, "  %8.4f ms  %-28s %s\n", st[i].ms, st[i].kind.c_str(), st[i].layer.c_str());
      for (auto& [k, v] : by_kind)
        std::fprintf(stderr, "  kind %-28s %4d steps %8.4f ms\n", k.c_str(), v.second, v.first);
    }
    std::printf("{\"model\": \"%s\", \"median_ms\": %.4f, \"min_ms\": %.4f, \"p90_ms\": %.4f, \"e2e_median_ms\": %.4f, "
                "\"iters\": %d, \"compile_ms\": %.1f, \"layers\": %zu, \"tactics\": %zu, \"cuda_graph\": %s, "
                "\"tf32\": %s, \"fuse\": %s, \"own_depthwise\": %d, \"arena_mib\": %.2f, \"weights_mib\": %.2f, \"device\": \"%s\", "
                "\"precision\": \"%s\", \"batch\": %lld%s}\n",
                model.c_str(), ts[ts.size() / 2], ts.front(), ts[ts.size() * 9 / 10], e2e[e2e.size() / 2], iters,
                compile_ms, net.layers.size(), ex->tactics().size(), ex->using_cuda_graph() ? "true" : "false",
                co.allow_tf32 ? "true" : "false", co.fuse_pointwise ? "true" : "false", co.own_depthwise,
                double(ex->arena_bytes()) / (1 << 20),
                double(ex->weight_bytes()) / (1 << 20), ex->device_key().c_str(), precision,
                (long long)(in0.dims.empty() ? 1 : in0.dims[0]), check.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem_cuda_bench: %s\n", e.what());
    return 2;
  }
}
