// The tensor names a calibration cache of det and cls lists, in order, kept in
// tests/golden/cache_names_{cls,det}.txt: one line per cache line, the name as written, then
// the layer that produces the tensor. Constant-layer outputs carry TensorRT's default name
// `(Unnamed Layer* N) [Constant]_output`, N counting the layers TensorRT 8.6's parser adds for
// the nodes tandem folds (docs/quantization.md, point 3). A change of numbering or naming shows
// here; regenerate after a reviewed change with TANDEM_UPDATE_GOLDEN=1.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/quant.h"

using namespace tandem;
namespace fs = std::filesystem;

namespace {
const std::string kSrc = TANDEM_SOURCE_DIR;

// Calibrates (minmax, one synthetic batch, every float tensor) and lists the cache's names.
std::string cache_names(const std::string& model, const Dims& shape, int* constants) {
  ImportOptions opt;
  opt.shapes = {{"x", shape}};
  Network net = import_onnx(model, opt);
  Plan plan = make_plan(net, PlanOptions{});
  auto batcher = make_synthetic_batcher(input_specs(net), int(shape[0]), 1, -1.f, 1.f, 3);
  CalibrateOptions co;
  co.progress = false;
  co.algorithm = CalibAlgorithm::kMinMax;
  CalibrationResult r = calibrate(net, plan, *batcher, co);
  std::ostringstream out;
  *constants = 0;
  for (const auto& [name, scale] : r.cache.scales) {
    const TensorId t = net.find_tensor(name);
    EXPECT_GE(t, 0) << name;
    const LayerId p = t >= 0 ? net.tensors[t].producer : -1;
    out << name;
    if (p >= 0) out << "\t<- " << net.layers[p].name << " (" << to_string(net.layers[p].kind) << ")";
    out << "\n";
    if (p >= 0 && net.layers[p].kind == LayerKind::kConstant) {
      ++*constants;
      EXPECT_EQ(name.rfind("(Unnamed Layer* ", 0), 0u) << name;
      EXPECT_EQ(name.substr(name.size() - 17), "[Constant]_output") << name;
    }
  }
  return out.str();
}

void expect_golden(const std::string& file, const std::string& got) {
  const std::string path = kSrc + "/tests/golden/" + file;
  if (std::getenv("TANDEM_UPDATE_GOLDEN")) {
    std::ofstream(path, std::ios::binary) << got;
    GTEST_SKIP() << "updated " << path;
  }
  std::ifstream f(path, std::ios::binary);
  ASSERT_TRUE(f) << "missing golden file " << path << " (TANDEM_UPDATE_GOLDEN=1 to create)";
  std::stringstream want;
  want << f.rdbuf();
  std::istringstream a(want.str()), b(got);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool ga = bool(std::getline(a, la)), gb = bool(std::getline(b, lb));
    if (!ga && !gb) break;
    ASSERT_TRUE(ga && gb && la == lb) << file << " differs at line " << line << "\n  golden: " << (ga ? la : "<eof>")
                                      << "\n  actual: " << (gb ? lb : "<eof>");
  }
}
}  // namespace

TEST(CacheNames, ClsGolden) {
  const std::string model = kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
  if (!fs::exists(model)) FAIL() << "model missing: " << model << " (scripts/fetch-data.sh)";
  int constants = 0;
  const std::string names = cache_names(model, {1, 3, 48, 192}, &constants);
  EXPECT_EQ(constants, 38);  // 37 operands of Add/Mul/Div + the FC weights
  // The FC's weights come after the 6 folded shape nodes, for which the parser adds 7 layers
  // (the Constant node's value becomes a Constant layer): tandem's layer 284 is TensorRT's 291.
  EXPECT_NE(names.find("(Unnamed Layer* 291) [Constant]_output\t<- fc_0.w_0 (Constant)\n"), std::string::npos);
  expect_golden("cache_names_cls.txt", names);
}

TEST(CacheNames, DetGolden) {
  const std::string model = kSrc + "/.data/models/ch_PP-OCRv4_det_infer.onnx";
  if (!fs::exists(model)) FAIL() << "model missing: " << model << " (scripts/fetch-data.sh)";
  int constants = 0;
  const std::string names = cache_names(model, {1, 3, 640, 640}, &constants);
  EXPECT_EQ(constants, 154);  // det folds no node: tandem's layer indices are the parser's
  expect_golden("cache_names_det.txt", names);
}

// A cache written before Constant outputs took TensorRT's names lists cls's FC weights as
// `fc_0.w_0`: make_numerics reads that line as the scale of `(Unnamed Layer* 291) [Constant]_output`.
TEST(CacheNames, OldConstantNamesStillRead) {
  const std::string model = kSrc + "/.data/models/ch_ppocr_mobile_v2.0_cls_infer.onnx";
  if (!fs::exists(model)) FAIL() << "model missing: " << model << " (scripts/fetch-data.sh)";
  ImportOptions opt;
  opt.shapes = {{"x", {1, 3, 48, 192}}};
  Network net = import_onnx(model, opt);
  PlanOptions po;
  po.max_chunks = 0;  // all chunks: the FC runs INT8 and reads its weights per channel
  po.min_layers = 0;
  Plan plan = make_plan(net, po);
  auto batcher = make_synthetic_batcher(input_specs(net), 1, 1, -1.f, 1.f, 3);
  CalibrateOptions co;
  co.progress = false;
  co.algorithm = CalibAlgorithm::kMinMax;
  std::map<std::string, float> scales = calibrate(net, plan, *batcher, co).scales;
  const std::string fc = "(Unnamed Layer* 291) [Constant]_output";
  ASSERT_TRUE(scales.count(fc));
  const float s = scales.at(fc);
  const Numerics want = make_numerics(net, plan, scales);
  scales.erase(fc);
  EXPECT_THROW(make_numerics(net, plan, scales), Error);
  scales["fc_0.w_0"] = s;
  const Numerics got = make_numerics(net, plan, scales);
  EXPECT_EQ(got.tensor_scales, want.tensor_scales);
}
