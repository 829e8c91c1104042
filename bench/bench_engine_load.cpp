// Engine load (issue 14: "engine load of det under 5 ms"): Engine::load of an engine file given
// in TANDEM_ENGINES (":"-separated paths, e.g. the det engines of docs/benchmarks.md), the whole
// call (map, checksums, parse, verify), apart the weights' checksum that load leaves to the first
// context (Engine::check_weights), and the file read alone, so that a slow load names its part.
// The page cache is warm after the first iteration, as for `tandem bench`.
//   TANDEM_ENGINES=det_fp32.engine:det_dla.engine build/r/bench/bench_engine_load
#include <benchmark/benchmark.h>

#include <malloc.h>

#include <chrono>
#include <cstdio>
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

void BM_EngineLoadAndCheckWeights(benchmark::State& st, std::string path) {
  for (auto _ : st) {
    try {
      auto e = tandem::Engine::load(path);
      e->check_weights();
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

// The first load of each engine in this process, before any benchmark ran: what `tandem bench`'s
// load line measures (fresh heap pages, cold code), with the heap it took (mallinfo2).
void report_first_loads() {
  for (const std::string& p : engine_paths()) {
    const size_t heap_before = mallinfo2().uordblks;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      auto e = tandem::Engine::load(p);
      const auto t1 = std::chrono::steady_clock::now();
      const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
      e->check_weights();
      const double check_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
      std::printf("first load in this process: %s %.2f ms, heap %+.2f MiB; then the weights' checksum %.2f ms\n",
                  p.c_str(), ms, (double(mallinfo2().uordblks) - double(heap_before)) / (1 << 20), check_ms);
    } catch (const std::exception& ex) {
      std::printf("first load in this process: %s: %s\n", p.c_str(), ex.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  report_first_loads();
  for (const std::string& p : engine_paths()) {
    benchmark::RegisterBenchmark(("EngineLoad/" + p).c_str(), BM_EngineLoad, p)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("EngineLoadAndCheckWeights/" + p).c_str(), BM_EngineLoadAndCheckWeights, p)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("FileRead/" + p).c_str(), BM_FileRead, p)->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
