// Import followed by the DLA check (both targets, both precisions) and both plan strategies, and
// the trtexec export: the planner must answer every network the importer accepts.
#include <cstdint>

#include "fuzz_util.h"
#include "tandem/dla.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = tandem::fuzz::write_scratch("model.onnx", data, size);
  tandem::Network net;
  try {
    tandem::ImportOptions opt;
    for (const auto& [name, dims] : tandem::summarize_onnx(path).inputs) {
      tandem::Dims d = dims;
      for (auto& x : d) x = x > 0 && x <= 64 ? x : 1;
      opt.shapes.emplace_back(name, d);
    }
    net = tandem::import_onnx(path, opt);
  } catch (const tandem::Error&) {
    return 0;
  }
  for (auto target : {tandem::DlaTarget::kOrin, tandem::DlaTarget::kXavier}) {
    for (auto prec : {tandem::DlaPrecision::kInt8, tandem::DlaPrecision::kFp16}) {
      tandem::DlaOptions d;
      d.target = target;
      d.precision = prec;
      auto rep = tandem::can_run_on_dla(net, d);
      (void)tandem::dla_report_json(net, rep, "fuzz.onnx");
    }
    for (auto strategy : {tandem::Strategy::kSeed, tandem::Strategy::kGraph}) {
      tandem::PlanOptions po;
      po.strategy = strategy;
      po.dla.target = target;
      po.min_layers = 0;
      po.max_chunks = 0;
      tandem::Plan plan = tandem::make_plan(net, po);
      tandem::TrtexecOptions t;
      t.onnx = "fuzz.onnx";
      (void)tandem::trtexec_command(net, plan, t);
      (void)tandem::plan_dot(net, plan, "fuzz");
    }
  }
  return 0;
}
