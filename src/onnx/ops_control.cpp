// ONNX control flow with static shapes: If, Loop and Scan imported by importing their subgraphs
// into the network (Importer::import_subgraph), once per branch or iteration. TensorRT's parser
// builds IIfConditionalLayer / ILoopLayer instead; tandem has neither (its shapes are static), so
// a loop is unrolled and its layers grow with the trip count (docs/onnx-import.md, "Control flow").
// Anything whose trip count or output shapes would depend on runtime values is refused.
#include <algorithm>
#include <fmt/format.h>

#include "importer.h"

namespace tandem::onnx_detail {

namespace {

using Outs = std::vector<TensorId>;

// More iterations than this are refused rather than unrolled into a huge network.
constexpr int64_t kMaxUnrolledIterations = 1024;

TensorId as_tensor(Importer& I, const Value& v) { return v.t >= 0 ? v.t : I.const_tensor(v.c); }

const Dims& value_dims(Importer& I, const Value& v) { return v.t >= 0 ? I.dims(v.t) : v.c->dims; }
DataType value_type(Importer& I, const Value& v) { return v.t >= 0 ? I.dtype(v.t) : v.c->type; }

ConstPtr scalar_value(DataType t, double v) {
  auto c = make_const("", t, {});
  c->set_f(0, v);
  return c;
}

// A constant's truth (every element of a bool/number scalar); `what` names it in errors.
bool const_true(Importer& I, const ConstPtr& c, const std::string& what) {
  if (c->count() != 1) I.fail(fmt::format("{} has {} elements, expected 1", what, c->count()));
  return c->f(0) != 0.0;
}

// Pieces stacked along a new axis `axis` (each reshaped to have a 1 there), in the given order.
TensorId stack_along(Importer& I, const std::vector<Value>& parts, int64_t axis) {
  std::vector<TensorId> ts;
  for (const Value& v : parts) {
    Dims d = value_dims(I, v);
    const int a = I.axis(axis, d.size() + 1, "scan output axis");
    d.insert(d.begin() + a, 1);
    ts.push_back(I.reshape(as_tensor(I, v), d));
  }
  const int a = I.axis(axis, value_dims(I, parts[0]).size() + 1, "scan output axis");
  if (ts.size() == 1) return ts[0];
  return I.add(LayerKind::kConcatenation, ConcatenationParams{a}, ts);
}

// Element k along `axis` of x, with that axis removed.
Value take_along(Importer& I, TensorId x, int axis, int64_t k) {
  const Dims d = I.dims(x);
  if (axis < 0 || static_cast<size_t>(axis) >= d.size() || k < 0 || k >= d[static_cast<size_t>(axis)])
    I.fail(fmt::format("element {} along axis {} of a {} tensor does not exist", k, axis, dims_to_string(d)));
  SliceParams p;
  p.start = Dims(d.size(), 0);
  p.start[axis] = k;
  p.size = d;
  p.size[axis] = 1;
  p.stride = Dims(d.size(), 1);
  Dims out = d;
  out.erase(out.begin() + axis);
  return Value{I.reshape(I.add(LayerKind::kSlice, p, {x}), out), nullptr};
}

// ---- If --------------------------------------------------------------------------------------------
// A constant condition imports the taken branch only. A runtime condition imports both branches
// and selects each output (Select with the scalar condition broadcast): the same values, as
// long as both branches give the same dims and type (static shapes); otherwise refused.
Outs op_if(Importer& I) {
  const onnx::GraphProto& then_g = I.graph_attr("then_branch");
  const onnx::GraphProto& else_g = I.graph_attr("else_branch");
  if (I.in(0).c) {
    const bool taken = const_true(I, I.in(0).c, "the condition");
    const std::vector<Value> outs = I.import_subgraph(taken ? then_g : else_g, {}, taken ? "then" : "else");
    Outs r;
    for (const Value& v : outs) r.push_back(as_tensor(I, v));
    return r;
  }
  const TensorId cond = I.tin(0);
  if (I.dtype(cond) != DataType::kBool || volume(I.dims(cond)) != 1)
    I.fail(fmt::format("the condition is {} {}, expected one bool", to_string(I.dtype(cond)), dims_to_string(I.dims(cond))));
  const std::vector<Value> a = I.import_subgraph(then_g, {}, "then");
  const std::vector<Value> b = I.import_subgraph(else_g, {}, "else");
  if (a.size() != b.size()) I.fail(fmt::format("then_branch has {} outputs, else_branch {}", a.size(), b.size()));
  Outs r;
  for (size_t k = 0; k < a.size(); ++k) {
    const Dims& da = value_dims(I, a[k]);
    const Dims& db = value_dims(I, b[k]);
    if (da != db || value_type(I, a[k]) != value_type(I, b[k]))
      I.fail(fmt::format("the condition is a runtime value and output {} is {} {} in then_branch, {} {} in else_branch: "
                         "tandem's shapes are static, so both branches must agree", k, to_string(value_type(I, a[k])),
                         dims_to_string(da), to_string(value_type(I, b[k])), dims_to_string(db)));
    const TensorId c = I.dims(cond) == Dims(da.size(), 1) ? cond : I.reshape(cond, Dims(da.size(), 1));
    r.push_back(I.add(LayerKind::kSelect, NoParams{}, {c, as_tensor(I, a[k]), as_tensor(I, b[k])}));
  }
  return r;
}

// ---- Loop ------------------------------------------------------------------------------------------
// The trip count must be a constant (or absent; a shape-value input folds to one). With a constant
// initial condition and body condition outputs that fold (constant true, or computed from the
// iteration number), the iterations are known at import and unrolled. A runtime condition needs a
// trip count: every iteration up to it is unrolled and gated, as TensorRT's ILoopLayer with a
// kWHILE trip limit runs: the loop-carried values stop changing once the condition is false
// (Select on the condition so far), and each scan output holds trip-count rows, the length the
// parser gives its kCONCATENATE loop outputs (setInput(1, tripLimit)).
int64_t loop_trip_limit(Importer& I) {
  if (!I.has_in(0)) return -1;
  if (!I.in(0).c)
    I.fail_needing_values(fmt::format("the trip count '{}' is a runtime value: tandem's shapes are static, so a Loop is "
                                      "unrolled and its trip count must be a constant",
                                      I.node_->input(0)),
                          {I.in(0).t});
  const ConstPtr m = I.in(0).c;
  if (m->count() != 1) I.fail("the trip count is not a scalar");
  return m->i(0);
}

// The runtime condition so far as a bool tensor of one element, or -1 when it is known true.
TensorId runtime_condition(Importer& I, const Value& v, const std::string& what) {
  const TensorId t = as_tensor(I, v);
  if (I.dtype(t) != DataType::kBool || volume(I.dims(t)) != 1)
    I.fail(fmt::format("{} is {} {}, expected one bool", what, to_string(I.dtype(t)), dims_to_string(I.dims(t))));
  return t;
}

// v_new where the gate (one bool) is true, else v_old: a gated loop-carried value.
Value gated(Importer& I, TensorId gate, const Value& v_new, const Value& v_old) {
  std::vector<TensorId> ts{gate, as_tensor(I, v_new), as_tensor(I, v_old)};
  if (I.dims(ts[1]) != I.dims(ts[2]) || I.dtype(ts[1]) != I.dtype(ts[2]))
    I.fail("a loop-carried value changes its dims or type while the condition is a runtime value");
  I.broadcast_ranks(ts);
  return Value{I.add(LayerKind::kSelect, NoParams{}, ts), nullptr};
}

Outs op_loop(Importer& I) {
  const onnx::GraphProto& body = I.graph_attr("body");
  const int64_t limit = loop_trip_limit(I);
  bool cond = true;
  TensorId gate = -1;  // the runtime condition so far (-1: none)
  if (I.has_in(1)) {
    if (I.in(1).c) cond = const_true(I, I.in(1).c, "the condition");
    else gate = runtime_condition(I, I.in(1), "the condition");
  }
  if (gate >= 0 && limit < 0)
    I.fail(fmt::format("the condition '{}' is a runtime value and there is no trip count: a Loop is unrolled, so one of "
                       "them must bound it",
                       I.node_->input(1)));
  const size_t carried = I.n_in() > 2 ? I.n_in() - 2 : 0;
  if (static_cast<size_t>(body.input_size()) != carried + 2 || static_cast<size_t>(body.output_size()) < carried + 1)
    I.fail(fmt::format("the body has {} inputs and {} outputs for {} loop-carried values", body.input_size(),
                       body.output_size(), carried));
  const size_t scans = static_cast<size_t>(body.output_size()) - 1 - carried;
  std::vector<Value> state;
  for (size_t k = 0; k < carried; ++k) {
    if (!I.has_in(2 + k)) I.fail(fmt::format("loop-carried input {} is missing", 2 + k));
    state.push_back(I.in(2 + k));
  }
  std::vector<std::vector<Value>> scan_parts(scans);
  int64_t it = 0;
  for (; cond && (limit < 0 || it < limit); ++it) {
    if (it >= kMaxUnrolledIterations)
      I.fail(fmt::format("more than {} iterations: the Loop is unrolled at import, longer loops are refused",
                         kMaxUnrolledIterations));
    std::vector<Value> in{Value{-1, scalar_value(DataType::kInt64, static_cast<double>(it))},
                          gate >= 0 ? Value{gate, nullptr} : Value{-1, scalar_value(DataType::kBool, 1)}};
    in.insert(in.end(), state.begin(), state.end());
    const std::vector<Value> out = I.import_subgraph(body, in, fmt::format("iter{}", it));
    if (!out[0].c && limit < 0)
      I.fail(fmt::format("the body's condition output '{}' is a runtime value at iteration {} and there is no trip "
                         "count: the Loop is unrolled, so its condition must fold to a constant",
                         body.output(0).name(), it));
    for (size_t k = 0; k < carried; ++k) state[k] = gate >= 0 ? gated(I, gate, out[1 + k], state[k]) : out[1 + k];
    for (size_t k = 0; k < scans; ++k) scan_parts[k].push_back(out[1 + carried + k]);
    if (out[0].c) {
      cond = const_true(I, out[0].c, "the body's condition output");  // false: no later iteration runs
    } else {
      const TensorId next = runtime_condition(I, out[0], "the body's condition output");
      std::vector<TensorId> both{gate, next};
      if (gate >= 0) I.broadcast_ranks(both);
      gate = gate >= 0 ? I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kAnd}, both) : next;
    }
  }
  Outs r;
  for (size_t k = 0; k < carried; ++k) r.push_back(I.output_used(k) ? as_tensor(I, state[k]) : -1);
  for (size_t k = 0; k < scans; ++k) {
    if (!I.output_used(carried + k)) {  // no layers for an output nobody reads
      r.push_back(-1);
      continue;
    }
    if (scan_parts[k].empty()) I.fail(fmt::format("scan output {} is empty (zero iterations)", k));
    r.push_back(stack_along(I, scan_parts[k], 0));
  }
  return r;
}

// ---- Scan ------------------------------------------------------------------------------------------
struct ScanSpec {
  size_t states = 0, scan_inputs = 0, scan_outputs = 0;
  std::vector<int> in_axes;          // per scan input, of the input's rank
  std::vector<bool> in_reverse;      // per scan input
  std::vector<int64_t> out_axes;     // per scan output, of the stacked rank
  std::vector<bool> out_reverse;     // per scan output (prepend)
  int64_t length = 0;
};

std::vector<int64_t> ints_or(Importer& I, const char* name, size_t n, int64_t def) {
  std::vector<int64_t> v = I.attr_ints(name);
  if (v.empty()) v.assign(n, def);
  if (v.size() != n) I.fail(fmt::format("attribute '{}' has {} values, expected {}", name, v.size(), n));
  return v;
}

// Opset 9+: inputs are the states then the scan inputs (no batch axis); opset 8 has a leading
// sequence_lens input and a batch axis 0 on every input, handled by scan_opset8.
ScanSpec read_scan(Importer& I, const onnx::GraphProto& body, size_t first_input, const std::vector<TensorId>& xs) {
  ScanSpec s;
  const int64_t m = I.attr_i("num_scan_inputs", -1);
  const size_t n_in = I.n_in() - first_input;
  if (m < 1 || static_cast<size_t>(m) > n_in) I.fail(fmt::format("attribute 'num_scan_inputs' {} is out of range", m));
  s.scan_inputs = static_cast<size_t>(m);
  s.states = n_in - s.scan_inputs;
  if (static_cast<size_t>(body.output_size()) < s.states)
    I.fail(fmt::format("the body has {} outputs for {} states", body.output_size(), s.states));
  s.scan_outputs = static_cast<size_t>(body.output_size()) - s.states;
  const bool v8 = I.opset_ < 9;
  const auto dirs = ints_or(I, v8 ? "directions" : "scan_input_directions", s.scan_inputs, 0);
  const auto axes = v8 ? std::vector<int64_t>(s.scan_inputs, 0) : ints_or(I, "scan_input_axes", s.scan_inputs, 0);
  for (size_t k = 0; k < s.scan_inputs; ++k) {
    s.in_axes.push_back(I.axis(axes[k], I.rank(xs[k]), "scan_input_axes"));
    s.in_reverse.push_back(dirs[k] != 0);
    const int64_t len = I.dims(xs[k])[s.in_axes[k]];
    if (k > 0 && len != s.length) I.fail(fmt::format("scan inputs have lengths {} and {}", s.length, len));
    s.length = len;
  }
  s.out_axes = v8 ? std::vector<int64_t>(s.scan_outputs, 0) : ints_or(I, "scan_output_axes", s.scan_outputs, 0);
  for (int64_t d : v8 ? std::vector<int64_t>(s.scan_outputs, 0) : ints_or(I, "scan_output_directions", s.scan_outputs, 0))
    s.out_reverse.push_back(d != 0);
  if (s.length > kMaxUnrolledIterations)
    I.fail(fmt::format("scan length {} is over {}: the Scan is unrolled at import, longer scans are refused", s.length,
                       kMaxUnrolledIterations));
  return s;
}

// Runs the body over every element of the scan inputs: final states, then the stacked scan outputs.
std::vector<Value> run_scan(Importer& I, const onnx::GraphProto& body, const ScanSpec& s, std::vector<Value> state,
                            const std::vector<TensorId>& xs, const std::string& scope) {
  std::vector<std::vector<Value>> parts(s.scan_outputs);
  for (int64_t t = 0; t < s.length; ++t) {
    std::vector<Value> in = state;
    for (size_t k = 0; k < s.scan_inputs; ++k)
      in.push_back(take_along(I, xs[k], s.in_axes[k], s.in_reverse[k] ? s.length - 1 - t : t));
    const std::vector<Value> out = I.import_subgraph(body, in, fmt::format("{}iter{}", scope, t));
    for (size_t k = 0; k < s.states; ++k) state[k] = out[k];
    for (size_t k = 0; k < s.scan_outputs; ++k) parts[k].push_back(out[s.states + k]);
  }
  std::vector<Value> r = state;
  for (size_t k = 0; k < s.scan_outputs; ++k) {
    if (!I.output_used(s.states + k)) {  // no layers for an output nobody reads
      r.push_back(Value{});
      continue;
    }
    if (s.out_reverse[k]) std::reverse(parts[k].begin(), parts[k].end());
    r.push_back(Value{stack_along(I, parts[k], s.out_axes[k]), nullptr});
  }
  return r;
}

Outs op_scan(Importer& I) {
  const onnx::GraphProto& body = I.graph_attr("body");
  const bool v8 = I.opset_ < 9;
  const size_t first = v8 ? 1 : 0;  // opset 8: input 0 is sequence_lens
  if (v8 && I.has_in(0)) I.fail("input 0 (sequence_lens) is not supported: every sequence must be full");
  const int64_t m = I.attr_i("num_scan_inputs", -1);
  if (m < 1 || static_cast<size_t>(m) > I.n_in() - first) I.fail(fmt::format("attribute 'num_scan_inputs' {} is out of range", m));
  const size_t n_states = I.n_in() - first - static_cast<size_t>(m);
  std::vector<TensorId> xs;
  for (size_t k = 0; k < static_cast<size_t>(m); ++k) xs.push_back(I.tin(first + n_states + k));
  std::vector<Value> states;
  for (size_t k = 0; k < n_states; ++k) states.push_back(I.in(first + k));
  if (!v8) {
    const ScanSpec s = read_scan(I, body, first, xs);
    Outs r;
    const std::vector<Value> outs = run_scan(I, body, s, states, xs, "");
    for (size_t k = 0; k < outs.size(); ++k) r.push_back(outs[k].present() && I.output_used(k) ? as_tensor(I, outs[k]) : -1);
    return r;
  }
  // Opset 8: axis 0 of every input is the batch; scan axis 1. Each batch element runs on its own.
  const int64_t batch = I.rank(xs[0]) > 0 ? I.dims(xs[0])[0] : 0;
  if (batch < 1) I.fail("opset-8 Scan: the scan inputs need a batch axis 0 of at least one element");
  for (TensorId x : xs)
    if (I.rank(x) < 2 || I.dims(x)[0] != batch)
      I.fail(fmt::format("opset-8 Scan: scan input {} is not [batch {}, sequence, ...]", dims_to_string(I.dims(x)), batch));
  for (const Value& v : states) {
    const Dims sd = !v.present() ? Dims{} : v.t >= 0 ? I.dims(v.t) : v.c->dims;
    if (sd.empty() || sd[0] != batch)
      I.fail(fmt::format("opset-8 Scan: a state has no batch axis 0 of {} elements", batch));
  }
  std::vector<TensorId> xs_b(xs.size());
  std::vector<std::vector<Value>> per_batch;
  ScanSpec s;
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t k = 0; k < xs.size(); ++k) xs_b[k] = take_along(I, xs[k], 0, b).t;
    std::vector<Value> st;
    for (const Value& v : states) st.push_back(take_along(I, as_tensor(I, v), 0, b));
    s = read_scan(I, body, first, xs_b);
    per_batch.push_back(run_scan(I, body, s, st, xs_b, fmt::format("batch{}/", b)));
  }
  Outs r;
  for (size_t k = 0; k < per_batch[0].size(); ++k) {
    if (!per_batch[0][k].present()) {
      r.push_back(-1);
      continue;
    }
    std::vector<Value> parts;
    for (const auto& pb : per_batch) parts.push_back(pb[k]);
    r.push_back(stack_along(I, parts, 0));
  }
  return r;
}

}  // namespace

void register_control_ops(std::unordered_map<std::string, OpFn>& m) {
  m.emplace("If", op_if);
  m.emplace("Loop", op_loop);
  m.emplace("Scan", op_scan);
}

}  // namespace tandem::onnx_detail
