// Mod on runtime tensors (src/onnx/ops_mod.cpp, onnx-tensorrt's decomposition) and shape-value
// inputs (ImportOptions::input_values, src/onnx/input_values.cpp): hand-worked values on the CPU
// backend, the import errors, and the run-time check of a fixed input's values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model_builder.h"
#include "tandem/npy.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/quant.h"
#include "tandem/runtime.h"

using namespace tandem;
using tandem::test::ModelBuilder;

namespace {

template <class T>
HostTensor tensor_of(const std::string& name, DataType type, Dims d, const std::vector<T>& v) {
  HostTensor t = HostTensor::zeros(name, type, std::move(d));
  std::memcpy(t.data.data(), v.data(), v.size() * sizeof(T));
  return t;
}

template <class T>
std::vector<T> values_of(const HostTensor& t) {
  std::vector<T> v(static_cast<size_t>(t.count()));
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(T));
  return v;
}

std::string import_error(const std::string& path, const ImportOptions& opt = {}) {
  try {
    import_onnx(path, opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// z = Mod(x, y) with fmod, both inputs of `elem` and dims {n}.
std::string mod_model(const std::string& file, int elem, int64_t n, int64_t fmod) {
  ModelBuilder b(13);
  b.input("x", {n}, elem).input("y", {n}, elem).output("z");
  auto& m = b.node("Mod", {"x", "y"}, {"z"}, "mod");
  ModelBuilder::attr_i(m, "fmod", fmod);
  return b.write(file);
}

}  // namespace

TEST(OnnxMod, IntegersTakeTheSignOfTheDivisorWithFmod0) {
  Network n = import_onnx(mod_model("mod_i32.onnx", onnx::TensorProto::INT32, 5, 0));
  TensorMap in;
  in["x"] = tensor_of<int32_t>("x", DataType::kInt32, {5}, {-7, 7, -7, 7, 0});
  in["y"] = tensor_of<int32_t>("y", DataType::kInt32, {5}, {3, -3, -3, 3, 5});
  const TensorMap out = make_cpu_executor(n)->run(in);
  // Python's %: -7 = 3 * -3 + 2; 7 = -3 * -3 - 2; -7 = -3 * 2 - 1; 7 = 3 * 2 + 1.
  EXPECT_EQ(values_of<int32_t>(out.at("z")), (std::vector<int32_t>{2, -2, -1, 1, 0}));
  // The parser's layers: FLOOR_DIV, PROD, SUB (the last named after the node).
  ASSERT_GE(n.find_layer("mod"), 0);
  EXPECT_EQ(n.layers[n.find_layer("mod")].as<ElementWiseParams>().op, ElementWiseOp::kSub);
  EXPECT_EQ(n.layers[0].as<ElementWiseParams>().op, ElementWiseOp::kFloorDiv);
}

TEST(OnnxMod, IntegersTakeTheSignOfTheDividendWithFmod1) {
  Network n = import_onnx(mod_model("mod_i64.onnx", onnx::TensorProto::INT64, 4, 1));
  TensorMap in;
  in["x"] = tensor_of<int64_t>("x", DataType::kInt64, {4}, {-7, 7, -7, 7});
  in["y"] = tensor_of<int64_t>("y", DataType::kInt64, {4}, {3, -3, -3, 3});
  const TensorMap out = make_cpu_executor(n)->run(in);
  EXPECT_EQ(values_of<int64_t>(out.at("z")), (std::vector<int64_t>{-1, 1, -1, 1}));  // C's %
}

TEST(OnnxMod, FloatsFmod) {
  Network n = import_onnx(mod_model("mod_f32.onnx", onnx::TensorProto::FLOAT, 4, 1));
  TensorMap in;
  in["x"] = tensor_of<float>("x", DataType::kFloat, {4}, {-4.5f, 4.5f, 5.f, -0.75f});
  in["y"] = tensor_of<float>("y", DataType::kFloat, {4}, {2.f, -2.f, 2.5f, 0.5f});
  const TensorMap out = make_cpu_executor(n)->run(in);
  // -4.5 / 2 = -2.25 < 0: ceil -> -2, -4.5 + 4 = -0.5; 4.5 / -2 likewise 0.5; 5 / 2.5 = 2: 0;
  // -0.75 / 0.5 = -1.5: ceil -> -1, -0.75 + 0.5 = -0.25 (all exact in binary).
  EXPECT_EQ(values_of<float>(out.at("z")), (std::vector<float>{-0.5f, 0.5f, 0.f, -0.25f}));
  EXPECT_EQ(n.layers[n.find_layer("mod")].kind, LayerKind::kSelect);
  // The parser's order: DIV, FLOOR, PROD, SUB, CEIL, PROD, SUB, zero (Constant, PROD), GREATER,
  // EQUAL, OR, Select.
  ASSERT_EQ(n.layers.size(), 13u);
  EXPECT_EQ(n.layers[9].as<ElementWiseParams>().op, ElementWiseOp::kGreater);
  EXPECT_EQ(n.layers[10].as<ElementWiseParams>().op, ElementWiseOp::kEqual);
  EXPECT_EQ(n.layers[11].as<ElementWiseParams>().op, ElementWiseOp::kOr);
}

TEST(OnnxMod, TypesTheParserRefusesAreRefusedWithItsWords) {
  EXPECT_NE(import_error(mod_model("mod_f0.onnx", onnx::TensorProto::FLOAT, 2, 0))
                .find("node 'mod' (Mod): fmod=0 on fp32 is not supported (TensorRT's parser: \"The fmod attribute is "
                      "set to 0. Inputs cannot be of floating point types\")"),
            std::string::npos);
  EXPECT_NE(import_error(mod_model("mod_u8.onnx", onnx::TensorProto::UINT8, 2, 0))
                .find("node 'mod' (Mod): Mod on uint8 is not supported (TensorRT's parser takes FP32, FP16, BF16, "
                      "INT32, INT64)"),
            std::string::npos);
}

TEST(OnnxMod, ConstantOperandsStillFold) {
  ModelBuilder b(13);
  b.init_i64("x", {2}, {-7, 7}).init_i64("y", {2}, {3, 3}).output("z");
  b.node("Mod", {"x", "y"}, {"z"}, "mod");
  Network n = import_onnx(b.write("mod_const.onnx"));
  ASSERT_EQ(n.model.folded_nodes.size(), 1u);
  const TensorMap out = make_cpu_executor(n)->run({});
  EXPECT_EQ(values_of<int64_t>(out.at("z")), (std::vector<int64_t>{2, 1}));
}

namespace {

// y = Reshape(x, shape) with x fp32 2x3 and shape an int64 graph input of dims {2}.
std::string reshape_model() {
  ModelBuilder b(13);
  b.input("x", {2, 3}).input("shape", {2}, onnx::TensorProto::INT64).output("y");
  b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
  return b.write("reshape_by_input.onnx");
}

}  // namespace

TEST(ShapeValueInputs, WithoutValuesTheErrorNamesTheInput) {
  const std::string path = reshape_model();
  try {
    import_onnx(path);
    FAIL() << "imported without the shape's values";
  } catch (const InputValuesNeeded& e) {
    EXPECT_EQ(e.inputs, (std::vector<std::string>{"shape"}));
    EXPECT_NE(std::string(e.what()).find("node 'reshape' (Reshape): input 'shape' (shape) must be a constant"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("fix their values at import with --input-value shape:V,..."), std::string::npos)
        << e.what();
  }
}

TEST(ShapeValueInputs, FoldReshapeStayAnInputAndAreCheckedAtRunTime) {
  ImportOptions opt;
  opt.input_values = {{"shape", {3, -1}}};
  Network n = import_onnx(reshape_model(), opt);
  // Folded into the Shuffle's dims, still an input of the network.
  EXPECT_EQ(n.tensors[n.find_tensor("y")].dims, (Dims{3, 2}));
  ASSERT_EQ(n.inputs.size(), 2u);
  EXPECT_EQ(n.tensors[n.inputs[1]].name, "shape");
  EXPECT_EQ(n.model.input_values.at("shape"), (std::vector<int64_t>{3, -1}));
  auto ex = make_cpu_executor(n);
  TensorMap in;
  in["x"] = tensor_of<float>("x", DataType::kFloat, {2, 3}, {1, 2, 3, 4, 5, 6});
  in["shape"] = tensor_of<int64_t>("shape", DataType::kInt64, {2}, {3, -1});
  const TensorMap out = ex->run(in);
  EXPECT_EQ(values_of<float>(out.at("y")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(out.at("y").dims, (Dims{3, 2}));
  in["shape"] = tensor_of<int64_t>("shape", DataType::kInt64, {2}, {2, 3});
  try {
    ex->run(in);
    FAIL() << "ran with other values than the fixed ones";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "cpu backend: input 'shape' is a shape-value input, fixed at import to 3,-1 (--input-value shape:3,-1); "
                 "this run gives 2,3: rebuild with the new values");
  }
}

TEST(ShapeValueInputs, OptionErrorsNameTheArgument) {
  const std::string path = reshape_model();
  ImportOptions float_input;
  float_input.input_values = {{"x", {1, 2, 3, 4, 5, 6}}};
  EXPECT_NE(import_error(path, float_input).find("--input-value x:1,2,3,4,5,6: input 'x' of "), std::string::npos);
  EXPECT_NE(import_error(path, float_input).find("is fp32; only int32/int64 inputs take values at import"),
            std::string::npos);
  ImportOptions count;
  count.input_values = {{"shape", {6}}};
  EXPECT_NE(import_error(path, count).find("--input-value shape:6: input 'shape' of "), std::string::npos);
  EXPECT_NE(import_error(path, count).find("has dims 2 (2 values), 1 given"), std::string::npos);
  ImportOptions absent;
  absent.input_values = {{"nope", {1}}};
  EXPECT_NE(import_error(path, absent).find("has no input 'nope' (inputs: x, shape)"), std::string::npos);
  EXPECT_EQ(parse_input_value_arg("a:b:1,-2").first, "a:b");
  EXPECT_EQ(parse_input_value_arg("a:b:1,-2").second, (std::vector<int64_t>{1, -2}));
  try {
    parse_input_value_arg("shape:1,x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--input-value 'shape:1,x': value 'x' is not an integer (expected name:V1,V2,..., e.g. shape:1,-1)");
  }
}

TEST(ShapeValueInputs, ADynamicOneDInputTakesItsLengthFromTheValues) {
  ModelBuilder b(13);
  b.input("x", {2, 3}).input("shape", {-1}, onnx::TensorProto::INT64).output("y");
  b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
  ImportOptions opt;
  opt.input_values = {{"shape", {1, 6, 1}}};
  Network n = import_onnx(b.write("reshape_dynamic_shape.onnx"), opt);
  EXPECT_EQ(n.tensors[n.find_tensor("shape")].dims, (Dims{3}));
  EXPECT_EQ(n.tensors[n.find_tensor("y")].dims, (Dims{1, 6, 1}));
}

TEST(ShapeValueInputs, CliBuildKeepsTheValuesInTheEngineAndRunsCheckThem) {
  const std::string model = reshape_model();
  const std::string dir = tandem::test::temp_dir();
  std::string out;
  // Without the values: the one-line error names the option to use.
  EXPECT_EQ(tandem::test::run_cli("run '" + model + "' --random-input --output-dir '" + dir + "/r0'", &out), 2);
  EXPECT_NE(out.find("fix their values at import with --input-value shape:V,..."), std::string::npos) << out;
  // run on the model: the shape-value input takes its fixed values.
  EXPECT_EQ(tandem::test::run_cli("run '" + model + "' --input-value shape:3,-1 --random-input --output-dir '" + dir +
                                      "/r1' --json",
                                  &out),
            0)
      << out;
  EXPECT_NE(out.find("\"shape\": [\n"), std::string::npos) << out;
  // The trtexec export gives the values as the shape tensor's --shapes entry.
  EXPECT_EQ(tandem::test::run_cli("export trtexec '" + model + "' --input-value shape:3,-1", &out), 0) << out;
  EXPECT_NE(out.find("--shapes=x:2x3,shape:3x-1"), std::string::npos) << out;
  // Built into an engine: the values travel in the engine file; a run that leaves the input out
  // gets them (random data is for the data inputs), and a run with others fails.
  const std::string engine = dir + "/reshape_values.engine";
  ASSERT_EQ(tandem::test::run_cli("build '" + model + "' --input-value shape:3,-1 -o '" + engine + "'", &out), 0) << out;
  EXPECT_EQ(tandem::test::run_cli("run '" + engine + "' --random-input --seed 1 --output-dir '" + dir + "/r2' --json", &out),
            0)
      << out;
  EXPECT_NE(out.find("\"shape\": [\n"), std::string::npos) << out;
  const std::string other = dir + "/shape_2x3.npy";
  write_npy(other, tensor_of<int64_t>("shape", DataType::kInt64, {2}, {2, 3}));
  EXPECT_EQ(tandem::test::run_cli("run '" + engine + "' --random-input --input shape='" + other + "' --output-dir '" + dir +
                                      "/r4'",
                                  &out),
            2);
  EXPECT_NE(out.find("input 'shape' is a shape-value input, fixed at import to 3,-1 (--input-value shape:3,-1); this "
                     "run gives 2,3"),
            std::string::npos)
      << out;
  EXPECT_EQ(tandem::test::run_cli("run '" + engine + "' --input-value shape:3,-1 --random-input --output-dir '" + dir +
                                      "/r3'",
                                  &out),
            2);
  EXPECT_NE(out.find("is an engine; its shape-value inputs were fixed when it was built"), std::string::npos) << out;
}

TEST(ShapeValueInputs, DataSourcesGiveOnlyTheDataInputsAndTheBackendFeedsTheRest) {
  ImportOptions opt;
  opt.input_values = {{"shape", {3, -1}}};
  Network n = import_onnx(reshape_model(), opt);
  // Batchers see the data input alone (an image batcher needs no input name then).
  const std::vector<InputSpec> specs = input_specs(n);
  ASSERT_EQ(specs.size(), 1u);
  EXPECT_EQ(specs[0].name, "x");
  // A run without the shape-value input: the backend feeds the fixed values.
  TensorMap in;
  in["x"] = tensor_of<float>("x", DataType::kFloat, {2, 3}, {1, -2, 3, -4, 5, -6});
  const TensorMap out = make_cpu_executor(n)->run(in);
  EXPECT_EQ(out.at("y").dims, (Dims{3, 2}));
  EXPECT_EQ(values_of<float>(out.at("y")), (std::vector<float>{1, -2, 3, -4, 5, -6}));
  // Calibration over a synthetic batcher of the data input: the range of y is max |x|.
  Plan plan;
  plan.layers.resize(n.layers.size());
  for (auto& l : plan.layers) l.precision = Precision::kINT8;
  // Batch size 2: x is [2, 3], and a batcher replaces dimension 0 with its batch size.
  auto batcher = make_synthetic_batcher(specs, 2, 2, -2.f, 1.f, 5);
  float amax = 0.f;
  TensorMap batch;
  while (batcher->next(&batch)) {
    ASSERT_EQ(batch.at("x").count(), 6);
    for (int i = 0; i < 6; ++i) amax = std::max(amax, std::fabs(batch.at("x").f32()[i]));
  }
  batcher->reset();
  CalibrateOptions co;
  co.algorithm = CalibAlgorithm::kMinMax;
  co.progress = false;
  const CalibrationResult r = calibrate(n, plan, *batcher, co);
  EXPECT_EQ(r.batches, 2);
  EXPECT_FLOAT_EQ(r.ranges.at("y"), amax);
}
