// ONNX RNN, GRU and LSTM imported by unrolling the recurrence over the static sequence length into
// existing layers (MatrixMultiply, ElementWise, Activation, Slice, Select, Concatenation, Shuffle,
// Constant): the input projection of every step is one MatrixMultiply, then each step adds its
// own recurrent MatrixMultiply and gate arithmetic. TensorRT's parser builds an ILoopLayer
// instead; tandem has no loop layer (its shapes are static), so the layer count grows with the
// sequence length (docs/onnx-import.md, "Recurrent ops").
#include <algorithm>
#include <cctype>
#include <fmt/format.h>

#include "importer.h"

namespace tandem::onnx_detail {

namespace {

using Outs = std::vector<TensorId>;

enum class Cell { kRnn, kGru, kLstm };

// One ONNX activation of the `activations` list: an Activation layer, or Affine (alpha*x + beta).
struct Act {
  ActivationType type = ActivationType::kTanh;
  float alpha = 0.f, beta = 0.f;
  bool affine = false;
};

// What one node asks for, read and checked once.
struct Spec {
  Cell cell = Cell::kRnn;
  int64_t gates = 1, hidden = 0, seq = 0, batch = 0, input = 0, dirs = 1;
  bool reverse = false;  // forward-only or reverse-only (bidirectional: dirs == 2)
  bool batch_first = false;
  float clip = 0.f;  // 0: none
  bool linear_before_reset = false, input_forget = false;
  DataType type = DataType::kFloat;
  std::vector<Act> acts;  // per direction: acts_per_dir entries, forward direction first
  size_t acts_per_dir = 1;
  ConstPtr W, R, B, P;
  std::vector<int64_t> seq_lens;  // constant sequence_lens (empty: all full, or runtime)
  TensorId seq_lens_tensor = -1;  // runtime sequence_lens (int32)
};

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One activation by name; alpha/beta are consumed from the lists only by the functions that take
// them (as onnxruntime reads activation_alpha/beta), ONNX's operator defaults otherwise.
Act parse_act(Importer& I, const std::string& name, const std::vector<float>& alphas, size_t* ai,
              const std::vector<float>& betas, size_t* bi) {
  auto take = [](const std::vector<float>& v, size_t* k, float def, bool* given) {
    *given = *k < v.size();
    return *given ? v[(*k)++] : def;
  };
  bool ga = false, gb = false;
  Act a;
  const std::string n = lowercase(name);
  if (n == "relu") a.type = ActivationType::kRelu;
  else if (n == "tanh") a.type = ActivationType::kTanh;
  else if (n == "sigmoid") a.type = ActivationType::kSigmoid;
  else if (n == "softsign") a.type = ActivationType::kSoftsign;
  else if (n == "softplus") a = {ActivationType::kSoftplus, 1.f, 1.f, false};
  else if (n == "leakyrelu") a = {ActivationType::kLeakyRelu, take(alphas, ai, 0.01f, &ga), 0.f, false};
  else if (n == "thresholdedrelu") a = {ActivationType::kThresholdedRelu, take(alphas, ai, 1.f, &ga), 0.f, false};
  else if (n == "elu") a = {ActivationType::kElu, take(alphas, ai, 1.f, &ga), 0.f, false};
  else if (n == "hardsigmoid") {
    const float al = take(alphas, ai, 0.2f, &ga);
    a = {ActivationType::kHardSigmoid, al, take(betas, bi, 0.5f, &gb), false};
  } else if (n == "scaledtanh" || n == "affine") {
    const float al = take(alphas, ai, 0.f, &ga);
    const float be = take(betas, bi, 0.f, &gb);
    if (!ga || !gb)
      I.fail(fmt::format("attribute 'activations': {} needs its alpha and beta in activation_alpha/activation_beta "
                         "(ONNX gives no default)", name));
    a = {ActivationType::kScaledTanh, al, be, n == "affine"};
  } else {
    I.fail(fmt::format("attribute 'activations': '{}' is not supported (Relu, Tanh, Sigmoid, Affine, LeakyRelu, "
                       "ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus)", name));
  }
  return a;
}

void read_activations(Importer& I, Spec* s) {
  switch (s->cell) {
    case Cell::kRnn: s->acts_per_dir = 1; break;
    case Cell::kGru: s->acts_per_dir = 2; break;
    case Cell::kLstm: s->acts_per_dir = 3; break;
  }
  std::vector<std::string> names;
  if (const auto* a = I.attr("activations")) names.assign(a->strings().begin(), a->strings().end());
  if (names.empty()) {
    static const char* defaults[] = {"Sigmoid", "Tanh", "Tanh"};  // f, g, h of GRU and LSTM
    for (size_t d = 0; d < static_cast<size_t>(s->dirs); ++d)
      for (size_t k = 0; k < s->acts_per_dir; ++k) names.push_back(s->cell == Cell::kRnn ? "Tanh" : defaults[k]);
  }
  if (names.size() != s->acts_per_dir * static_cast<size_t>(s->dirs))
    I.fail(fmt::format("attribute 'activations' has {} names, expected {} ({} per direction)", names.size(),
                       s->acts_per_dir * s->dirs, s->acts_per_dir));
  const auto alphas = I.attr_floats("activation_alpha"), betas = I.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  for (const std::string& n : names) s->acts.push_back(parse_act(I, n, alphas, &ai, betas, &bi));
  if (ai < alphas.size() || bi < betas.size())
    I.fail(fmt::format("attribute 'activation_alpha'/'activation_beta' has {}/{} values, the activations use {}/{}",
                       alphas.size(), betas.size(), ai, bi));
}

// Checks a constant weight input's dims; `what` names it.
ConstPtr weight(Importer& I, size_t idx, const char* what, const Dims& want) {
  ConstPtr c = I.cin(idx, what);
  if (c->dims != want)
    I.fail(fmt::format("input {} ({}) has dims {}, expected {}", idx, what, dims_to_string(c->dims), dims_to_string(want)));
  if (c->type != DataType::kFloat && c->type != DataType::kHalf) I.fail(fmt::format("input {} ({}) is not float", idx, what));
  return c;
}

void read_sequence_lens(Importer& I, Spec* s) {
  if (!I.has_in(4)) return;
  if (I.in(4).c) {
    const ConstPtr c = I.in(4).c;
    if (c->dims != Dims{s->batch})
      I.fail(fmt::format("input 4 (sequence_lens) has dims {}, expected [{}]", dims_to_string(c->dims), s->batch));
    bool full = true;
    for (int64_t b = 0; b < s->batch; ++b) {
      const int64_t v = c->i(b);
      if (v < 0 || v > s->seq)
        I.fail(fmt::format("input 4 (sequence_lens): length {} of batch {} is outside [0, {}]", v, b, s->seq));
      full &= v == s->seq;
      s->seq_lens.push_back(v);
    }
    if (full) s->seq_lens.clear();  // every sequence is full: no masking
    return;
  }
  TensorId t = I.tin(4);
  if (I.dims(t) != Dims{s->batch})
    I.fail(fmt::format("input 4 (sequence_lens) has dims {}, expected [{}]", dims_to_string(I.dims(t)), s->batch));
  if (I.dtype(t) != DataType::kInt32) t = I.add(LayerKind::kCast, CastParams{DataType::kInt32}, {t});
  s->seq_lens_tensor = I.reshape(t, {s->batch, 1});
}

Spec read_spec(Importer& I, Cell cell) {
  Spec s;
  s.cell = cell;
  s.gates = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 3 : 4;
  const TensorId x = I.tin(0);
  s.type = I.dtype(x);
  if (s.type != DataType::kFloat && s.type != DataType::kHalf)
    I.fail(fmt::format("input X is {}, fp32/fp16 expected", to_string(s.type)));
  if (I.rank(x) != 3) I.fail(fmt::format("input X has rank {}, expected 3", I.rank(x)));
  const int64_t layout = I.attr_i("layout", 0);
  if (layout != 0 && layout != 1) I.fail(fmt::format("attribute 'layout' {} is not supported (0 or 1)", layout));
  s.batch_first = layout == 1;
  const Dims& xd = I.dims(x);
  s.seq = xd[s.batch_first ? 1 : 0];
  s.batch = xd[s.batch_first ? 0 : 1];
  s.input = xd[2];
  constexpr int64_t kMaxUnrolledSteps = 4096;  // about 10-20 layers per step and direction
  if (s.seq > kMaxUnrolledSteps)
    I.fail(fmt::format("sequence length {} is over {}: the recurrence is unrolled at import, longer ones are refused",
                       s.seq, kMaxUnrolledSteps));
  const std::string dir = I.attr_s("direction", "forward");
  if (dir == "bidirectional") s.dirs = 2;
  else if (dir == "reverse") s.reverse = true;
  else if (dir != "forward")
    I.fail(fmt::format("attribute 'direction' '{}' is not supported (forward, reverse, bidirectional)", dir));
  const ConstPtr w = I.cin(1, "W");
  if (w->dims.size() != 3 || w->dims[0] != s.dirs || w->dims[1] % s.gates != 0)
    I.fail(fmt::format("input 1 (W) has dims {}, expected [{}, {}*hidden_size, {}]", dims_to_string(w->dims), s.dirs,
                       s.gates, s.input));
  s.hidden = I.attr_i("hidden_size", w->dims[1] / s.gates);
  if (s.hidden <= 0) I.fail(fmt::format("attribute 'hidden_size' {} is not positive", s.hidden));
  const int64_t gh = s.gates * s.hidden;
  s.W = weight(I, 1, "W", {s.dirs, gh, s.input});
  s.R = weight(I, 2, "R", {s.dirs, gh, s.hidden});
  if (I.has_in(3)) s.B = weight(I, 3, "B", {s.dirs, 2 * gh});
  if (cell == Cell::kLstm && I.has_in(7)) s.P = weight(I, 7, "P", {s.dirs, 3 * s.hidden});
  read_sequence_lens(I, &s);
  if (I.has_attr("clip")) {
    s.clip = I.attr_f("clip", 0.f);
    if (!(s.clip > 0.f)) I.fail(fmt::format("attribute 'clip' {} is not positive", s.clip));
  }
  s.linear_before_reset = cell == Cell::kGru && I.attr_i("linear_before_reset", 0) != 0;
  s.input_forget = cell == Cell::kLstm && I.attr_i("input_forget", 0) != 0;
  read_activations(I, &s);
  return s;
}

// ---- layer helpers -------------------------------------------------------------------------------
TensorId ew(Importer& I, ElementWiseOp op, TensorId a, TensorId b) {
  std::vector<TensorId> ts{a, b};
  I.broadcast_ranks(ts);
  return I.add(LayerKind::kElementWise, ElementWiseParams{op}, ts);
}

TensorId apply_act(Importer& I, const Act& a, TensorId x) {
  if (!a.affine) return I.add(LayerKind::kActivation, ActivationParams{a.type, a.alpha, a.beta}, {x});
  const TensorId scaled = ew(I, ElementWiseOp::kProd, x, I.scalar_const(a.alpha, I.dtype(x), 2));
  return ew(I, ElementWiseOp::kSum, scaled, I.scalar_const(a.beta, I.dtype(x), 2));
}

// The gates' pre-activation clip (ONNX `clip`, applied where onnxruntime applies it: to the input
// of each gate activation).
TensorId clip(Importer& I, const Spec& s, TensorId x) {
  if (s.clip <= 0.f) return x;
  return I.add(LayerKind::kActivation, ActivationParams{ActivationType::kClip, -s.clip, s.clip}, {x});
}

// Columns [col, col + n) of a 2-D tensor.
TensorId columns(Importer& I, TensorId x, int64_t col, int64_t n) {
  SliceParams p;
  p.start = {0, col};
  p.size = {I.dims(x)[0], n};
  p.stride = {1, 1};
  return I.add(LayerKind::kSlice, p, {x});
}

// Rows [row, row + n) of a 2-D tensor.
TensorId rows(Importer& I, TensorId x, int64_t row, int64_t n) {
  SliceParams p;
  p.start = {row, 0};
  p.size = {n, I.dims(x)[1]};
  p.stride = {1, 1};
  return I.add(LayerKind::kSlice, p, {x});
}

// Rows [row0, row0 + n) of direction d of a [dirs, rows, cols] weight, as a [n, cols] constant.
TensorId weight_rows(Importer& I, const Spec& s, const ConstPtr& w, int64_t d, int64_t row0, int64_t n) {
  const int64_t all = w->dims[1], cols = w->dims[2];
  auto c = make_const("", s.type, {n, cols});
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < cols; ++k) c->set_f(r * cols + k, w->f((d * all + row0 + r) * cols + k));
  return I.const_tensor(c);
}

// a [m, k] times the transpose of a constant [n, k]: [m, n].
TensorId matmul_t(Importer& I, TensorId a, TensorId w) {
  MatrixMultiplyParams p;
  p.op1 = MatrixOp::kTranspose;
  return I.add(LayerKind::kMatrixMultiply, p, {a, w});
}

// A [1, n] constant of f(k) for k < n.
template <class F>
TensorId row_const(Importer& I, const Spec& s, int64_t n, F f) {
  auto c = make_const("", s.type, {1, n});
  for (int64_t k = 0; k < n; ++k) c->set_f(k, f(k));
  return I.const_tensor(c);
}

TensorId zeros(Importer& I, const Spec& s) { return I.const_tensor(make_const("", s.type, {s.batch, s.hidden})); }

// Direction d of an initial state input ([dirs, batch, H], or [batch, dirs, H] with layout 1) as
// [batch, H]; zeros when absent.
TensorId initial_state(Importer& I, const Spec& s, size_t idx, const char* what, int64_t d) {
  if (!I.has_in(idx)) return zeros(I, s);
  const TensorId t = I.tin(idx);
  const Dims want = s.batch_first ? Dims{s.batch, s.dirs, s.hidden} : Dims{s.dirs, s.batch, s.hidden};
  if (I.dims(t) != want)
    I.fail(fmt::format("input {} ({}) has dims {}, expected {}", idx, what, dims_to_string(I.dims(t)), dims_to_string(want)));
  SliceParams p;
  p.start = s.batch_first ? Dims{0, d, 0} : Dims{d, 0, 0};
  p.size = s.batch_first ? Dims{s.batch, 1, s.hidden} : Dims{1, s.batch, s.hidden};
  p.stride = {1, 1, 1};
  return I.reshape(I.add(LayerKind::kSlice, p, {t}), {s.batch, s.hidden});
}

// X @ W_d^T + the biases that do not depend on the step, for every step at once: [seq*batch, G*H],
// rows t*batch .. t*batch+batch-1 for step t. GRU with linear_before_reset keeps Rb_h for the cell.
TensorId input_projection(Importer& I, const Spec& s, TensorId x2, int64_t d) {
  const int64_t gh = s.gates * s.hidden;
  TensorId y = matmul_t(I, x2, weight_rows(I, s, s.W, d, 0, gh));
  if (!s.B) return y;
  const ConstPtr& b = s.B;
  const int64_t base = d * 2 * gh;
  const TensorId bias = row_const(I, s, gh, [&](int64_t k) {
    const bool recurrent_kept = s.linear_before_reset && k >= 2 * s.hidden;  // Rb_h is added inside r (.) (...)
    return b->f(base + k) + (recurrent_kept ? 0.0 : b->f(base + gh + k));
  });
  return ew(I, ElementWiseOp::kSum, y, bias);
}

// X as [seq*batch, input], step-major.
TensorId flat_input(Importer& I, const Spec& s) {
  TensorId x = I.tin(0);
  ShuffleParams p;
  if (s.batch_first) p.first_transpose = {1, 0, 2};
  p.reshape = Dims{s.seq * s.batch, s.input};
  return I.add(LayerKind::kShuffle, p, {x});
}

// ---- cells ---------------------------------------------------------------------------------------
struct State {
  TensorId h = -1, c = -1;
};

// Per-direction constants the cells reuse at every step.
struct DirWeights {
  int64_t d = 0;
  TensorId r_all = -1;      // R_d [G*H, H] (RNN, LSTM; GRU: the z and r rows)
  TensorId r_h = -1;        // GRU: R_h [H, H]
  TensorId rb_h = -1;       // GRU linear_before_reset: Rb_h [1, H]
  TensorId p_i = -1, p_o = -1, p_f = -1;  // LSTM peepholes [1, H]
  const Act* act = nullptr;  // acts_per_dir activations of this direction
};

DirWeights dir_weights(Importer& I, const Spec& s, int64_t d) {
  DirWeights w;
  w.d = d;
  w.act = &s.acts[static_cast<size_t>(d) * s.acts_per_dir];
  const int64_t H = s.hidden;
  if (s.cell == Cell::kGru) {
    w.r_all = weight_rows(I, s, s.R, d, 0, 2 * H);
    w.r_h = weight_rows(I, s, s.R, d, 2 * H, H);
    if (s.linear_before_reset && s.B)
      w.rb_h = row_const(I, s, H, [&](int64_t k) { return s.B->f(d * 6 * H + 3 * H + 2 * H + k); });
  } else {
    w.r_all = weight_rows(I, s, s.R, d, 0, s.gates * H);
  }
  if (s.P) {
    auto peephole = [&](int64_t g) { return row_const(I, s, H, [&](int64_t k) { return s.P->f(d * 3 * H + g * H + k); }); };
    w.p_i = peephole(0);
    w.p_o = peephole(1);
    if (!s.input_forget) w.p_f = peephole(2);  // with input_forget, f = 1 - i reads no peephole
  }
  return w;
}

// Ht = f(Xt*Wi^T + Ht-1*Ri^T + Wbi + Rbi)
State rnn_step(Importer& I, const Spec& s, const DirWeights& w, TensorId xw, State prev) {
  const TensorId pre = ew(I, ElementWiseOp::kSum, xw, matmul_t(I, prev.h, w.r_all));
  return {apply_act(I, w.act[0], clip(I, s, pre)), -1};
}

// zt, rt = f(...); ht = g(Xt*Wh^T + (rt (.) Ht-1)*Rh^T + Rbh + Wbh), or with linear_before_reset
// g(Xt*Wh^T + rt (.) (Ht-1*Rh^T + Rbh) + Wbh); Ht = (1 - zt) (.) ht + zt (.) Ht-1.
State gru_step(Importer& I, const Spec& s, const DirWeights& w, TensorId xw, State prev) {
  const int64_t H = s.hidden;
  const TensorId zr_pre = ew(I, ElementWiseOp::kSum, columns(I, xw, 0, 2 * H), matmul_t(I, prev.h, w.r_all));
  const TensorId zr = apply_act(I, w.act[0], clip(I, s, zr_pre));
  const TensorId z = columns(I, zr, 0, H), r = columns(I, zr, H, H);
  TensorId recurrent;
  if (s.linear_before_reset) {
    TensorId hr = matmul_t(I, prev.h, w.r_h);
    if (w.rb_h >= 0) hr = ew(I, ElementWiseOp::kSum, hr, w.rb_h);
    recurrent = ew(I, ElementWiseOp::kProd, r, hr);
  } else {
    recurrent = matmul_t(I, ew(I, ElementWiseOp::kProd, r, prev.h), w.r_h);
  }
  const TensorId h_pre = ew(I, ElementWiseOp::kSum, columns(I, xw, 2 * H, H), recurrent);
  const TensorId h_cand = apply_act(I, w.act[1], clip(I, s, h_pre));
  const TensorId one_minus_z = ew(I, ElementWiseOp::kSub, I.scalar_const(1.f, s.type, 2), z);
  const TensorId keep = ew(I, ElementWiseOp::kProd, z, prev.h);
  return {ew(I, ElementWiseOp::kSum, ew(I, ElementWiseOp::kProd, one_minus_z, h_cand), keep), -1};
}

// Gates in the order i, o, f, c. it = f(.. + Pi (.) Ct-1), ft = f(.. + Pf (.) Ct-1) (1 - it with
// input_forget, as onnxruntime), ct = g(..), Ct = ft (.) Ct-1 + it (.) ct, ot = f(.. + Po (.) Ct),
// Ht = ot (.) h(Ct).
State lstm_step(Importer& I, const Spec& s, const DirWeights& w, TensorId xw, State prev) {
  const int64_t H = s.hidden;
  const TensorId pre = ew(I, ElementWiseOp::kSum, xw, matmul_t(I, prev.h, w.r_all));
  auto gate = [&](int64_t g, TensorId peephole, TensorId cell) {
    TensorId x = columns(I, pre, g * H, H);
    if (peephole >= 0) x = ew(I, ElementWiseOp::kSum, x, ew(I, ElementWiseOp::kProd, peephole, cell));
    return clip(I, s, x);
  };
  const TensorId i = apply_act(I, w.act[0], gate(0, w.p_i, prev.c));
  const TensorId f = s.input_forget ? ew(I, ElementWiseOp::kSub, I.scalar_const(1.f, s.type, 2), i)
                                    : apply_act(I, w.act[0], gate(2, w.p_f, prev.c));
  const TensorId c_cand = apply_act(I, w.act[1], gate(3, -1, -1));
  const TensorId c = ew(I, ElementWiseOp::kSum, ew(I, ElementWiseOp::kProd, f, prev.c),
                        ew(I, ElementWiseOp::kProd, i, c_cand));
  const TensorId o = apply_act(I, w.act[0], gate(1, w.p_o, c));
  return {ew(I, ElementWiseOp::kProd, o, apply_act(I, w.act[2], c)), c};
}

// ---- unrolling -----------------------------------------------------------------------------------
// Whether batch b is still running at step t: a constant [batch, 1] mask, or a Greater layer over a
// runtime sequence_lens; -1 when every batch runs (no masking).
TensorId step_mask(Importer& I, const Spec& s, int64_t t) {
  if (s.seq_lens_tensor >= 0) {
    auto tc = make_const("", DataType::kInt32, {1, 1});
    tc->set_i(0, t);
    return ew(I, ElementWiseOp::kGreater, s.seq_lens_tensor, I.const_tensor(tc));
  }
  if (s.seq_lens.empty()) return -1;
  bool all = true;
  auto m = make_const("", DataType::kBool, {s.batch, 1});
  for (int64_t b = 0; b < s.batch; ++b) {
    m->set_i(b, s.seq_lens[b] > t);
    all &= s.seq_lens[b] > t;
  }
  return all ? -1 : I.const_tensor(m);
}

TensorId select(Importer& I, TensorId mask, TensorId a, TensorId b) {
  return I.add(LayerKind::kSelect, NoParams{}, {mask, a, b});
}

struct DirResult {
  std::vector<TensorId> y;  // per step (in time order), [batch, H]
  State last;
};

// One direction over every step. Past a batch's sequence length the state is held and Y is 0.
DirResult run_direction(Importer& I, const Spec& s, TensorId xw_all, int64_t d, bool want_y) {
  const DirWeights w = dir_weights(I, s, d);
  State st{initial_state(I, s, 5, "initial_h", d), -1};
  if (s.cell == Cell::kLstm) st.c = initial_state(I, s, 6, "initial_c", d);
  const bool backwards = s.reverse || d == 1;
  DirResult r;
  r.y.assign(static_cast<size_t>(s.seq), -1);
  TensorId zero = -1;
  for (int64_t k = 0; k < s.seq; ++k) {
    const int64_t t = backwards ? s.seq - 1 - k : k;
    const TensorId xw = s.seq == 1 ? xw_all : rows(I, xw_all, t * s.batch, s.batch);
    State next;
    switch (s.cell) {
      case Cell::kRnn: next = rnn_step(I, s, w, xw, st); break;
      case Cell::kGru: next = gru_step(I, s, w, xw, st); break;
      case Cell::kLstm: next = lstm_step(I, s, w, xw, st); break;
    }
    const TensorId mask = step_mask(I, s, t);
    if (mask >= 0) {
      if (want_y && zero < 0) zero = zeros(I, s);
      if (want_y) r.y[static_cast<size_t>(t)] = select(I, mask, next.h, zero);  // no dead layers when Y is unused
      next.h = select(I, mask, next.h, st.h);
      if (next.c >= 0) next.c = select(I, mask, next.c, st.c);
    } else {
      r.y[static_cast<size_t>(t)] = next.h;
    }
    st = next;
  }
  r.last = st;
  return r;
}

// Pieces [batch, H] -> one tensor: each reshaped to [1, batch, H] and concatenated on axis 0.
TensorId stack(Importer& I, const Spec& s, const std::vector<TensorId>& parts) {
  std::vector<TensorId> ts;
  for (TensorId p : parts) ts.push_back(I.reshape(p, {1, s.batch, s.hidden}));
  if (ts.size() == 1) return ts[0];
  return I.add(LayerKind::kConcatenation, ConcatenationParams{0}, ts);
}

// Y: [seq, dirs, batch, H], or [batch, seq, dirs, H] with layout 1.
TensorId output_y(Importer& I, const Spec& s, const std::vector<DirResult>& dirs) {
  std::vector<TensorId> parts;
  for (int64_t t = 0; t < s.seq; ++t)
    for (const DirResult& r : dirs) parts.push_back(r.y[static_cast<size_t>(t)]);
  ShuffleParams p;
  p.reshape = Dims{s.seq, s.dirs, s.batch, s.hidden};
  if (s.batch_first) p.second_transpose = {2, 0, 1, 3};
  return I.add(LayerKind::kShuffle, p, {stack(I, s, parts)});
}

// Y_h / Y_c: [dirs, batch, H], or [batch, dirs, H] with layout 1.
TensorId output_state(Importer& I, const Spec& s, const std::vector<DirResult>& dirs, bool cell) {
  std::vector<TensorId> parts;
  for (const DirResult& r : dirs) parts.push_back(cell ? r.last.c : r.last.h);
  const TensorId y = stack(I, s, parts);
  if (!s.batch_first) return y;
  ShuffleParams p;
  p.first_transpose = {1, 0, 2};
  return I.add(LayerKind::kShuffle, p, {y});
}

OpFn recurrent(Cell cell) {
  return [cell](Importer& I) -> Outs {
    const Spec s = read_spec(I, cell);
    const TensorId x2 = flat_input(I, s);
    std::vector<DirResult> dirs;
    for (int64_t d = 0; d < s.dirs; ++d) dirs.push_back(run_direction(I, s, input_projection(I, s, x2, d), d, I.output_used(0)));
    Outs outs(3, -1);
    if (I.output_used(0)) outs[0] = output_y(I, s, dirs);
    if (I.output_used(1)) outs[1] = output_state(I, s, dirs, false);
    if (I.output_used(2)) {
      if (cell != Cell::kLstm) I.fail("output 2 exists only for LSTM");
      outs[2] = output_state(I, s, dirs, true);
    }
    return outs;
  };
}

}  // namespace

void register_recurrent_ops(std::unordered_map<std::string, OpFn>& m) {
  m.emplace("RNN", recurrent(Cell::kRnn));
  m.emplace("GRU", recurrent(Cell::kGru));
  m.emplace("LSTM", recurrent(Cell::kLstm));
}

}  // namespace tandem::onnx_detail
