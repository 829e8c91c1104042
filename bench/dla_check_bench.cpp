// dla-check and plan on the PP-OCRv4 det model (x:1x3x640x640): import + check, check alone, plans.
// Needs .data/models (scripts/fetch-data.sh). Run from the repository root or set TANDEM_MODELS.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "tandem/dla.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"

namespace {

std::string det_path() {
  const char* dir = std::getenv("TANDEM_MODELS");
  return std::string(dir ? dir : ".data/models") + "/ch_PP-OCRv4_det_infer.onnx";
}

tandem::Network import_det() {
  tandem::ImportOptions io;
  io.shapes.push_back(tandem::parse_shape_arg("x:1x3x640x640"));
  return tandem::import_onnx(det_path(), io);
}

void BM_DetImportAndCheck(benchmark::State& st) {
  for (auto _ : st) {
    tandem::Network net = import_det();
    tandem::DlaReport r = tandem::can_run_on_dla(net);
    std::string out = tandem::dla_report_text(net, r, "det");
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_DetImportAndCheck)->Unit(benchmark::kMillisecond);

void BM_DetCheckOnly(benchmark::State& st) {
  const tandem::Network net = import_det();
  for (auto _ : st) {
    tandem::DlaReport r = tandem::can_run_on_dla(net);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_DetCheckOnly)->Unit(benchmark::kMicrosecond);

void BM_DetPlan(benchmark::State& st) {
  const tandem::Network net = import_det();
  tandem::PlanOptions o;
  o.strategy = st.range(0) ? tandem::Strategy::kGraph : tandem::Strategy::kSeed;
  for (auto _ : st) {
    tandem::Plan p = tandem::make_plan(net, o);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_DetPlan)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
