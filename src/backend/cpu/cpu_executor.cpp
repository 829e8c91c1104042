// The CPU executor: compile (support check, numerics check, fusion, arena plan, kernels), run.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>

#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include "kernels.h"
#include "tandem/broadcast.h"
#include "tandem/lower.h"
#include "tandem/numerics.h"
#include "tandem/op_semantics.h"
#include "tandem/runtime.h"

namespace tandem {

namespace {

using cpu::Kernel;

bool is_float_kind(LayerKind k) {
  switch (k) {
    case LayerKind::kConvolution: case LayerKind::kDeconvolution: case LayerKind::kPooling:
    case LayerKind::kActivation: case LayerKind::kScale: case LayerKind::kSoftMax:
    case LayerKind::kMatrixMultiply: case LayerKind::kLRN: case LayerKind::kNormalization:
    case LayerKind::kParametricReLU: case LayerKind::kResize: case LayerKind::kEinsum:
    case LayerKind::kGridSample:
      return true;
    case LayerKind::kElementWise: case LayerKind::kConcatenation: case LayerKind::kShuffle:
    case LayerKind::kSlice: case LayerKind::kReduce: case LayerKind::kUnary: case LayerKind::kConstant:
    case LayerKind::kGather: case LayerKind::kIdentity: case LayerKind::kCast: case LayerKind::kSelect:
    case LayerKind::kScatter: case LayerKind::kTopK: case LayerKind::kRoiAlign:  // int batch indices
    case LayerKind::kNonZero: case LayerKind::kNMS:  // int64 outputs
      return false;
  }
  return false;
}

std::string layer_desc(const Layer& l) {
  return "layer '" + l.name + "' (" + std::string(to_string(l.kind)) + ")";
}

std::vector<float> weights_f32(const Network& net, WeightsId id) {
  if (id < 0) return {};
  const Weights& w = net.weights[id];
  std::vector<float> v(w.count());
  for (int64_t i = 0; i < w.count(); ++i) v[i] = float(w.at(i));
  return v;
}

// Convolution weights as the layer's numerics ask: INT8 per output channel (and the bias on the
// accumulator's grid), FP16 rounded.
void round_conv_weights(const Network& net, const Numerics& num, LayerId id, cpu::ConvSpec& s) {
  const Layer& l = net.layers[size_t(id)];
  const auto& p = l.as<ConvolutionParams>();
  const Precision prec = size_t(id) < num.layer_precision.size() ? num.layer_precision[size_t(id)] : Precision::kUnset;
  const int64_t K = s.out_dims[1];
  if (prec == Precision::kINT8) {
    // Symmetric per output channel (tandem/numerics.h); the bias joins the INT32 accumulator.
    int64_t inner = 1;
    for (int64_t k : p.kernel) inner *= k;
    std::vector<float> w_scales;
    if (l.kind == LayerKind::kConvolution) {
      w_scales = fake_quant_int8_weights(s.kernel.data(), ChannelLayout{1, K, int64_t(s.kernel.size()) / K});
    } else {  // [C, K/g, k...]: group gi holds [C/g, K/g, k...]; output channel gi * K/g + j
      const int64_t g = p.groups, C = s.in_dims[1], kg = K / g;
      for (int64_t gi = 0; gi < g; ++gi) {
        std::vector<float> sg = fake_quant_int8_weights(s.kernel.data() + gi * (C / g) * kg * inner,
                                                        ChannelLayout{C / g, kg, inner});
        w_scales.insert(w_scales.end(), sg.begin(), sg.end());
      }
    }
    const std::string& in_name = net.tensors[size_t(l.inputs[0])].name;
    if (!num.unquantized.count(in_name)) {
      const float in_scale = num.tensor_scales.at(in_name);
      for (size_t k = 0; k < s.bias.size() && k < w_scales.size(); ++k)
        s.bias[k] = fake_quant_int32_bias(s.bias[k], in_scale, w_scales[k]);
    }
  } else if (prec == Precision::kFP16) {
    for (float& v : s.kernel) v = round_to_fp16(v);
    for (float& v : s.bias) v = round_to_fp16(v);
  }
}

// A Scale epilogue folded into the weights: W'[k] = W[k] * a[k], b'[k] = b[k] * a[k] + shift[k].
void fold_scale(const Network& net, const Layer& conv, const Layer& scale, cpu::ConvSpec& s) {
  const auto& p = conv.as<ConvolutionParams>();
  const auto& sp = scale.as<ScaleParams>();
  const int64_t K = s.out_dims[1];
  std::vector<float> sc = weights_f32(net, sp.scale), sh = weights_f32(net, sp.shift);
  auto factor = [&](int64_t k) { return sc.empty() ? 1.f : sc[sc.size() == 1 ? 0 : size_t(k)]; };
  auto shift = [&](int64_t k) { return sh.empty() ? 0.f : sh[sh.size() == 1 ? 0 : size_t(k)]; };
  if (s.bias.empty()) s.bias.assign(size_t(K), 0.f);
  if (conv.kind == LayerKind::kConvolution) {
    const int64_t per = int64_t(s.kernel.size()) / K;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < per; ++i) s.kernel[size_t(k * per + i)] *= factor(k);
  } else {
    int64_t g = p.groups, kg = K / g, inner = 1;
    for (int64_t k : p.kernel) inner *= k;
    const int64_t C = s.in_dims[1];
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < kg; ++j) {
        const float a = factor((c / (C / g)) * kg + j);
        for (int64_t i = 0; i < inner; ++i) s.kernel[size_t((c * kg + j) * inner + i)] *= a;
      }
  }
  for (int64_t k = 0; k < K; ++k) s.bias[size_t(k)] = s.bias[size_t(k)] * factor(k) + shift(k);
}

// One link of a point-wise chain as the CPU kernels take it.
cpu::ChainLink chain_link(const Network& net, const Epilogue& e) {
  const Layer& l = net.layers[size_t(e.layers[0])];
  cpu::ChainLink k;
  switch (e.kind) {
    case EpilogueKind::kActivation:
      k.kind = cpu::ChainLink::kActivation;
      k.act = l.as<ActivationParams>();
      return k;
    case EpilogueKind::kElementWise:
      break;
    case EpilogueKind::kScale: case EpilogueKind::kHardSwish:
      throw Error(layer_desc(l) + ": not a point-wise chain link (internal)");
  }
  k.op = l.as<ElementWiseParams>().op;
  k.scalar = e.scalar;
  switch (e.operand) {
    case EpilogueOperand::kScalarRight: k.kind = cpu::ChainLink::kScalarRight; return k;
    case EpilogueOperand::kScalarLeft: k.kind = cpu::ChainLink::kScalarLeft; return k;
    case EpilogueOperand::kChainInputRight: k.kind = cpu::ChainLink::kChainInputRight; return k;
    case EpilogueOperand::kChainInputLeft: k.kind = cpu::ChainLink::kChainInputLeft; return k;
    case EpilogueOperand::kNone: break;
  }
  throw Error(layer_desc(l) + ": element-wise chain link without an operand (internal)");
}

// An emulated step's output rounding as the last link of its chain.
cpu::ChainLink round_link(const ExecStep& round) {
  cpu::ChainLink k;
  k.kind = round.rounding == Rounding::kFp16 ? cpu::ChainLink::kRoundFp16 : cpu::ChainLink::kRoundInt8;
  k.scalar = round.scale;
  return k;
}

// Whether `round` rounds the one output of `producer` in place, per element (FP16, INT8 per
// tensor): then the producer's own step applies it (a chain's last link, or right after its
// kernel) instead of a step of its own. The same values, one dispatch and pass fewer.
bool round_joins_producer(const ExecGraph& g, const ExecStep& producer, const ExecStep& round) {
  if (round.kind != StepKind::kRound || producer.kind == StepKind::kRound || producer.outputs.size() != 1) return false;
  const ValueId v = round.inputs[0];
  return round.outputs[0] == v && producer.outputs[0] == v && round.rounding != Rounding::kInt8PerChannel &&
         g.values[size_t(v)].type == DataType::kFloat && g.values[size_t(v)].storage == DataType::kFloat;
}

// TANDEM_CPU_ROUND_STEPS=separate: every kRound step runs as a step of its own (tests compare
// both ways bit for bit).
bool separate_round_steps() {
  const char* env = std::getenv("TANDEM_CPU_ROUND_STEPS");
  return env && std::string(env) == "separate";
}

// TANDEM_CPU_CHAIN_MERGE=off: point-wise chain steps that follow one another run as steps of
// their own (tests compare both ways bit for bit).
bool merge_chain_steps() {
  const char* env = std::getenv("TANDEM_CPU_CHAIN_MERGE");
  return !(env && std::string(env) == "off");
}

// The in-place roundings of steps[i]'s output that steps[i]'s own step applies: the kRound steps
// right after it that join it (a value crossing FP16 and INT8 layers is rounded twice in a row:
// both run in the producer's pass, in order).
using Rounds = std::vector<const ExecStep*>;
Rounds joined_rounds(const ExecGraph& g, size_t i, bool separate) {
  Rounds r;
  while (!separate && i + 1 + r.size() < g.steps.size() && round_joins_producer(g, g.steps[i], g.steps[i + 1 + r.size()]))
    r.push_back(&g.steps[i + 1 + r.size()]);
  return r;
}

// Where a convolution step's epilogue turns from oneDNN post-ops into a point-wise chain
// (epilogue size: no chain). lower() sets chain_input_at when it absorbed a chain after the
// convolution's own epilogue; 0 is also "no chain". A chain with element-wise links starts at
// chain_input_at, or earlier where the entries before it are element-wise links of a first chain
// (LowerPolicy::conv_chain_capture: the chain then captures its input at chain_input_at); a
// chain of activations alone may split anywhere (no link reads the chain input): as many
// post-ops as oneDNN computes exactly, the rest in the chain.
size_t chain_start(const Network& net, const ExecStep& st) {
  const size_t limit = st.chain_input_at > 0 ? size_t(st.chain_input_at) : st.epilogue.size();
  if (st.chain_input_at == 0)
    for (const Epilogue& e : st.epilogue)
      if (e.kind == EpilogueKind::kElementWise) return 0;
  std::vector<cpu::PostOp> ops;
  for (size_t i = 0; i < limit; ++i) {
    const Epilogue& e = st.epilogue[i];
    cpu::PostOp op{cpu::PostOp::kHardSwish, {}};
    switch (e.kind) {
      case EpilogueKind::kScale: continue;
      case EpilogueKind::kHardSwish: break;
      case EpilogueKind::kActivation:
        op = {cpu::PostOp::kActivation, net.layers[size_t(e.layers[0])].as<ActivationParams>()};
        break;
      case EpilogueKind::kElementWise: return i;
    }
    if (!cpu::dnnl_can_append_post_op(ops, op)) return i;
    ops.push_back(op);
  }
  return limit;
}

// How an FP32 convolution step's epilogue runs: entries [0, chain_at) as folded Scales
// (`scales`: their indices) and oneDNN post-ops (`post_ops`, in order), the rest as a point-wise
// chain after the convolution (kernels_chain.cpp; capturing its input at chain_input_at when it
// starts before it).
struct EpilogueSplit {
  size_t chain_at = 0;
  std::vector<cpu::PostOp> post_ops;
  std::vector<size_t> scales;
};

bool reads_chain_input(const Epilogue& e) {
  return e.operand == EpilogueOperand::kChainInputLeft || e.operand == EpilogueOperand::kChainInputRight;
}
// Whether e is `v op c` (or `c op v` for a commutative op) with the scalar c.
bool scalar_link(const Network& net, const Epilogue& e, ElementWiseOp op, float c) {
  if (e.kind != EpilogueKind::kElementWise || net.layers[size_t(e.layers[0])].as<ElementWiseParams>().op != op)
    return false;
  const bool commutes = op == ElementWiseOp::kSum || op == ElementWiseOp::kProd;
  return (e.operand == EpilogueOperand::kScalarRight || (commutes && e.operand == EpilogueOperand::kScalarLeft)) &&
         std::fabs(e.scalar - c) <= 1e-6f * std::fabs(c);
}
bool activation_link(const Network& net, const Epilogue& e, ActivationType t, float alpha, float beta) {
  if (e.kind != EpilogueKind::kActivation) return false;
  const auto& a = net.layers[size_t(e.layers[0])].as<ActivationParams>();
  return a.type == t && std::fabs(a.alpha - alpha) <= 1e-6f && std::fabs(a.beta - beta) <= 1e-6f;
}

// Hard-swish written out, starting at epilogue[i] whose input t is the chain input: PP-OCR's
// t * clip(t + 3, 0, 6) / 6 (the product and the division in either order, / 6 or * (1/6)), or
// HardSigmoid(t; 1/6, 1/2) * t. Returns how many entries it spans (0: none). It then runs as
// oneDNN's hardswish post-op: the same function, rounded differently (a last-bit difference on
// some values; docs/cpu-backend.md).
size_t hard_swish_span(const Network& net, const std::vector<Epilogue>& epi, size_t i) {
  const auto times_input = [&](size_t k) {
    return k < epi.size() && epi[k].kind == EpilogueKind::kElementWise &&
           net.layers[size_t(epi[k].layers[0])].as<ElementWiseParams>().op == ElementWiseOp::kProd &&
           reads_chain_input(epi[k]);
  };
  const auto sixth = [&](size_t k) {
    return k < epi.size() && (scalar_link(net, epi[k], ElementWiseOp::kDiv, 6.f) ||
                              scalar_link(net, epi[k], ElementWiseOp::kProd, 1.f / 6.f));
  };
  if (i < epi.size() && activation_link(net, epi[i], ActivationType::kHardSigmoid, 1.f / 6.f, 0.5f) && times_input(i + 1))
    return 2;
  if (i + 1 < epi.size() && scalar_link(net, epi[i], ElementWiseOp::kSum, 3.f) &&
      activation_link(net, epi[i + 1], ActivationType::kClip, 0.f, 6.f) &&
      ((times_input(i + 2) && sixth(i + 3)) || (sixth(i + 2) && times_input(i + 3))))
    return 4;
  return 0;
}

// TANDEM_CPU_HARDSWISH=chain: written-out hard-swish stays in the chain (the layers' own
// rounding, for comparisons); default: oneDNN's hardswish post-op.
bool hard_swish_post_op() {
  const char* env = std::getenv("TANDEM_CPU_HARDSWISH");
  return !(env && std::string(env) == "chain");
}

// FP32 convolutions: as many entries as oneDNN computes as post-ops (activations, hard-swish
// written out, scalar Sum/Prod/Sub/Div as binary post-ops), the rest in the chain. Post-ops end
// at chain_input_at when a later chain link reads the chain input.
EpilogueSplit fp32_epilogue_split(const Network& net, const ExecStep& st) {
  const auto& epi = st.epilogue;
  const size_t x0_at = size_t(st.chain_input_at);
  for (size_t limit : {epi.size(), x0_at}) {
    EpilogueSplit sp;
    size_t i = 0;
    while (i < limit) {
      const Epilogue& e = epi[i];
      if (e.kind == EpilogueKind::kScale) {
        sp.scales.push_back(i++);
        continue;
      }
      cpu::PostOp op{cpu::PostOp::kHardSwish, {}};
      size_t span = i == x0_at && hard_swish_post_op() ? hard_swish_span(net, epi, i) : 0;
      if (span == 0) {
        span = 1;
        if (e.kind == EpilogueKind::kActivation)
          op = {cpu::PostOp::kActivation, net.layers[size_t(e.layers[0])].as<ActivationParams>()};
        else if (e.kind == EpilogueKind::kElementWise && !reads_chain_input(e) &&
                 (e.operand == EpilogueOperand::kScalarRight || scalar_link(net, e, ElementWiseOp::kSum, e.scalar) ||
                  scalar_link(net, e, ElementWiseOp::kProd, e.scalar)))
          op = {cpu::PostOp::kScalar, {}, net.layers[size_t(e.layers[0])].as<ElementWiseParams>().op, e.scalar};
        else if (e.kind != EpilogueKind::kHardSwish)
          break;
      }
      if (i + span > limit || !cpu::dnnl_can_append_post_op(sp.post_ops, op)) break;
      sp.post_ops.push_back(op);
      i += span;
    }
    sp.chain_at = i;
    bool needs_x0 = false;
    for (size_t k = i; k < epi.size(); ++k) needs_x0 = needs_x0 || reads_chain_input(epi[k]);
    if (!needs_x0 || i <= x0_at) return sp;
  }
  throw Error("convolution epilogue of " + net.layers[size_t(st.layer)].name + ": no split (internal)");
}

// The grid value v lies on when step `at` reads it: the roundings of all of its memory since the
// last other write (a rounded copy, or its producer's output rounded in place) end in a
// per-tensor INT8 rounding, or in one and then an FP16 rounding.
cpu::InputGrid input_grid(const ExecGraph& g, size_t at, ValueId v) {
  const ValueId root = g.root(v);
  if (volume(g.values[size_t(v)].dims) != volume(g.values[size_t(root)].dims)) return {};
  cpu::InputGrid grid;
  for (size_t i = 0; i < at && i < g.steps.size(); ++i)
    for (ValueId o : g.steps[i].outputs) {
      if (g.root(o) != root) continue;
      const ExecStep& s = g.steps[i];
      const bool whole_round =
          s.kind == StepKind::kRound && volume(g.values[size_t(o)].dims) == volume(g.values[size_t(root)].dims);
      if (whole_round && s.rounding == Rounding::kInt8) grid = {s.scale, false};
      else if (whole_round && s.rounding == Rounding::kFp16 && grid.int8_scale > 0.f && !grid.then_fp16) grid.then_fp16 = true;
      else grid = {};
    }
  return grid;
}

// The scale of the per-tensor INT8 grid v lies on when step `at` runs, its last rounding an INT8
// one (so v = q * scale exactly and its codes q come back exactly); 0: on no such grid.
float int8_grid_scale(const ExecGraph& g, size_t at, ValueId v) {
  const cpu::InputGrid grid = input_grid(g, at, v);
  return !grid.then_fp16 && std::isfinite(grid.int8_scale) && grid.int8_scale > 0.f ? grid.int8_scale : 0.f;
}

// Real INT8 (kernels_int8.cpp) for an INT8 2-D convolution or deconvolution whose input lies on
// its tensor's INT8 grid and whose weight codes keep every sum exact (int8_conv_exact,
// int8_deconv_exact): the codes, the input scale and alpha[k] = s_in * s_w[k] (times the factors
// of the Scales folded later). Else nothing (the emulation).
void prepare_real_int8(const Network& net, const Numerics& num, const ExecGraph& g, const ExecStep& st,
                       cpu::ConvSpec& s) {
  const Layer& l = net.layers[size_t(st.layer)];
  const auto& p = l.as<ConvolutionParams>();
  const Precision prec = size_t(st.layer) < num.layer_precision.size() ? num.layer_precision[size_t(st.layer)] : Precision::kUnset;
  const bool deconv = l.kind == LayerKind::kDeconvolution;
  if (prec != Precision::kINT8 || (l.kind != LayerKind::kConvolution && !deconv) || p.kernel.size() != 2 ||
      s.in_dims.size() != 4 || s.out_dims.size() != 4 || cpu::int8_conv_path() == cpu::Int8ConvPath::kEmulate)
    return;
  const std::string& in_name = net.tensors[size_t(l.inputs[0])].name;
  const auto scale_it = num.tensor_scales.find(in_name);
  const float grid = int8_grid_scale(g, size_t(&st - g.steps.data()), st.inputs[0]);
  if (num.unquantized.count(in_name) || scale_it == num.tensor_scales.end() || grid <= 0.f || grid != scale_it->second)
    return;
  const int64_t K = s.out_dims[1], C = s.in_dims[1], groups = std::max<int64_t>(1, p.groups);
  // Per output channel, as round_conv_weights quantizes them: conv [K, inner]; deconv per group
  // [C/g, K/g, taps], output channel gi * K/g + j.
  const int64_t blocks = deconv ? groups : 1, per_block = int64_t(s.kernel.size()) / blocks;
  const int64_t cg = C / groups, kg = K / groups;
  const ChannelLayout wl = deconv ? ChannelLayout{cg, kg, per_block / (cg * kg)} : ChannelLayout{1, K, per_block / K};
  if (wl.count() * blocks != int64_t(s.kernel.size())) return;
  std::vector<float> ws;
  std::vector<int8_t> codes(s.kernel.size());
  for (int64_t b = 0; b < blocks; ++b) {
    const std::vector<float> wb = int8_weight_scales(s.kernel.data() + b * per_block, wl);
    quantize_int8_weights(s.kernel.data() + b * per_block, wl, wb, codes.data() + b * per_block);
    ws.insert(ws.end(), wb.begin(), wb.end());
  }
  if (deconv ? !cpu::int8_deconv_exact(codes, C, K, groups) : !cpu::int8_conv_exact(codes, K)) return;
  s.kernel_codes = std::move(codes);
  s.in_scale = grid;
  s.alpha.resize(size_t(K));
  for (int64_t k = 0; k < K; ++k) s.alpha[size_t(k)] = grid * ws[size_t(k)];
}

// A folded Scale's factor on alpha (the real INT8 path's dequantization scale).
void fold_scale_alpha(const Network& net, const Layer& scale, cpu::ConvSpec& s) {
  if (s.alpha.empty()) return;
  std::vector<float> sc = weights_f32(net, scale.as<ScaleParams>().scale);
  if (sc.empty()) return;
  for (size_t k = 0; k < s.alpha.size(); ++k) s.alpha[k] = s.alpha[k] * sc[sc.size() == 1 ? 0 : k];
}

// The convolution of a lowered step: weights rounded, Scales folded, activations as post-ops.
cpu::ConvSpec conv_spec(const Network& net, const Numerics& num, const ExecGraph& g, const ExecStep& st,
                        std::shared_ptr<cpu::ConvScratch> scratch, int block, const Rounds& rounds) {
  const Layer& l = net.layers[size_t(st.layer)];
  const auto& p = l.as<ConvolutionParams>();
  cpu::ConvSpec s;
  s.layer = &l;
  s.scratch = std::move(scratch);
  s.in_dims = net.tensors[size_t(l.inputs[0])].dims;
  s.out_dims = net.tensors[size_t(l.outputs[0])].dims;
  s.kernel = weights_f32(net, p.kernel_weights);
  s.bias = weights_f32(net, p.bias_weights);
  // INT8: the weights quantized per channel (and the bias onto the accumulator's grid) before a
  // Scale folds into them, as the unfused layers compute (the Scale is FP32 inside an INT8 block);
  // FP16: rounded after folding, as TensorRT's fused FP16 kernel holds the folded weights in half.
  const bool fp16 = st.precision == Precision::kFP16;
  if (!fp16) prepare_real_int8(net, num, g, st, s);
  if (!fp16) round_conv_weights(net, num, st.layer, s);
  if (g.values[size_t(st.inputs[0])].layout != ValueLayout::kLinear) s.src_block = block;
  if (g.values[size_t(st.outputs[0])].layout != ValueLayout::kLinear) s.dst_block = block;
  // Before chain_at: oneDNN post-ops (and the folded Scales); from it on: the chain.
  EpilogueSplit sp;
  // FP32 and emulated FP16: an FP16 block computes in FP32 and rounds once at its output
  // (LowerPolicy::fuse_emulated), so its epilogue runs as the FP32 one does and the rounding
  // stays the chain's last link. INT8 keeps its chain (real INT8 requantizes with tandem's own
  // post-op code, which takes activations and hard-swish).
  if (l.kind == LayerKind::kConvolution && st.precision != Precision::kINT8) {
    sp = fp32_epilogue_split(net, st);
  } else {
    sp.chain_at = chain_start(net, st);
    for (size_t i = 0; i < sp.chain_at; ++i) {
      const Epilogue& e = st.epilogue[i];
      switch (e.kind) {
        case EpilogueKind::kScale: sp.scales.push_back(i); break;
        case EpilogueKind::kActivation:
          sp.post_ops.push_back({cpu::PostOp::kActivation, net.layers[size_t(e.layers[0])].as<ActivationParams>()});
          break;
        case EpilogueKind::kHardSwish: sp.post_ops.push_back({cpu::PostOp::kHardSwish, {}}); break;
        case EpilogueKind::kElementWise:
          throw Error(layer_desc(l) + ": the CPU backend has no element-wise convolution epilogue here");
      }
    }
  }
  const size_t chain_at = sp.chain_at;
  for (size_t i = chain_at; i < st.epilogue.size(); ++i) {
    if (st.chain_input_at > 0 && i == size_t(st.chain_input_at) && i > chain_at) {
      cpu::ChainLink capture;
      capture.kind = cpu::ChainLink::kCaptureInput;
      s.chain.push_back(capture);
    }
    s.chain.push_back(chain_link(net, st.epilogue[i]));
  }
  for (const ExecStep* r : rounds) s.chain.push_back(round_link(*r));
  for (size_t i : sp.scales) {
    fold_scale(net, l, net.layers[size_t(st.epilogue[i].layers[0])], s);
    fold_scale_alpha(net, net.layers[size_t(st.epilogue[i].layers[0])], s);
  }
  s.post_ops = std::move(sp.post_ops);
  if (fp16) round_conv_weights(net, num, st.layer, s);
  return s;
}

}  // namespace

// What the CPU backend fuses: oneDNN convolutions absorb a folded Scale, activations and
// hard-swish as post-ops (as long as the chain computes exactly what the layers compute).
LowerPolicy cpu_lower_policy(const ExecOptions& opt, bool keep_all) {
  LowerPolicy p;
  p.fuse = opt.fuse && !opt.reference_kernels;
  p.keep_all = keep_all;
  p.conv_fold_scale = true;
  p.conv_hard_swish = true;
  p.conv_max_activations = -1;
  p.conv_can_append = [](const Network& net, const std::vector<Epilogue>& chain, const Epilogue& next) {
    auto post_op = [&](const Epilogue& e) {
      return e.kind == EpilogueKind::kHardSwish
                 ? cpu::PostOp{cpu::PostOp::kHardSwish, {}}
                 : cpu::PostOp{cpu::PostOp::kActivation, net.layers[size_t(e.layers[0])].as<ActivationParams>()};
    };
    std::vector<cpu::PostOp> ops;
    for (const Epilogue& e : chain)
      if (e.kind != EpilogueKind::kScale) ops.push_back(post_op(e));
    return cpu::dnnl_can_append_post_op(ops, post_op(next));
  };
  // Point-wise chains (activations, element-wise ops with scalars or the chain input) run in one
  // pass (kernels_chain.cpp), after a convolution's post-ops when they read its output alone.
  p.pointwise_chains = true;
  // A convolution takes a second chain after its first (PP-LCNetV3: * s + b, then hard-swish
  // and * s + b reading that output twice): one pass after the convolution instead of two
  // steps, the same values (the chain captures its input, kernels_chain.cpp).
  p.conv_chain_capture = true;
  p.max_pointwise_ops = 16;
  // Emulated INT8/FP16 layers fuse as TensorRT fuses them (FP32 inside, one rounding at the
  // block's output; INT8 only across unquantized tensors): docs/quantization.md.
  // TANDEM_CPU_EMULATED_FUSION=off: every emulated layer rounds on its own (the numerics before
  // 2026-12-01, for comparisons).
  const char* emulated_fusion = std::getenv("TANDEM_CPU_EMULATED_FUSION");
  p.fuse_emulated = !(emulated_fusion && std::string(emulated_fusion) == "off");
  // A value every reader rounds to one grid is rounded once in place (the same bits, no copy
  // per reader); not while an observer reads the tensors as the layers computed them.
  p.round_in_place = !opt.observe_tensor;
  // INT8 convolutions requantize after the FP16 chain that follows them (TensorRT's fused INT8
  // Conv + activation; docs/quantization.md); TANDEM_CPU_INT8_CHAIN=off: the chain's own step.
  const char* int8_chain = std::getenv("TANDEM_CPU_INT8_CHAIN");
  p.int8_conv_fp16_chain = p.fuse_emulated && !(int8_chain && std::string(int8_chain) == "off");
  // The reference runs every layer's own kernel, views included.
  p.alias_views = !opt.reference_kernels;
  p.alignment = 64;
  return p;
}

namespace {

// Emulated numerics on the host: FP16 rounding, INT8 fake quantization per tensor or (weights
// used as a tensor: FC / MatMul B) symmetric per channel, as TensorRT quantizes the weights of
// fully connected layers; channel c holds the elements whose index satisfies (i / inner) % channels == c.
// A rounded copy goes block by block (copy, then round in L1: one pass, the same bits).
void round_values(const ExecStep& st, const float* x, float* y, int64_t n) {
  if (x != y && st.rounding != Rounding::kInt8PerChannel) return cpu::apply_chain({round_link(st)}, x, y, n);
  if (x != y) std::memcpy(y, x, size_t(n) * sizeof(float));
  switch (st.rounding) {
    case Rounding::kFp16:
      cpu::round_fp16(y, n);
      return;
    case Rounding::kInt8:
      cpu::fake_quant_int8_array(y, n, st.scale);
      return;
    case Rounding::kInt8PerChannel:
      fake_quant_int8_weights(y, ChannelLayout{n / (st.channels * st.inner), st.channels, st.inner});
      return;
  }
}

struct RunStep {
  Kernel kernel;
  std::vector<void*> in, out;
  std::string layer, kind;  // what a profile names it (StepTime)
  bool serial = false;      // runs on one thread (too little work for a parallel region)
  void operator()(int threads) {
    if (serial && threads > 1) omp_set_num_threads(1);
    kernel(in, out);
    if (serial && threads > 1) omp_set_num_threads(threads);
  }
};

// A parallel region costs a wake-up of the other threads: tens of microseconds with
// OMP_WAIT_POLICY=passive, a time slice when the machine is loaded. Steps whose work is below
// these run on one thread (measured on PP-OCR cls/rec/det, 2 threads; docs/cpu-backend.md).
// TANDEM_CPU_PARALLEL_MACS / TANDEM_CPU_PARALLEL_ELEMENTS override them (for measuring).
int64_t parallel_threshold(const char* env, int64_t fallback) {
  const char* v = std::getenv(env);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  return *end || n < 0 ? fallback : n;  // a malformed value is ignored: this is a measuring knob
}
const int64_t kParallelMacs = parallel_threshold("TANDEM_CPU_PARALLEL_MACS", int64_t(16) << 20);  // conv multiply-adds
const int64_t kParallelElements = parallel_threshold("TANDEM_CPU_PARALLEL_ELEMENTS", int64_t(1) << 20);  // elements read + written

bool serial_step(const Network& net, const ExecGraph& g, const ExecStep& st) {
  int64_t elements = 0;
  for (ValueId v : st.inputs) elements += volume(g.values[size_t(v)].dims);
  for (ValueId v : st.outputs) elements += volume(g.values[size_t(v)].dims);
  if (elements >= kParallelElements) return false;  // a cheap convolution's epilogue may still be long
  if (st.kind == StepKind::kLayer) {
    const Layer& l = net.layers[size_t(st.layer)];
    if (l.kind == LayerKind::kConvolution || l.kind == LayerKind::kDeconvolution) {
      const auto& p = l.as<ConvolutionParams>();
      const Dims& in = net.tensors[size_t(l.inputs[0])].dims;
      const Dims& out = net.tensors[size_t(l.outputs[0])].dims;
      const bool deconv = l.kind == LayerKind::kDeconvolution;
      int64_t macs = volume(deconv ? in : out) * ((deconv ? out[1] : in[1]) / std::max<int64_t>(p.groups, 1));
      for (int64_t k : p.kernel) macs *= k;
      return macs < kParallelMacs;
    }
    if (l.kind == LayerKind::kMatrixMultiply) {
      const auto& p = l.as<MatrixMultiplyParams>();
      const Dims& a = net.tensors[size_t(l.inputs[0])].dims;
      const int64_t k = a.empty() ? 1 : (p.op0 == MatrixOp::kTranspose && a.size() >= 2 ? a[a.size() - 2] : a.back());
      return volume(net.tensors[size_t(l.outputs[0])].dims) * k < kParallelMacs;
    }
  }
  return true;
}

// A step's name and kind as a profile lists them: a fused step names every layer it computes.
void label_step(const Network& net, const ExecGraph& graph, const ExecStep& st, RunStep& r) {
  const Layer& l = net.layers[size_t(st.layer)];
  switch (st.kind) {
    case StepKind::kRound:  // "conv1:round(x)": one layer may round several values
      r.layer = l.name + ":round(" + graph.values[size_t(st.inputs[0])].name + ")";
      r.kind = "Round";
      return;
    case StepKind::kPointwiseChain:
    case StepKind::kLayer:
      break;
  }
  r.layer = l.name;
  r.kind = std::string(to_string(l.kind));
  for (const Epilogue& e : st.epilogue)
    for (LayerId id : e.layers) {
      r.layer.append(" + ").append(net.layers[size_t(id)].name);
      r.kind.append("+").append(to_string(net.layers[size_t(id)].kind));
    }
}

using StepClock = std::chrono::steady_clock;
double ms_since(StepClock::time_point t0) {
  return std::chrono::duration<double, std::milli>(StepClock::now() - t0).count();
}

// ---- Layouts: convolution chains stay in oneDNN's layout ------------------------------------
// A value may be stored as oneDNN's convolutions prefer on this CPU (ValueLayout::kNHWC with
// AVX-512 brgemm kernels, kBlocked nChw8c/16c elsewhere) when every step touching it
// computes in that layout: convolutions (oneDNN reads and writes it directly), point-wise chains
// and element-wise layers whose operands all have the output's shape (element i of each operand
// is element i of the others in any common layout). Only 4-d float values that are not network
// inputs or outputs, constants or views. Anything else reading a value keeps it plain. Blocked: 4-d float
// values whose channels are a multiple of the block (no padding: the same bytes as plain).
// kChannelsLast: a step whose plain kernel, run over channels-last buffers as the plain tensor
// N,H,W,C (nhwc_permuted_kernel), computes it: its operands and output go channels-last together.
// kChannelsLastInput: a Reduce over H and W, whose output has the same bytes in either layout:
// only its input's layout matters.
enum class StepLayoutClass { kConvolution, kPerElement, kChannelsLast, kChannelsLastInput, kPlainOnly };

// A 4-d value with H * W == 1 has the same bytes channels-last and plain (n * C + c).
bool layout_neutral(const ExecValue& v) { return v.dims.size() == 4 && v.dims[2] * v.dims[3] == 1; }

// Steps that compute channels-last as their plain kernel over the dims N,H,W,C (2-D pooling: a
// loop of its own with the same arithmetic): nearest Resize
// keeping N and C, Concatenation along C, float ElementWise of 4-d operands (broadcasting
// included: SE blocks' x * gate), Scale per channel or uniform (a BatchNormalization after a
// deconvolution), Reduce over exactly H and W (global pooling). A detection neck
// (squeeze-excitation, upsample, add, concatenate) so stays in the convolutions' layout.
std::optional<StepLayoutClass> channels_last_class(const Network& net, const ExecGraph& g, const ExecStep& st) {
  if (st.kind != StepKind::kLayer || !st.epilogue.empty() || st.outputs.size() != 1 || st.inputs.empty())
    return std::nullopt;
  const Layer& l = net.layers[size_t(st.layer)];
  const ExecValue& out = g.values[size_t(st.outputs[0])];
  for (ValueId v : st.inputs)
    if (g.values[size_t(v)].dims.size() != 4 || g.values[size_t(v)].type != DataType::kFloat) return std::nullopt;
  const Dims& id = g.values[size_t(st.inputs[0])].dims;
  if (l.kind == LayerKind::kReduce) {
    const auto& p = l.as<ReduceParams>();
    if (p.axes != 0b1100u || st.inputs.size() != 1 || out.type != DataType::kFloat) return std::nullopt;
    return StepLayoutClass::kChannelsLastInput;
  }
  if (out.dims.size() != 4 || out.type != DataType::kFloat) return std::nullopt;
  const bool ok = (l.kind == LayerKind::kPooling && l.as<PoolingParams>().window.size() == 2 && st.inputs.size() == 1) ||
                  (l.kind == LayerKind::kResize && l.as<ResizeParams>().mode == ResizeMode::kNearest &&
                   st.inputs.size() == 1 && id[0] == out.dims[0] && id[1] == out.dims[1]) ||
                  (l.kind == LayerKind::kConcatenation &&
                   (l.as<ConcatenationParams>().axis == 1 || l.as<ConcatenationParams>().axis == -3)) ||
                  (l.kind == LayerKind::kElementWise && st.inputs.size() == 2) ||
                  (l.kind == LayerKind::kScale && st.inputs.size() == 1 && l.as<ScaleParams>().channel_axis == 1 &&
                   l.as<ScaleParams>().mode != ScaleMode::kElementwise);
  if (!ok) return std::nullopt;
  return StepLayoutClass::kChannelsLast;
}

// Emulated steps compute in FP32 and round element by element (FP16, INT8 per tensor): any
// layout their FP32 kernels take; only INT8 per channel needs the plain index. With
// channels-last chains, channels_last_class steps take it too.
StepLayoutClass layout_class(const Network& net, const ExecGraph& g, const ExecStep& st, int block) {
  if (block == cpu::kNhwcBlock)
    if (const auto c = channels_last_class(net, g, st)) return *c;
  switch (st.kind) {
    case StepKind::kRound:
      return st.rounding == Rounding::kInt8PerChannel ? StepLayoutClass::kPlainOnly : StepLayoutClass::kPerElement;
    case StepKind::kPointwiseChain: return StepLayoutClass::kPerElement;
    case StepKind::kLayer: break;
  }
  const Layer& l = net.layers[size_t(st.layer)];
  if (l.kind == LayerKind::kConvolution || l.kind == LayerKind::kDeconvolution)
    return net.tensors[size_t(l.inputs[0])].dims.size() == 4 ? StepLayoutClass::kConvolution : StepLayoutClass::kPlainOnly;
  if (l.kind != LayerKind::kElementWise || st.outputs.size() != 1) return StepLayoutClass::kPlainOnly;
  for (ValueId v : st.inputs)
    if (g.values[size_t(v)].dims != g.values[size_t(st.outputs[0])].dims || g.values[size_t(v)].type != DataType::kFloat)
      return StepLayoutClass::kPlainOnly;
  return StepLayoutClass::kPerElement;
}

}  // namespace

std::vector<char> cpu::plan_layouts(const Network& net, const ExecGraph& g, int block) {
  const size_t n = g.values.size();
  std::vector<char> blk(n, 0), has_view(n, 0);
  if (block <= 0) return blk;
  for (const ExecValue& v : g.values)
    if (v.alias_of >= 0) has_view[size_t(v.alias_of)] = 1;
  auto eligible = [&](ValueId id) {
    const ExecValue& v = g.values[size_t(id)];
    const Tensor* t = v.tensor >= 0 ? &net.tensors[size_t(v.tensor)] : nullptr;
    const bool channels_fit = block == cpu::kNhwcBlock || v.dims.size() != 4 || v.dims[1] % block == 0;
    return v.type == DataType::kFloat && v.dims.size() == 4 && channels_fit && v.alias_of < 0 &&
           !v.constant && v.offset >= 0 && !has_view[size_t(id)] && t && !t->is_input && !t->is_output;
  };
  std::vector<StepLayoutClass> cls;
  for (const ExecStep& st : g.steps) {
    cls.push_back(layout_class(net, g, st, block));
    // A value's producer proposes its layout; an in-place rounding step is not its producer
    // (it follows it, and takes whatever layout the producer wrote).
    const bool in_place = st.kind == StepKind::kRound && st.inputs[0] == st.outputs[0];
    const bool proposes = cls.back() != StepLayoutClass::kPlainOnly && cls.back() != StepLayoutClass::kChannelsLastInput;
    if (proposes && !in_place)
      for (ValueId o : st.outputs) blk[size_t(o)] = eligible(o);
  }
  // Drop what some step cannot compute blocked, until nothing changes: a per-element step's
  // operands and output are blocked together or not at all.
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < g.steps.size(); ++i) {
      const ExecStep& st = g.steps[i];
      std::vector<ValueId> group;
      if (cls[i] == StepLayoutClass::kPlainOnly) group = st.inputs;
      const bool together = cls[i] == StepLayoutClass::kPerElement || cls[i] == StepLayoutClass::kChannelsLast ||
                            cls[i] == StepLayoutClass::kChannelsLastInput;
      if (together) {
        group = st.inputs;
        if (cls[i] != StepLayoutClass::kChannelsLastInput) group.insert(group.end(), st.outputs.begin(), st.outputs.end());
        // Layout-neutral values (H * W == 1) fit either way (channels-last only: blocked differs).
        if (block == cpu::kNhwcBlock)
          group.erase(std::remove_if(group.begin(), group.end(),
                                     [&](ValueId v) { return layout_neutral(g.values[size_t(v)]); }),
                      group.end());
        bool all = true;
        for (ValueId v : group) all = all && blk[size_t(g.root(v))];
        if (all) continue;
      }
      for (ValueId v : group)
        if (blk[size_t(g.root(v))]) blk[size_t(g.root(v))] = 0, changed = true;
    }
  }
  return blk;
}

namespace {

// Whether a channels_last_class step runs channels-last: its values that are not layout-neutral
// are (plan_layouts keeps them together).
bool runs_channels_last(const Network& net, const ExecGraph& g, const ExecStep& st) {
  if (!channels_last_class(net, g, st)) return false;
  std::vector<ValueId> vs = st.inputs;
  vs.insert(vs.end(), st.outputs.begin(), st.outputs.end());
  for (ValueId v : vs)
    if (g.values[size_t(v)].dims.size() == 4 && !layout_neutral(g.values[size_t(v)]))
      return g.values[size_t(v)].layout == ValueLayout::kNHWC;
  return false;
}

// Reduce over H and W of a channels-last input: per channel, exactly the plain kernel's
// arithmetic in its order (8 float partial sums over pixels i = k mod 8, the tail and then the
// partials added in double; other ops one by one in double), so the same bits.
cpu::Kernel nhwc_reduce_hw_kernel(ReduceOp op, const Dims& d) {
  const int64_t N = d[0], C = d[1], n = d[2] * d[3];
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    std::vector<double> acc(static_cast<size_t>(C));
    std::vector<float> part(static_cast<size_t>(8 * C));
    for (int64_t b = 0; b < N; ++b) {
      const float* x = static_cast<const float*>(in[0]) + b * n * C;
      float* y = static_cast<float*>(out[0]) + b * C;
      std::fill(acc.begin(), acc.end(), ops::reduce_identity<double>(op));
      int64_t i = 0;
      if (op == ReduceOp::kSum || op == ReduceOp::kAvg) {
        std::fill(part.begin(), part.end(), 0.f);
        for (; i + 8 <= n; i += 8)
          for (int64_t k = 0; k < 8; ++k)
            for (int64_t c = 0; c < C; ++c) part[size_t(k * C + c)] += x[(i + k) * C + c];
        for (int64_t t = i; t < n; ++t)
          for (int64_t c = 0; c < C; ++c) acc[size_t(c)] += x[t * C + c];
        for (int64_t k = 0; k < 8; ++k)
          for (int64_t c = 0; c < C; ++c) acc[size_t(c)] += part[size_t(k * C + c)];
      } else {
        for (; i < n; ++i)
          for (int64_t c = 0; c < C; ++c) acc[size_t(c)] = ops::reduce_combine(op, acc[size_t(c)], double(x[i * C + c]));
      }
      for (int64_t c = 0; c < C; ++c) y[c] = float(ops::reduce_finish(op, acc[size_t(c)], n));
    }
  };
}

// 2-D pooling over a channels-last input: per output pixel the plain kernel's window (clipped
// the same way), values combined in its order (rows, then columns) for all channels at once:
// the same bits.
cpu::Kernel nhwc_pool_kernel(const PoolingParams& p, const Dims& in, const Dims& out) {
  const int64_t N = in[0], C = in[1], H = in[2], W = in[3], OH = out[2], OW = out[3];
  const int64_t kh = p.window[0], kw = p.window[1];
  const int64_t sh = p.stride.empty() ? 1 : p.stride[0], sw = p.stride.empty() ? 1 : p.stride[1];
  const int64_t ph = p.pre_padding.empty() ? 0 : p.pre_padding[0], pw = p.pre_padding.empty() ? 0 : p.pre_padding[1];
  const int64_t qh = p.post_padding.empty() ? 0 : p.post_padding[0], qw = p.post_padding.empty() ? 0 : p.post_padding[1];
  const PoolingType type = p.type;
  const bool exclude = p.average_count_excludes_padding;
  return [=](const std::vector<void*>& ins, const std::vector<void*>& outs) {
    const float* x = static_cast<const float*>(ins[0]);
    float* y = static_cast<float*>(outs[0]);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t a = 0; a < OH; ++a)
        for (int64_t b = 0; b < OW; ++b) {
          const int64_t s0 = a * sh - ph, s1 = b * sw - pw;
          int64_t e0 = std::min(s0 + kh, H + qh), e1 = std::min(s1 + kw, W + qw);
          const int64_t padded = (e0 - s0) * (e1 - s1);
          const int64_t b0 = std::max<int64_t>(s0, 0), b1 = std::max<int64_t>(s1, 0);
          e0 = std::min(e0, H);
          e1 = std::min(e1, W);
          float* py = y + ((n * OH + a) * OW + b) * C;
          for (int64_t c = 0; c < C; ++c) py[c] = ops::pool_identity<float>(type);
          for (int64_t i0 = b0; i0 < e0; ++i0)
            for (int64_t i1 = b1; i1 < e1; ++i1) {
              const float* px = x + ((n * H + i0) * W + i1) * C;
              for (int64_t c = 0; c < C; ++c) py[c] = ops::pool_combine(type, py[c], px[c]);
            }
          if (type != PoolingType::kAverage) continue;
          const int64_t cnt = exclude ? (e0 - b0) * (e1 - b1) : padded;
          for (int64_t c = 0; c < C; ++c) py[c] = cnt > 0 ? ops::pool_finish(type, py[c], cnt) : 0.f;
        }
  };
}

// A kChannelsLast step over channels-last buffers: a channels-last buffer of dims N,C,H,W is
// the plain tensor N,H,W,C, so the plain kernel of a copy of the layer over those dims (Resize
// scales permuted, Concatenation along the last axis) computes it. rounds: the output's roundings
// inside that kernel (cpu::make_ref_kernel_rounding; an empty Kernel where it has none).
// weights: where a Scale's come from (an FP16 Scale's rounded to half: layer_weights).
cpu::Kernel nhwc_permuted_kernel(const Network& net, const ExecGraph& g, const ExecStep& st,
                                 const std::vector<cpu::ChainLink>& rounds = {},
                                 const std::vector<Weights>* weights = nullptr) {
  const Layer& l = net.layers[size_t(st.layer)];
  if (!rounds.empty() && (l.kind == LayerKind::kReduce || l.kind == LayerKind::kPooling)) return {};
  if (l.kind == LayerKind::kReduce)
    return nhwc_reduce_hw_kernel(l.as<ReduceParams>().op, g.values[size_t(st.inputs[0])].dims);
  if (l.kind == LayerKind::kPooling)
    return nhwc_pool_kernel(l.as<PoolingParams>(), g.values[size_t(st.inputs[0])].dims, g.values[size_t(st.outputs[0])].dims);
  const auto nhwc = [](const Dims& d) { return Dims{d[0], d[2], d[3], d[1]}; };
  Network t;
  Layer copy = l;
  copy.inputs.clear();
  for (ValueId v : st.inputs)
    copy.inputs.push_back(t.add_tensor({g.values[size_t(v)].name, DataType::kFloat, nhwc(g.values[size_t(v)].dims)}));
  const ExecValue& o = g.values[size_t(st.outputs[0])];
  copy.outputs = {t.add_tensor({o.name, DataType::kFloat, nhwc(o.dims)})};
  if (copy.kind == LayerKind::kResize) {
    auto& p = copy.as<ResizeParams>();
    if (p.scales.size() == 4) p.scales = {p.scales[0], p.scales[2], p.scales[3], p.scales[1]};
    if (p.output_dims.size() == 4) p.output_dims = nhwc(p.output_dims);
  } else if (copy.kind == LayerKind::kConcatenation) {
    copy.as<ConcatenationParams>().axis = 3;
  } else if (copy.kind == LayerKind::kScale) {  // per channel (or uniform): the channel axis moves last
    auto& p = copy.as<ScaleParams>();
    p.channel_axis = 3;
    for (WeightsId* w : {&p.shift, &p.scale, &p.power}) {
      if (*w < 0) continue;
      t.weights.push_back((weights ? *weights : net.weights)[size_t(*w)]);
      *w = WeightsId(t.weights.size() - 1);
    }
  }
  t.add_layer(copy);
  if (rounds.empty()) return cpu::make_ref_kernel(t, t.layers[0], t.weights);
  return copy.kind == LayerKind::kScale ? cpu::make_scale_rounding(t, t.layers[0], t.weights, rounds)
                                        : cpu::make_ref_kernel_rounding(t, t.layers[0], rounds);
}

// A Slice with unit strides that stays inside its input (every mode reads the same elements
// then): runs of contiguous bytes (the trailing axes it keeps whole, times the first it cuts),
// one memcpy each, where the plain kernel computes an index per element (PP-OCR rec's q/k/v
// splits: 27 us each for 4,800 floats).
std::optional<cpu::Kernel> contiguous_slice_kernel(const Network& net, const Layer& l) {
  const auto& p = l.as<SliceParams>();
  const Dims& in = net.tensors[size_t(l.inputs[0])].dims;
  const Dims& out = net.tensors[size_t(l.outputs[0])].dims;
  const size_t rank = in.size();
  if (l.inputs.size() != 1 || rank == 0 || out.size() != rank || p.start.size() != rank) return std::nullopt;
  for (size_t d = 0; d < rank; ++d)
    if ((!p.stride.empty() && p.stride[d] != 1) || p.start[d] < 0 || p.start[d] + out[d] > in[d]) return std::nullopt;
  size_t cut = rank - 1;  // the outermost axis of the contiguous run
  while (cut > 0 && out[cut] == in[cut]) --cut;
  const int64_t es = int64_t(element_size(net.tensors[size_t(l.inputs[0])].type));
  int64_t run = es;
  for (size_t d = cut; d < rank; ++d) run *= out[d];
  const Strides is = dense_strides(in);
  const Dims outer(out.begin(), out.begin() + std::ptrdiff_t(cut));
  const int64_t rows = volume(outer);
  int64_t base = 0;
  for (size_t d = 0; d < rank; ++d) base += p.start[d] * is[d];
  return [=](const std::vector<void*>& ins, const std::vector<void*>& outs) {
    const uint8_t* src = static_cast<const uint8_t*>(ins[0]);
    uint8_t* dst = static_cast<uint8_t*>(outs[0]);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t rem = r, off = base;
      for (size_t d = cut; d-- > 0;) {
        off += (rem % outer[d]) * is[d];
        rem /= outer[d];
      }
      std::memcpy(dst + r * run, src + off * es, size_t(run));
    }
  };
}

std::atomic<uint64_t> codes_values_linked{0};

// Whether values between real INT8 convolutions are stored as codes (cpu::Int8CodesIo);
// TANDEM_CPU_INT8_CODES=0: as floats on their grid (the same results; for comparisons).
bool codes_between_int8_convs() {
  const char* env = std::getenv("TANDEM_CPU_INT8_CODES");
  return !(env && std::string(env) == "0");
}

// The layout convolution chains are kept in: oneDNN's preference on this CPU, or
// TANDEM_CPU_CHAIN_LAYOUT=nhwc|8|16|plain (tests run the other CPUs' layouts here).
int chain_layout_code() {
  const char* env = std::getenv("TANDEM_CPU_CHAIN_LAYOUT");
  if (!env) return cpu::dnnl_conv_block();
  const std::string v = env;
  if (v == "nhwc") return cpu::kNhwcBlock;
  if (v == "8" || v == "16") return std::stoi(v);
  if (v == "plain") return 0;
  throw Error("TANDEM_CPU_CHAIN_LAYOUT='" + v + "': expected nhwc, 8, 16 or plain");
}

class CpuExecutor : public Executor {
 public:
  CpuExecutor(const Network& net, const ExecOptions& opt, bool keep_all)
      : threads_(opt.threads), keep_all_(keep_all), input_values_(net.model.input_values) {
    net.verify();
    std::string why = cpu_unsupported_reason(net);
    if (!why.empty()) throw Error(why);
    cpu::set_threads(threads_);
    team_ = threads_ > 0 ? threads_ : omp_get_max_threads();
    graph_ = lower(net, opt.numerics, cpu_lower_policy(opt, keep_all));
    // The reference runs plain loops: plain layouts. TANDEM_CPU_LAYOUT=plain/any: the per-layer
    // choice of make_conv_kernel alone.
    const bool keep_blocked = !opt.reference_kernels && !keep_all && !opt.observe_tensor && !std::getenv("TANDEM_CPU_LAYOUT");
    block_ = keep_blocked ? chain_layout_code() : 0;
    const std::vector<char> blk = cpu::plan_layouts(net, graph_, block_);
    for (size_t v = 0; v < blk.size(); ++v)
      if (blk[v]) graph_.values[v].layout = block_ == cpu::kNhwcBlock ? ValueLayout::kNHWC : ValueLayout::kBlocked;
    evaluate_constants(net);
    bind_arena();
    auto conv_scratch = std::make_shared<cpu::ConvScratch>();
    const bool separate = separate_round_steps();
    const bool merge = merge_chain_steps() && !opt.reference_kernels && !keep_all && !opt.observe_tensor;
    const std::vector<int> readers = merge ? reader_steps() : std::vector<int>{};
    for (size_t i = 0; i < graph_.steps.size(); ++i) {
      const size_t first = i;
      const Rounds rounds = joined_rounds(graph_, i, separate);
      ConvTail tail;
      if (merge) tail = conv_tail(net, i, rounds, readers, separate);
      conv_tail_ = tail.links;
      steps_.push_back(build_step(net, opt, graph_.steps[i], conv_scratch, rounds));
      conv_tail_.clear();
      const bool took_tail = tail.last > i + rounds.size();
      i += rounds.size();
      if (tail.last > i) {
        RunStep& r = steps_.back();
        r.layer.append(tail.layer);
        r.kind.append(tail.kind);
        r.out.push_back(ptr_[size_t(graph_.steps[tail.last_chain].outputs[0])]);  // ConvSpec::tail's output
        i = tail.last;
      }
      if (merge) i = std::max(i, merge_following_chains(net, first, rounds, readers, separate, steps_.back()));
      if (last_codes_io_) {
        const ValueId written = graph_.steps[took_tail ? tail.last_chain : first].outputs[0];
        int8_convs_.push_back({first, i, written, last_codes_io_});
        last_codes_io_.reset();
      }
    }
    if (!keep_all && !opt.observe_tensor && codes_between_int8_convs()) link_int8_codes();
    if (opt.observe_tensor) plan_observation(opt.observe_tensor);
  }

  TensorMap run(const TensorMap& inputs) override {
    cpu::set_threads(threads_);
    check_input_values(input_values_, inputs, "cpu backend");
    for (TensorId t : graph_.inputs) {
      const ExecValue& v = graph_.values[size_t(t)];
      auto it = inputs.find(v.name);
      auto fixed = input_values_.find(v.name);  // a shape-value input may be left out: its values are fixed
      if (it == inputs.end() && fixed == input_values_.end())
        throw Error("missing input '" + v.name + "' (" + dims_to_string(v.dims) + " " + std::string(to_string(v.type)) + ")");
      const HostTensor& h = it != inputs.end() ? it->second : fixed_input(v, fixed->second);
      if (h.type != v.type)
        throw Error("input '" + v.name + "': expected " + std::string(to_string(v.type)) + ", got " + std::string(to_string(h.type)));
      if (h.dims != v.dims)
        throw Error("input '" + v.name + "': expected shape " + dims_to_string(v.dims) + ", got " + dims_to_string(h.dims));
      if (h.data.size() != size_t(volume(v.dims)) * element_size(v.type))
        throw Error("input '" + v.name + "': " + std::to_string(h.data.size()) + " bytes for shape " + dims_to_string(v.dims));
      if (!h.data.empty()) std::memcpy(ptr_[size_t(t)], h.data.data(), h.data.size());  // empty input: nothing
    }
    const auto t0 = StepClock::now();
    if (observe_) run_observed();
    else
      for (RunStep& s : steps_) s(team_);
    split_.compute_ms = ms_since(t0);  // the host computes in place: no device copies
    TensorMap out;
    for (TensorId t : graph_.outputs) out[graph_.values[size_t(t)].name] = to_host(t);
    if (keep_all_)  // the same tensors every run: refill last run's buffers (no allocation, no
                    // page faults: calibration runs this once per image)
      for (TensorId t = 0; t < TensorId(n_tensors_); ++t)
        if (ptr_[size_t(t)]) to_host(t, all_[graph_.values[size_t(t)].name]);
    return out;
  }

  const TensorMap& all_tensors() const override { return all_; }
  std::string backend_name() const override { return "cpu"; }
  RunSplit last_run_split() const override { return split_; }

  std::vector<StepTime> profile(int iters) override {
    if (iters < 1) throw Error("cpu backend: profile(" + std::to_string(iters) + "): iterations must be >= 1");
    cpu::set_threads(threads_);
    std::vector<double> total(steps_.size(), 0.0);
    for (int it = 0; it < iters; ++it)
      for (size_t i = 0; i < steps_.size(); ++i) {
        const auto t0 = StepClock::now();
        steps_[i](team_);
        total[i] += ms_since(t0);
      }
    std::vector<StepTime> out(steps_.size());
    for (size_t i = 0; i < steps_.size(); ++i)
      out[i] = StepTime{steps_[i].layer, steps_[i].kind, float(total[i] / double(iters))};
    return out;
  }

 private:
  std::vector<cpu::ChainLink> conv_tail_;  // the chain links the step being built takes on (conv_tail)
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };

  // Constants: evaluated once, stored outside the arena.
  void evaluate_constants(const Network& net) {
    n_tensors_ = net.tensors.size();
    ptr_.assign(graph_.values.size(), nullptr);
    for (LayerId id : graph_.constants) {
      const Layer& l = net.layers[size_t(id)];
      TensorId t = l.outputs[0];
      const_store_.emplace_back(size_t(graph_.values[size_t(t)].bytes) + 1);
      ptr_[size_t(t)] = const_store_.back().data();
      Kernel k = cpu::make_ref_kernel(net, l, net.weights);
      k({}, {ptr_[size_t(t)]});
    }
  }

  // ExecOptions::observe_tensor: which network tensors each run step completes (a tensor is
  // complete after the last step that writes its memory; a view with its root), and which are
  // there before the first step (inputs, constants).
  void plan_observation(std::function<void(TensorId, const void*)> observe) {
    observe_ = std::move(observe);
    std::vector<int> writer(graph_.values.size(), -1);
    const bool separate = separate_round_steps();
    size_t run_step = 0;
    for (size_t i = 0; i < graph_.steps.size(); ++i, ++run_step) {  // the constructor's joining
      for (ValueId v : graph_.steps[i].outputs) writer[size_t(v)] = int(run_step);
      const Rounds rounds = joined_rounds(graph_, i, separate);
      for (const ExecStep* r : rounds)
        for (ValueId v : r->outputs) writer[size_t(v)] = int(run_step);
      i += rounds.size();
    }
    completes_.assign(steps_.size(), {});
    for (TensorId t = 0; t < TensorId(n_tensors_); ++t) {
      if (!ptr_[size_t(t)]) continue;
      const int w = writer[size_t(graph_.root(t))];
      (w >= 0 ? completes_[size_t(w)] : present_first_).push_back(t);
    }
  }

  void run_observed() {
    for (TensorId t : present_first_) observe_(t, ptr_[size_t(t)]);
    for (size_t i = 0; i < steps_.size(); ++i) {
      steps_[i](team_);
      for (TensorId t : completes_[i]) observe_(t, ptr_[size_t(t)]);
    }
  }

  // The arena lowering planned; views point into their root's memory.
  void bind_arena() {
    const int64_t bytes = std::max<int64_t>(graph_.arena_bytes, 64);
    arena_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, size_t((bytes + 63) / 64 * 64))));
    if (!arena_) throw Error("cannot allocate the CPU arena (" + std::to_string(graph_.arena_bytes) + " bytes)");
    std::memset(arena_.get(), 0, size_t((bytes + 63) / 64 * 64));  // profile() before any run reads zeros
    for (size_t v = 0; v < graph_.values.size(); ++v)
      if (graph_.values[v].offset >= 0) ptr_[v] = arena_.get() + graph_.values[v].offset;
    for (size_t v = 0; v < graph_.values.size(); ++v)
      if (graph_.values[v].alias_of >= 0) ptr_[v] = ptr_[size_t(graph_.values[v].alias_of)];
  }

  // How many steps read each value's memory (a view's readers count for its root; an in-place
  // rounding does not count: its value's producer applies it).
  std::vector<int> reader_steps() const {
    std::vector<int> n(graph_.values.size(), 0);
    for (const ExecStep& st : graph_.steps) {
      if (st.kind == StepKind::kRound && st.inputs[0] == st.outputs[0]) continue;  // rounds in place: a writer
      for (ValueId v : st.inputs) ++n[size_t(graph_.root(v))];
    }
    for (TensorId t : graph_.outputs) n[size_t(graph_.root(t))] += 2;  // an output is read after the run
    return n;
  }

  // Whether chain step b, right after chain step a (and a's joined roundings), may run in a's
  // pass: b reads a's output alone, nothing else reads that value, and b's output either is a's
  // input buffer or does not overlap it (the merged pass reads a's input block by block while it
  // writes b's output).
  bool chain_follows(const ExecStep& a, const ExecStep& b, const std::vector<int>& readers) const {
    if (a.kind != StepKind::kPointwiseChain || b.kind != StepKind::kPointwiseChain) return false;
    if (a.outputs.size() != 1 || b.inputs.size() != 1 || b.outputs.size() != 1 || b.inputs[0] != a.outputs[0])
      return false;
    const ValueId t = a.outputs[0];
    if (graph_.root(t) != t || readers[size_t(t)] != 1) return false;
    const ExecValue &x = graph_.values[size_t(a.inputs[0])], &y = graph_.values[size_t(b.outputs[0])],
                    &tv = graph_.values[size_t(t)];
    if (x.dims != tv.dims || y.dims != tv.dims || x.layout != tv.layout || y.layout != tv.layout) return false;
    const uint8_t *xp = static_cast<uint8_t*>(ptr_[size_t(a.inputs[0])]), *yp = static_cast<uint8_t*>(ptr_[size_t(b.outputs[0])]);
    return xp && yp && (xp == yp || xp + x.bytes <= yp || yp + y.bytes <= xp);
  }

  // Appends chain step j to a pass being merged: a capture of its input where one of its links
  // reads it, its links, its joined roundings, and its names for the profile. Returns the index of
  // its last joined rounding.
  size_t append_chain_step(const Network& net, size_t j, bool separate, std::vector<cpu::ChainLink>& links,
                           std::string& layer, std::string& kind) const {
    const ExecStep& b = graph_.steps[j];
    bool reads_input = false;
    for (const Epilogue& e : b.epilogue)
      reads_input = reads_input || e.operand == EpilogueOperand::kChainInputLeft ||
                    e.operand == EpilogueOperand::kChainInputRight;
    if (reads_input) links.push_back(cpu::ChainLink{cpu::ChainLink::kCaptureInput});
    for (const Epilogue& e : b.epilogue) links.push_back(chain_link(net, e));
    const Rounds br = joined_rounds(graph_, j, separate);
    for (const ExecStep* rs : br) links.push_back(round_link(*rs));
    RunStep label;
    label_step(net, graph_, b, label);
    layer.append(" + ").append(label.layer);
    kind.append("+").append(label.kind);
    for (size_t k = 0; k < br.size(); ++k) kind.append("+Round");
    return j + br.size();
  }

  // The chain steps a convolution step takes after its own chain (conv_tail).
  struct ConvTail {
    std::vector<cpu::ChainLink> links;  // appended to the convolution's chain
    size_t last = 0;                    // the last graph step taken (0: none)
    size_t last_chain = 0;              // the last chain step taken: its output is the step's
    std::string layer, kind;            // what the profile adds to the step's names
  };
  // A convolution step followed by point-wise chain steps that read its output alone (det: the
  // written-out hard-swish after an FP16 convolution and its `* s + b`, each rounding on its own
  // grid) runs them in its own chain pass, after its roundings (ConvSpec::tail: from its output
  // into the last step's): the same operations in the same order, one pass over the output
  // instead of two.
  ConvTail conv_tail(const Network& net, size_t i, const Rounds& rounds, const std::vector<int>& readers,
                     bool separate) const {
    ConvTail t;
    const ExecStep& c = graph_.steps[i];
    if (c.kind != StepKind::kLayer || c.outputs.size() != 1 || c.inputs.empty() ||
        net.layers[size_t(c.layer)].kind != LayerKind::kConvolution)
      return t;
    const ExecStep* prev = &c;
    size_t last = i + rounds.size();
    while (last + 1 < graph_.steps.size()) {
      const ExecStep& b = graph_.steps[last + 1];
      if (b.kind != StepKind::kPointwiseChain || b.inputs.size() != 1 || b.outputs.size() != 1 ||
          b.inputs[0] != prev->outputs[0])
        break;
      const ValueId v = prev->outputs[0];
      const ExecValue &tv = graph_.values[size_t(v)], &y = graph_.values[size_t(b.outputs[0])];
      if (graph_.root(v) != v || readers[size_t(v)] != 1 || y.dims != tv.dims || y.layout != tv.layout) break;
      // The kernel reads the convolution's output (or its sums) while it writes the last step's.
      const uint8_t *tp = static_cast<uint8_t*>(ptr_[size_t(c.outputs[0])]),
                    *yp = static_cast<uint8_t*>(ptr_[size_t(b.outputs[0])]);
      const int64_t tb = graph_.values[size_t(c.outputs[0])].bytes;
      if (!tp || !yp || !(tp == yp || tp + tb <= yp || yp + y.bytes <= tp)) break;
      t.last_chain = last + 1;
      last = append_chain_step(net, last + 1, separate, t.links, t.layer, t.kind);
      t.last = last;
      prev = &b;
    }
    return t;
  }

  // Point-wise chain steps that follow one another (an FP16 chain, then INT8 point-wise layers,
  // each with its output rounding: det's hard-swish and the DLA scale and shift after it) run as
  // one pass: the links of each, its roundings, and a capture of its input where a later link
  // reads it (the same operations in the same order on each element: the same bits, one pass
  // over memory instead of several). Returns the index of the last graph step merged into r.
  size_t merge_following_chains(const Network& net, size_t i, const Rounds& rounds, const std::vector<int>& readers,
                                bool separate, RunStep& r) const {
    size_t last = i + rounds.size();
    if (graph_.steps[i].kind != StepKind::kPointwiseChain) return last;
    std::vector<cpu::ChainLink> links;
    for (const Epilogue& e : graph_.steps[i].epilogue) links.push_back(chain_link(net, e));
    for (const ExecStep* rs : rounds) links.push_back(round_link(*rs));
    const ExecStep* prev = &graph_.steps[i];
    bool merged = false;
    while (last + 1 < graph_.steps.size() && chain_follows(*prev, graph_.steps[last + 1], readers)) {
      const ExecStep& b = graph_.steps[last + 1];
      r.out = {ptr_[size_t(b.outputs[0])]};
      r.serial = r.serial && serial_step(net, graph_, b);
      last = append_chain_step(net, last + 1, separate, links, r.layer, r.kind);
      prev = &b;
      merged = true;
    }
    if (merged)
      r.kernel = cpu::make_chain_kernel(std::move(links), volume(graph_.values[size_t(graph_.steps[i].inputs[0])].dims),
                                        input_grid(graph_, i, graph_.steps[i].inputs[0]));
    return last;
  }

  // Codes between real INT8 convolutions (cpu::Int8CodesIo): a value a convolution writes (real
  // INT8, or an FP32/FP16 block before INT8 ones), its chain ending in an INT8 rounding, that only
  // real INT8 convolutions read, each as its input on that grid, is stored as their codes. Not a network output, a view's root, or a value another step
  // reads or writes; the arena keeps its float-sized block.
  void link_int8_codes() {
    std::vector<int> conv_at(graph_.steps.size(), -1);
    for (size_t k = 0; k < int8_convs_.size(); ++k) conv_at[int8_convs_[k].first] = int(k);
    std::vector<char> kept(graph_.values.size(), 0);
    for (TensorId t : graph_.outputs) kept[size_t(graph_.root(t))] = 1;
    for (const ExecValue& v : graph_.values)
      if (v.alias_of >= 0) kept[size_t(v.alias_of)] = 1;
    for (const Int8ConvStep& w : int8_convs_) {
      const ValueId v = w.written;
      if (!w.io->can_write || graph_.root(v) != v || kept[size_t(v)]) continue;
      std::vector<const Int8ConvStep*> readers;
      bool ok = true;
      for (size_t j = 0; j < graph_.steps.size() && ok; ++j) {
        if (j >= w.first && j <= w.last) continue;
        const ExecStep& st = graph_.steps[j];
        bool reads = false;
        for (ValueId o : st.outputs) ok = ok && graph_.root(o) != v;
        for (ValueId x : st.inputs) reads = reads || graph_.root(x) == v;
        if (!reads) continue;
        const Int8ConvStep* r = conv_at[j] >= 0 ? &int8_convs_[size_t(conv_at[j])] : nullptr;
        ok = ok && r && st.inputs.size() == 1 && st.inputs[0] == v && r->io->can_read &&
             r->io->read_scale == w.io->write_scale;
        if (ok) readers.push_back(r);
      }
      if (!ok || readers.empty()) continue;
      w.io->write = true;
      for (const Int8ConvStep* r : readers) r->io->read = true;
      ++codes_values_linked;
    }
  }

  // rounds: the in-place roundings of st's output that st's step applies (joined_rounds).
  RunStep build_step(const Network& net, const ExecOptions& opt, const ExecStep& st,
                     const std::shared_ptr<cpu::ConvScratch>& conv_scratch, const Rounds& rounds) {
    RunStep r;
    label_step(net, graph_, st, r);
    for (size_t k = 0; k < rounds.size(); ++k) r.kind += "+Round";
    r.serial = serial_step(net, graph_, st);
    for (ValueId v : st.inputs) r.in.push_back(ptr_[size_t(v)]);
    for (ValueId v : st.outputs) r.out.push_back(ptr_[size_t(v)]);
    switch (st.kind) {
      case StepKind::kRound: {
        const int64_t n = volume(graph_.values[size_t(st.inputs[0])].dims);
        r.kernel = [st, n](const std::vector<void*>& in, const std::vector<void*>& out) {
          round_values(st, static_cast<const float*>(in[0]), static_cast<float*>(out[0]), n);
        };
        return r;
      }
      case StepKind::kPointwiseChain: {
        std::vector<cpu::ChainLink> links;
        for (const Epilogue& e : st.epilogue) links.push_back(chain_link(net, e));
        for (const ExecStep* rs : rounds) links.push_back(round_link(*rs));
        r.kernel = cpu::make_chain_kernel(std::move(links), volume(graph_.values[size_t(st.inputs[0])].dims),
                                          input_grid(graph_, size_t(&st - graph_.steps.data()), st.inputs[0]));
        return r;
      }
      case StepKind::kLayer:
        break;
    }
    const Layer& l = net.layers[size_t(st.layer)];
    try {
      // oneDNN fixes a primitive's thread count when it creates it (brgemm convolutions run
      // num_threads(n) whatever the run-time setting): a serial step's primitives are made so.
      struct Threads {
        int restore;
        ~Threads() { omp_set_num_threads(restore); }
      } guard{team_};
      if (r.serial) omp_set_num_threads(1);
      built_int8_ = false;
      r.kernel = layer_kernel(net, opt, st, conv_scratch, rounds);
      // A profile marks real INT8 steps: "Convolution(int8)+...".
      if (built_int8_) r.kind.insert(std::string(to_string(l.kind)).size(), "(int8)");
    } catch (const dnnl::error& e) {
      throw Error(layer_desc(l) + ": oneDNN cannot create the primitive (" + e.what() + ")");
    }
    return r;
  }

  // A kernel applying `rounds` after the layer's own (the convolution's: as its chain's last links).
  Kernel layer_kernel(const Network& net, const ExecOptions& opt, const ExecStep& st,
                      const std::shared_ptr<cpu::ConvScratch>& conv_scratch, const Rounds& rounds) const {
    const Layer& l = net.layers[size_t(st.layer)];
    const bool conv = l.kind == LayerKind::kConvolution || l.kind == LayerKind::kDeconvolution;
    if (!rounds.empty() && !opt.reference_kernels && !conv) {
      // Element-wise, Concatenation, nearest Resize: rounded block by block inside the kernel.
      std::vector<cpu::ChainLink> links;
      for (const ExecStep* r : rounds) links.push_back(round_link(*r));
      const bool nhwc = block_ == cpu::kNhwcBlock && runs_channels_last(net, graph_, st);
      // A Scale's weights as the layer runs them (an FP16 Scale's rounded to half); channels-last only.
      const std::vector<Weights> scale_weights = l.kind == LayerKind::kScale ? layer_weights(net, st) : std::vector<Weights>{};
      if (Kernel k = nhwc ? nhwc_permuted_kernel(net, graph_, st, links, l.kind == LayerKind::kScale ? &scale_weights : nullptr)
                          : cpu::make_ref_kernel_rounding(net, l, links))
        return k;
    }
    if (!rounds.empty() && (opt.reference_kernels || !conv)) {
      Kernel k = layer_kernel(net, opt, st, conv_scratch, {});
      const int64_t n = volume(graph_.values[size_t(rounds[0]->inputs[0])].dims);
      std::vector<ExecStep> rs;
      for (const ExecStep* r : rounds) rs.push_back(*r);
      return [k = std::move(k), rs = std::move(rs), n](const std::vector<void*>& in, const std::vector<void*>& out) {
        k(in, out);
        for (const ExecStep& r : rs) round_values(r, static_cast<const float*>(out[0]), static_cast<float*>(out[0]), n);
      };
    }
    if (opt.reference_kernels) {
      if (l.kind == LayerKind::kScale) return cpu::make_ref_kernel(net, l, layer_weights(net, st));
      if (!conv) return cpu::make_ref_kernel(net, l, net.weights);
      // The reference: plain loops; the convolution's prepared (rounded) weights replace the
      // layer's own in a copy of the weights.
      cpu::ConvSpec s = conv_spec(net, opt.numerics, graph_, st, conv_scratch, block_, {});
      std::vector<Weights> prepared = net.weights;
      const auto& cp = l.as<ConvolutionParams>();
      auto put = [&](WeightsId w, const std::vector<float>& v) {
        if (w < 0) return;
        Weights& dst = prepared[size_t(w)];
        dst.type = DataType::kFloat;
        dst.bytes.resize(v.size() * sizeof(float));
        std::memcpy(dst.bytes.data(), v.data(), dst.bytes.size());
      };
      put(cp.kernel_weights, s.kernel);
      put(cp.bias_weights, s.bias);
      return cpu::make_ref_kernel(net, l, prepared);
    }
    if (block_ == cpu::kNhwcBlock && runs_channels_last(net, graph_, st)) {
      if (l.kind != LayerKind::kScale) return nhwc_permuted_kernel(net, graph_, st);
      const std::vector<Weights> weights = layer_weights(net, st);
      return nhwc_permuted_kernel(net, graph_, st, {}, &weights);
    }
    if (l.kind == LayerKind::kSlice)
      if (auto k = contiguous_slice_kernel(net, l)) return *k;
    switch (l.kind) {
      case LayerKind::kConvolution:
      case LayerKind::kDeconvolution: {
        cpu::ConvSpec s = conv_spec(net, opt.numerics, graph_, st, conv_scratch, block_, rounds);
        s.tail = conv_tail_;  // conv_tail's steps
        built_int8_ = !s.kernel_codes.empty();
        s.codes_io = last_codes_io_ = std::make_shared<cpu::Int8CodesIo>();
        if (built_int8_) return cpu::make_conv_int8_kernel(s, cpu::int8_conv_path());
        return cpu::make_conv_kernel(s);  // (it may write codes too: an FP16 block before INT8 ones)
      }
      case LayerKind::kMatrixMultiply:
        return cpu::make_matmul_kernel(net, l);
      case LayerKind::kScale:
        return cpu::make_ref_kernel(net, l, layer_weights(net, st));
      case LayerKind::kPooling: case LayerKind::kActivation: case LayerKind::kElementWise:
      case LayerKind::kConcatenation: case LayerKind::kResize:
      case LayerKind::kShuffle: case LayerKind::kSlice: case LayerKind::kSoftMax:
      case LayerKind::kReduce: case LayerKind::kUnary: case LayerKind::kConstant:
      case LayerKind::kParametricReLU: case LayerKind::kLRN: case LayerKind::kGather:
      case LayerKind::kIdentity: case LayerKind::kCast: case LayerKind::kNormalization:
      case LayerKind::kSelect: case LayerKind::kScatter: case LayerKind::kTopK: case LayerKind::kEinsum:
      case LayerKind::kGridSample: case LayerKind::kRoiAlign: case LayerKind::kNonZero: case LayerKind::kNMS:
        return cpu::make_ref_kernel(net, l, net.weights);
    }
    throw Error(layer_desc(l) + ": unknown layer kind");
  }

  // The weights a plain-loop kernel reads: an FP16 Scale's rounded to half.
  static std::vector<Weights> layer_weights(const Network& net, const ExecStep& st) {
    const Layer& l = net.layers[size_t(st.layer)];
    std::vector<Weights> w = net.weights;
    if (st.precision != Precision::kFP16 || l.kind != LayerKind::kScale) return w;
    for (WeightsId id : {l.as<ScaleParams>().scale, l.as<ScaleParams>().shift, l.as<ScaleParams>().power})
      if (id >= 0 && w[size_t(id)].type == DataType::kFloat)
        for (int64_t i = 0; i < w[size_t(id)].count(); ++i) w[size_t(id)].f32()[i] = round_to_fp16(w[size_t(id)].f32()[i]);
    return w;
  }

  HostTensor to_host(TensorId t) const {
    HostTensor h;
    to_host(t, h);
    return h;
  }
  void to_host(TensorId t, HostTensor& h) const {
    const ExecValue& v = graph_.values[size_t(t)];
    h.name = v.name;
    h.type = v.type;
    h.dims = v.dims;
    const uint8_t* p = ptr_[size_t(t)];
    if (v.data_dependent_axis >= 0) {  // the real shape's elements, packed at the start
      h.dims = data_dependent_dims(v.dims, v.data_dependent_axis, v.type, p, v.name);
      h.data.assign(p, p + volume(h.dims) * int64_t(element_size(v.type)));
      return;
    }
    h.data.assign(p, p + size_t(v.bytes));  // same size as last run: reuses the capacity
  }

  int threads_;
  bool keep_all_;
  std::map<std::string, std::vector<int64_t>> input_values_;  // shape-value inputs, checked by run()
  std::map<std::string, HostTensor> fixed_inputs_;             // their tensors, made on first use
  const HostTensor& fixed_input(const ExecValue& v, const std::vector<int64_t>& values) {
    auto [it, fresh] = fixed_inputs_.try_emplace(v.name);
    if (fresh) it->second = input_values_tensor(v.name, v.type, v.dims, values);
    return it->second;
  }
  int team_ = 1;   // threads a parallel step uses
  int block_ = 0;  // channel block of the values kept blocked (0: none)
  mutable bool built_int8_ = false;  // the last layer_kernel() built a real INT8 convolution
  mutable std::shared_ptr<cpu::Int8CodesIo> last_codes_io_;  // the last convolution's codes switch
  // Convolution steps (real INT8 or not): the graph steps their run step covers, the value it writes.
  struct Int8ConvStep {
    size_t first, last;
    ValueId written;
    std::shared_ptr<cpu::Int8CodesIo> io;
  };
  std::vector<Int8ConvStep> int8_convs_;
  ExecGraph graph_;
  size_t n_tensors_ = 0;
  std::vector<uint8_t*> ptr_;  // per value (null: never materialized)
  std::vector<std::vector<uint8_t>> const_store_;
  std::unique_ptr<uint8_t, FreeDeleter> arena_;
  std::vector<RunStep> steps_;
  std::function<void(TensorId, const void*)> observe_;  // ExecOptions::observe_tensor
  std::vector<std::vector<TensorId>> completes_;         // per run step: tensors then complete
  std::vector<TensorId> present_first_;                  // inputs and constants
  TensorMap all_;
  RunSplit split_;
};

}  // namespace

std::string cpu_unsupported_reason(const Network& net) {
  for (const Layer& l : net.layers) {
    auto bad_type = [&](TensorId t, const char* role) -> std::string {
      const Tensor& tt = net.tensors[t];
      return layer_desc(l) + ": " + role + " '" + tt.name + "' is " + std::string(to_string(tt.type)) +
             ", the CPU backend computes " + std::string(to_string(l.kind)) + " in fp32 only";
    };
    if (is_float_kind(l.kind)) {
      // Gather-like index operands are not data: PReLU slope, Normalization scale/bias are float.
      for (TensorId t : l.inputs)
        if (net.tensors[t].type != DataType::kFloat) return bad_type(t, "input");
      for (TensorId t : l.outputs)
        if (net.tensors[t].type != DataType::kFloat) return bad_type(t, "output");
    }
    switch (l.kind) {
      case LayerKind::kConvolution: case LayerKind::kDeconvolution: {
        size_t r = l.as<ConvolutionParams>().kernel.size();
        if (r < 1 || r > 3) return layer_desc(l) + ": " + std::to_string(r) + "-d kernels (the CPU backend takes 1-3)";
        break;
      }
      case LayerKind::kPooling: {
        size_t r = l.as<PoolingParams>().window.size();
        if (r < 1 || r > 3) return layer_desc(l) + ": " + std::to_string(r) + "-d windows (the CPU backend takes 1-3)";
        break;
      }
      case LayerKind::kMatrixMultiply: {
        size_t r = net.tensors[l.outputs[0]].dims.size();
        if (r < 2 || r > 12) return layer_desc(l) + ": rank " + std::to_string(r) + " (the CPU backend takes 2-12)";
        break;
      }
      case LayerKind::kUnary: {
        UnaryOp op = l.as<UnaryParams>().op;
        DataType t = net.tensors[l.inputs[0]].type;
        // fp16: computed in fp32 on the widened value and rounded back (make_unary).
        bool ok = t == DataType::kFloat || t == DataType::kHalf || op == UnaryOp::kAbs || op == UnaryOp::kNeg ||
                  op == UnaryOp::kSign || (op == UnaryOp::kNot && t == DataType::kBool);
        if (!ok) return bad_type(l.inputs[0], "input");
        break;
      }
      case LayerKind::kGather: {
        DataType t = net.tensors[l.inputs[1]].type;
        if (t != DataType::kInt32 && t != DataType::kInt64)
          return layer_desc(l) + ": indices are " + std::string(to_string(t)) + " (int32 or int64 expected)";
        break;
      }
      case LayerKind::kResize: case LayerKind::kActivation: case LayerKind::kElementWise:
      case LayerKind::kScale: case LayerKind::kConcatenation: case LayerKind::kShuffle:
      case LayerKind::kSlice: case LayerKind::kSoftMax: case LayerKind::kReduce:
      case LayerKind::kConstant: case LayerKind::kParametricReLU: case LayerKind::kLRN:
      case LayerKind::kIdentity: case LayerKind::kCast: case LayerKind::kNormalization:
      case LayerKind::kSelect: case LayerKind::kScatter: case LayerKind::kTopK: case LayerKind::kEinsum:
      case LayerKind::kGridSample: case LayerKind::kRoiAlign: case LayerKind::kNonZero: case LayerKind::kNMS:
        break;
    }
  }
  return "";
}

uint64_t cpu::int8_codes_values_linked() { return codes_values_linked.load(); }

std::unique_ptr<Executor> make_cpu_executor(const Network& net, const ExecOptions& opt, bool keep_all) {
  return std::make_unique<CpuExecutor>(net, opt, keep_all);
}

int64_t peak_rss_kib() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace tandem
