// If, Loop and Scan with static shapes (src/onnx/ops_control.cpp): the subgraphs imported once per
// branch or iteration, hand-worked values on the CPU backend, and one-line refusals of what would
// depend on runtime values.
#include <gtest/gtest.h>

#include <cstring>

#include "model_builder.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

using namespace tandem;
using tandem::test::ModelBuilder;

namespace {

HostTensor floats(const std::string& name, Dims d, const std::vector<float>& v) {
  HostTensor t = HostTensor::zeros(name, DataType::kFloat, d);
  std::memcpy(t.data.data(), v.data(), v.size() * 4);
  return t;
}

std::vector<float> values(const HostTensor& t) { return {t.f32(), t.f32() + t.count()}; }

onnx::GraphProto* graph_attr(onnx::NodeProto& n, const std::string& name) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::GRAPH);
  a->mutable_g()->set_name(name);
  return a->mutable_g();
}

onnx::NodeProto& add_node(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& in,
                          const std::vector<std::string>& out) {
  auto* n = g->add_node();
  n->set_op_type(op);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return *n;
}

void names(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* vs, const std::vector<std::string>& ns) {
  for (const auto& s : ns) vs->Add()->set_name(s);
}

// A constant tensor node in a subgraph.
void constant(onnx::GraphProto* g, const std::string& out, const std::vector<int64_t>& dims, int type,
              const std::vector<double>& v) {
  auto& n = add_node(g, "Constant", {}, {out});
  auto* a = n.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  auto* t = a->mutable_t();
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  for (double x : v) {
    if (type == onnx::TensorProto::FLOAT) t->add_float_data(static_cast<float>(x));
    else if (type == onnx::TensorProto::BOOL) t->add_int32_data(x != 0);
    else t->add_int64_data(static_cast<int64_t>(x));
  }
}

std::string import_error(const std::string& path) {
  try {
    import_onnx(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Loop body: y_out = y_in + x[i], scan_out = y_out, cond_out = i < stop (stop < 0: cond_in).
void loop_body(onnx::GraphProto* body, int64_t stop) {
  names(body->mutable_input(), {"i", "cond_in", "y_in"});
  names(body->mutable_output(), {"cond_out", "y_out", "scan_out"});
  constant(body, "xs", {5}, onnx::TensorProto::FLOAT, {1, 2, 3, 4, 5});
  constant(body, "one", {}, onnx::TensorProto::INT64, {1});
  add_node(body, "Add", {"i", "one"}, {"end"});
  ModelBuilder::attr_ints(add_node(body, "Unsqueeze", {"i"}, {"start1"}), "axes", {0});
  ModelBuilder::attr_ints(add_node(body, "Unsqueeze", {"end"}, {"end1"}), "axes", {0});
  add_node(body, "Slice", {"xs", "start1", "end1"}, {"xi"});
  add_node(body, "Add", {"y_in", "xi"}, {"y_out"});
  add_node(body, "Identity", {"y_out"}, {"scan_out"});
  if (stop < 0) {
    add_node(body, "Identity", {"cond_in"}, {"cond_out"});
  } else {
    constant(body, "stop", {}, onnx::TensorProto::INT64, {static_cast<double>(stop)});
    add_node(body, "Less", {"i", "stop"}, {"cond_out"});
  }
}

}  // namespace

// M = 5, cond true: y = y0 + 1 + 2 + 3 + 4 + 5, the scan output every partial sum.
// Loop body: y_out = y_in + y_in, scan_out = y_out, cond_out = y_out < 4 (runtime data).
void doubling_body(onnx::GraphProto* body) {
  names(body->mutable_input(), {"i", "cond_in", "y_in"});
  names(body->mutable_output(), {"cond_out", "y_out", "scan_out"});
  constant(body, "lim", {1}, onnx::TensorProto::FLOAT, {4});
  add_node(body, "Add", {"y_in", "y_in"}, {"y_out"});
  add_node(body, "Identity", {"y_out"}, {"scan_out"});
  add_node(body, "Less", {"y_out", "lim"}, {"cond_out"});
}

TEST(OnnxControlFlow, LoopWithConstantTripCountIsUnrolled) {
  ModelBuilder b(11);
  b.input("y", {1}).output("res_y").output("res_scan");
  b.init_i64("M", {}, {5});
  b.proto().mutable_graph()->add_initializer()->CopyFrom([] {
    onnx::TensorProto t;
    t.set_name("cond");
    t.set_data_type(onnx::TensorProto::BOOL);
    t.add_int32_data(1);
    return t;
  }());
  auto& n = b.node("Loop", {"M", "cond", "y"}, {"res_y", "res_scan"}, "loop");
  loop_body(graph_attr(n, "body"), -1);
  Network net = import_onnx(b.write("loop_const.onnx"));
  EXPECT_EQ(net.tensors[net.find_tensor("res_scan")].dims, (Dims{5, 1}));
  TensorMap feed;
  feed["y"] = floats("y", {1}, {10});
  TensorMap out = make_cpu_executor(net)->run(feed);
  EXPECT_EQ(values(out["res_y"]), (std::vector<float>{25}));
  EXPECT_EQ(values(out["res_scan"]), (std::vector<float>{11, 13, 16, 20, 25}));
  // Unrolled: one body copy per iteration, named by iteration; the slices folded to constants.
  EXPECT_GE(net.find_tensor("loop/iter4/y_out"), 0);
  EXPECT_LT(net.find_tensor("loop/iter5/y_out"), 0);
}

// No trip count; the body's condition i < 2 folds at each iteration: 3 iterations (i = 0, 1, 2).
TEST(OnnxControlFlow, LoopConditionFromTheIterationNumber) {
  ModelBuilder b(11);
  b.input("y", {1}).output("res_y").output("res_scan");
  auto& n = b.node("Loop", {"", "", "y"}, {"res_y", "res_scan"}, "loop");
  loop_body(graph_attr(n, "body"), 2);
  Network net = import_onnx(b.write("loop_cond.onnx"));
  TensorMap feed;
  feed["y"] = floats("y", {1}, {0});
  TensorMap out = make_cpu_executor(net)->run(feed);
  EXPECT_EQ(values(out["res_y"]), (std::vector<float>{6}));
  EXPECT_EQ(values(out["res_scan"]), (std::vector<float>{1, 3, 6}));
}

TEST(OnnxControlFlow, LoopRefusesRuntimeTripCountAndCondition) {
  {
    ModelBuilder b(11);
    b.input("y", {1}).input("M", {}, onnx::TensorProto::INT64).output("res_y").output("res_scan");
    auto& n = b.node("Loop", {"M", "", "y"}, {"res_y", "res_scan"}, "loop");
    loop_body(graph_attr(n, "body"), -1);
    const std::string e = import_error(b.write("loop_runtime_m.onnx"));
    EXPECT_NE(e.find("node 'loop' (Loop): the trip count 'M' is a runtime value"), std::string::npos) << e;
  }
  {
    // The body's condition compares y (runtime data) and no trip count bounds the loop.
    ModelBuilder b(11);
    b.input("y", {1}).output("res_y");
    auto& n = b.node("Loop", {"", "", "y"}, {"res_y"}, "loop");
    doubling_body(graph_attr(n, "body"));
    const std::string e = import_error(b.write("loop_runtime_cond.onnx"));
    EXPECT_NE(e.find("node 'loop' (Loop): the body's condition output 'cond_out' is a runtime value at iteration 0 "
                     "and there is no trip count"),
              std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
}

// With a trip count, a runtime condition gates the unrolled iterations, as TensorRT's ILoopLayer
// (kWHILE) runs them: y doubles while y < 4, at most 3 times.
TEST(OnnxControlFlow, LoopRuntimeConditionGatesTheIterations) {
  ModelBuilder b(11);
  b.input("y", {1}).output("res_y").output("res_scan");
  b.init_i64("M", {}, {3});
  auto& n = b.node("Loop", {"M", "", "y"}, {"res_y", "res_scan"}, "loop");
  doubling_body(graph_attr(n, "body"));
  Network net = import_onnx(b.write("loop_gated.onnx"));
  // Scan outputs keep trip-count rows, the length the parser gives kCONCATENATE loop outputs.
  EXPECT_EQ(net.tensors[net.find_tensor("res_scan")].dims, (Dims{3, 1}));
  auto ex = make_cpu_executor(net);
  TensorMap feed;
  feed["y"] = floats("y", {1}, {1});
  EXPECT_EQ(values(ex->run(feed)["res_y"]), (std::vector<float>{4}));  // 1 -> 2 (2 < 4) -> 4 (stop)
  feed["y"] = floats("y", {1}, {3});
  EXPECT_EQ(values(ex->run(feed)["res_y"]), (std::vector<float>{6}));  // 3 -> 6 (stop): one iteration
  feed["y"] = floats("y", {1}, {0.25f});
  EXPECT_EQ(values(ex->run(feed)["res_y"]), (std::vector<float>{2}));  // three doublings, the trip count
}

// A runtime initial condition (a bool graph input, the body passing it through, as test_loop11):
// false leaves the loop-carried value as it came in.
TEST(OnnxControlFlow, LoopRuntimeInitialCondition) {
  ModelBuilder b(11);
  b.input("y", {1}).input("cond", {}, onnx::TensorProto::BOOL).output("res_y").output("res_scan");
  b.init_i64("M", {}, {3});
  auto& n = b.node("Loop", {"M", "cond", "y"}, {"res_y", "res_scan"}, "loop");
  loop_body(graph_attr(n, "body"), -1);
  Network net = import_onnx(b.write("loop_runtime_initial_cond.onnx"));
  auto ex = make_cpu_executor(net);
  TensorMap feed;
  feed["y"] = floats("y", {1}, {10});
  feed["cond"] = HostTensor::zeros("cond", DataType::kBool, {});
  EXPECT_EQ(values(ex->run(feed)["res_y"]), (std::vector<float>{10}));
  feed["cond"].data[0] = 1;
  TensorMap out = ex->run(feed);
  EXPECT_EQ(values(out["res_y"]), (std::vector<float>{16}));  // 10 + 1 + 2 + 3
  EXPECT_EQ(values(out["res_scan"]), (std::vector<float>{11, 13, 16}));
}

TEST(OnnxControlFlow, LoopOverTheUnrollCapIsRefused) {
  ModelBuilder b(11);
  b.input("y", {1}).output("res_y");
  b.init_i64("M", {}, {5000});
  auto& n = b.node("Loop", {"M", "", "y"}, {"res_y"}, "long_loop");
  auto* body = graph_attr(n, "body");
  names(body->mutable_input(), {"i", "cond_in", "y_in"});
  names(body->mutable_output(), {"cond_in", "y_out"});
  add_node(body, "Neg", {"y_in"}, {"y_out"});
  const std::string e = import_error(b.write("loop_long.onnx"));
  EXPECT_NE(e.find("node 'long_loop' (Loop): more than 1024 iterations"), std::string::npos) << e;
}

// A constant condition imports the taken branch only; a runtime one both, selected per output.
TEST(OnnxControlFlow, IfConstantAndRuntimeCondition) {
  auto model = [](bool runtime_cond, bool same_shapes, const char* file) {
    ModelBuilder b(11);
    b.input("x", {2}).output("res");
    if (runtime_cond) b.input("c", {}, onnx::TensorProto::BOOL);
    else b.init("c", {}, {0.f});
    auto& n = b.node("If", {"c"}, {"res"}, "if");
    auto* then_g = graph_attr(n, "then_branch");
    names(then_g->mutable_output(), {"t"});
    constant(then_g, "two", {1}, onnx::TensorProto::FLOAT, {2});
    add_node(then_g, "Mul", {"x", "two"}, {"t"});  // x of the outer scope
    auto* else_g = graph_attr(n, "else_branch");
    names(else_g->mutable_output(), {"e"});
    constant(else_g, "ten", same_shapes ? std::vector<int64_t>{1} : std::vector<int64_t>{3, 1}, onnx::TensorProto::FLOAT,
             same_shapes ? std::vector<double>{10} : std::vector<double>{10, 10, 10});
    add_node(else_g, "Add", {"x", "ten"}, {"e"});
    return b.write(file);
  };
  Network net = import_onnx(model(false, true, "if_const.onnx"));
  for (const Layer& l : net.layers) EXPECT_EQ(l.onnx_node.rfind("if/then", 0), std::string::npos) << l.name;
  TensorMap feed;
  feed["x"] = floats("x", {2}, {1, 2});
  EXPECT_EQ(values(make_cpu_executor(net)->run(feed)["res"]), (std::vector<float>{11, 12}));
  Network both = import_onnx(model(true, true, "if_runtime.onnx"));
  for (bool c : {true, false}) {
    HostTensor ct = HostTensor::zeros("c", DataType::kBool, {});
    ct.data[0] = c;
    feed["c"] = ct;
    EXPECT_EQ(values(make_cpu_executor(both)->run(feed)["res"]), c ? (std::vector<float>{2, 4}) : (std::vector<float>{11, 12}));
  }
  const std::string e = import_error(model(true, false, "if_shapes.onnx"));
  EXPECT_NE(e.find("node 'if' (If): the condition is a runtime value and output 0 is fp32 2 in then_branch, "
                   "fp32 3x2 in else_branch: tandem's shapes are static"), std::string::npos) << e;
}

// Scan 9+: a reversed scan input along axis 1, the scan output stacked on axis 1 and prepended.
TEST(OnnxControlFlow, ScanAxesAndDirections) {
  ModelBuilder b(11);
  b.input("init", {2}).input("x", {2, 3}).output("final").output("ys");
  auto& n = b.node("Scan", {"init", "x"}, {"final", "ys"}, "scan");
  ModelBuilder::attr_i(n, "num_scan_inputs", 1);
  ModelBuilder::attr_ints(n, "scan_input_axes", {1});
  ModelBuilder::attr_ints(n, "scan_input_directions", {1});
  ModelBuilder::attr_ints(n, "scan_output_axes", {1});
  ModelBuilder::attr_ints(n, "scan_output_directions", {1});
  auto* body = graph_attr(n, "body");
  names(body->mutable_input(), {"s_in", "col"});
  names(body->mutable_output(), {"s_out", "y"});
  add_node(body, "Add", {"s_in", "col"}, {"s_out"});
  add_node(body, "Identity", {"s_out"}, {"y"});
  Network net = import_onnx(b.write("scan_axes.onnx"));
  EXPECT_EQ(net.tensors[net.find_tensor("ys")].dims, (Dims{2, 3}));
  TensorMap feed;
  feed["init"] = floats("init", {2}, {0, 100});
  feed["x"] = floats("x", {2, 3}, {1, 2, 3, 4, 5, 6});
  TensorMap out = make_cpu_executor(net)->run(feed);
  // Columns read last to first: row 0 sums 3, 3+2, 3+2+1; prepended, so stored in reverse.
  EXPECT_EQ(values(out["final"]), (std::vector<float>{6, 115}));
  EXPECT_EQ(values(out["ys"]), (std::vector<float>{6, 5, 3, 115, 111, 106}));
}

// Scan 8: axis 0 of every input is the batch, each batch element scanned on its own (axis 1).
TEST(OnnxControlFlow, Scan8BatchOfTwo) {
  ModelBuilder b(8);
  b.input("init", {2, 1}).input("x", {2, 3, 1}).output("final").output("ys");
  auto& n = b.node("Scan", {"", "init", "x"}, {"final", "ys"}, "scan8");
  ModelBuilder::attr_i(n, "num_scan_inputs", 1);
  ModelBuilder::attr_ints(n, "directions", {1});
  auto* body = graph_attr(n, "body");
  names(body->mutable_input(), {"s_in", "v"});
  names(body->mutable_output(), {"s_out", "y"});
  add_node(body, "Mul", {"s_in", "v"}, {"s_out"});
  add_node(body, "Identity", {"s_out"}, {"y"});
  Network net = import_onnx(b.write("scan8.onnx"));
  TensorMap feed;
  feed["init"] = floats("init", {2, 1}, {1, 10});
  feed["x"] = floats("x", {2, 3, 1}, {2, 3, 4, 5, 6, 7});
  TensorMap out = make_cpu_executor(net)->run(feed);
  // Reversed: batch 0 multiplies by 4, 3, 2; batch 1 by 7, 6, 5.
  EXPECT_EQ(values(out["final"]), (std::vector<float>{24, 2100}));
  EXPECT_EQ(values(out["ys"]), (std::vector<float>{4, 12, 24, 70, 420, 2100}));
}
