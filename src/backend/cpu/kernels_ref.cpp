// Plain, clear loops for every layer kind: the kernels oneDNN does not run here, and the
// reference (ExecOptions::reference_kernels) that every backend is compared with.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "tandem/broadcast.h"
#include "tandem/op_semantics.h"
#include "kernels.h"
#include "parallel.h"
#include "kernels_dynamic.h"
#include "kernels_index.h"
#include "tandem/numerics.h"

namespace tandem::cpu {

namespace {

// An N-d walk over `dims` with one stride vector per operand, adjacent dims merged when every
// operand allows it. Calls f(offsets..., inner_count, inner_strides...) per innermost row.
struct Walk {
  Dims dims;
  std::vector<Strides> strides;  // per operand

  Walk(Dims d, std::vector<Strides> s) : dims(std::move(d)), strides(std::move(s)) {
    if (dims.empty()) {
      dims = {1};
      for (auto& st : strides) st = {0};
    }
    // Drop size-1 dims, then merge.
    Dims nd;
    std::vector<Strides> ns(strides.size());
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == 1) continue;
      nd.push_back(dims[i]);
      for (size_t k = 0; k < strides.size(); ++k) ns[k].push_back(strides[k][i]);
    }
    if (nd.empty()) {
      nd = {1};
      for (auto& st : ns) st = {0};
    }
    Dims md = {nd[0]};
    std::vector<Strides> ms(ns.size());
    for (size_t k = 0; k < ns.size(); ++k) ms[k] = {ns[k][0]};
    for (size_t i = 1; i < nd.size(); ++i) {
      bool ok = true;
      for (size_t k = 0; k < ns.size(); ++k)
        if (ms[k].back() != ns[k][i] * nd[i]) ok = false;
      if (ok) {
        md.back() *= nd[i];
        for (size_t k = 0; k < ns.size(); ++k) ms[k].back() = ns[k][i];
      } else {
        md.push_back(nd[i]);
        for (size_t k = 0; k < ns.size(); ++k) ms[k].push_back(ns[k][i]);
      }
    }
    dims = md;
    strides = ms;
  }

  int64_t rows() const {
    int64_t r = 1;
    for (size_t i = 0; i + 1 < dims.size(); ++i) r *= dims[i];
    return r;
  }
  int64_t inner() const { return dims.back(); }
  int64_t inner_stride(size_t k) const { return strides[k].back(); }
  // Offset of operand k at the start of row r.
  int64_t row_offset(size_t k, int64_t r) const {
    int64_t off = 0;
    for (int i = int(dims.size()) - 2; i >= 0; --i) {
      int64_t idx = r % dims[i];
      r /= dims[i];
      off += idx * strides[k][i];
    }
    return off;
  }
};

// Floats per block of a plain kernel that rounds its output (make_ref_kernel_rounding): each
// block is rounded right after it is written, while it is in L1, instead of in a second pass
// over the whole output.
constexpr int64_t kRoundBlock = 4096;

// The output's in-place roundings (an emulated layer's FP16 / INT8 output grid) over n values.
// round_fp16_block / fake_quant_int8_block pick F16C / AVX or scalar at run time: the same bits
// on every CPU, and the same as a rounding pass over the whole output.
// Where the CPU has the vectors, the roundings are one fused run (chain_fused.h: both in one pass,
// INT8 without the division where that provably rounds the same).
void round_block(const std::vector<ChainLink>& rounds, float* y, int64_t n) {
  if (!rounds.empty() && rounds.size() <= 4 && cpu_vectors() != CpuVectors::kNone) {
    std::vector<fused::Op> ops;
    ops.reserve(4);
    if (links_to_fused(rounds, ops)) return run_fused({ops.data(), int(ops.size()), y, y, y, nullptr, n});
  }
  for (const ChainLink& r : rounds) switch (r.kind) {
      case ChainLink::kRoundFp16: round_fp16_block(y, n); break;
      case ChainLink::kRoundInt8: fake_quant_int8_block(y, n, r.scalar); break;
      case ChainLink::kActivation: case ChainLink::kScalarRight: case ChainLink::kScalarLeft:
      case ChainLink::kChainInputRight: case ChainLink::kChainInputLeft: case ChainLink::kCaptureInput:
      case ChainLink::kGridLookup:
        throw Error("a plain kernel's output rounding is not a rounding link (internal)");
    }
}

// o = f(a, b) over the walk, in blocks of at most kRoundBlock floats of a row (operands of one
// shape merge into a single row: blocks, not rows, go to the threads), each block then rounded
// by `rounds` (none: o as computed).
// Rows per work item of a plain kernel that rounds its output: short rows (channels-last
// broadcasts, one pixel's channels) are grouped so that each rounding call covers about
// kRoundBlock contiguous floats (a call per 24-float row cost more than the kernel itself).
int64_t rows_per_round_block(int64_t row) { return row >= kRoundBlock ? 1 : std::max<int64_t>(1, kRoundBlock / std::max<int64_t>(row, 1)); }

// o = f(a, b) over the walk, in blocks of at most kRoundBlock floats of a row (operands of one
// shape merge into a single row: blocks, not rows, go to the threads; short rows are grouped),
// each block then rounded by `rounds` (none: o as computed).
// fused (may be null): the op and the roundings as a fused run (its first op the binary one with
// the second operand as the chain input), used on contiguous rows and rows against a broadcast
// scalar: the op and its roundings in one pass over the block.
template <class F>
void binary_float(const Walk& w, const float* a, const float* b, float* o, F f,
                  const std::vector<ChainLink>& rounds = {}, const std::vector<fused::Op>* fused = nullptr) {
  const int64_t rows = w.rows(), n = w.inner();
  const int64_t sa = w.inner_stride(1), sb = w.inner_stride(2);
  const int64_t per_row = (n + kRoundBlock - 1) / kRoundBlock;
  // Grouped rows are consecutive rows of the dense output: one contiguous range to round.
  const int64_t group = rounds.empty() ? 1 : rows_per_round_block(n);
  const int64_t items = group > 1 ? (rows + group - 1) / group : rows * per_row;
  auto row_part = [&](int64_t r, int64_t i0, int64_t m) {
    float* po = o + w.row_offset(0, r) + i0;
    const float* pa = a + w.row_offset(1, r) + i0 * sa;
    const float* pb = b + w.row_offset(2, r) + i0 * sb;
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < m; ++i) po[i] = f(pa[i], pb[i]);
    } else if (sa == 1 && sb == 0) {
      float vb = pb[0];
      for (int64_t i = 0; i < m; ++i) po[i] = f(pa[i], vb);
    } else if (sa == 0 && sb == 1) {
      float va = pa[0];
      for (int64_t i = 0; i < m; ++i) po[i] = f(va, pb[i]);
    } else {
      for (int64_t i = 0; i < m; ++i) po[i] = f(pa[i * sa], pb[i * sb]);
    }
    return po;
  };
  parallel_for(items, rows * n > 32768, [&](int64_t item) {
    if (group > 1) {
      const int64_t r0 = item * group, r1 = std::min(rows, r0 + group);
      float* first = nullptr;
      for (int64_t r = r0; r < r1; ++r) {
        float* po = row_part(r, 0, n);
        if (!first) first = po;
      }
      round_block(rounds, first, (r1 - r0) * n);
      return;
    }
    const int64_t r = item / per_row, i0 = (item % per_row) * kRoundBlock, m = std::min(kRoundBlock, n - i0);
    if (fused && (sa == 1 || sb == 1) && (sa <= 1 && sb <= 1)) {
      float* po = o + w.row_offset(0, r) + i0;
      const float* pa = a + w.row_offset(1, r) + i0 * sa;
      const float* pb = b + w.row_offset(2, r) + i0 * sb;
      fused::Op ops[8];
      std::copy(fused->begin(), fused->end(), ops);
      // op(a, b): the chain input b on the right, or the broadcast scalar as a constant.
      if (sb == 0) ops[0].form = fused::Form::kConstRight, ops[0].a = pb[0];
      if (sa == 0) ops[0].form = fused::Form::kConstLeft, ops[0].a = pa[0];
      return run_fused({ops, int(fused->size()), sa == 0 ? pb : pa, pb, po, nullptr, m});
    }
    float* po = row_part(r, i0, m);
    if (!rounds.empty()) round_block(rounds, po, m);
  });
}

// One operand of an element-wise layer that is the same row of n values for every row of a dense
// output (a per-channel operand of a channels-last tensor: rows of C values), the other dense too.
struct RowOperand {
  int which = 0;  // 1: a is the row, 2: b is; 0: not this shape
  int64_t period = 0;
};
RowOperand row_operand(const Walk& w) {
  constexpr int64_t kMaxPeriod = 1024;  // the run's repeated factors, on the stack
  RowOperand r;
  if (w.dims.size() != 2) return r;
  const int64_t n = w.dims[1];
  const Strides dense = {n, 1}, row = {0, 1};
  if (w.strides[0] != dense) return r;
  r.which = w.strides[1] == row && w.strides[2] == dense ? 1 : w.strides[1] == dense && w.strides[2] == row ? 2 : 0;
  r.period = std::lcm(n, int64_t(128));  // a multiple of the fused run's step (chain_fused.h)
  if (r.period > kMaxPeriod) r.which = 0;
  return r;
}

// o = op(x, row) or op(row, x) as a fused run's input x * alpha + bias with the row's values
// repeated as alpha or bias (chain_fused.h), then the roundings: + and - as alpha = +-1 (exact)
// and bias = +-row (x - c = x + (-c) exactly), * as alpha = row. One pass of whole rows per work
// item. False for the other ops.
bool binary_row_fused(ElementWiseOp op, const RowOperand& ro, const float* a, const float* b, float* o, int64_t rows,
                      int64_t n, const std::vector<fused::Op>& rounds) {
  const bool row_left = ro.which == 1;
  const float* row = row_left ? a : b;
  const float* x = row_left ? b : a;
  alignas(64) float al[1024], bi[1024];
  bool has_bias = true;
  for (int64_t i = 0; i < ro.period; ++i) {
    const float c = row[i % n];
    switch (op) {
      case ElementWiseOp::kSum: al[i] = 1.f, bi[i] = c; break;
      case ElementWiseOp::kSub: al[i] = row_left ? -1.f : 1.f, bi[i] = row_left ? c : -c; break;
      case ElementWiseOp::kProd: al[i] = c, has_bias = false; break;
      case ElementWiseOp::kDiv: case ElementWiseOp::kMax: case ElementWiseOp::kMin: case ElementWiseOp::kPow:
      case ElementWiseOp::kFloorDiv: case ElementWiseOp::kAnd: case ElementWiseOp::kOr: case ElementWiseOp::kXor:
      case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
        return false;
    }
  }
  const int64_t rows_per_item = std::max<int64_t>(1, 16384 / n), items = (rows + rows_per_item - 1) / rows_per_item;
  parallel_for(items, rows * n > 32768, [&](int64_t item) {
    const int64_t r0 = item * rows_per_item, m = (std::min(rows, r0 + rows_per_item) - r0) * n;
    fused::Run r{rounds.data(), int(rounds.size()), nullptr, nullptr, o + r0 * n, nullptr, m};
    r.sums_f32 = x + r0 * n, r.alpha = al, r.bias = has_bias ? bi : nullptr, r.period = ro.period;
    run_fused(r);
  });
  return true;
}

double elementwise_double(ElementWiseOp op, double a, double b, bool integral) {
  if (integral && op == ElementWiseOp::kDiv) return ops::elementwise_integral_div(a, b);
  return ops::elementwise(op, a, b);
}

bool is_integral(DataType t) { return t != DataType::kFloat && t != DataType::kHalf && t != DataType::kBFloat16; }

// rounds: the output's roundings, inside the float kernel (make_ref_kernel_rounding).
Kernel make_elementwise(const Network& net, const Layer& l, const std::vector<ChainLink>& rounds = {}) {
  const Tensor& ta = net.tensors[l.inputs[0]];
  const Tensor& tb = net.tensors[l.inputs[1]];
  const Tensor& to = net.tensors[l.outputs[0]];
  ElementWiseOp op = l.as<ElementWiseParams>().op;
  Walk w(to.dims, {dense_strides(to.dims), broadcast_strides(ta.dims, to.dims),
                   broadcast_strides(tb.dims, to.dims)});
  bool all_float = ta.type == DataType::kFloat && tb.type == DataType::kFloat &&
                   to.type == DataType::kFloat;
  if (all_float) {
    // The op and its output roundings as one fused run where every one has a fused form.
    std::vector<fused::Op> fused_ops;
    if (!rounds.empty() && rounds.size() < 8 && cpu_vectors() != CpuVectors::kNone) {
      ChainLink first;
      first.kind = ChainLink::kChainInputRight, first.op = op;
      std::vector<ChainLink> links{first};
      links.insert(links.end(), rounds.begin(), rounds.end());
      if (!links_to_fused(links, fused_ops)) fused_ops.clear();
    }
    auto fused = std::make_shared<const std::vector<fused::Op>>(std::move(fused_ops));
    // A per-channel operand of a channels-last tensor with the roundings fused: one run of whole rows.
    const RowOperand ro = cpu_vectors() != CpuVectors::kNone ? row_operand(w) : RowOperand{};
    auto round_ops = std::make_shared<std::vector<fused::Op>>();
    const bool rows_fused = ro.which != 0 && rounds.size() < 8 && links_to_fused(rounds, *round_ops);
    return [w, op, rounds, fused, ro, round_ops, rows_fused](const std::vector<void*>& in, const std::vector<void*>& out) {
      const std::vector<fused::Op>* f = fused->empty() ? nullptr : fused.get();
      const float* a = static_cast<const float*>(in[0]);
      const float* b = static_cast<const float*>(in[1]);
      float* o = static_cast<float*>(out[0]);
      if (rows_fused && binary_row_fused(op, ro, a, b, o, w.rows(), w.inner(), *round_ops)) return;
      // The common ops get their own instantiation (op fixed at compile time: vectorized loops);
      // every op computes ops::elementwise.
      switch (op) {
        case ElementWiseOp::kSum: binary_float(w, a, b, o, [](float x, float y) { return ops::elementwise(ElementWiseOp::kSum, x, y); }, rounds, f); return;
        case ElementWiseOp::kProd: binary_float(w, a, b, o, [](float x, float y) { return ops::elementwise(ElementWiseOp::kProd, x, y); }, rounds, f); return;
        case ElementWiseOp::kSub: binary_float(w, a, b, o, [](float x, float y) { return ops::elementwise(ElementWiseOp::kSub, x, y); }, rounds, f); return;
        case ElementWiseOp::kDiv: binary_float(w, a, b, o, [](float x, float y) { return ops::elementwise(ElementWiseOp::kDiv, x, y); }, rounds, f); return;
        case ElementWiseOp::kMax: binary_float(w, a, b, o, [](float x, float y) { return ops::elementwise(ElementWiseOp::kMax, x, y); }, rounds, f); return;
        case ElementWiseOp::kMin: binary_float(w, a, b, o, [](float x, float y) { return ops::elementwise(ElementWiseOp::kMin, x, y); }, rounds, f); return;
        case ElementWiseOp::kPow: case ElementWiseOp::kFloorDiv:
        case ElementWiseOp::kAnd: case ElementWiseOp::kOr: case ElementWiseOp::kXor:
        case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
          binary_float(w, a, b, o, [op](float x, float y) { return ops::elementwise(op, x, y); }, rounds);
          return;
      }
    };
  }
  if (!rounds.empty()) throw Error("layer '" + l.name + "': output rounding of a non-float element-wise layer (internal)");
  DataType at = ta.type, bt = tb.type, ot = to.type;
  bool integral = is_integral(at) && is_integral(bt);
  return [w, op, at, bt, ot, integral](const std::vector<void*>& in, const std::vector<void*>& out) {
    int64_t rows = w.rows(), n = w.inner();
    for (int64_t r = 0; r < rows; ++r) {
      int64_t oo = w.row_offset(0, r), oa = w.row_offset(1, r), ob = w.row_offset(2, r);
      for (int64_t i = 0; i < n; ++i) {
        if (integral && at == DataType::kInt64 && bt == DataType::kInt64 && ot == DataType::kInt64 &&
            (op == ElementWiseOp::kSum || op == ElementWiseOp::kSub || op == ElementWiseOp::kProd ||
             op == ElementWiseOp::kDiv || op == ElementWiseOp::kMax || op == ElementWiseOp::kMin)) {
          // Exact 64-bit integer arithmetic (doubles lose precision past 2^53).
          int64_t x = static_cast<const int64_t*>(in[0])[oa + i * w.inner_stride(1)];
          int64_t y = static_cast<const int64_t*>(in[1])[ob + i * w.inner_stride(2)];
          int64_t v = op == ElementWiseOp::kSum ? x + y : op == ElementWiseOp::kSub ? x - y
                    : op == ElementWiseOp::kProd ? x * y : op == ElementWiseOp::kMax ? std::max(x, y)
                    : op == ElementWiseOp::kMin ? std::min(x, y) : (y == 0 ? 0 : x / y);
          static_cast<int64_t*>(out[0])[oo + i] = v;
          continue;
        }
        double x = load_as_double(in[0], at, oa + i * w.inner_stride(1));
        double y = load_as_double(in[1], bt, ob + i * w.inner_stride(2));
        store_from_double(out[0], ot, oo + i, elementwise_double(op, x, y, integral));
      }
    }
  };
}

Kernel make_unary(const Network& net, const Layer& l) {
  const Tensor& ti = net.tensors[l.inputs[0]];
  const Tensor& to = net.tensors[l.outputs[0]];
  UnaryOp op = l.as<UnaryParams>().op;
  int64_t n = volume(to.dims);
  DataType it = ti.type, ot = to.type;
  return [n, op, it, ot](const std::vector<void*>& in, const std::vector<void*>& out) {
    if (it == DataType::kFloat && ot == DataType::kFloat) {
      const float* a = static_cast<const float*>(in[0]);
      float* o = static_cast<float*>(out[0]);
      parallel_for(n, n > 32768, [&](int64_t i) { o[i] = ops::unary(op, a[i]); });
      return;
    }
    for (int64_t i = 0; i < n; ++i) {
      double x = load_as_double(in[0], it, i);
      double v;
      if (op == UnaryOp::kAbs) v = std::fabs(x);
      else if (op == UnaryOp::kNeg) v = -x;
      else if (op == UnaryOp::kSign) v = x > 0 ? 1 : (x < 0 ? -1 : 0);
      else v = ops::unary(op, float(x));
      store_from_double(out[0], ot, i, v);
    }
  };
}

template <class F>
void map_float(const float* x, float* y, int64_t n, F f) {
  parallel_for(n, n > 65536, [&](int64_t i) { y[i] = f(x[i]); });
}

Kernel make_activation(const Network& net, const Layer& l) {
  int64_t n = volume(net.tensors[l.outputs[0]].dims);
  ActivationParams a = l.as<ActivationParams>();
  // oneDNN's vectorized eltwise where it has the function; plain loops (switch hoisted out of the
  // loop so the compiler vectorizes the simple ones) for the rest.
  if (Kernel k = make_eltwise_kernel(a, n)) return k;
  return [n, a](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    const float al = a.alpha, be = a.beta;
    // The simple ones get their own instantiation (type fixed: vectorized); all compute
    // ops::activation.
    switch (a.type) {
      case ActivationType::kRelu:
        map_float(x, y, n, [](float v) { return ops::activation(ActivationType::kRelu, v, 0.f, 0.f); });
        return;
      case ActivationType::kLeakyRelu:
        map_float(x, y, n, [al](float v) { return ops::activation(ActivationType::kLeakyRelu, v, al, 0.f); });
        return;
      case ActivationType::kClip:
        map_float(x, y, n, [al, be](float v) { return ops::activation(ActivationType::kClip, v, al, be); });
        return;
      case ActivationType::kHardSigmoid:
        map_float(x, y, n, [al, be](float v) { return ops::activation(ActivationType::kHardSigmoid, v, al, be); });
        return;
      case ActivationType::kSigmoid: case ActivationType::kTanh: case ActivationType::kElu:
      case ActivationType::kSelu: case ActivationType::kSoftplus: case ActivationType::kSoftsign:
      case ActivationType::kGeluErf: case ActivationType::kGeluTanh: case ActivationType::kThresholdedRelu:
      case ActivationType::kScaledTanh:
        map_float(x, y, n, [a](float v) { return apply_activation(a, v); });
        return;
    }
  };
}

Kernel make_scale(const Network& net, const Layer& l, const std::vector<Weights>& weights) {
  const ScaleParams& p = l.as<ScaleParams>();
  const Tensor& t = net.tensors[l.inputs[0]];
  // Expand shift/scale/power to per-position vectors over [channel_axis, end) (elementwise),
  // one per channel (channel) or a single value (uniform).
  int64_t outer = 1, groups = 1, inner = 1;
  for (int i = 0; i < int(t.dims.size()); ++i) {
    if (i < p.channel_axis) outer *= t.dims[i];
    else if (i == p.channel_axis) groups = t.dims[i];
    else inner *= t.dims[i];
  }
  if (p.mode == ScaleMode::kUniform) {
    groups = 1;
    inner = volume(t.dims) / std::max<int64_t>(outer, 1);
  } else if (p.mode == ScaleMode::kElementwise) {
    groups = groups * inner;
    inner = 1;
  }
  auto expand = [&](WeightsId id, float dflt) {
    std::vector<float> v(groups, dflt);
    if (id < 0) return v;
    const Weights& w = weights[id];
    for (int64_t i = 0; i < groups; ++i) v[i] = float(w.at(w.count() == 1 ? 0 : i));
    return v;
  };
  std::vector<float> shift = expand(p.shift, 0.f), scale = expand(p.scale, 1.f),
                     power = expand(p.power, 1.f);
  bool has_power = p.power >= 0;
  if (inner == 1 && groups > 1) {
    // The channel axis last (a channels-last Scale, nhwc_permuted_kernel): rows of `groups`
    // values, the same arithmetic per element, in blocks of rows so the loop over a row vectorizes.
    const int64_t rows_per_item = std::max<int64_t>(1, 4096 / groups), items = (outer + rows_per_item - 1) / rows_per_item;
    return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
      const float* x = static_cast<const float*>(in[0]);
      float* y = static_cast<float*>(out[0]);
      parallel_for(items, outer * groups > 32768, [&](int64_t item) {
        const float *s = scale.data(), *b = shift.data(), *e = power.data();
        for (int64_t r = item * rows_per_item; r < std::min(outer, (item + 1) * rows_per_item); ++r) {
          const float* px = x + r * groups;
          float* py = y + r * groups;
          if (has_power)
            for (int64_t g = 0; g < groups; ++g) py[g] = std::pow(px[g] * s[g] + b[g], e[g]);
          else
            for (int64_t g = 0; g < groups; ++g) py[g] = px[g] * s[g] + b[g];
        }
      });
    };
  }
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    parallel_for(outer * groups, outer * groups * inner > 32768, [&](int64_t og) {
      const int64_t g = og % groups;
      const float* px = x + og * inner;
      float* py = y + og * inner;
      float s = scale[g], b = shift[g], e = power[g];
      if (has_power)
        for (int64_t i = 0; i < inner; ++i) py[i] = std::pow(px[i] * s + b, e);
      else
        for (int64_t i = 0; i < inner; ++i) py[i] = px[i] * s + b;
    });
  };
}

Kernel make_pooling(const Network& net, const Layer& l) {
  const PoolingParams& p = l.as<PoolingParams>();
  const Tensor& ti = net.tensors[l.inputs[0]];
  const Tensor& to = net.tensors[l.outputs[0]];
  int r = int(p.window.size());
  // Everything as 3-d: pad the spatial dims in front with 1.
  int64_t N = ti.dims[0], C = ti.dims[1];
  // std::array, not C arrays: clang aligns captured C arrays to 16 bytes in OpenMP regions while
  // the std::function's copy of the closure is only 8-byte aligned (UBSan, found by fuzzing).
  std::array<int64_t, 3> id = {1, 1, 1}, od = {1, 1, 1}, k = {1, 1, 1}, s = {1, 1, 1}, pb = {0, 0, 0},
                         pe = {0, 0, 0};
  for (int i = 0; i < r; ++i) {
    int j = 3 - r + i;
    id[j] = ti.dims[2 + i];
    od[j] = to.dims[2 + i];
    k[j] = p.window[i];
    s[j] = p.stride.empty() ? 1 : p.stride[i];
    pb[j] = p.pre_padding.empty() ? 0 : p.pre_padding[i];
    pe[j] = p.post_padding.empty() ? 0 : p.post_padding[i];
  }
  const PoolingType type = p.type;
  bool exclude = p.average_count_excludes_padding;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
#pragma omp parallel for
    for (int64_t nc = 0; nc < N * C; ++nc) {
      const float* px = x + nc * id[0] * id[1] * id[2];
      float* py = y + nc * od[0] * od[1] * od[2];
      for (int64_t a = 0; a < od[0]; ++a)
        for (int64_t b = 0; b < od[1]; ++b)
          for (int64_t c = 0; c < od[2]; ++c) {
            int64_t s0 = a * s[0] - pb[0], s1 = b * s[1] - pb[1], s2 = c * s[2] - pb[2];
            // Window clipped to the padded input (what count_include_pad counts) and to the input.
            int64_t e0 = std::min(s0 + k[0], id[0] + pe[0]), e1 = std::min(s1 + k[1], id[1] + pe[1]),
                    e2 = std::min(s2 + k[2], id[2] + pe[2]);
            int64_t padded = (e0 - s0) * (e1 - s1) * (e2 - s2);
            int64_t b0 = std::max<int64_t>(s0, 0), b1 = std::max<int64_t>(s1, 0), b2 = std::max<int64_t>(s2, 0);
            e0 = std::min(e0, id[0]); e1 = std::min(e1, id[1]); e2 = std::min(e2, id[2]);
            float acc = ops::pool_identity<float>(type);
            for (int64_t i0 = b0; i0 < e0; ++i0)
              for (int64_t i1 = b1; i1 < e1; ++i1)
                for (int64_t i2 = b2; i2 < e2; ++i2) {
                  float v = px[(i0 * id[1] + i1) * id[2] + i2];
                  acc = ops::pool_combine(type, acc, v);
                }
            if (type == PoolingType::kAverage) {
              int64_t cnt = exclude ? (e0 - b0) * (e1 - b1) * (e2 - b2) : padded;
              acc = cnt > 0 ? ops::pool_finish(type, acc, cnt) : 0.f;
            }
            py[(a * od[1] + b) * od[2] + c] = acc;
          }
    }
  };
}

// Permutes `in` (dims d, element size es) into `out` with out.dims[i] = d[perm[i]].
void transpose(const void* in, void* out, const Dims& d, const std::vector<int>& perm, size_t es) {
  Dims od(perm.size());
  Strides is = dense_strides(d), ps(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    od[i] = d[perm[i]];
    ps[i] = is[perm[i]];
  }
  Walk w(od, {dense_strides(od), ps});
  int64_t rows = w.rows(), n = w.inner(), si = w.inner_stride(1);
  const uint8_t* src = static_cast<const uint8_t*>(in);
  uint8_t* dst = static_cast<uint8_t*>(out);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t oo = w.row_offset(0, r), oi = w.row_offset(1, r);
    if (si == 1) {
      std::memcpy(dst + oo * es, src + oi * es, n * es);
      continue;
    }
    switch (es) {
      case 4: {
        const uint32_t* s = reinterpret_cast<const uint32_t*>(src) + oi;
        uint32_t* o = reinterpret_cast<uint32_t*>(dst) + oo;
        for (int64_t i = 0; i < n; ++i) o[i] = s[i * si];
        break;
      }
      default:
        for (int64_t i = 0; i < n; ++i) std::memcpy(dst + (oo + i) * es, src + (oi + i * si) * es, es);
    }
  }
}

Kernel make_shuffle(const Network& net, const Layer& l) {
  const ShuffleParams& p = l.as<ShuffleParams>();
  const Tensor& ti = net.tensors[l.inputs[0]];
  const Tensor& to = net.tensors[l.outputs[0]];
  size_t es = element_size(ti.type);
  size_t bytes = size_t(volume(ti.dims)) * es;
  Dims d1 = ti.dims;
  if (!p.first_transpose.empty())
    for (size_t i = 0; i < p.first_transpose.size(); ++i) d1[i] = ti.dims[p.first_transpose[i]];
  Dims d2 = p.reshape ? *p.reshape : d1;
  if (!p.second_transpose.empty() && d2.size() != p.second_transpose.size()) d2 = to.dims;
  std::vector<int> t1 = p.first_transpose, t2 = p.second_transpose;
  Dims din = ti.dims;
  auto scratch = std::make_shared<std::vector<uint8_t>>(t1.empty() || t2.empty() ? 0 : bytes);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    if (t1.empty() && t2.empty()) {
      if (in[0] != out[0]) std::memcpy(out[0], in[0], bytes);
    } else if (t2.empty()) {
      transpose(in[0], out[0], din, t1, es);
    } else if (t1.empty()) {
      transpose(in[0], out[0], d2, t2, es);
    } else {
      transpose(in[0], scratch->data(), din, t1, es);
      transpose(scratch->data(), out[0], d2, t2, es);
    }
  };
}

Kernel make_slice(const Network& net, const Layer& l) {
  const SliceParams& p = l.as<SliceParams>();
  const Tensor& ti = net.tensors[l.inputs[0]];
  const Tensor& to = net.tensors[l.outputs[0]];
  size_t es = element_size(ti.type);
  size_t rank = ti.dims.size();
  // Per dim, the input index of each output index (-1: fill).
  std::vector<std::vector<int64_t>> idx(rank);
  bool any_fill = false;
  for (size_t d = 0; d < rank; ++d) {
    int64_t n = ti.dims[d];
    for (int64_t i = 0; i < to.dims[d]; ++i) {
      int64_t st = p.stride.empty() ? 1 : p.stride[d];
      int64_t x = p.start[d] + i * st;
      switch (p.mode) {
        case SliceMode::kDefault: case SliceMode::kClamp: x = std::clamp<int64_t>(x, 0, n - 1); break;
        case SliceMode::kWrap: x = ((x % n) + n) % n; break;
        case SliceMode::kFill: if (x < 0 || x >= n) { x = -1; any_fill = true; } break;
        case SliceMode::kReflect: {
          if (n == 1) { x = 0; break; }
          int64_t period = 2 * (n - 1);
          x = ((x % period) + period) % period;
          if (x >= n) x = period - x;
          break;
        }
      }
      idx[d].push_back(x);
    }
  }
  Strides is = dense_strides(ti.dims);
  Dims od = to.dims;
  int64_t total = volume(to.dims);
  float fill = p.fill_value;
  DataType type = ti.type;
  (void)any_fill;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    uint8_t* dst = static_cast<uint8_t*>(out[0]);
    std::vector<int64_t> c(rank, 0);
    for (int64_t o = 0; o < total; ++o) {
      int64_t off = 0;
      bool is_fill = false;
      for (size_t d = 0; d < rank; ++d) {
        int64_t x = idx[d][c[d]];
        if (x < 0) is_fill = true;
        off += x * is[d];
      }
      if (is_fill) store_from_double(dst, type, o, fill);
      else std::memcpy(dst + o * es, src + off * es, es);
      for (int d = int(rank) - 1; d >= 0; --d) {
        if (++c[d] < od[d]) break;
        c[d] = 0;
      }
    }
  };
}

Kernel make_concat(const Network& net, const Layer& l) {
  int axis = l.as<ConcatenationParams>().axis;
  const Tensor& to = net.tensors[l.outputs[0]];
  if (axis < 0) axis += int(to.dims.size());
  size_t es = element_size(to.type);
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= to.dims[i];
  for (size_t i = axis + 1; i < to.dims.size(); ++i) inner *= to.dims[i];
  std::vector<int64_t> chunk;  // bytes per outer row of each input
  for (TensorId t : l.inputs) chunk.push_back(net.tensors[t].dims[axis] * inner * int64_t(es));
  int64_t row = to.dims[axis] * inner * int64_t(es);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    uint8_t* dst = static_cast<uint8_t*>(out[0]);
    for (int64_t o = 0; o < outer; ++o) {
      int64_t at = o * row;
      for (size_t k = 0; k < in.size(); ++k) {
        std::memcpy(dst + at, static_cast<const uint8_t*>(in[k]) + o * chunk[k], chunk[k]);
        at += chunk[k];
      }
    }
  };
}

// A float Concatenation whose output rounds in place: the copy in blocks of at most kRoundBlock
// floats (input k's row o), each rounded right after it is copied, on the thread team.
Kernel make_concat_rounding(const Network& net, const Layer& l, const std::vector<ChainLink>& rounds) {
  int axis = l.as<ConcatenationParams>().axis;
  const Tensor& to = net.tensors[l.outputs[0]];
  if (axis < 0) axis += int(to.dims.size());
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= to.dims[i];
  for (size_t i = axis + 1; i < to.dims.size(); ++i) inner *= to.dims[i];
  struct Piece {
    size_t input;
    int64_t src, dst, n;  // float offsets and count
  };
  std::vector<Piece> pieces;
  const int64_t row = to.dims[axis] * inner;
  // Short output rows (channels-last: one pixel's channels) are copied in groups of rows and the
  // group rounded once (a call per row cost more than the copy).
  const int64_t group = rows_per_round_block(row);
  if (group > 1) {
    std::vector<int64_t> chunk;
    for (TensorId t : l.inputs) chunk.push_back(net.tensors[t].dims[axis] * inner);
    const int64_t total = volume(to.dims), items = (outer + group - 1) / group;
    return [chunk, rounds, total, row, group, outer, items](const std::vector<void*>& in, const std::vector<void*>& out) {
      float* dst = static_cast<float*>(out[0]);
      parallel_for(items, total > 65536, [&](int64_t item) {
        const int64_t o0 = item * group, o1 = std::min(outer, o0 + group);
        for (int64_t o = o0; o < o1; ++o) {
          int64_t at = o * row;
          for (size_t k = 0; k < chunk.size(); ++k) {
            std::memcpy(dst + at, static_cast<const float*>(in[k]) + o * chunk[k], size_t(chunk[k]) * sizeof(float));
            at += chunk[k];
          }
        }
        round_block(rounds, dst + o0 * row, (o1 - o0) * row);
      });
    };
  }
  for (int64_t o = 0; o < outer; ++o) {
    int64_t at = o * row;
    for (size_t k = 0; k < l.inputs.size(); ++k) {
      const int64_t chunk = net.tensors[l.inputs[k]].dims[axis] * inner;
      for (int64_t i = 0; i < chunk; i += kRoundBlock)
        pieces.push_back({k, o * chunk + i, at + i, std::min(kRoundBlock, chunk - i)});
      at += chunk;
    }
  }
  const int64_t total = volume(to.dims);
  return [pieces, rounds, total](const std::vector<void*>& in, const std::vector<void*>& out) {
    float* dst = static_cast<float*>(out[0]);
    parallel_for(int64_t(pieces.size()), total > 65536, [&](int64_t i_) {
      const size_t i = size_t(i_);
      const Piece& p = pieces[i];
      std::memcpy(dst + p.dst, static_cast<const float*>(in[p.input]) + p.src, size_t(p.n) * sizeof(float));
      round_block(rounds, dst + p.dst, p.n);
    });
  };
}

Kernel make_reduce(const Network& net, const Layer& l) {
  const ReduceParams& p = l.as<ReduceParams>();
  const Tensor& ti = net.tensors[l.inputs[0]];
  const Tensor& to = net.tensors[l.outputs[0]];
  Dims kd = ti.dims;  // output dims with reduced axes kept as 1
  int64_t group = 1;
  for (size_t i = 0; i < kd.size(); ++i)
    if (p.axes & (1u << i)) {
      group *= kd[i];
      kd[i] = 1;
    }
  Strides os = broadcast_strides(kd, ti.dims);
  Walk w(ti.dims, {dense_strides(ti.dims), os});
  int64_t on = volume(kd);
  ReduceOp op = p.op;
  DataType it = ti.type, ot = to.type;
  const double init = ops::reduce_identity<double>(op);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    // Fast path: float sum/avg/max over trailing, contiguous axes (GlobalAveragePool).
    if (it == DataType::kFloat && ot == DataType::kFloat && w.dims.size() == 2 &&
        w.inner_stride(1) == 0 && w.strides[1][0] == 1) {
      const float* x = static_cast<const float*>(in[0]);
      float* y = static_cast<float*>(out[0]);
      int64_t rows = w.dims[0], n = w.dims[1];
      parallel_for(rows, rows * n > 65536, [&](int64_t r) {
        const float* px = x + r * n;
        double acc = init;
        switch (op) {
          case ReduceOp::kSum: case ReduceOp::kAvg: {
            float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // 8 lanes: vectorizes, and keeps precision
            int64_t i = 0;
            for (; i + 8 <= n; i += 8)
              for (int k = 0; k < 8; ++k) part[k] += px[i + k];
            for (; i < n; ++i) acc += px[i];
            for (int k = 0; k < 8; ++k) acc += part[k];
            break;
          }
          case ReduceOp::kProd:
            for (int64_t i = 0; i < n; ++i) acc = ops::reduce_combine(ReduceOp::kProd, acc, double(px[i]));
            break;
          case ReduceOp::kMax:
            for (int64_t i = 0; i < n; ++i) acc = ops::reduce_combine(ReduceOp::kMax, acc, double(px[i]));
            break;
          case ReduceOp::kMin:
            for (int64_t i = 0; i < n; ++i) acc = ops::reduce_combine(ReduceOp::kMin, acc, double(px[i]));
            break;
        }
        y[r] = float(ops::reduce_finish(op, acc, n));
      });
      return;
    }
    std::vector<double> acc(on, init);
    int64_t rows = w.rows(), n = w.inner(), so = w.inner_stride(1);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t ii = w.row_offset(0, r), oo = w.row_offset(1, r);
      for (int64_t i = 0; i < n; ++i) {
        double v = load_as_double(in[0], it, ii + i);
        double& a = acc[oo + i * so];
        a = ops::reduce_combine(op, a, v);
      }
    }
    for (int64_t i = 0; i < on; ++i)
      store_from_double(out[0], ot, i, ops::reduce_finish(op, acc[i], group));
  };
}

// ---- Convolution, Deconvolution, MatrixMultiply: the plain-loop reference ------------------
// Accumulation in double: the reference the other backends are compared with.

std::vector<float> weights_as_float(const std::vector<Weights>& weights, WeightsId id) {
  if (id < 0) return {};
  const Weights& w = weights[size_t(id)];
  std::vector<float> v(size_t(w.count()));
  for (int64_t i = 0; i < w.count(); ++i) v[size_t(i)] = float(w.at(i));
  return v;
}

// A convolution's geometry with its spatial dims padded in front to 3 (1-D and 2-D as 3-D).
struct ConvGeometry {
  int64_t N = 1, C = 1, K = 1, groups = 1;  // C input channels, K output channels
  std::array<int64_t, 3> in = {1, 1, 1}, out = {1, 1, 1}, kernel = {1, 1, 1}, stride = {1, 1, 1},
                         dilation = {1, 1, 1}, pad = {0, 0, 0};
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  int64_t out_plane() const { return out[0] * out[1] * out[2]; }
  int64_t kernel_volume() const { return kernel[0] * kernel[1] * kernel[2]; }
};

ConvGeometry conv_geometry(const Network& net, const Layer& l) {
  const ConvolutionParams& p = l.as<ConvolutionParams>();
  const Dims& x = net.tensors[l.inputs[0]].dims;
  const Dims& y = net.tensors[l.outputs[0]].dims;
  const size_t ns = p.kernel.size();
  if (ns < 1 || ns > 3 || x.size() != ns + 2 || y.size() != ns + 2)
    throw Error("layer '" + l.name + "': the reference " + std::string(to_string(l.kind)) +
                " takes 1 to 3 spatial dims, input " + dims_to_string(x));
  ConvGeometry g;
  g.N = x[0];
  g.C = x[1];
  g.K = y[1];
  g.groups = p.groups > 0 ? p.groups : 1;
  for (size_t i = 0; i < ns; ++i) {
    const size_t j = 3 - ns + i;
    g.in[j] = x[2 + i];
    g.out[j] = y[2 + i];
    g.kernel[j] = p.kernel[i];
    g.stride[j] = p.stride.empty() ? 1 : p.stride[i];
    g.dilation[j] = p.dilation.empty() ? 1 : p.dilation[i];
    g.pad[j] = p.pre_padding.empty() ? 0 : p.pre_padding[i];
  }
  return g;
}

// y[n, k, o] = bias[k] + sum over the group's c and the window of x[n, c, o * s - pad + t * d] *
// w[k, c, t]; weights [K, C/g, k...].
Kernel make_convolution(const Network& net, const Layer& l, const std::vector<Weights>& weights) {
  const ConvGeometry g = conv_geometry(net, l);
  const ConvolutionParams& p = l.as<ConvolutionParams>();
  auto w = std::make_shared<const std::vector<float>>(weights_as_float(weights, p.kernel_weights));
  auto b = std::make_shared<const std::vector<float>>(weights_as_float(weights, p.bias_weights));
  return [g, w, b](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups;
#pragma omp parallel for schedule(static)
    for (int64_t nk = 0; nk < g.N * g.K; ++nk) {
      const int64_t n = nk / g.K, k = nk % g.K, c0 = (k / Kg) * Cg;
      float* py = y + nk * g.out_plane();
      for (int64_t o0 = 0; o0 < g.out[0]; ++o0)
        for (int64_t o1 = 0; o1 < g.out[1]; ++o1)
          for (int64_t o2 = 0; o2 < g.out[2]; ++o2) {
            double acc = b->empty() ? 0.0 : (*b)[size_t(k)];
            for (int64_t c = 0; c < Cg; ++c) {
              const float* px = x + (n * g.C + c0 + c) * g.in_plane();
              const float* pw = w->data() + (k * Cg + c) * g.kernel_volume();
              for (int64_t t0 = 0; t0 < g.kernel[0]; ++t0) {
                const int64_t i0 = o0 * g.stride[0] - g.pad[0] + t0 * g.dilation[0];
                if (i0 < 0 || i0 >= g.in[0]) continue;
                for (int64_t t1 = 0; t1 < g.kernel[1]; ++t1) {
                  const int64_t i1 = o1 * g.stride[1] - g.pad[1] + t1 * g.dilation[1];
                  if (i1 < 0 || i1 >= g.in[1]) continue;
                  for (int64_t t2 = 0; t2 < g.kernel[2]; ++t2) {
                    const int64_t i2 = o2 * g.stride[2] - g.pad[2] + t2 * g.dilation[2];
                    if (i2 < 0 || i2 >= g.in[2]) continue;
                    acc += double(px[(i0 * g.in[1] + i1) * g.in[2] + i2]) *
                           double(pw[(t0 * g.kernel[1] + t1) * g.kernel[2] + t2]);
                  }
                }
              }
            }
            py[(o0 * g.out[1] + o1) * g.out[2] + o2] = float(acc);
          }
    }
  };
}

// The transpose of a convolution: every input element x[n, c, i] scatters x * w[c, k, t] to
// y[n, k, i * s - pad + t * d] (outside the output: dropped); weights [C, K/g, k...]. One
// output channel per thread, so the scatter needs no synchronisation.
Kernel make_deconvolution(const Network& net, const Layer& l, const std::vector<Weights>& weights) {
  const ConvGeometry g = conv_geometry(net, l);
  const ConvolutionParams& p = l.as<ConvolutionParams>();
  auto w = std::make_shared<const std::vector<float>>(weights_as_float(weights, p.kernel_weights));
  auto b = std::make_shared<const std::vector<float>>(weights_as_float(weights, p.bias_weights));
  return [g, w, b](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups;
#pragma omp parallel for schedule(static)
    for (int64_t nk = 0; nk < g.N * g.K; ++nk) {
      const int64_t n = nk / g.K, k = nk % g.K, kg = k % Kg, c0 = (k / Kg) * Cg;
      std::vector<double> acc(size_t(g.out_plane()), b->empty() ? 0.0 : double((*b)[size_t(k)]));
      for (int64_t c = 0; c < Cg; ++c) {
        const float* px = x + (n * g.C + c0 + c) * g.in_plane();
        const float* pw = w->data() + ((c0 + c) * Kg + kg) * g.kernel_volume();
        for (int64_t i0 = 0; i0 < g.in[0]; ++i0)
          for (int64_t i1 = 0; i1 < g.in[1]; ++i1)
            for (int64_t i2 = 0; i2 < g.in[2]; ++i2) {
              const double v = px[(i0 * g.in[1] + i1) * g.in[2] + i2];
              for (int64_t t0 = 0; t0 < g.kernel[0]; ++t0) {
                const int64_t o0 = i0 * g.stride[0] - g.pad[0] + t0 * g.dilation[0];
                if (o0 < 0 || o0 >= g.out[0]) continue;
                for (int64_t t1 = 0; t1 < g.kernel[1]; ++t1) {
                  const int64_t o1 = i1 * g.stride[1] - g.pad[1] + t1 * g.dilation[1];
                  if (o1 < 0 || o1 >= g.out[1]) continue;
                  for (int64_t t2 = 0; t2 < g.kernel[2]; ++t2) {
                    const int64_t o2 = i2 * g.stride[2] - g.pad[2] + t2 * g.dilation[2];
                    if (o2 < 0 || o2 >= g.out[2]) continue;
                    acc[size_t((o0 * g.out[1] + o1) * g.out[2] + o2)] +=
                        v * double(pw[(t0 * g.kernel[1] + t1) * g.kernel[2] + t2]);
                  }
                }
              }
            }
      }
      float* py = y + nk * g.out_plane();
      for (int64_t i = 0; i < g.out_plane(); ++i) py[i] = float(acc[size_t(i)]);
    }
  };
}

// C[.., m, n] = sum_k op0(A)[.., m, k] * op1(B)[.., k, n]; the batch dims broadcast (numpy,
// ranks aligned right); a transposed operand is read through swapped strides.
Kernel make_matrix_multiply(const Network& net, const Layer& l) {
  const MatrixMultiplyParams& p = l.as<MatrixMultiplyParams>();
  const Dims& ad = net.tensors[l.inputs[0]].dims;
  const Dims& bd = net.tensors[l.inputs[1]].dims;
  const Dims& od = net.tensors[l.outputs[0]].dims;
  const size_t r = od.size();
  if (r < 2 || ad.size() < 2 || bd.size() < 2 || ad.size() > r || bd.size() > r)
    throw Error("layer '" + l.name + "': the reference MatrixMultiply takes operands of rank >= 2, got " +
                dims_to_string(ad) + " x " + dims_to_string(bd));
  const int64_t M = od[r - 2], N = od[r - 1];
  const bool ta = p.op0 == MatrixOp::kTranspose, tb = p.op1 == MatrixOp::kTranspose;
  const int64_t K = ta ? ad[ad.size() - 2] : ad[ad.size() - 1];
  // Strides of A and B broadcast to the output's batch dims, and of their matrix dims.
  Dims batch(od.begin(), od.end() - 2);
  Dims abatch(ad.begin(), ad.end() - 2), bbatch(bd.begin(), bd.end() - 2);
  const Strides as = broadcast_strides(abatch, batch), bs = broadcast_strides(bbatch, batch);
  const int64_t a_mat = ad[ad.size() - 2] * ad[ad.size() - 1], b_mat = bd[bd.size() - 2] * bd[bd.size() - 1];
  const int64_t a_rows = ad[ad.size() - 1], b_rows = bd[bd.size() - 1];  // row lengths as stored
  // op0(A)[m, k] = A[m * sa_m + k * sa_k]; op1(B)[k, n] = B[k * sb_k + n * sb_n].
  const int64_t sa_m = ta ? 1 : a_rows, sa_k = ta ? a_rows : 1;
  const int64_t sb_k = tb ? 1 : b_rows, sb_n = tb ? b_rows : 1;
  const int64_t batches = volume(batch);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* A = static_cast<const float*>(in[0]);
    const float* B = static_cast<const float*>(in[1]);
    float* C = static_cast<float*>(out[0]);
#pragma omp parallel for schedule(static)
    for (int64_t bi = 0; bi < batches; ++bi) {
      int64_t a_off = 0, b_off = 0, rest = bi;  // batch index -> operand offsets (row-major)
      for (size_t d = batch.size(); d-- > 0;) {
        const int64_t pos = rest % batch[d];
        rest /= batch[d];
        a_off += pos * as[d];
        b_off += pos * bs[d];
      }
      const float* pa = A + a_off * a_mat;
      const float* pb = B + b_off * b_mat;
      float* pc = C + bi * M * N;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += double(pa[m * sa_m + k * sa_k]) * double(pb[k * sb_k + n * sb_n]);
          pc[m * N + n] = float(acc);
        }
    }
  };
}

int64_t load_index(const void* p, DataType t, int64_t i) {
  if (t == DataType::kInt64) return static_cast<const int64_t*>(p)[i];
  if (t == DataType::kInt32) return static_cast<const int32_t*>(p)[i];
  return int64_t(load_as_double(p, t, i));
}

Kernel make_gather(const Network& net, const Layer& l) {
  int axis = l.as<GatherParams>().axis;
  const Tensor& td = net.tensors[l.inputs[0]];
  const Tensor& ti = net.tensors[l.inputs[1]];
  if (axis < 0) axis += int(td.dims.size());
  size_t es = element_size(td.type);
  int64_t outer = 1, inner = 1, n = td.dims[axis];
  for (int i = 0; i < axis; ++i) outer *= td.dims[i];
  for (size_t i = axis + 1; i < td.dims.size(); ++i) inner *= td.dims[i];
  int64_t ni = volume(ti.dims);
  DataType it = ti.type;
  std::string name = l.name;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const uint8_t* src = static_cast<const uint8_t*>(in[0]);
    uint8_t* dst = static_cast<uint8_t*>(out[0]);
    int64_t row = inner * int64_t(es);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < ni; ++j) {
        int64_t k = load_index(in[1], it, j);
        if (k < 0) k += n;
        if (k < 0 || k >= n)
          throw Error("layer '" + name + "': gather index " + std::to_string(k) +
                      " out of range [0, " + std::to_string(n) + ")");
        std::memcpy(dst + (o * ni + j) * row, src + (o * n + k) * row, row);
      }
  };
}

Kernel make_select(const Network& net, const Layer& l) {
  const Tensor& tc = net.tensors[l.inputs[0]];
  const Tensor& ta = net.tensors[l.inputs[1]];
  const Tensor& tb = net.tensors[l.inputs[2]];
  const Tensor& to = net.tensors[l.outputs[0]];
  Strides sc = broadcast_strides(tc.dims, to.dims), sa = broadcast_strides(ta.dims, to.dims),
          sb = broadcast_strides(tb.dims, to.dims);
  Walk w(to.dims, {dense_strides(to.dims), sc, sa, sb});
  size_t es = element_size(to.type);
  DataType ct = tc.type;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    uint8_t* dst = static_cast<uint8_t*>(out[0]);
    const uint8_t* a = static_cast<const uint8_t*>(in[1]);
    const uint8_t* b = static_cast<const uint8_t*>(in[2]);
    int64_t rows = w.rows(), n = w.inner();
    for (int64_t r = 0; r < rows; ++r) {
      int64_t oo = w.row_offset(0, r), oc = w.row_offset(1, r), oa = w.row_offset(2, r),
              ob = w.row_offset(3, r);
      for (int64_t i = 0; i < n; ++i) {
        bool c = load_as_double(in[0], ct, oc + i * w.inner_stride(1)) != 0;
        const uint8_t* s = c ? a + (oa + i * w.inner_stride(2)) * es : b + (ob + i * w.inner_stride(3)) * es;
        std::memcpy(dst + (oo + i) * es, s, es);
      }
    }
  };
}

Kernel make_cast(const Network& net, const Layer& l) {
  const Tensor& ti = net.tensors[l.inputs[0]];
  const Tensor& to = net.tensors[l.outputs[0]];
  int64_t n = volume(ti.dims);
  DataType it = ti.type, ot = to.type;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    if (it == ot) {
      std::memcpy(out[0], in[0], size_t(n) * element_size(it));
      return;
    }
    if (it == DataType::kInt64 && ot == DataType::kInt32) {
      for (int64_t i = 0; i < n; ++i)
        static_cast<int32_t*>(out[0])[i] = int32_t(static_cast<const int64_t*>(in[0])[i]);
      return;
    }
    for (int64_t i = 0; i < n; ++i) {
      double v = load_as_double(in[0], it, i);
      if (ot == DataType::kBool) v = v != 0;
      store_from_double(out[0], ot, i, v);
    }
  };
}

Kernel make_prelu(const Network& net, const Layer& l) {
  const Tensor& tx = net.tensors[l.inputs[0]];
  const Tensor& ts = net.tensors[l.inputs[1]];
  Walk w(tx.dims, {dense_strides(tx.dims), dense_strides(tx.dims), broadcast_strides(ts.dims, tx.dims)});
  return [w](const std::vector<void*>& in, const std::vector<void*>& out) {
    binary_float(w, static_cast<const float*>(in[0]), static_cast<const float*>(in[1]),
                 static_cast<float*>(out[0]), [](float x, float s) { return x >= 0.f ? x : x * s; });
  };
}

Kernel make_lrn(const Network& net, const Layer& l) {
  LRNParams p = l.as<LRNParams>();
  const Tensor& t = net.tensors[l.inputs[0]];
  int64_t N = t.dims[0], C = t.dims[1], inner = volume(t.dims) / (N * C);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    int64_t lo = (p.window - 1) / 2, hi = p.window / 2;  // ONNX: floor((size-1)/2), ceil((size-1)/2)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < inner; ++i) {
          double sq = 0;
          for (int64_t k = std::max<int64_t>(0, c - lo); k <= std::min(C - 1, c + hi); ++k) {
            double v = x[(n * C + k) * inner + i];
            sq += v * v;
          }
          int64_t at = (n * C + c) * inner + i;
          y[at] = float(x[at] / std::pow(p.k + p.alpha / double(p.window) * sq, double(p.beta)));
        }
  };
}

Kernel make_normalization(const Network& net, const Layer& l) {
  const NormalizationParams& p = l.as<NormalizationParams>();
  const Tensor& tx = net.tensors[l.inputs[0]];
  const Tensor& ts = net.tensors[l.inputs[1]];
  const Tensor& tb = net.tensors[l.inputs[2]];
  Dims d = tx.dims;
  int64_t G = p.groups;
  // Group normalization: split the channel axis into [G, C/G] and normalise over C/G too.
  Dims ed;      // expanded dims
  uint32_t ea;  // expanded axes
  if (G > 1) {
    ed = {d[0], G, d[1] / G};
    for (size_t i = 2; i < d.size(); ++i) ed.push_back(d[i]);
    ea = 1u << 2;
    for (size_t i = 2; i < d.size(); ++i)
      if (p.axes & (1u << i)) ea |= 1u << (i + 1);
  } else {
    ed = d;
    ea = p.axes;
  }
  Dims sd = ed;
  for (size_t i = 0; i < sd.size(); ++i)
    if (ea & (1u << i)) sd[i] = 1;
  Strides ss = broadcast_strides(sd, ed);
  Walk w(ed, {dense_strides(ed), ss});
  int64_t n_stats = volume(sd), group = volume(tx.dims) / n_stats;
  // Scale and bias: broadcast to x's dims; per-group parameters (size G != C) map channel c to
  // group c / (C/G).
  auto param_strides = [&](const Tensor& t) {
    if (G > 1 && volume(t.dims) == G && G != d[1]) return Strides{};  // per group, handled below
    return broadcast_strides(t.dims, d);
  };
  Strides pss = param_strides(ts), pbs = param_strides(tb);
  Dims dd = d;
  float eps = p.epsilon;
  int64_t C = d.size() > 1 ? d[1] : 1, total = volume(tx.dims);
  Strides ds = dense_strides(d);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    const float* sc = static_cast<const float*>(in[1]);
    const float* bi = static_cast<const float*>(in[2]);
    float* y = static_cast<float*>(out[0]);
    std::vector<double> mean(n_stats, 0.0), var(n_stats, 0.0);
    int64_t rows = w.rows(), n = w.inner(), so = w.inner_stride(1);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t ii = w.row_offset(0, r), oo = w.row_offset(1, r);
      for (int64_t i = 0; i < n; ++i) mean[oo + i * so] += x[ii + i];
    }
    for (auto& m : mean) m /= double(group);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t ii = w.row_offset(0, r), oo = w.row_offset(1, r);
      for (int64_t i = 0; i < n; ++i) {
        double v = x[ii + i] - mean[oo + i * so];
        var[oo + i * so] += v * v;
      }
    }
    std::vector<float> inv(n_stats);
    for (int64_t i = 0; i < n_stats; ++i) inv[i] = float(1.0 / std::sqrt(var[i] / double(group) + eps));
    // Second walk writes y: need x's flat index -> stats index and -> param index.
    for (int64_t r = 0; r < rows; ++r) {
      int64_t ii = w.row_offset(0, r), oo = w.row_offset(1, r);
      for (int64_t i = 0; i < n; ++i) {
        int64_t flat = ii + i, st = oo + i * so;
        float v = float((x[flat] - mean[st]) * inv[st]);
        int64_t ps = 0, pb = 0;
        int64_t rem = flat;
        for (size_t k = 0; k < dd.size(); ++k) {
          int64_t idx = rem / ds[k];
          rem -= idx * ds[k];
          if (!pss.empty()) ps += idx * pss[k];
          if (!pbs.empty()) pb += idx * pbs[k];
          if (k == 1 && (pss.empty() || pbs.empty())) {
            int64_t g = idx / (C / G);
            if (pss.empty()) ps = g;
            if (pbs.empty()) pb = g;
          }
        }
        y[flat] = v * sc[ps] + bi[pb];
      }
    }
    (void)total;
  };
}

// ---- Resize: separable, one axis at a time -------------------------------------------------
struct Taps {
  std::vector<int64_t> idx;  // n_taps per output index
  std::vector<float> w;
  int n_taps = 1;
};

double cubic_weight(double x, double a) {
  x = std::fabs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

// scale: output/input (the model's scale when given, else the size ratio). ONNX's align_corners
// uses the unrounded resized length in * scale when scales were given.
Taps resize_taps(const ResizeParams& p, int64_t in, int64_t out, double scale) {
  double out_len = p.scales.empty() ? double(out) : double(in) * scale;
  Taps t;
  t.n_taps = p.mode == ResizeMode::kNearest ? 1 : p.mode == ResizeMode::kLinear ? 2 : 4;
  for (int64_t o = 0; o < out; ++o) {
    double x = 0.0;
    switch (p.transform) {
      case ResizeCoordinateTransform::kAlignCorners:
        x = (out == 1 || out_len <= 1.0) ? 0.0 : double(o) * double(in - 1) / (out_len - 1.0);
        break;
      case ResizeCoordinateTransform::kAsymmetric: x = double(o) / scale; break;
      case ResizeCoordinateTransform::kHalfPixel: x = (double(o) + 0.5) / scale - 0.5; break;
    }
    if (out == 1 && p.selector == ResizeSelector::kUpper) x = 0.0;
    if (p.mode == ResizeMode::kNearest) {
      double r = x;
      switch (p.rounding) {
        case ResizeRounding::kHalfUp: r = std::floor(x + 0.5); break;
        case ResizeRounding::kHalfDown: r = std::ceil(x - 0.5); break;
        case ResizeRounding::kFloor: r = std::floor(x); break;
        case ResizeRounding::kCeil: r = std::ceil(x); break;
      }
      t.idx.push_back(std::clamp<int64_t>(int64_t(r), 0, in - 1));
      t.w.push_back(1.f);
    } else if (p.mode == ResizeMode::kLinear) {
      x = std::clamp(x, 0.0, double(in - 1));
      int64_t x0 = int64_t(std::floor(x));
      int64_t x1 = std::min(x0 + 1, in - 1);
      double f = x - double(x0);
      t.idx.push_back(x0);
      t.idx.push_back(x1);
      t.w.push_back(float(1 - f));
      t.w.push_back(float(f));
    } else {
      int64_t x0 = int64_t(std::floor(x));
      double f = x - double(x0);
      for (int k = -1; k <= 2; ++k) {
        t.idx.push_back(std::clamp<int64_t>(x0 + k, 0, in - 1));
        t.w.push_back(float(cubic_weight(double(k) - f, p.cubic_coeff)));
      }
    }
  }
  return t;
}

// Nearest: every output element is one input element, so all axes compose into one gather
// (out[i0, .., ik] = in[idx0[i0], .., idxk[ik]]): rows of the last axis at once, no passes.
// rounds (float tensors only): the output's roundings, each row right after its gather.
Kernel make_resize_nearest(const ResizeParams& p, const Dims& in_dims, const Dims& out_dims,
                           const std::vector<ChainLink>& rounds = {}) {
  const size_t rank = in_dims.size();
  std::vector<std::vector<int64_t>> idx(rank);
  for (size_t a = 0; a < rank; ++a) {
    double scale = p.scales.empty() ? double(out_dims[a]) / double(in_dims[a]) : double(p.scales[a]);
    if (in_dims[a] == out_dims[a] && scale == 1.0) {
      for (int64_t i = 0; i < out_dims[a]; ++i) idx[a].push_back(i);
    } else {
      idx[a] = resize_taps(p, in_dims[a], out_dims[a], scale).idx;
    }
  }
  const Strides in_strides = dense_strides(in_dims);
  const int64_t inner = out_dims.back(), rows = volume(out_dims) / std::max<int64_t>(inner, 1);
  // The last axis unscaled (channels-last: one pixel's channels): each row is one copy.
  bool last_identity = in_dims.back() == inner;
  for (int64_t i = 0; i < inner && last_identity; ++i) last_identity = idx[rank - 1][size_t(i)] == i;
  // Rows with an output rounding go in groups of about kRoundBlock floats, rounded together.
  const int64_t group = rounds.empty() ? 1 : rows_per_round_block(inner), items = (rows + group - 1) / group;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const uint32_t* x = static_cast<const uint32_t*>(in[0]);  // 4-byte elements, copied as bits
    uint32_t* y = static_cast<uint32_t*>(out[0]);
    const std::vector<int64_t>& last = idx[rank - 1];
    parallel_for(items, rows * inner > 65536, [&](int64_t item) {
      const int64_t r0 = item * group, r1 = std::min(rows, r0 + group);
      for (int64_t r = r0; r < r1; ++r) {
        int64_t rem = r, src = 0;
        for (int a = int(rank) - 2; a >= 0; --a) {
          src += idx[size_t(a)][size_t(rem % out_dims[size_t(a)])] * in_strides[size_t(a)];
          rem /= out_dims[size_t(a)];
        }
        const uint32_t* px = x + src;
        uint32_t* py = y + r * inner;
        if (last_identity) std::memcpy(py, px, size_t(inner) * sizeof(uint32_t));
        else for (int64_t i = 0; i < inner; ++i) py[i] = px[last[size_t(i)]];
      }
      if (!rounds.empty()) round_block(rounds, reinterpret_cast<float*>(y + r0 * inner), (r1 - r0) * inner);
    });
  };
}

Kernel make_resize(const Network& net, const Layer& l) {
  const ResizeParams& p = l.as<ResizeParams>();
  const Tensor& ti = net.tensors[l.inputs[0]];
  const Tensor& to = net.tensors[l.outputs[0]];
  if (p.mode == ResizeMode::kNearest && element_size(ti.type) == 4 && !ti.dims.empty() && volume(to.dims) > 0)
    return make_resize_nearest(p, ti.dims, to.dims);
  struct Pass { int axis; Taps taps; Dims in_dims; Dims out_dims; };
  std::vector<Pass> passes;
  Dims cur = ti.dims;
  for (size_t a = 0; a < ti.dims.size(); ++a) {
    double scale = p.scales.empty() ? double(to.dims[a]) / double(ti.dims[a]) : double(p.scales[a]);
    if (ti.dims[a] == to.dims[a] && scale == 1.0) continue;
    Pass ps;
    ps.axis = int(a);
    ps.taps = resize_taps(p, ti.dims[a], to.dims[a], scale);
    ps.in_dims = cur;
    cur[a] = to.dims[a];
    ps.out_dims = cur;
    passes.push_back(std::move(ps));
  }
  size_t es = element_size(ti.type);
  int64_t total = volume(ti.dims);
  int64_t biggest = 0;
  for (const auto& ps : passes) biggest = std::max(biggest, volume(ps.out_dims));
  auto s0 = std::make_shared<std::vector<float>>(passes.size() > 1 ? biggest : 0);
  auto s1 = std::make_shared<std::vector<float>>(passes.size() > 2 ? biggest : 0);
  bool is_float = ti.type == DataType::kFloat;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    if (passes.empty()) {
      std::memcpy(out[0], in[0], size_t(total) * es);
      return;
    }
    (void)is_float;
    const float* src = static_cast<const float*>(in[0]);
    for (size_t k = 0; k < passes.size(); ++k) {
      const Pass& ps = passes[k];
      float* dst = k + 1 == passes.size() ? static_cast<float*>(out[0])
                                          : (k % 2 == 0 ? s0->data() : s1->data());
      int64_t outer = 1, inner = 1;
      for (int i = 0; i < ps.axis; ++i) outer *= ps.in_dims[i];
      for (size_t i = ps.axis + 1; i < ps.in_dims.size(); ++i) inner *= ps.in_dims[i];
      int64_t n_in = ps.in_dims[ps.axis], n_out = ps.out_dims[ps.axis];
      int nt = ps.taps.n_taps;
      parallel_for(outer * n_out, outer * n_out * inner > 32768, [&](int64_t oj) {
        const int64_t o = oj / n_out, j = oj % n_out;
        float* py = dst + oj * inner;
        const float* px = src + o * n_in * inner;
        if (nt == 1) {
          std::memcpy(py, px + ps.taps.idx[j] * inner, inner * sizeof(float));
          return;
        }
        for (int64_t i = 0; i < inner; ++i) py[i] = 0.f;
        for (int t = 0; t < nt; ++t) {
          const float* q = px + ps.taps.idx[j * nt + t] * inner;
          float wt = ps.taps.w[j * nt + t];
          for (int64_t i = 0; i < inner; ++i) py[i] += wt * q[i];
        }
      });
      src = dst;
    }
  };
}

}  // namespace

double load_as_double(const void* p, DataType t, int64_t i) {
  switch (t) {
    case DataType::kFloat: return static_cast<const float*>(p)[i];
    case DataType::kHalf: return half_to_float(static_cast<const uint16_t*>(p)[i]);
    case DataType::kInt8: return static_cast<const int8_t*>(p)[i];
    case DataType::kUInt8: return static_cast<const uint8_t*>(p)[i];
    case DataType::kInt32: return static_cast<const int32_t*>(p)[i];
    case DataType::kInt64: return double(static_cast<const int64_t*>(p)[i]);
    case DataType::kBool: return static_cast<const uint8_t*>(p)[i] != 0;
    case DataType::kBFloat16: return bfloat16_to_float(static_cast<const uint16_t*>(p)[i]);
  }
  return 0;
}

void store_from_double(void* p, DataType t, int64_t i, double v) {
  switch (t) {
    case DataType::kFloat: static_cast<float*>(p)[i] = float(v); return;
    case DataType::kHalf: static_cast<uint16_t*>(p)[i] = float_to_half(float(v)); return;
    case DataType::kInt8: static_cast<int8_t*>(p)[i] = int8_t(int64_t(v)); return;
    case DataType::kUInt8: static_cast<uint8_t*>(p)[i] = uint8_t(int64_t(v)); return;
    case DataType::kInt32: static_cast<int32_t*>(p)[i] = int32_t(int64_t(v)); return;
    case DataType::kInt64: static_cast<int64_t*>(p)[i] = int64_t(v); return;
    case DataType::kBool: static_cast<uint8_t*>(p)[i] = v != 0; return;
    case DataType::kBFloat16: static_cast<uint16_t*>(p)[i] = float_to_bfloat16(float(v)); return;
  }
}

float apply_activation(const ActivationParams& a, float x) { return ops::activation(a.type, x, a.alpha, a.beta); }

void set_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

Kernel make_scale_rounding(const Network& net, const Layer& l, const std::vector<Weights>& weights,
                           const std::vector<ChainLink>& rounds) {
  // A channels-last per-channel Scale (the channel axis last, no power): y = x * scale[c] + shift[c]
  // as a fused run's input x * alpha + bias with the channels' factors repeated, then the roundings.
  const ScaleParams& p = l.as<ScaleParams>();
  const Tensor& t = net.tensors[l.inputs[0]];
  if (p.mode != ScaleMode::kChannel || p.power >= 0 || p.channel_axis != int(t.dims.size()) - 1 || t.dims.empty() ||
      cpu_vectors() == CpuVectors::kNone)
    return {};
  auto ops = std::make_shared<std::vector<fused::Op>>();
  if (rounds.size() >= 8 || !links_to_fused(rounds, *ops)) return {};
  const int64_t C = t.dims.back(), n = volume(t.dims), period = std::lcm(C, int64_t(128));
  if (C < 1 || period > 1024) return {};
  auto factors = std::make_shared<std::vector<float>>(size_t(2 * period));
  for (int64_t i = 0; i < period; ++i) {
    auto at = [&](WeightsId id, float dflt) {
      if (id < 0) return dflt;
      const Weights& w = weights[size_t(id)];
      return float(w.at(w.count() == 1 ? 0 : i % C));
    };
    (*factors)[size_t(i)] = at(p.scale, 1.f), (*factors)[size_t(period + i)] = at(p.shift, 0.f);
  }
  const int64_t rows = n / C, rows_per_item = std::max<int64_t>(1, 16384 / C), items = (rows + rows_per_item - 1) / rows_per_item;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    parallel_for(items, n > 32768, [&](int64_t item) {
      const int64_t r0 = item * rows_per_item, m = (std::min(rows, r0 + rows_per_item) - r0) * C;
      fused::Run r{ops->data(), int(ops->size()), nullptr, nullptr, y + r0 * C, nullptr, m};
      r.sums_f32 = x + r0 * C, r.alpha = factors->data(), r.bias = factors->data() + period, r.period = period;
      run_fused(r);
    });
  };
}

Kernel make_ref_kernel_rounding(const Network& net, const Layer& l, const std::vector<ChainLink>& rounds) {
  const Tensor& to = net.tensors[l.outputs[0]];
  bool all_float = to.type == DataType::kFloat && !rounds.empty();
  for (TensorId t : l.inputs) all_float = all_float && net.tensors[t].type == DataType::kFloat;
  if (!all_float) return {};
  if (l.kind == LayerKind::kElementWise) return make_elementwise(net, l, rounds);
  if (l.kind == LayerKind::kConcatenation) return make_concat_rounding(net, l, rounds);
  const Tensor& ti = net.tensors[l.inputs[0]];
  if (l.kind == LayerKind::kResize && l.as<ResizeParams>().mode == ResizeMode::kNearest && !ti.dims.empty() &&
      volume(to.dims) > 0)
    return make_resize_nearest(l.as<ResizeParams>(), ti.dims, to.dims, rounds);
  return {};
}

Kernel make_ref_kernel(const Network& net, const Layer& l, const std::vector<Weights>& weights) {
  switch (l.kind) {
    case LayerKind::kActivation: return make_activation(net, l);
    case LayerKind::kElementWise: return make_elementwise(net, l);
    case LayerKind::kScale: return make_scale(net, l, weights);
    case LayerKind::kConcatenation: return make_concat(net, l);
    case LayerKind::kResize: return make_resize(net, l);
    case LayerKind::kShuffle: return make_shuffle(net, l);
    case LayerKind::kSlice: return make_slice(net, l);
    case LayerKind::kSoftMax: return make_softmax(net, l);
    case LayerKind::kReduce: return make_reduce(net, l);
    case LayerKind::kUnary: return make_unary(net, l);
    case LayerKind::kParametricReLU: return make_prelu(net, l);
    case LayerKind::kLRN: return make_lrn(net, l);
    case LayerKind::kGather:
      if (l.as<GatherParams>().mode != GatherMode::kDefault) return make_gather_mode_kernel(net, l);
      return make_gather(net, l);
    case LayerKind::kScatter: case LayerKind::kTopK: case LayerKind::kEinsum:
    case LayerKind::kGridSample: case LayerKind::kRoiAlign: return make_index_kernel(net, l);
    case LayerKind::kNonZero: case LayerKind::kNMS: return make_dynamic_kernel(net, l);
    case LayerKind::kCast: return make_cast(net, l);
    case LayerKind::kNormalization: return make_normalization(net, l);
    case LayerKind::kSelect: return make_select(net, l);
    case LayerKind::kPooling: return make_pooling(net, l);
    case LayerKind::kIdentity: {
      const Tensor& ti = net.tensors[l.inputs[0]];
      const Tensor& to = net.tensors[l.outputs[0]];
      if (ti.type != to.type) return make_cast(net, l);
      size_t bytes = size_t(volume(ti.dims)) * element_size(ti.type);
      return [bytes](const std::vector<void*>& in, const std::vector<void*>& out) {
        if (in[0] != out[0]) std::memcpy(out[0], in[0], bytes);
      };
    }
    case LayerKind::kConstant: {
      const Weights& w = weights[l.as<ConstantParams>().weights];
      const Tensor& to = net.tensors[l.outputs[0]];
      std::vector<uint8_t> bytes = w.bytes.to_vector();
      if (w.type != to.type) {  // e.g. an int64 initializer feeding an int32 tensor
        bytes.assign(size_t(volume(to.dims)) * element_size(to.type), 0);
        for (int64_t i = 0; i < volume(to.dims); ++i) store_from_double(bytes.data(), to.type, i, w.at(i));
      }
      auto data = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
      return [data](const std::vector<void*>&, const std::vector<void*>& out) {
        if (!data->empty()) std::memcpy(out[0], data->data(), data->size());  // empty: no bytes (maybe no pointer)
      };
    }
    case LayerKind::kConvolution: return make_convolution(net, l, weights);
    case LayerKind::kDeconvolution: return make_deconvolution(net, l, weights);
    case LayerKind::kMatrixMultiply: return make_matrix_multiply(net, l);
  }
  throw Error("layer '" + l.name + "': no reference kernel for " + std::string(to_string(l.kind)));
}

}  // namespace tandem::cpu
