// bench_cpu: latency and peak memory of the CPU backend on one model (the tandem half of
// bench/cpu_vs_ort.sh). Prints one JSON line like tools/peer/ort_run.js --iters:
//   {"median_ms": ..., "min_ms": ..., "iters": N, "threads": T, "peak_rss_kb": ...}
// Usage: bench_cpu MODEL.onnx [--shape NAME:DIMS]... [--iters 20] [--warmup 2] [--threads 2]
//        [--input NAME=FILE.npy]...   (inputs not given: seeded uniform [0, 1))
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "tandem/npy.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

using namespace tandem;

int main(int argc, char** argv) {
  try {
    std::string model;
    ImportOptions io;
    int iters = 20, warmup = 2, threads = 2;
    TensorMap in;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw Error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--shape") io.shapes.push_back(parse_shape_arg(next()));
      else if (a == "--iters") iters = std::stoi(next());
      else if (a == "--warmup") warmup = std::stoi(next());
      else if (a == "--threads") threads = std::stoi(next());
      else if (a == "--input") {
        std::string v = next();
        size_t eq = v.find('=');
        if (eq == std::string::npos) throw Error("--input wants NAME=FILE.npy");
        HostTensor t = read_npy(v.substr(eq + 1));
        t.name = v.substr(0, eq);
        in[t.name] = std::move(t);
      } else if (model.empty()) model = a;
      else throw Error("unexpected argument " + a);
    }
    if (model.empty()) throw Error("usage: bench_cpu MODEL.onnx [--shape N:D] [--iters N] [--threads N]");
    std::unique_ptr<Executor> ex;
    {
      Network net = import_onnx(model, io);
      std::mt19937 rng{1};
      std::uniform_real_distribution<float> u(0.f, 1.f);
      for (TensorId t : net.inputs) {
        const Tensor& tt = net.tensors[t];
        if (in.count(tt.name)) continue;
        HostTensor h = HostTensor::zeros(tt.name, tt.type, tt.dims);
        if (tt.type == DataType::kFloat)
          for (int64_t k = 0; k < h.count(); ++k) h.f32()[k] = u(rng);
        in[tt.name] = std::move(h);
      }
      ExecOptions opt;
      opt.threads = threads;
      ex = make_cpu_executor(net, opt);
    }
    for (int i = 0; i < warmup; ++i) ex->run(in);
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      ex->run(in);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    double median = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
    std::printf("{\"median_ms\":%.3f,\"min_ms\":%.3f,\"iters\":%d,\"threads\":%d,\"peak_rss_kb\":%lld}\n", median,
                ms.empty() ? 0.0 : ms[0], iters, threads, static_cast<long long>(peak_rss_kib()));
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_cpu: error: %s\n", e.what());
    return e.exit_code();
  }
}
