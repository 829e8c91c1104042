// Engine load (issue 14: "engine load of det under 5 ms"): Engine::load of an engine file given
// in TANDEM_ENGINES (":"-separated paths, e.g. the det engines of docs/benchmarks.md), the whole
// call (map, checksums, parse, verify) and, apart, the file read alone, so that a slow load
// names its part. The page cache is warm after the first iteration, as for `tandem bench`.
//   TANDEM_ENGINES=det_fp32.engine:det_dla.engine build/r/bench/bench_engine_load
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "tandem/engine.h"

namespace {

std::vector<std::string> engine_paths() {
  std::vector<std::string> paths;
  const char* env = std::getenv("TANDEM_ENGINES");
  std::stringstream ss(env ? env : "");
  for (std::string p; std::getline(ss, p, ':');)
    if (!p.empty()) paths.push_back(p);
  return paths;
}

void BM_EngineLoad(benchmark::State& st, std::string path) {
  for (auto _ : st) {
    try {
      auto e = tandem::Engine::load(path);
      benchmark::DoNotOptimize(e);
    } catch (const std::exception& ex) {
      st.SkipWithError(ex.what());
      break;
    }
  }
}

void BM_FileRead(benchmark::State& st, std::string path) {
  for (auto _ : st) {
    std::ifstream f(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    benchmark::DoNotOptimize(bytes);
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (const std::string& p : engine_paths()) {
    benchmark::RegisterBenchmark(("EngineLoad/" + p).c_str(), BM_EngineLoad, p)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("FileRead/" + p).c_str(), BM_FileRead, p)->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
