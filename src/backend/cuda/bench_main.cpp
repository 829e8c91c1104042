// tandem_cuda_bench: GPU latency of an ONNX model through the CUDA backend (bench/gpu uses it).
//   tandem_cuda_bench MODEL.onnx --shape NAME:1x3x224x224 [--input in.npy] [--output out.npy]
//                     [--warmup 10] [--iters 50] [--tf32] [--no-graph] [--no-fuse]
//                     [--cudnn-depthwise] [--profile N]
// Prints one JSON line: median/min/p90 of device time per inference (events around the launch
// sequence, no host copies), end-to-end run() median (with H2D/D2H), compile time, tactics.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "tandem/cuda.h"
#include "tandem/npy.h"
#include "tandem/onnx.h"

using namespace tandem;

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr, "usage: tandem_cuda_bench MODEL.onnx --shape NAME:DIMS [--input in.npy] [--output out.npy] "
                           "[--warmup N] [--iters N] [--tf32] [--no-graph]\n");
      return 2;
    }
    std::string model = argv[1], input_npy, output_npy, tactics_path;
    ImportOptions io;
    int warmup = 10, iters = 50, profile = 0;
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
      else throw Error("unknown argument " + a);
    }
    Network net = import_onnx(model, io);
    auto t0 = std::chrono::steady_clock::now();
    auto ex = make_cuda_executor(net, {}, co);
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
                "\"tf32\": %s, \"fuse\": %s, \"own_depthwise\": %d, \"arena_mib\": %.2f, \"weights_mib\": %.2f, \"device\": \"%s\"}\n",
                model.c_str(), ts[ts.size() / 2], ts.front(), ts[ts.size() * 9 / 10], e2e[e2e.size() / 2], iters,
                compile_ms, net.layers.size(), ex->tactics().size(), ex->using_cuda_graph() ? "true" : "false",
                co.allow_tf32 ? "true" : "false", co.fuse_pointwise ? "true" : "false", co.own_depthwise,
                double(ex->arena_bytes()) / (1 << 20),
                double(ex->weight_bytes()) / (1 << 20), ex->device_key().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tandem_cuda_bench: %s\n", e.what());
    return 2;
  }
}
