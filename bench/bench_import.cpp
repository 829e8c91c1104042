// ONNX import + shape resolution of the PP-OCRv4 det model (x:1x3x640x640): read, parse,
// map to layers, fold, infer shapes, verify. docs/benchmarks.md records the median of 20 runs.
//   build-onnx/bench/bench_import --benchmark_repetitions=20 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "tandem/onnx.h"

namespace {

std::string model_path(const char* file) {
  const char* dir = std::getenv("TANDEM_MODELS");
  return std::string(dir ? dir : ".data/models") + "/" + file;
}

void import_model(benchmark::State& st, const char* file, const char* shape) {
  tandem::ImportOptions opt;
  opt.shapes.push_back(tandem::parse_shape_arg(shape));
  const std::string path = model_path(file);
  size_t layers = 0;
  for (auto _ : st) {
    try {
      tandem::Network net = tandem::import_onnx(path, opt);
      layers = net.layers.size();
      benchmark::DoNotOptimize(net);
    } catch (const std::exception& e) {
      st.SkipWithError(e.what());
      break;
    }
  }
  st.counters["layers"] = static_cast<double>(layers);
}

void BM_ImportDet(benchmark::State& st) { import_model(st, "ch_PP-OCRv4_det_infer.onnx", "x:1x3x640x640"); }
void BM_ImportCls(benchmark::State& st) { import_model(st, "ch_ppocr_mobile_v2.0_cls_infer.onnx", "x:1x3x48x192"); }
void BM_ImportRec(benchmark::State& st) { import_model(st, "ch_PP-OCRv4_rec_infer.onnx", "x:1x3x48x320"); }

}  // namespace

BENCHMARK(BM_ImportDet)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImportCls)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImportRec)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
