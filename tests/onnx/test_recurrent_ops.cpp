// RNN / GRU / LSTM unrolled at import (src/onnx/ops_recurrent.cpp): a one-step LSTM worked by
// hand, every attribute the node tests leave out (directions, layout 1, clip, sequence_lens,
// peepholes, input_forget, linear_before_reset, given activations) against a plain-loop reading
// of ONNX's equations, and one-line errors naming the node and the attribute.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "model_builder.h"
#include "tandem/dla.h"
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

void attr_strings(onnx::NodeProto& n, const std::string& name, const std::vector<std::string>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRINGS);
  for (const auto& s : v) a->add_strings(s);
}

void attr_floats(onnx::NodeProto& n, const std::string& name, const std::vector<float>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float f : v) a->add_floats(f);
}

std::string import_error(const std::string& path) {
  try {
    import_onnx(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Deterministic values in [-scale, scale].
std::vector<float> pattern(size_t n, float scale, int seed) {
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = scale * std::sin(0.7f * static_cast<float>(k) + 1.3f * static_cast<float>(seed));
  return v;
}

// ---- a plain-loop reading of ONNX's RNN / GRU / LSTM equations (the peer the import is checked
// against; it shares no code with src/onnx) ----
enum class Kind { kRnn, kGru, kLstm };

struct Case {
  Kind kind = Kind::kLstm;
  int64_t seq = 3, batch = 2, input = 3, hidden = 2, dirs = 1;
  std::string direction = "forward";
  bool batch_first = false, with_bias = true, with_init = true, peepholes = false, input_forget = false;
  bool linear_before_reset = false;
  float clip = 0.f;
  std::vector<int64_t> lens;  // empty: none
  std::vector<std::string> acts;
  std::vector<float> alphas, betas;
};

using Fn = std::function<float(float)>;

Fn act_fn(const std::string& n, float alpha, float beta) {
  if (n == "Sigmoid") return [](float x) { return 1.f / (1.f + std::exp(-x)); };
  if (n == "Tanh") return [](float x) { return std::tanh(x); };
  if (n == "Relu") return [](float x) { return x > 0 ? x : 0.f; };
  if (n == "LeakyRelu") return [alpha](float x) { return x >= 0 ? x : alpha * x; };
  if (n == "HardSigmoid") return [alpha, beta](float x) { return std::fmin(1.f, std::fmax(0.f, alpha * x + beta)); };
  if (n == "Affine") return [alpha, beta](float x) { return alpha * x + beta; };
  ADD_FAILURE() << "no reference for " << n;
  return [](float x) { return x; };
}

struct Weights {
  std::vector<float> x, w, r, b, p, h0, c0;
};

struct Result {
  std::vector<float> y, yh, yc;  // ONNX layout 0: [seq, dirs, batch, H], [dirs, batch, H]
};

Result reference(const Case& c, const Weights& v) {
  const int64_t G = c.kind == Kind::kRnn ? 1 : c.kind == Kind::kGru ? 3 : 4, H = c.hidden, I = c.input;
  const size_t per_dir = c.kind == Kind::kRnn ? 1 : c.kind == Kind::kGru ? 2 : 3;
  Result res;
  res.y.assign(static_cast<size_t>(c.seq * c.dirs * c.batch * H), 0.f);
  res.yh.assign(static_cast<size_t>(c.dirs * c.batch * H), 0.f);
  res.yc = res.yh;
  auto X = [&](int64_t t, int64_t b, int64_t i) {
    return c.batch_first ? v.x[(b * c.seq + t) * I + i] : v.x[(t * c.batch + b) * I + i];
  };
  size_t ai = 0, bi = 0;
  for (int64_t d = 0; d < c.dirs; ++d) {
    std::vector<Fn> f;
    for (size_t k = 0; k < per_dir; ++k) {
      const std::string n = c.acts.empty() ? (c.kind == Kind::kRnn ? "Tanh" : k == 0 ? "Sigmoid" : "Tanh")
                                           : c.acts[d * per_dir + k];
      const bool ta = n == "LeakyRelu" || n == "HardSigmoid" || n == "Affine", tb = n == "HardSigmoid" || n == "Affine";
      const float al = ta && ai < c.alphas.size() ? c.alphas[ai++] : (n == "LeakyRelu" ? 0.01f : 0.2f);
      const float be = tb && bi < c.betas.size() ? c.betas[bi++] : 0.5f;
      f.push_back(act_fn(n, al, be));
    }
    auto W = [&](int64_t row, int64_t i) { return v.w[(d * G * H + row) * I + i]; };
    auto R = [&](int64_t row, int64_t j) { return v.r[(d * G * H + row) * H + j]; };
    auto Wb = [&](int64_t row) { return c.with_bias ? v.b[d * 2 * G * H + row] : 0.f; };
    auto Rb = [&](int64_t row) { return c.with_bias ? v.b[d * 2 * G * H + G * H + row] : 0.f; };
    auto P = [&](int64_t g, int64_t j) { return c.peepholes ? v.p[d * 3 * H + g * H + j] : 0.f; };
    auto cl = [&](float x) { return c.clip > 0 ? std::fmin(c.clip, std::fmax(-c.clip, x)) : x; };
    const bool back = c.direction == "reverse" || d == 1;
    for (int64_t b = 0; b < c.batch; ++b) {
      std::vector<float> h(H, 0.f), cs(H, 0.f);
      if (c.with_init)
        for (int64_t j = 0; j < H; ++j) {
          h[j] = v.h0[(d * c.batch + b) * H + j];
          cs[j] = c.kind == Kind::kLstm ? v.c0[(d * c.batch + b) * H + j] : 0.f;
        }
      const int64_t len = c.lens.empty() ? c.seq : c.lens[b];
      for (int64_t k = 0; k < len; ++k) {
        const int64_t t = back ? len - 1 - k : k;
        auto gate = [&](int64_t row, const std::vector<float>& hin, bool with_r_bias) {
          float s = Wb(row) + (with_r_bias ? Rb(row) : 0.f);
          for (int64_t i = 0; i < I; ++i) s += X(t, b, i) * W(row, i);
          for (int64_t j = 0; j < H; ++j) s += hin[j] * R(row, j);
          return s;
        };
        std::vector<float> hn(H), cn(H);
        for (int64_t j = 0; j < H; ++j) {
          if (c.kind == Kind::kRnn) {
            hn[j] = f[0](cl(gate(j, h, true)));
          } else if (c.kind == Kind::kLstm) {
            const float i_ = f[0](cl(gate(j, h, true) + P(0, j) * cs[j]));
            const float f_ = c.input_forget ? 1.f - i_ : f[0](cl(gate(2 * H + j, h, true) + P(2, j) * cs[j]));
            cn[j] = f_ * cs[j] + i_ * f[1](cl(gate(3 * H + j, h, true)));
            const float o_ = f[0](cl(gate(H + j, h, true) + P(1, j) * cn[j]));
            hn[j] = o_ * f[2](cn[j]);
          }
        }
        if (c.kind == Kind::kGru) {
          std::vector<float> z(H), r(H), rh(H);
          for (int64_t j = 0; j < H; ++j) {
            z[j] = f[0](cl(gate(j, h, true)));
            r[j] = f[0](cl(gate(H + j, h, true)));
            rh[j] = r[j] * h[j];
          }
          for (int64_t j = 0; j < H; ++j) {
            float pre;
            if (c.linear_before_reset) {
              float hr = Rb(2 * H + j);
              for (int64_t q = 0; q < H; ++q) hr += h[q] * R(2 * H + j, q);
              pre = Wb(2 * H + j) + r[j] * hr;
              for (int64_t i = 0; i < I; ++i) pre += X(t, b, i) * W(2 * H + j, i);
            } else {
              pre = gate(2 * H + j, rh, true);
            }
            hn[j] = (1 - z[j]) * f[1](cl(pre)) + z[j] * h[j];
          }
        }
        h = hn;
        cs = cn;
        for (int64_t j = 0; j < H; ++j) res.y[((t * c.dirs + d) * c.batch + b) * H + j] = h[j];
      }
      for (int64_t j = 0; j < H; ++j) {
        res.yh[(d * c.batch + b) * H + j] = h[j];
        res.yc[(d * c.batch + b) * H + j] = cs[j];
      }
    }
  }
  return res;
}

// Builds the node (weights as initializers), imports it, runs it on the CPU backend and compares
// Y, Y_h (and Y_c) with the reference within 1e-5.
void check_against_reference(const Case& c, const char* file) {
  const int64_t G = c.kind == Kind::kRnn ? 1 : c.kind == Kind::kGru ? 3 : 4, H = c.hidden;
  Weights v;
  v.x = pattern(static_cast<size_t>(c.seq * c.batch * c.input), 1.f, 1);
  v.w = pattern(static_cast<size_t>(c.dirs * G * H * c.input), 0.6f, 2);
  v.r = pattern(static_cast<size_t>(c.dirs * G * H * H), 0.5f, 3);
  v.b = pattern(static_cast<size_t>(c.dirs * 2 * G * H), 0.3f, 4);
  v.p = pattern(static_cast<size_t>(c.dirs * 3 * H), 0.4f, 5);
  v.h0 = pattern(static_cast<size_t>(c.dirs * c.batch * H), 0.5f, 6);
  v.c0 = pattern(static_cast<size_t>(c.dirs * c.batch * H), 0.8f, 7);
  // The model's own layouts: batch-first moves batch before seq (X) and before dirs (states).
  auto to_batch_first_state = [&](const std::vector<float>& s) {
    std::vector<float> o(s.size());
    for (int64_t d = 0; d < c.dirs; ++d)
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t j = 0; j < H; ++j) o[(b * c.dirs + d) * H + j] = s[(d * c.batch + b) * H + j];
    return o;
  };
  const char* op = c.kind == Kind::kRnn ? "RNN" : c.kind == Kind::kGru ? "GRU" : "LSTM";
  ModelBuilder mb(14);
  const Dims xd = c.batch_first ? Dims{c.batch, c.seq, c.input} : Dims{c.seq, c.batch, c.input};
  const Dims sd = c.batch_first ? Dims{c.batch, c.dirs, H} : Dims{c.dirs, c.batch, H};
  mb.input("X", xd).output("Y").output("Y_h");
  mb.init("W", {c.dirs, G * H, c.input}, v.w).init("R", {c.dirs, G * H, H}, v.r);
  std::vector<std::string> in = {"X", "W", "R", "", "", "", "", ""};
  if (c.with_bias) {
    mb.init("B", {c.dirs, 2 * G * H}, v.b);
    in[3] = "B";
  }
  if (!c.lens.empty()) {
    mb.init_i64("lens", {c.batch}, c.lens);
    in[4] = "lens";
  }
  if (c.with_init) {
    mb.init("h0", {sd[0], sd[1], sd[2]}, c.batch_first ? to_batch_first_state(v.h0) : v.h0);
    in[5] = "h0";
    if (c.kind == Kind::kLstm) {
      mb.init("c0", {sd[0], sd[1], sd[2]}, c.batch_first ? to_batch_first_state(v.c0) : v.c0);
      in[6] = "c0";
    }
  }
  if (c.peepholes) {
    mb.init("P", {c.dirs, 3 * H}, v.p);
    in[7] = "P";
  }
  while (!in.empty() && in.back().empty()) in.pop_back();
  std::vector<std::string> out = {"Y", "Y_h"};
  if (c.kind == Kind::kLstm) {
    mb.output("Y_c");
    out.push_back("Y_c");
  }
  auto& n = mb.node(op, in, out, "rec");
  ModelBuilder::attr_i(n, "hidden_size", H);
  ModelBuilder::attr_s(n, "direction", c.direction);
  if (c.batch_first) ModelBuilder::attr_i(n, "layout", 1);
  if (c.clip > 0) ModelBuilder::attr_f(n, "clip", c.clip);
  if (c.input_forget) ModelBuilder::attr_i(n, "input_forget", 1);
  if (c.linear_before_reset) ModelBuilder::attr_i(n, "linear_before_reset", 1);
  if (!c.acts.empty()) attr_strings(n, "activations", c.acts);
  if (!c.alphas.empty()) attr_floats(n, "activation_alpha", c.alphas);
  if (!c.betas.empty()) attr_floats(n, "activation_beta", c.betas);
  Network net = import_onnx(mb.write(file));
  TensorMap feed;
  feed["X"] = floats("X", xd, v.x);
  TensorMap got = make_cpu_executor(net)->run(feed);
  // The reference works in layout 0; batch-first X is the same values read through X(t, b, i).
  const Result want = reference(c, v);
  const std::vector<float> y = values(got["Y"]), yh = values(got["Y_h"]);
  ASSERT_EQ(y.size(), want.y.size());
  for (int64_t t = 0; t < c.seq; ++t)
    for (int64_t d = 0; d < c.dirs; ++d)
      for (int64_t b = 0; b < c.batch; ++b)
        for (int64_t j = 0; j < H; ++j) {
          const size_t at = c.batch_first ? static_cast<size_t>(((b * c.seq + t) * c.dirs + d) * H + j)
                                          : static_cast<size_t>(((t * c.dirs + d) * c.batch + b) * H + j);
          EXPECT_NEAR(y[at], want.y[((t * c.dirs + d) * c.batch + b) * H + j], 1e-5) << file << " Y t" << t << " d" << d;
        }
  const std::vector<float> want_h = c.batch_first ? to_batch_first_state(want.yh) : want.yh;
  for (size_t k = 0; k < want_h.size(); ++k) EXPECT_NEAR(yh[k], want_h[k], 1e-5) << file << " Y_h " << k;
  if (c.kind == Kind::kLstm) {
    const std::vector<float> yc = values(got["Y_c"]);
    const std::vector<float> want_c = c.batch_first ? to_batch_first_state(want.yc) : want.yc;
    for (size_t k = 0; k < want_c.size(); ++k) EXPECT_NEAR(yc[k], want_c[k], 1e-5) << file << " Y_c " << k;
  }
}

}  // namespace

// One step, hidden size 1, input size 1, x = 1, h0 = 0.5, c0 = 2; W (i, o, f, c) = (1, 0, -1, 2),
// R = (2, 2, 0, -2), Wb = 0, Rb = (-1, 0, 1, 0):
//   i = sigmoid(1*1 + 0.5*2 - 1) = sigmoid(1) = 0.7310586    o = sigmoid(0 + 0.5*2 + 0) = sigmoid(1)
//   f = sigmoid(-1 + 0 + 1) = 0.5                             c~ = tanh(2 - 0.5*2) = tanh(1) = 0.7615942
//   C = f*c0 + i*c~ = 1 + 0.5567699 = 1.5567699               H = o * tanh(C) = 0.6688423
TEST(OnnxRecurrent, OneStepLstmHandWorked) {
  ModelBuilder b(14);
  b.input("x", {1, 1, 1}).output("y").output("yh").output("yc");
  b.init("W", {1, 4, 1}, {1, 0, -1, 2}).init("R", {1, 4, 1}, {2, 2, 0, -2});
  b.init("B", {1, 8}, {0, 0, 0, 0, -1, 0, 1, 0});
  b.init("h0", {1, 1, 1}, {0.5f}).init("c0", {1, 1, 1}, {2.f});
  auto& n = b.node("LSTM", {"x", "W", "R", "B", "", "h0", "c0"}, {"y", "yh", "yc"}, "lstm");
  ModelBuilder::attr_i(n, "hidden_size", 1);
  Network net = import_onnx(b.write("lstm_hand.onnx"));
  EXPECT_EQ(net.tensors[net.find_tensor("y")].dims, (Dims{1, 1, 1, 1}));
  EXPECT_EQ(net.tensors[net.find_tensor("yh")].dims, (Dims{1, 1, 1}));
  // Only existing layer kinds: the recurrence is unrolled (here one MatrixMultiply for X*W^T and
  // one for H*R^T).
  int matmuls = 0;
  for (const Layer& l : net.layers) matmuls += l.kind == LayerKind::kMatrixMultiply;
  EXPECT_EQ(matmuls, 2);
  TensorMap feed;
  feed["x"] = floats("x", {1, 1, 1}, {1.f});
  TensorMap out = make_cpu_executor(net)->run(feed);
  EXPECT_NEAR(values(out["yc"])[0], 1.5567699, 1e-6);
  EXPECT_NEAR(values(out["yh"])[0], 0.6688423, 1e-6);
  EXPECT_NEAR(values(out["y"])[0], 0.6688423, 1e-6);
}

TEST(OnnxRecurrent, LstmBidirectionalPeepholesClipAgainstReference) {
  Case c;
  c.dirs = 2;
  c.direction = "bidirectional";
  c.peepholes = true;
  c.clip = 0.6f;
  check_against_reference(c, "lstm_bidi.onnx");
  c.input_forget = true;
  c.clip = 0.f;
  c.batch_first = true;
  check_against_reference(c, "lstm_bidi_forget_batchfirst.onnx");
}

TEST(OnnxRecurrent, LstmReverseSequenceLensActivations) {
  Case c;
  c.seq = 4;
  c.batch = 3;
  c.direction = "reverse";
  c.lens = {4, 2, 0};  // a full, a shorter and an empty sequence: Y is 0 past each length
  c.acts = {"HardSigmoid", "LeakyRelu", "Tanh"};
  c.alphas = {0.3f, 0.1f};
  c.betas = {0.4f};
  check_against_reference(c, "lstm_reverse_lens.onnx");
  c.direction = "bidirectional";
  c.dirs = 2;
  c.with_init = false;
  c.acts = {"Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Affine"};
  c.alphas = {0.5f};
  c.betas = {0.25f};
  check_against_reference(c, "lstm_bidi_lens.onnx");
}

TEST(OnnxRecurrent, GruBothResetModesAgainstReference) {
  Case c;
  c.kind = Kind::kGru;
  c.hidden = 3;
  check_against_reference(c, "gru_fwd.onnx");
  c.linear_before_reset = true;
  c.dirs = 2;
  c.direction = "bidirectional";
  c.lens = {3, 1};
  check_against_reference(c, "gru_lbr_bidi.onnx");
  c.batch_first = true;
  c.clip = 0.5f;
  c.with_bias = false;
  check_against_reference(c, "gru_lbr_batchfirst.onnx");
}

TEST(OnnxRecurrent, RnnDirectionsAgainstReference) {
  Case c;
  c.kind = Kind::kRnn;
  c.direction = "reverse";
  c.acts = {"Relu"};
  check_against_reference(c, "rnn_reverse.onnx");
  c.dirs = 2;
  c.direction = "bidirectional";
  c.acts = {"Tanh", "LeakyRelu"};
  c.alphas = {0.2f};
  c.batch_first = true;
  c.lens = {2, 3};
  check_against_reference(c, "rnn_bidi.onnx");
}

// sequence_lens as a graph input: the masks are Greater layers over it, same results.
TEST(OnnxRecurrent, RuntimeSequenceLens) {
  ModelBuilder b(14);
  b.input("x", {3, 2, 1}).input("lens", {2}, onnx::TensorProto::INT32).output("y").output("yh");
  b.init("W", {1, 1, 1}, {1.f}).init("R", {1, 1, 1}, {1.f});
  auto& n = b.node("RNN", {"x", "W", "R", "", "lens"}, {"y", "yh"}, "rnn");
  ModelBuilder::attr_i(n, "hidden_size", 1);
  attr_strings(n, "activations", {"Relu"});
  Network net = import_onnx(b.write("rnn_lens_input.onnx"));
  TensorMap feed;
  feed["x"] = floats("x", {3, 2, 1}, {1, 10, 2, 20, 3, 30});
  HostTensor lens = HostTensor::zeros("lens", DataType::kInt32, {2});
  const int32_t l[2] = {3, 1};
  std::memcpy(lens.data.data(), l, sizeof l);
  feed["lens"] = lens;
  TensorMap out = make_cpu_executor(net)->run(feed);
  // h = relu(x + h): batch 0 runs 1, 3, 6; batch 1 stops after 10.
  EXPECT_EQ(values(out["y"]), (std::vector<float>{1, 10, 3, 0, 6, 0}));
  EXPECT_EQ(values(out["yh"]), (std::vector<float>{6, 10}));
}

TEST(OnnxRecurrent, UnsupportedAttributesNameTheNodeAndAttribute) {
  auto error_of = [](const std::function<void(onnx::NodeProto&)>& set, const char* file) {
    ModelBuilder b(14);
    b.input("x", {2, 1, 1}).output("y");
    b.init("W", {1, 4, 1}, {1, 1, 1, 1}).init("R", {1, 4, 1}, {1, 1, 1, 1});
    auto& n = b.node("LSTM", {"x", "W", "R"}, {"y"}, "lstm_bad");
    ModelBuilder::attr_i(n, "hidden_size", 1);
    set(n);
    return import_error(b.write(file));
  };
  std::string e = error_of([](onnx::NodeProto& n) { ModelBuilder::attr_s(n, "direction", "sideways"); }, "dir.onnx");
  EXPECT_NE(e.find("node 'lstm_bad' (LSTM): attribute 'direction' 'sideways' is not supported"), std::string::npos) << e;
  e = error_of([](onnx::NodeProto& n) { attr_strings(n, "activations", {"Sigmoid", "Gelu", "Tanh"}); }, "act.onnx");
  EXPECT_NE(e.find("node 'lstm_bad' (LSTM): attribute 'activations': 'Gelu' is not supported"), std::string::npos) << e;
  e = error_of([](onnx::NodeProto& n) { ModelBuilder::attr_i(n, "layout", 2); }, "layout.onnx");
  EXPECT_NE(e.find("node 'lstm_bad' (LSTM): attribute 'layout' 2 is not supported"), std::string::npos) << e;
  e = error_of([](onnx::NodeProto& n) { attr_strings(n, "activations", {"Sigmoid", "ScaledTanh", "Tanh"}); }, "st.onnx");
  EXPECT_NE(e.find("attribute 'activations': ScaledTanh needs its alpha and beta"), std::string::npos) << e;
  e = error_of([](onnx::NodeProto& n) { ModelBuilder::attr_f(n, "clip", -1.f); }, "clip.onnx");
  EXPECT_NE(e.find("node 'lstm_bad' (LSTM): attribute 'clip' -1 is not positive"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

// The unrolled layers are ordinary layers: the DLA check answers each with its own verdict and
// reason (here: the rank-2 gate arithmetic and the Selects of a masked sequence are refused).
TEST(OnnxRecurrent, DlaCheckJudgesTheUnrolledLayers) {
  ModelBuilder b(14);
  b.input("x", {2, 2, 1}).output("yh");
  b.init("W", {1, 4, 1}, {1, 0, -1, 2}).init("R", {1, 4, 1}, {2, 2, 0, -2});
  b.init_i64("lens", {2}, {2, 1});
  auto& n = b.node("LSTM", {"x", "W", "R", "", "lens"}, {"", "yh"}, "lstm");
  ModelBuilder::attr_i(n, "hidden_size", 1);
  Network net = import_onnx(b.write("lstm_dla.onnx"));
  const DlaReport r = can_run_on_dla(net);
  ASSERT_EQ(r.layers.size(), net.layers.size());
  int selects = 0, rank2 = 0;
  for (size_t k = 0; k < net.layers.size(); ++k) {
    const Layer& l = net.layers[k];
    if (l.kind != LayerKind::kConstant) EXPECT_EQ(l.onnx_node, "lstm") << l.name;
    if (r.layers[k].ok) continue;
    EXPECT_FALSE(r.layers[k].reason.empty()) << l.name;
    selects += l.kind == LayerKind::kSelect && r.layers[k].reason.find("Select has no DLA support") != std::string::npos;
    rank2 += l.kind == LayerKind::kActivation && r.layers[k].reason.find("DLA needs at least 4 dims") != std::string::npos;
  }
  EXPECT_EQ(selects, 2);  // step 1, where the second sequence has ended: H and C held (Y is unused: no Select)
  EXPECT_GE(rank2, 8);    // 4 gate activations and h(C) per step
  EXPECT_FALSE(r.full_dla);
}

TEST(OnnxRecurrent, OverlongSequenceIsRefused) {
  ModelBuilder b(14);
  b.input("x", {4097, 1, 1}).output("yh");
  b.init("W", {1, 1, 1}, {1.f}).init("R", {1, 1, 1}, {1.f});
  auto& n = b.node("RNN", {"x", "W", "R"}, {"", "yh"}, "rnn_long");
  ModelBuilder::attr_i(n, "hidden_size", 1);
  const std::string e = import_error(b.write("rnn_long.onnx"));
  EXPECT_NE(e.find("node 'rnn_long' (RNN): sequence length 4097 is over 4096"), std::string::npos) << e;
}
