// Imports every ONNX node conformance model (libonnx-testdata) whose ops are all supported, checks
// the inferred output shapes against the declared ones, and runs each imported model on the CPU
// backend to compare its output values with the test's expected outputs (the rules and
// tolerances of tests/conformance/conformance_runner.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "../conformance/conformance_runner.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

namespace fs = std::filesystem;
using namespace tandem;

namespace {

const char* kDataDir = "/usr/share/libonnx-testdata/data/node";

// Models with only supported ops that tandem still rejects, each for a documented limit
// (docs/onnx-import.md, "Limits"). Anything failing outside this list fails the test.
const std::map<std::string, std::string>& known_limits() {
  static const std::map<std::string, std::string> m = {
#include "conformance_limits.inc"
  };
  return m;
}

}  // namespace

TEST(OnnxConformance, ImportsEveryModelWithSupportedOps) {
  if (!fs::exists(kDataDir)) FAIL() << kDataDir << " missing (apt install libonnx-testdata)";
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(kDataDir))
    if (fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  int imported = 0, limited = 0, compared = 0, values_compared = 0;
  const fs::path tmp_dir = fs::temp_directory_path() / ("tandem_onnxconf_" + std::to_string(::getpid()));
  fs::create_directories(tmp_dir);
  const conformance::ExecutorFactory cpu = [](const Network& n) { return make_cpu_executor(n); };
  std::vector<std::string> value_mismatch;
  std::map<std::string, std::vector<std::string>> skipped_by_op;
  std::vector<std::string> failures, unexpected_ok, shape_mismatch;
  for (const auto& d : dirs) {
    const std::string name = d.filename().string();
    const std::string model = (d / "model.onnx").string();
    OnnxModelSummary s;
    try {
      s = summarize_onnx(model);
    } catch (const Error& e) {
      failures.push_back(name + ": " + e.what());
      continue;
    }
    std::string unsupported;
    for (const auto& op : s.op_types)
      if (!is_supported_onnx_op(op)) { unsupported = op; break; }
    if (!unsupported.empty()) {
      skipped_by_op[unsupported].push_back(name);
      continue;
    }
    const auto lim = known_limits().find(name);
    try {
      Network net = import_onnx(model);
      ++imported;
      // Shape inference must agree with the shapes the test model declares for its outputs.
      for (const auto& [oname, od] : s.outputs) {
        const TensorId t = net.find_tensor(oname);
        if (t < 0) { failures.push_back(name + ": output '" + oname + "' missing"); continue; }
        bool declared = !od.empty() || net.tensors[t].dims.empty();
        for (int64_t v : od) declared &= v > 0;
        compared += declared;
        // A data-dependent output (NonZero, NMS) has its bound: the declared extent must fit in it.
        const int dd = data_dependent_axis(net, t);
        bool fits = od == net.tensors[t].dims;
        if (dd >= 0 && od.size() == net.tensors[t].dims.size()) {
          fits = true;
          for (size_t i = 0; i < od.size(); ++i)
            fits &= int(i) == dd ? od[i] <= net.tensors[t].dims[i] : od[i] == net.tensors[t].dims[i];
        }
        if (declared && !fits)
          shape_mismatch.push_back(name + ": output '" + oname + "' is " + dims_to_string(net.tensors[t].dims) +
                                   ", the model declares " + dims_to_string(od));
      }
      if (lim != known_limits().end()) unexpected_ok.push_back(name);
      // Values: the imported model run on the CPU backend against the test's output_N.pb.
      std::set<std::string> uniq(s.op_types.begin(), s.op_types.end());
      const conformance::Outcome o = conformance::run_one(d, {uniq.begin(), uniq.end()}, tmp_dir, cpu);
      if (o.status == "fail") value_mismatch.push_back(name + ": " + o.reason);
      values_compared += o.status == "pass";
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (lim != known_limits().end() && msg.find(lim->second) != std::string::npos) ++limited;
      else failures.push_back(name + ": " + msg);
    }
  }
  int skipped = 0;
  for (const auto& [op, v] : skipped_by_op) skipped += static_cast<int>(v.size());
  std::printf("conformance import: %d imported, %d rejected for documented limits, %d skipped (unsupported op), "
              "%zu failed, of %zu models\n", imported, limited, skipped, failures.size(), dirs.size());
  for (const auto& [op, v] : skipped_by_op) {
    std::string names;
    for (const auto& n : v) names += (names.empty() ? "" : " ") + n;
    std::printf("  skipped for op %s (%zu): %s\n", op.c_str(), v.size(), names.c_str());
  }
  for (const auto& f : failures) std::printf("  FAILED %s\n", f.c_str());
  for (const auto& f : unexpected_ok) std::printf("  now imports (remove from the limits list): %s\n", f.c_str());
  std::printf("  %d declared output shapes compared with the inferred ones\n", compared);
  for (const auto& f : shape_mismatch) std::printf("  SHAPE %s\n", f.c_str());
  std::printf("  %d imported models' output values compared with the expected outputs\n", values_compared);
  for (const auto& f : value_mismatch) std::printf("  VALUES %s\n", f.c_str());
  fs::remove_all(tmp_dir);
  EXPECT_TRUE(value_mismatch.empty()) << value_mismatch.size() << " model(s) with wrong output values";
  EXPECT_GT(values_compared, 300);
  EXPECT_TRUE(shape_mismatch.empty()) << shape_mismatch.size() << " model(s) with wrong output shapes";
  EXPECT_TRUE(failures.empty()) << failures.size() << " supported model(s) failed to import";
  EXPECT_GT(imported, 300);
}
