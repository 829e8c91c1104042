// Random valid ONNX graphs: a pool of NCHW tensors grows one node at a time; each op's attributes
// and constant operands are drawn so that the node is valid for its inputs' shapes. Weights come
// from a generator seeded by one choice, so the fuzzer's bytes go into structure, not values.
#include "onnx_gen.h"

#include <algorithm>
#include <random>

#include "tandem_onnx_pb/onnx.pb.h"

namespace tandem::fuzz {
namespace {

using Shape = std::vector<int64_t>;

struct Value {
  std::string name;
  Shape dims;  // [1, C, H, W]
};

class Builder {
 public:
  Builder(const Chooser& pick, uint32_t seed) : pick_(pick), rng_(seed) {
    m_.set_ir_version(8);
    m_.set_producer_name("tandem-fuzz-gen");
    auto* o = m_.add_opset_import();
    o->set_domain("");
    o->set_version(13);
    g_ = m_.mutable_graph();
    g_->set_name("g");
  }

  uint32_t pick(uint32_t n) { return n <= 1 ? 0 : pick_(n) % n; }
  float rnd(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng_); }

  std::string init(const Shape& dims, float lo, float hi) {
    std::string name = "w" + std::to_string(inits_++);
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    for (int64_t i = 0; i < n; ++i) t->add_float_data(rnd(lo, hi));
    return name;
  }
  std::string init_i64(const Shape& v) {
    std::string name = "w" + std::to_string(inits_++);
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(int64_t(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
    return name;
  }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& in, Shape out_dims) {
    auto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name("n" + std::to_string(nodes_));
    for (const auto& s : in) n->add_input(s);
    std::string out = "t" + std::to_string(nodes_++);
    n->add_output(out);
    pool_.push_back({out, std::move(out_dims)});
    ops_.push_back(op);
    return n;
  }
  static void attr_i(onnx::NodeProto* n, const char* name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_f(onnx::NodeProto* n, const char* name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr_s(onnx::NodeProto* n, const char* name, const std::string& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  static void attr_ints(onnx::NodeProto* n, const char* name, const Shape& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  void add_input(const Shape& dims) {
    auto* vi = g_->add_input();
    vi->set_name("x");
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
    pool_.push_back({"x", dims});
  }

  // Every tensor no node reads becomes a graph output (the input excluded).
  void finish_outputs() {
    for (size_t i = 1; i < pool_.size(); ++i) {
      bool used = false;
      for (const auto& n : g_->node())
        for (const auto& in : n.input()) used = used || in == pool_[i].name;
      if (!used) g_->add_output()->set_name(pool_[i].name);
    }
  }

  const Value& any() { return pool_[pick(uint32_t(pool_.size()))]; }
  const Value& latest() { return pool_.back(); }
  // Prefer recent tensors (deeper graphs), sometimes any.
  Value operand() { return pick(4) == 0 ? any() : latest(); }
  std::vector<Value>& pool() { return pool_; }

  onnx::ModelProto m_;
  std::vector<std::string> ops_;

 private:
  const Chooser& pick_;
  std::mt19937 rng_;
  onnx::GraphProto* g_ = nullptr;
  std::vector<Value> pool_;
  int inits_ = 0, nodes_ = 0;
};

int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

void add_conv(Builder& b, const Value& x) {
  const int64_t C = x.dims[1], H = x.dims[2], W = x.dims[3];
  const bool depthwise = C > 1 && b.pick(3) == 0;
  const int64_t K = depthwise ? C : 1 + b.pick(8);
  int64_t k = b.pick(2) ? 3 : 1, s = 1 + b.pick(2), p = k == 3 ? b.pick(2) : 0;
  if (H + 2 * p < k || W + 2 * p < k) k = 1, p = 0;  // the kernel must fit the padded input
  const int64_t g = depthwise ? C : 1;
  std::vector<std::string> in = {x.name, b.init({K, C / g, k, k}, -0.5f, 0.5f)};
  if (b.pick(2)) in.push_back(b.init({K}, -0.2f, 0.2f));
  auto* n = b.node("Conv", in, {1, K, conv_out(H, k, s, p), conv_out(W, k, s, p)});
  Builder::attr_ints(n, "kernel_shape", {k, k});
  Builder::attr_ints(n, "strides", {s, s});
  Builder::attr_ints(n, "pads", {p, p, p, p});
  if (g > 1) Builder::attr_i(n, "group", g);
}

void add_activation(Builder& b, const Value& x) {
  static const char* kOps[] = {"Relu", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "Clip", "Elu", "Abs", "Neg"};
  std::string op = kOps[b.pick(9)];
  std::vector<std::string> in = {x.name};
  if (op == "Clip") {
    in.push_back(b.init({}, -1.f, -0.1f));
    in.push_back(b.init({}, 0.1f, 1.f));
  }
  auto* n = b.node(op, in, x.dims);
  if (op == "LeakyRelu") Builder::attr_f(n, "alpha", 0.01f * float(1 + b.pick(30)));
  if (op == "Elu") Builder::attr_f(n, "alpha", 0.5f + 0.5f * float(b.pick(3)));
}

void add_binary(Builder& b, const Value& x) {
  static const char* kOps[] = {"Add", "Mul", "Sub", "Max", "Min"};
  std::string op = kOps[b.pick(5)];
  std::string other;
  // Another tensor of the same shape if there is one, else a broadcast constant.
  std::vector<Value> same;
  for (const auto& v : b.pool())
    if (v.dims == x.dims) same.push_back(v);
  const uint32_t how = b.pick(4);
  if (how == 0 && !same.empty()) {
    other = same[b.pick(uint32_t(same.size()))].name;
  } else if (how == 1) {
    other = b.init({x.dims[1], 1, 1}, -1.f, 1.f);
  } else if (how == 2) {
    other = b.init({1}, -1.f, 1.f);
  } else {
    other = b.init({1, x.dims[1], 1, 1}, 0.5f, 1.5f);
  }
  if (b.pick(2)) b.node(op, {x.name, other}, x.dims);
  else b.node(op, {other, x.name}, x.dims);
}

void add_pool(Builder& b, const Value& x) {
  const int64_t C = x.dims[1], H = x.dims[2], W = x.dims[3];
  const uint32_t kind = b.pick(4);
  if (kind == 3) {
    b.node(b.pick(2) ? "GlobalAveragePool" : "GlobalMaxPool", {x.name}, {1, C, 1, 1});
    return;
  }
  const bool max = b.pick(2);
  int64_t k = 2, s = 2, p = 0;
  if (kind == 1 || H < 2 || W < 2) k = 3, s = 1, p = 1;
  if (kind == 2 && H >= 3 && W >= 3) k = 3, s = 2, p = 0;
  auto* n = b.node(max ? "MaxPool" : "AveragePool", {x.name}, {1, C, conv_out(H, k, s, p), conv_out(W, k, s, p)});
  Builder::attr_ints(n, "kernel_shape", {k, k});
  Builder::attr_ints(n, "strides", {s, s});
  Builder::attr_ints(n, "pads", {p, p, p, p});
  if (!max && p > 0) Builder::attr_i(n, "count_include_pad", b.pick(2));
}

void add_shape_op(Builder& b, const Value& x) {
  const int64_t C = x.dims[1], H = x.dims[2], W = x.dims[3];
  switch (b.pick(6)) {
    case 0: {  // BatchNormalization
      std::vector<std::string> in = {x.name, b.init({C}, 0.5f, 1.5f), b.init({C}, -0.5f, 0.5f),
                                     b.init({C}, -0.5f, 0.5f), b.init({C}, 0.5f, 2.f)};
      b.node("BatchNormalization", in, x.dims);
      return;
    }
    case 1: {  // Concat along channels with a tensor of the same H, W (or itself)
      Value y = x;
      for (const auto& v : b.pool())
        if (v.dims[2] == H && v.dims[3] == W && b.pick(2)) y = v;
      auto* n = b.node("Concat", {x.name, y.name}, {1, C + y.dims[1], H, W});
      Builder::attr_i(n, "axis", 1);
      return;
    }
    case 2: {  // Transpose H and W
      auto* n = b.node("Transpose", {x.name}, {1, C, W, H});
      Builder::attr_ints(n, "perm", {0, 1, 3, 2});
      return;
    }
    case 3: {  // ReduceMean over H, W
      auto* n = b.node("ReduceMean", {x.name}, {1, C, 1, 1});
      Builder::attr_ints(n, "axes", {2, 3});
      Builder::attr_i(n, "keepdims", 1);
      return;
    }
    case 4: {  // Softmax over channels
      auto* n = b.node("Softmax", {x.name}, x.dims);
      Builder::attr_i(n, "axis", 1);
      return;
    }
    case 5: {  // Slice of the channels
      if (C < 2) {
        b.node("Relu", {x.name}, x.dims);
        return;
      }
      int64_t lo = b.pick(uint32_t(C - 1)), hi = lo + 1 + b.pick(uint32_t(C - lo - 1));
      b.node("Slice", {x.name, b.init_i64({lo}), b.init_i64({hi}), b.init_i64({1})}, {1, hi - lo, H, W});
      return;
    }
  }
}

void add_layout_op(Builder& b, const Value& x) {
  const int64_t C = x.dims[1], H = x.dims[2], W = x.dims[3];
  switch (b.pick(3)) {
    case 0: {  // Resize nearest, x2 (floor, asymmetric: the same pixels in every implementation)
      if (H * W * 4 * C > 4096) {
        b.node("Relu", {x.name}, x.dims);
        return;
      }
      std::string roi = b.init({0}, 0.f, 0.f);
      std::string scales = b.init({4}, 1.f, 1.f);
      b.node("Resize", {x.name, roi, scales}, {1, C, 2 * H, 2 * W});
      break;
    }
    case 1: {  // Reshape: fold H into the channels
      b.node("Reshape", {x.name, b.init_i64({1, C * H, 1, W})}, {1, C * H, 1, W});
      return;
    }
    case 2: {  // MatMul with a constant [W, N] on the last axis
      const int64_t N = 1 + b.pick(8);
      b.node("MatMul", {x.name, b.init({W, N}, -0.5f, 0.5f)}, {1, C, H, N});
      return;
    }
  }
}

}  // namespace

GeneratedModel generate_model(const Chooser& pick, int max_nodes) {
  const uint32_t seed = pick(1u << 30);
  Builder b(pick, seed);
  GeneratedModel out;
  out.input_dims = {1, 1 + int64_t(b.pick(6)), 1 + int64_t(b.pick(12)), 1 + int64_t(b.pick(12))};
  b.add_input(out.input_dims);
  const int nodes = 1 + int(b.pick(uint32_t(std::max(1, max_nodes))));
  for (int i = 0; i < nodes; ++i) {
    Value x = b.operand();
    switch (b.pick(6)) {
      case 0: add_conv(b, x); break;
      case 1: add_activation(b, x); break;
      case 2: add_binary(b, x); break;
      case 3: add_pool(b, x); break;
      case 4: add_shape_op(b, x); break;
      case 5: add_layout_op(b, x); break;
    }
  }
  // Resize's scales were written as ones: make them the x2 the shape says.
  for (auto& n : *b.m_.mutable_graph()->mutable_node()) {
    if (n.op_type() != "Resize") continue;
    Builder::attr_s(&n, "mode", "nearest");
    Builder::attr_s(&n, "coordinate_transformation_mode", "asymmetric");
    Builder::attr_s(&n, "nearest_mode", "floor");
    for (auto& t : *b.m_.mutable_graph()->mutable_initializer())
      if (t.name() == n.input(2)) {
        t.clear_float_data();
        for (float v : {1.f, 1.f, 2.f, 2.f}) t.add_float_data(v);
      }
  }
  b.finish_outputs();
  out.ops = b.ops_;
  out.bytes = b.m_.SerializeAsString();
  return out;
}

}  // namespace tandem::fuzz
