// lower(): fusion, numerics steps, views and the arena plan, decided once for every backend.
#include "tandem/lower.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>

#include "tandem/numerics.h"

namespace tandem {

const char* to_string(ValueLayout l) {
  switch (l) {
    case ValueLayout::kLinear: return "linear";
    case ValueLayout::kNHWC: return "nhwc";
    case ValueLayout::kBlocked: return "blocked";
  }
  return "?";
}
const char* to_string(StepKind k) {
  switch (k) {
    case StepKind::kLayer: return "layer";
    case StepKind::kPointwiseChain: return "pointwise-chain";
    case StepKind::kRound: return "round";
  }
  return "?";
}
const char* to_string(Rounding r) {
  switch (r) {
    case Rounding::kFp16: return "fp16";
    case Rounding::kInt8: return "int8";
    case Rounding::kInt8PerChannel: return "int8-per-channel";
  }
  return "?";
}

namespace {

std::string layer_desc(const Layer& l) {
  return "layer '" + l.name + "' (" + std::string(to_string(l.kind)) + ")";
}

bool is_conv(LayerKind k) { return k == LayerKind::kConvolution || k == LayerKind::kDeconvolution; }

// INT8 and FP16 layers run in FP32 with their inputs and outputs rounded (emulation).
bool emulated(Precision p) { return p == Precision::kINT8 || p == Precision::kFP16; }

class Lowering {
 public:
  Lowering(const Network& net, const Numerics& num, const LowerPolicy& pol)
      : net_(net), num_(num), pol_(pol), cons_(net.consumers()) {}

  ExecGraph run() {
    check_numerics();
    init_values();
    if (pol_.fp16_native && !pol_.keep_all) plan_native_fp16();
    const bool fuse = pol_.fuse && !pol_.keep_all;
    if (fuse) plan_conv_epilogues();
    if (fuse && pol_.pointwise_chains) {
      plan_pointwise_chains();
      absorb_chains_into_convs();
    }
    if (pol_.int8_native && !pol_.keep_all) plan_native_int8();
    if (pol_.alias_views) plan_views();
    emit_steps();
    plan_memory();
    return std::move(g_);
  }

 private:
  Precision precision_of(LayerId id) const {
    return size_t(id) < num_.layer_precision.size() ? num_.layer_precision[size_t(id)] : Precision::kUnset;
  }
  float scale_of(const Tensor& t) const { return num_.tensor_scales.at(t.name); }

  // ---- 1. numerics the backends can emulate ---------------------------------------------------
  void check_numerics() const {
    if (num_.layer_precision.size() > net_.layers.size())
      throw Error("numerics: " + std::to_string(num_.layer_precision.size()) + " layer precisions for a network of " +
                  std::to_string(net_.layers.size()) + " layers");
    for (LayerId id = 0; id < LayerId(net_.layers.size()); ++id) {
      Precision p = precision_of(id);
      if (p == Precision::kFP8) throw Error(layer_desc(net_.layers[size_t(id)]) + ": FP8 numerics are not emulated");
      if (p != Precision::kINT8) continue;
      const Layer& l = net_.layers[size_t(id)];
      for (const auto* list : {&l.inputs, &l.outputs})
        for (TensorId t : *list) {
          const Tensor& tt = net_.tensors[size_t(t)];
          if (tt.type != DataType::kFloat || num_.unquantized.count(tt.name)) continue;
          auto it = num_.tensor_scales.find(tt.name);
          if (it == num_.tensor_scales.end())
            throw Error("tensor '" + tt.name + "' (" + (list == &l.inputs ? "input" : "output") + " of INT8 layer '" +
                        l.name + "') has no INT8 scale");
          if (!(it->second > 0.f) || !std::isfinite(it->second))
            throw Error("tensor '" + tt.name + "': INT8 scale " + std::to_string(it->second) + " is not a positive number");
        }
    }
  }

  void init_values() {
    const size_t nt = net_.tensors.size(), nl = net_.layers.size();
    g_.values.resize(nt);
    for (size_t t = 0; t < nt; ++t) {
      const Tensor& tt = net_.tensors[t];
      ExecValue& v = g_.values[t];
      v.name = tt.name;
      v.type = tt.type;
      v.dims = tt.dims;
      v.tensor = TensorId(t);
      v.storage = tt.type;
      v.bytes = stored_bytes(net_, TensorId(t));
      v.data_dependent_axis = data_dependent_axis(net_, TensorId(t));
      v.constant = tt.producer >= 0 && net_.layers[size_t(tt.producer)].kind == LayerKind::kConstant;
    }
    g_.inputs = net_.inputs;
    g_.outputs = net_.outputs;
    g_.step_of_layer.assign(nl, -1);
    g_.absorbed_into.assign(nl, -1);
    absorber_.assign(nl, -1);
    epilogue_.resize(nl);
    chain_input_at_.assign(nl, 0);
    chain_in_.assign(nl, -1);
    has_chain_.assign(nl, 0);
    final_out_.assign(nl, -1);
    elided_.assign(nt, 0);
    native_.assign(nl, 0);
  }

  // ---- 1b. real FP16: which layers compute in half, which values are stored so -----------------
  // The layout a half value of these dims takes: channels-last where it differs from linear.
  ValueLayout half_layout(const Dims& d) const {
    return pol_.fp16_nhwc && d.size() == 4 && d[1] > 1 && d[2] * d[3] > 1 ? ValueLayout::kNHWC : ValueLayout::kLinear;
  }
  void store_half(ValueId v) {
    ExecValue& val = g_.values[size_t(v)];
    val.storage = DataType::kHalf;
    val.precision = Precision::kFP16;
    val.layout = half_layout(val.dims);
    val.bytes = int64_t(volume(val.dims)) * int64_t(element_size(DataType::kHalf));
  }
  void plan_native_fp16() {
    for (LayerId id = 0; id < LayerId(net_.layers.size()); ++id) {
      const Layer& l = net_.layers[size_t(id)];
      if (l.kind == LayerKind::kConstant || l.outputs.empty()) continue;
      // A concatenation of half values copies values already on the FP16 grid: it stays in half
      // whatever its precision (an FP16 build leaves concatenations at FP32).
      bool half_inputs = l.kind == LayerKind::kConcatenation && precision_of(id) == Precision::kUnset;
      for (TensorId t : l.inputs) half_inputs = half_inputs && will_be_half(t);
      if (precision_of(id) != Precision::kFP16 && !half_inputs) continue;
      bool ok = true;
      for (TensorId t : l.outputs)
        ok = ok && net_.tensors[size_t(t)].type == DataType::kFloat && !net_.tensors[size_t(t)].is_output;
      if (!ok || !pol_.fp16_native(net_, id) || left_to_int8_conv(id)) continue;
      native_[size_t(id)] = 1;
      for (TensorId t : l.outputs) store_half(t);
    }
    // A float constant read only by native layers is stored (converted at upload) as half.
    for (LayerId id = 0; id < LayerId(net_.layers.size()); ++id) {
      const Layer& l = net_.layers[size_t(id)];
      if (l.kind != LayerKind::kConstant || l.outputs.size() != 1) continue;
      TensorId t = l.outputs[0];
      const auto& cs = cons_[size_t(t)];
      bool all_native = !cs.empty() && net_.tensors[size_t(t)].type == DataType::kFloat && !net_.tensors[size_t(t)].is_output;
      for (LayerId c : cs) all_native = all_native && native_[size_t(c)];
      if (all_native) store_half(t);
    }
  }
  // Real INT8 with LowerPolicy::int8_conv_fp16_chain: an FP16 activation that an INT8
  // convolution running on codes will take into its epilogue (its input is that convolution's
  // output and read by it alone; its output lies on a per-tensor INT8 grid read by INT8 layers
  // alone) stays emulated, so that the chain fusion below gives it to the convolution as the
  // CPU's lowering does: one requantization onto the activation's grid, and neither a half
  // value nor an activation step between the two convolutions.
  bool left_to_int8_conv(LayerId id) const {
    if (!pol_.int8_native || !pol_.int8_conv_fp16_chain || !pol_.fuse_emulated || !pol_.fuse || !pol_.pointwise_chains)
      return false;
    const Layer& l = net_.layers[size_t(id)];
    if (l.kind != LayerKind::kActivation || l.inputs.size() != 1 || l.outputs.size() != 1 ||
        precision_of(id) != Precision::kFP16)
      return false;
    const Tensor& x = net_.tensors[size_t(l.inputs[0])];
    if (x.is_output || x.producer < 0 || cons_[size_t(l.inputs[0])].size() != 1) return false;
    const LayerId conv = x.producer;
    return net_.layers[size_t(conv)].kind == LayerKind::kConvolution && precision_of(conv) == Precision::kINT8 &&
           pol_.int8_native(net_, conv) && int8_grid_for_int8_readers(l.outputs[0]);
  }
  // Whether tensor t lies on a per-tensor INT8 grid that every reader (all INT8 layers) rounds
  // it to: a producer may requantize it so at once.
  bool int8_grid_for_int8_readers(TensorId t) const {
    const Tensor& T = net_.tensors[size_t(t)];
    if (T.is_output || T.type != DataType::kFloat || !rounds(Precision::kINT8, T) || num_.per_channel_axis.count(T.name))
      return false;
    auto sc = num_.tensor_scales.find(T.name);
    bool int8_readers = !cons_[size_t(t)].empty();
    for (LayerId c : cons_[size_t(t)]) int8_readers = int8_readers && precision_of(c) == Precision::kINT8;
    return int8_readers && sc != num_.tensor_scales.end() && sc->second > 0.f && std::isfinite(sc->second);
  }
  // Whether t is (or, once plan_views has run, will be a view of) a half value; a wrong guess
  // costs a convert step, never a wrong result (emit_steps converts what a layer reads).
  bool will_be_half(TensorId t) const {
    for (int guard = 0; guard < 16; ++guard) {
      const ExecValue& v = g_.values[size_t(t)];
      if (v.float_as_half()) return true;
      const Tensor& T = net_.tensors[size_t(t)];
      if (T.producer < 0 || T.is_output || T.type != DataType::kFloat) return false;
      const Layer& P = net_.layers[size_t(T.producer)];
      if (!is_view_kind(P) || P.inputs.empty()) return false;
      const ExecValue& iv = g_.values[size_t(P.inputs[0])];
      if (v.dims != iv.dims && (half_layout(iv.dims) != ValueLayout::kLinear || half_layout(v.dims) != ValueLayout::kLinear))
        return false;
      t = P.inputs[0];
    }
    return false;
  }
  // Fusion happens between layers of one class: FP32 (0), native FP16 (1), and with
  // LowerPolicy::fuse_emulated emulated FP16 (2) and emulated INT8 (kInt8Class); otherwise
  // emulated layers never fuse (-1).
  static constexpr int kInt8Class = 3;
  int fuse_class(LayerId id) const {
    if (native_[size_t(id)]) return 1;
    const Precision p = precision_of(id);
    if (!emulated(p)) return 0;
    if (!pol_.fuse_emulated) return -1;
    return p == Precision::kFP16 ? 2 : kInt8Class;
  }
  // Whether a fused step of class cls may keep tensor t inside (no memory, no rounding): an INT8
  // block only where TensorRT keeps the tensor in FP32 (Numerics::unquantized).
  bool can_elide(int cls, TensorId t) const {
    return cls != kInt8Class || num_.unquantized.count(net_.tensors[size_t(t)].name) > 0;
  }
  // A scalar operand of layer id as the layer reads it unfused (through its rounded copy): the
  // link of a fused emulated chain takes it rounded so.
  float scalar_as_read(LayerId id, TensorId t, float v) const {
    const Precision p = precision_of(id);
    if (fuse_class(id) < 2 || !rounds(p, net_.tensors[size_t(t)])) return v;
    if (p == Precision::kFP16) return round_to_fp16(v);
    if (num_.per_channel_axis.count(net_.tensors[size_t(t)].name)) {
      fake_quant_int8_weights(&v, ChannelLayout{1, 1, 1});
      return v;
    }
    return fake_quant_int8(v, scale_of(net_.tensors[size_t(t)]));
  }

  void absorb(LayerId into, LayerId l) { absorber_[size_t(l)] = into; }

  // ---- 2. convolution epilogues: Scale, activations, hard-swish --------------------------------
  bool can_append(LayerId conv, const Epilogue& e) const {
    const auto& chain = epilogue_[size_t(conv)];
    if (e.kind == EpilogueKind::kActivation && pol_.conv_max_activations >= 0) {
      int n = 0;
      for (const Epilogue& x : chain) n += x.kind == EpilogueKind::kActivation;
      if (n >= pol_.conv_max_activations) return false;
    }
    return !pol_.conv_can_append || pol_.conv_can_append(net_, chain, e);
  }

  // A Scale the convolution's weights can absorb: uniform or per output channel, no power.
  bool foldable_scale(LayerId conv, const Layer& c, TensorId t) const {
    if (!pol_.conv_fold_scale || c.kind != LayerKind::kScale || c.inputs[0] != t) return false;
    // Not into an INT8 convolution: the Q/DQ export (and ONNX Runtime running it) keeps the BN
    // as a float node after the quantized convolution; folding reorders the float arithmetic and
    // moves INT8 roundings at midpoints away from it (tests/quant QdqAcceptance).
    if (fuse_class(conv) == kInt8Class) return false;
    for (const Epilogue& e : epilogue_[size_t(conv)])
      if (e.kind != EpilogueKind::kScale) return false;
    const auto& sp = c.as<ScaleParams>();
    if (sp.power >= 0 || sp.mode == ScaleMode::kElementwise) return false;
    return !(sp.mode == ScaleMode::kChannel && sp.channel_axis != 1);
  }

  // HardSwish after t: its two consumers are HardSigmoid(1/6, 1/2) and the product of t with it.
  bool match_hard_swish(TensorId t, LayerId* h_out, LayerId* m_out) const {
    LayerId h = -1, m = -1;
    for (LayerId c : cons_[size_t(t)]) {
      const Layer& cl = net_.layers[size_t(c)];
      if (cl.kind == LayerKind::kActivation && cl.as<ActivationParams>().type == ActivationType::kHardSigmoid) h = c;
      if (cl.kind == LayerKind::kElementWise && cl.as<ElementWiseParams>().op == ElementWiseOp::kProd) m = c;
    }
    if (h < 0 || m < 0) return false;
    const auto& ap = net_.layers[size_t(h)].as<ActivationParams>();
    TensorId ht = net_.layers[size_t(h)].outputs[0];
    const Layer& ml = net_.layers[size_t(m)];
    const Dims& d = net_.tensors[size_t(t)].dims;
    bool shape_ok = net_.tensors[size_t(ht)].dims == d && net_.tensors[size_t(ml.outputs[0])].dims == d;
    bool wiring = (ml.inputs[0] == t && ml.inputs[1] == ht) || (ml.inputs[1] == t && ml.inputs[0] == ht);
    if (!shape_ok || !wiring || cons_[size_t(ht)].size() != 1 || net_.tensors[size_t(ht)].is_output ||
        std::fabs(ap.alpha - 1.f / 6.f) > 1e-6f || std::fabs(ap.beta - 0.5f) > 1e-6f)
      return false;
    *h_out = h;
    *m_out = m;
    return true;
  }

  void plan_conv_epilogues() {
    for (LayerId id = 0; id < LayerId(net_.layers.size()); ++id) {
      const Layer& l = net_.layers[size_t(id)];
      if (!is_conv(l.kind) || fuse_class(id) < 0) continue;
      TensorId t = l.outputs[0];
      auto& epi = epilogue_[size_t(id)];
      for (;;) {
        if (net_.tensors[size_t(t)].is_output) break;
        const auto& cs = cons_[size_t(t)];
        if (!can_elide(fuse_class(id), t)) break;
        if (cs.size() == 1) {
          const Layer& c = net_.layers[size_t(cs[0])];
          if (fuse_class(cs[0]) != fuse_class(id)) break;
          Epilogue e;
          e.layers = {cs[0]};
          if (foldable_scale(id, c, t)) {
            e.kind = EpilogueKind::kScale;
          } else if (c.kind == LayerKind::kActivation && c.inputs.size() == 1) {
            e.kind = EpilogueKind::kActivation;
            if (!can_append(id, e)) break;
          } else {
            break;
          }
          epi.push_back(e);
          absorb(id, cs[0]);
          elided_[size_t(t)] = 1;
          t = c.outputs[0];
          continue;
        }
        LayerId h = -1, m = -1;
        if (cs.size() == 2 && pol_.conv_hard_swish && match_hard_swish(t, &h, &m) &&
            fuse_class(h) == fuse_class(id) && fuse_class(m) == fuse_class(id) &&
            can_elide(fuse_class(id), net_.layers[size_t(h)].outputs[0])) {
          Epilogue e{EpilogueKind::kHardSwish, {h, m}};
          if (!can_append(id, e)) break;
          epi.push_back(e);
          absorb(id, h);
          absorb(id, m);
          elided_[size_t(t)] = elided_[size_t(net_.layers[size_t(h)].outputs[0])] = 1;
          t = net_.layers[size_t(m)].outputs[0];
          continue;
        }
        break;
      }
      if (!epi.empty()) final_out_[size_t(id)] = t;
    }
  }

  // ---- 3. point-wise chains ---------------------------------------------------------------------
  // The value of a one-element float constant (through views), if t is one.
  bool scalar_of(TensorId t, float* v) const {
    for (int guard = 0; guard < 16; ++guard) {
      const Tensor& T = net_.tensors[size_t(t)];
      if (T.type != DataType::kFloat || volume(T.dims) != 1 || T.producer < 0) return false;
      const Layer& P = net_.layers[size_t(T.producer)];
      if (P.kind == LayerKind::kConstant) {
        WeightsId w = P.as<ConstantParams>().weights;
        if (w < 0 || w >= WeightsId(net_.weights.size()) || net_.weights[size_t(w)].count() != 1) return false;
        *v = float(net_.weights[size_t(w)].at(0));
        return true;
      }
      if (!is_view_kind(P) || P.inputs.empty()) return false;
      t = P.inputs[0];
    }
    return false;
  }
  static bool is_view_kind(const Layer& P) {
    return P.kind == LayerKind::kIdentity ||
           (P.kind == LayerKind::kShuffle && P.as<ShuffleParams>().first_transpose.empty() &&
            P.as<ShuffleParams>().second_transpose.empty());
  }

  // Layer id as one link of a chain whose running value is cur and whose input is x0.
  bool as_link(LayerId id, TensorId cur, TensorId x0, int cls, Epilogue* e) const {
    const Layer& L = net_.layers[size_t(id)];
    if (absorber_[size_t(id)] >= 0 || !epilogue_[size_t(id)].empty() || fuse_class(id) < 0 || fuse_class(id) != cls)
      return false;
    if (L.outputs.size() != 1) return false;
    const Tensor& O = net_.tensors[size_t(L.outputs[0])];
    if (O.type != DataType::kFloat || O.dims != net_.tensors[size_t(x0)].dims) return false;
    *e = Epilogue{};
    e->layers = {id};
    if (L.kind == LayerKind::kActivation) {
      if (L.inputs.size() != 1 || L.inputs[0] != cur) return false;
      e->kind = EpilogueKind::kActivation;
      return true;
    }
    if (L.kind != LayerKind::kElementWise || L.inputs.size() != 2) return false;
    if (int(L.as<ElementWiseParams>().op) > int(ElementWiseOp::kPow)) return false;  // Sum..Pow
    e->kind = EpilogueKind::kElementWise;
    TensorId a = L.inputs[0], b = L.inputs[1];
    if (a == cur && b == cur) return false;
    if (a == cur) {
      if (scalar_of(b, &e->scalar)) {
        e->scalar = scalar_as_read(id, b, e->scalar);
        return e->operand = EpilogueOperand::kScalarRight, true;
      }
      if (b == x0 && cur != x0) return e->operand = EpilogueOperand::kChainInputRight, true;
      return false;
    }
    if (b == cur) {
      if (scalar_of(a, &e->scalar)) {
        e->scalar = scalar_as_read(id, a, e->scalar);
        return e->operand = EpilogueOperand::kScalarLeft, true;
      }
      if (a == x0 && cur != x0) return e->operand = EpilogueOperand::kChainInputLeft, true;
    }
    return false;
  }

  // Each link's output has exactly one consumer, the next link; a chain has two links or more
  // (emulated layers: one or more).
  void plan_pointwise_chains() {
    for (LayerId id = 0; id < LayerId(net_.layers.size()); ++id) {
      if (absorber_[size_t(id)] >= 0) continue;
      const Layer& L = net_.layers[size_t(id)];
      if (L.outputs.size() != 1 || L.inputs.empty()) continue;
      TensorId x0 = -1;
      float v = 0.f;
      if (L.kind == LayerKind::kActivation) {
        x0 = L.inputs[0];
      } else if (L.kind == LayerKind::kElementWise && L.inputs.size() == 2) {
        if (scalar_of(L.inputs[1], &v)) x0 = L.inputs[0];
        else if (scalar_of(L.inputs[0], &v)) x0 = L.inputs[1];
      }
      if (x0 < 0 || elided_[size_t(x0)] || net_.tensors[size_t(x0)].type != DataType::kFloat) continue;
      std::vector<Epilogue> links(1);
      const int cls = fuse_class(id);
      if (!as_link(id, x0, x0, cls, &links[0])) continue;
      TensorId cur = L.outputs[0];
      while (int(links.size()) < pol_.max_pointwise_ops) {
        if (net_.tensors[size_t(cur)].is_output || cons_[size_t(cur)].size() != 1 || !can_elide(cls, cur)) break;
        LayerId nx = cons_[size_t(cur)][0];
        Epilogue e;
        if (!as_link(nx, cur, x0, cls, &e)) break;
        links.push_back(e);
        cur = net_.layers[size_t(nx)].outputs[0];
      }
      // One link is a chain too for an emulated layer (LowerPolicy::fuse_emulated): its scalar
      // is taken rounded (no copy step), its output rounding joins the pass, and it may run in
      // a convolution's epilogue.
      if (links.size() < 2 && cls < 2) continue;
      // An INT8 activation the backend runs on int8 codes (LowerPolicy::int8_native) stays a
      // layer step, so that codes flow through it (a chain reads and writes floats; same numbers).
      if (links.size() < 2 && cls == kInt8Class && L.kind == LayerKind::kActivation && pol_.int8_native &&
          pol_.int8_native(net_, id))
        continue;
      for (size_t k = 1; k < links.size(); ++k) absorb(id, links[k].layers[0]);
      for (size_t k = 0; k + 1 < links.size(); ++k) elided_[size_t(net_.layers[size_t(links[k].layers[0])].outputs[0])] = 1;
      chain_in_[size_t(id)] = x0;
      final_out_[size_t(id)] = cur;
      epilogue_[size_t(id)] = std::move(links);
    }
  }

  // LowerPolicy::conv_chain_capture: an FP32 convolution whose chain never reads its chain
  // input takes another chain after it; that chain's input is captured where it starts.
  bool can_take_second_chain(LayerId conv) const {
    if (!pol_.conv_chain_capture || (fuse_class(conv) != 0 && !int8_conv_chain(conv))) return false;
    const auto& epi = epilogue_[size_t(conv)];
    for (size_t i = size_t(chain_input_at_[size_t(conv)]); i < epi.size(); ++i)
      if (epi[i].operand == EpilogueOperand::kChainInputLeft || epi[i].operand == EpilogueOperand::kChainInputRight)
        return false;
    return true;
  }

  // LowerPolicy::int8_conv_fp16_chain: conv is an INT8 convolution that may take FP16 chains.
  bool int8_conv_chain(LayerId conv) const {
    return pol_.int8_conv_fp16_chain && fuse_class(conv) == kInt8Class;
  }
  // Whether INT8 convolution conv may take the FP16 chain starting at layer first, whose
  // output is out: only onto a per-tensor INT8 grid the step's output rounding requantizes to,
  // read by INT8 layers alone.
  // A chain ending on a tensor without a scale (PP-LCNetV3's * s + b before hard-swish) may
  // still go in when the FP16 chain reading that tensor alone, taken next, ends on a grid.
  bool int8_conv_takes_fp16_chain(LayerId conv, LayerId first, TensorId out, int depth = 0) const {
    if (!int8_conv_chain(conv) || fuse_class(first) != 2 || out < 0 || depth > 2) return false;
    const Tensor& T = net_.tensors[size_t(out)];
    if (T.is_output || T.type != DataType::kFloat || !rounds(Precision::kINT8, T) || num_.per_channel_axis.count(T.name))
      return false;
    // On a grid only when every reader is INT8 (rounds it to that grid anyway): an FP16 or FP32
    // reader keeps reading the chain's FP16 output.
    if (int8_grid_for_int8_readers(out)) return true;
    for (LayerId next = first + 1; next < LayerId(net_.layers.size()); ++next) {
      if (chain_in_[size_t(next)] != out) continue;
      for (LayerId c : cons_[size_t(out)]) {
        bool member = false;
        for (const Epilogue& e : epilogue_[size_t(next)]) member = member || e.layers[0] == c;
        if (!member) return false;
      }
      return int8_conv_takes_fp16_chain(conv, next, final_out_[size_t(next)], depth + 1);
    }
    return false;
  }

  // A chain reading a convolution's final output, and read by nothing else, runs in the
  // convolution's epilogue (no pass over that tensor, no launch).
  void absorb_chains_into_convs() {
    for (LayerId first = 0; first < LayerId(net_.layers.size()); ++first) {
      TensorId x0 = chain_in_[size_t(first)];
      if (x0 < 0) continue;
      const Tensor& X = net_.tensors[size_t(x0)];
      if (X.is_output || X.producer < 0) continue;
      const auto& links = epilogue_[size_t(first)];
      bool only_chain = true;
      for (LayerId c : cons_[size_t(x0)]) {
        bool member = false;
        for (const Epilogue& e : links) member = member || e.layers[0] == c;
        only_chain = only_chain && member;
      }
      if (!only_chain) continue;
      // The producer: the convolution, or the last layer of its epilogue (an activation; with
      // conv_chain_capture, for FP32 convolutions, also a folded Scale, hard-swish's product or
      // a chain's link: checked by can_take_second_chain). Emulated convolutions keep their
      // chain a step of its own there: its input is rounded as the step's output (the DLA
      // numerics of before).
      LayerId q = X.producer;
      const bool activation = net_.layers[size_t(q)].kind == LayerKind::kActivation;
      const LayerId a = absorber_[size_t(q)];
      LayerId conv =
          a >= 0 && (activation || (pol_.conv_chain_capture && (fuse_class(a) == 0 || int8_conv_chain(a)))) ? a : q;
      // An INT8 convolution takes an FP16 chain as TensorRT's INT8 Conv + activation layer
      // (LowerPolicy::int8_conv_fp16_chain): x0 stays float inside, one requantization at the end.
      const bool int8_fp16 = int8_conv_takes_fp16_chain(conv, first, final_out_[size_t(first)]);
      if (!is_conv(net_.layers[size_t(conv)].kind) || fuse_class(conv) < 0 ||
          (has_chain_[size_t(conv)] && !can_take_second_chain(conv)) ||
          (fuse_class(conv) != fuse_class(first) && !int8_fp16) || (!int8_fp16 && !can_elide(fuse_class(conv), x0)))
        continue;
      auto& epi = epilogue_[size_t(conv)];
      TensorId conv_out = epi.empty() ? net_.layers[size_t(conv)].outputs[0] : final_out_[size_t(conv)];
      if (conv_out != x0 || int(links.size() + epi.size()) > pol_.max_pointwise_ops) continue;
      chain_input_at_[size_t(conv)] = int(epi.size());
      has_chain_[size_t(conv)] = 1;
      for (const Epilogue& e : links) {
        epi.push_back(e);
        absorb(conv, e.layers[0]);
      }
      final_out_[size_t(conv)] = final_out_[size_t(first)];
      elided_[size_t(x0)] = 1;
      chain_in_[size_t(first)] = -1;
      epilogue_[size_t(first)].clear();
      final_out_[size_t(first)] = -1;
    }
  }

  // ---- 3b. real INT8: which values are stored as int8 codes (LowerPolicy::int8_native) ---------
  // A layer that may read or write codes: the backend runs it so, and it is a step of its own.
  // An INT8 convolution may carry the FP16 chain it took (int8_conv_fp16_chain): its epilogue
  // runs on the dequantized sums before the one requantization.
  bool int8_step(LayerId id) const {
    return pol_.int8_native(net_, id) && absorber_[size_t(id)] < 0 &&
           (epilogue_[size_t(id)].empty() || (int8_conv_chain(id) && has_chain_[size_t(id)])) &&
           chain_in_[size_t(id)] < 0 && net_.layers[size_t(id)].outputs.size() == 1;
  }
  // The layer whose step writes t: its producer, or the convolution that absorbed the producer
  // and ends in t.
  LayerId step_writing(TensorId t) const {
    const LayerId p = net_.tensors[size_t(t)].producer;
    const LayerId a = p >= 0 ? absorber_[size_t(p)] : -1;
    return a >= 0 && final_out_[size_t(a)] == t ? a : p;
  }
  // The layout of an int8 value: channels-last as a 4-d half value of the CUDA policy.
  static ValueLayout int8_layout(const Dims& d) {
    return d.size() == 4 && d[1] > 1 && d[2] * d[3] > 1 ? ValueLayout::kNHWC : ValueLayout::kLinear;
  }
  // Whether INT8 layer id's input has a per-tensor grid (its codes exist: a codes value, a codes
  // copy, or a float copy rounded to it), so that the layer can run on codes at all; an
  // unquantized input (inside a fused Conv + BN block) keeps the layer emulated.
  bool int8_input_on_grid(LayerId id) const {
    const Tensor& in = net_.tensors[size_t(net_.layers[size_t(id)].inputs[0])];
    return rounds(Precision::kINT8, in) && !num_.per_channel_axis.count(in.name) && num_.tensor_scales.count(in.name);
  }
  // Whether t may be stored as codes, before the activations' constraints (plan_native_int8).
  bool int8_candidate(TensorId t) const {
    const Tensor& T = net_.tensors[size_t(t)];
    if (T.type != DataType::kFloat || T.is_output || T.producer < 0 || g_.values[size_t(t)].constant ||
        cons_[size_t(t)].empty() || num_.unquantized.count(T.name) || num_.per_channel_axis.count(T.name))
      return false;
    auto sc = num_.tensor_scales.find(T.name);
    if (sc == num_.tensor_scales.end() || !(sc->second > 0.f) || !std::isfinite(sc->second)) return false;
    const LayerId p = step_writing(t);
    const bool p_int8 = precision_of(p) == Precision::kINT8;
    // The producer writes the value rounded to the grid: an INT8 layer's own output rounding,
    // or a native FP16 activation's (only for INT8 readers, which round it so anyway).
    if (!int8_step(p) || (!p_int8 && !(native_[size_t(p)] && net_.layers[size_t(p)].kind == LayerKind::kActivation)) ||
        (p_int8 && !int8_input_on_grid(p)))
      return false;
    for (LayerId c : cons_[size_t(t)]) {
      if (!int8_step(c)) return false;
      if (precision_of(c) == Precision::kINT8) continue;
      // A native FP16 activation reads q * scale rounded to half: exact only when the value is
      // the codes (an INT8 producer), and in the layout of its half output.
      if (!(p_int8 && native_[size_t(c)] && pol_.fp16_nhwc && net_.layers[size_t(c)].kind == LayerKind::kActivation))
        return false;
    }
    return true;
  }
  void plan_native_int8() {
    std::vector<char> codes(net_.tensors.size(), 0);
    for (TensorId t = 0; t < TensorId(net_.tensors.size()); ++t) codes[size_t(t)] = int8_candidate(t);
    // An activation writing codes reads codes (no float-to-code kernel); an INT8 activation
    // reading codes writes codes (its float output would be linear, its input channels-last).
    for (bool changed = true; changed;) {
      changed = false;
      for (LayerId id = 0; id < LayerId(net_.layers.size()); ++id) {
        const Layer& l = net_.layers[size_t(id)];
        if (l.kind != LayerKind::kActivation || l.inputs.size() != 1 || l.outputs.size() != 1 ||
            absorber_[size_t(id)] >= 0)  // (an absorbed one runs on the convolution's sums)
          continue;
        char& x = codes[size_t(l.inputs[0])];
        char& y = codes[size_t(l.outputs[0])];
        if (y && !x) y = 0, changed = true;
        if (x && !y && precision_of(id) == Precision::kINT8) x = 0, changed = true;
      }
    }
    for (TensorId t = 0; t < TensorId(net_.tensors.size()); ++t) {
      if (!codes[size_t(t)]) {
        if (int8_half_output(t)) {
          store_half(t);
          g_.values[size_t(t)].int8_scale = scale_of(net_.tensors[size_t(t)]);
        }
        continue;
      }
      ExecValue& v = g_.values[size_t(t)];
      v.storage = DataType::kInt8;
      v.precision = Precision::kINT8;
      v.int8_scale = scale_of(net_.tensors[size_t(t)]);
      v.layout = int8_layout(v.dims);
      v.bytes = int64_t(volume(v.dims));
    }
  }

  // An INT8 convolution's output read only by native FP16 layers: written as half on its grid.
  bool int8_half_output(TensorId t) const {
    const Tensor& T = net_.tensors[size_t(t)];
    if (!pol_.int8_half_boundaries || !pol_.fp16_nhwc || T.type != DataType::kFloat || T.is_output || T.producer < 0 ||
        cons_[size_t(t)].empty() || net_.layers[size_t(T.producer)].kind != LayerKind::kConvolution ||
        precision_of(T.producer) != Precision::kINT8 ||
        !int8_step(T.producer) || !int8_input_on_grid(T.producer) || !rounds(Precision::kINT8, T) ||
        num_.per_channel_axis.count(T.name))
      return false;
    for (LayerId c : cons_[size_t(t)])
      if (!native_[size_t(c)]) return false;
    return true;
  }
  // The codes an INT8 convolution reads for input v (float, or half channels-last): one round
  // step into a value stored as codes, shared by every such reader of v; -1 where the layer
  // reads a rounded float copy instead (not a codes-capable step, per-channel, an unquantized
  // tensor).
  ValueId int8_codes_input(ValueId v, LayerId id) {
    if (!pol_.int8_native || pol_.keep_all || precision_of(id) != Precision::kINT8 ||
        net_.layers[size_t(id)].kind != LayerKind::kConvolution || !int8_step(id))
      return -1;
    const ExecValue& val = g_.values[size_t(v)];
    const Tensor& t = net_.tensors[size_t(val.tensor)];
    const bool half_ok = val.float_as_half() && pol_.fp16_nhwc && pol_.int8_half_boundaries;
    if (val.type != DataType::kFloat || !(val.storage == DataType::kFloat || half_ok) || !rounds(Precision::kINT8, t) ||
        num_.per_channel_axis.count(t.name))
      return -1;
    if (auto it = codes_copies_.find(v); it != codes_copies_.end()) return it->second;
    ExecValue c = val;
    c.name += "@" + net_.layers[size_t(id)].name;
    c.constant = false;
    c.alias_of = -1;
    c.storage = DataType::kInt8;
    c.precision = Precision::kINT8;
    c.int8_scale = scale_of(t);
    c.layout = int8_layout(c.dims);
    c.bytes = int64_t(volume(c.dims));
    const TensorId tensor = val.tensor;  // `val` dangles once push_back reallocates
    g_.values.push_back(c);
    const ValueId copy = ValueId(g_.values.size() - 1);
    ExecStep r = round_step(id, Precision::kINT8, tensor, copy);
    r.inputs = {v};
    push(std::move(r));
    codes_copies_[v] = copy;
    return copy;
  }

  // ---- 4. views ---------------------------------------------------------------------------------
  void plan_views() {
    view_.assign(net_.layers.size(), 0);
    for (LayerId id = 0; id < LayerId(net_.layers.size()); ++id) {
      const Layer& L = net_.layers[size_t(id)];
      if (L.inputs.empty() || L.outputs.size() != 1 || !is_view_kind(L) || absorber_[size_t(id)] >= 0) continue;
      TensorId i = L.inputs[0], o = L.outputs[0];
      if (elided_[size_t(i)]) continue;
      // A view of a half value is half (not of a channels-last one reshaped, nor a network
      // output); an FP16 view of it rounds nothing, so it stays a view.
      const ExecValue& iv = g_.values[size_t(i)];
      const bool half_in = iv.storage == DataType::kHalf && iv.type == DataType::kFloat;
      if (emulated(precision_of(id)) && !(half_in && precision_of(id) == Precision::kFP16)) continue;
      if (half_in) {
        const ExecValue& ov = g_.values[size_t(o)];
        bool same = ov.dims == iv.dims ||
                    (iv.layout == ValueLayout::kLinear && half_layout(ov.dims) == ValueLayout::kLinear);
        if (!same || net_.tensors[size_t(o)].is_output || ov.type != DataType::kFloat) continue;
        store_half(o);
      }
      if (g_.values[size_t(i)].type != g_.values[size_t(o)].type || g_.values[size_t(i)].bytes != g_.values[size_t(o)].bytes)
        continue;
      g_.values[size_t(o)].alias_of = g_.root(i);
      view_[size_t(id)] = 1;
    }
  }

  // ---- 5. steps -----------------------------------------------------------------------------------
  // Whether an emulated layer rounds tensor t (inside a fused INT8 block TensorRT keeps FP32).
  bool rounds(Precision p, const Tensor& t) const {
    return t.type == DataType::kFloat && !(p == Precision::kINT8 && num_.unquantized.count(t.name));
  }

  ExecStep round_step(LayerId id, Precision p, TensorId t, ValueId to) const {
    ExecStep s;
    s.kind = StepKind::kRound;
    s.layer = id;
    s.precision = p;
    s.inputs = {t};
    s.outputs = {to};
    if (p == Precision::kFP16) return s;
    const Tensor& tt = net_.tensors[size_t(t)];
    s.rounding = Rounding::kInt8;
    s.scale = scale_of(tt);
    if (auto pc = num_.per_channel_axis.find(tt.name); to != t && pc != num_.per_channel_axis.end()) {
      s.rounding = Rounding::kInt8PerChannel;
      s.channels = tt.dims[size_t(pc->second)];
      for (size_t d = size_t(pc->second) + 1; d < tt.dims.size(); ++d) s.inner *= tt.dims[d];
    }
    return s;
  }

  void push(ExecStep s) {
    if (s.kind != StepKind::kRound) {
      g_.step_of_layer[size_t(s.layer)] = int(g_.steps.size());
      for (const Epilogue& e : s.epilogue)
        for (LayerId l : e.layers)
          if (l != s.layer) g_.absorbed_into[size_t(l)] = int(g_.steps.size());
    }
    g_.steps.push_back(std::move(s));
  }

  void emit_steps() {
    if (view_.empty()) view_.assign(net_.layers.size(), 0);
    grid_.assign(net_.tensors.size(), {Precision::kUnset, 0.f});
    for (TensorId t : net_.inputs) round_for_readers(t);
    for (LayerId id = 0; id < LayerId(net_.layers.size()); ++id) {
      const Layer& l = net_.layers[size_t(id)];
      if (l.kind == LayerKind::kConstant) {
        g_.constants.push_back(id);
        continue;
      }
      if (absorber_[size_t(id)] >= 0 || view_[size_t(id)]) continue;
      const Precision p = precision_of(id);
      ExecStep s;
      s.layer = id;
      s.precision = p;
      s.inputs.assign(l.inputs.begin(), l.inputs.end());
      s.outputs.assign(l.outputs.begin(), l.outputs.end());
      s.epilogue = epilogue_[size_t(id)];
      s.chain_input_at = chain_input_at_[size_t(id)];
      if (final_out_[size_t(id)] >= 0) s.outputs = {final_out_[size_t(id)]};
      if (chain_in_[size_t(id)] >= 0) {
        s.kind = StepKind::kPointwiseChain;
        s.inputs = {chain_in_[size_t(id)]};
      }
      if (!emulated(p) || native_[size_t(id)]) {
        for (ValueId& in : s.inputs)
          if (!g_.values[size_t(in)].int8_codes())  // codes: read as they are
            in = stored_as(in, native_[size_t(id)] ? DataType::kHalf : DataType::kFloat, id);
        const std::vector<ValueId> outs = s.outputs;
        push(std::move(s));
        for (ValueId o : outs) round_for_readers(o);
        continue;
      }
      // Emulated numerics: the float inputs are read through rounded copies (one per tensor),
      // the float outputs are rounded in place. A half input is read through its float copy
      // (already on the FP16 grid; INT8 rounds that copy).
      std::vector<std::pair<TensorId, ValueId>> copies;
      // Whether every input reaches the layer on p's grid by a rounding (INT8: of this one scale,
      // 0 until the first): then a layer that only moves or selects values writes them on it too.
      bool inputs_on_grid = true;
      float input_scale = 0.f;
      auto on_grid_by_rounding = [&](const Tensor& t) {
        if (p == Precision::kINT8 && !(input_scale == 0.f || input_scale == scale_of(t))) inputs_on_grid = false;
        if (p == Precision::kINT8) input_scale = scale_of(t);
      };
      for (ValueId& in : s.inputs) {
        if (g_.values[size_t(in)].int8_codes()) {  // the codes are its rounded input
          inputs_on_grid = false;
          continue;
        }
        if (const ValueId q = int8_codes_input(in, id); q >= 0) {
          in = q;
          inputs_on_grid = false;
          continue;
        }
        const Tensor& t = net_.tensors[size_t(in)];
        const bool half = g_.values[size_t(in)].float_as_half();
        if (!rounds(p, t) || (half && p == Precision::kFP16)) {
          in = stored_as(in, DataType::kFloat, id);
          inputs_on_grid = false;
          continue;
        }
        on_grid_by_rounding(t);
        if (on_grid(in, p, t)) continue;  // its producer rounded it so: a copy would equal it
        auto it = std::find_if(copies.begin(), copies.end(), [&](const auto& c) { return c.first == in; });
        if (it == copies.end()) {
          ExecStep r = round_step(id, p, in, add_copy(in, l, p));
          r.inputs[0] = stored_as(in, DataType::kFloat, id);
          copies.push_back({in, r.outputs[0]});
          push(std::move(r));
          it = copies.end() - 1;
        }
        in = it->second;
      }
      std::vector<ValueId> outs = s.outputs;
      const bool layer_alone = s.kind == StepKind::kLayer && s.epilogue.empty();  // no chain, no fused layers
      push(std::move(s));
      for (ValueId o : outs)
        if (rounds(p, net_.tensors[size_t(o)]) && !g_.values[size_t(o)].int8_codes() &&
            !g_.values[size_t(o)].half_of_int8()) {  // codes, half on the grid: rounded by the layer
          // Values moved or selected from inputs on the output's grid are on it: rounding them
          // again is the identity (FP16 rounding is idempotent, INT8 with one scale too: on_grid).
          if (inputs_on_grid && layer_alone && moves_values(l) &&
              (p == Precision::kFP16 || input_scale == scale_of(net_.tensors[size_t(o)]))) {
            grid_[size_t(o)] = {p, p == Precision::kFP16 ? 0.f : input_scale};
            continue;
          }
          ExecStep r = round_step(id, p, o, o);
          grid_[size_t(o)] = {p, r.scale};
          push(std::move(r));
        }
      for (ValueId o : outs) round_for_readers(o);
    }
  }

  // A layer whose outputs hold only values of its inputs (copied, moved, or one of them selected,
  // or zero, which every grid holds): Concatenation, nearest Resize, max pooling, ReLU, element-wise
  // max / min.
  static bool moves_values(const Layer& l) {
    if (l.kind == LayerKind::kConcatenation) return true;
    if (l.kind == LayerKind::kResize) return l.as<ResizeParams>().mode == ResizeMode::kNearest;
    if (l.kind == LayerKind::kPooling) return l.as<PoolingParams>().type == PoolingType::kMax;
    if (l.kind == LayerKind::kActivation) return l.as<ActivationParams>().type == ActivationType::kRelu;
    if (l.kind != LayerKind::kElementWise) return false;
    const ElementWiseOp op = l.as<ElementWiseParams>().op;
    return op == ElementWiseOp::kMax || op == ElementWiseOp::kMin;
  }

  // LowerPolicy::round_in_place: when every step reading value o (a network input, or a step's
  // output) is an emulated step that would round it into a copy of its own, all to one grid, o
  // is rounded in place right after its producer instead (the producer's step applies it: a
  // chain's last link, a pass after a convolution), and the readers find it on the grid. The
  // same bits as the copies; none of them is read unrounded (no network output, no view, no
  // FP32 reader).
  void round_for_readers(ValueId o) {
    if (!pol_.round_in_place || pol_.keep_all || pol_.fp16_native || pol_.int8_native) return;
    const ExecValue& val = g_.values[size_t(o)];
    if (val.alias_of >= 0 || val.tensor < 0 || val.type != DataType::kFloat || val.storage != DataType::kFloat ||
        val.int8_codes() || size_t(o) >= net_.tensors.size() || (size_t(o) < elided_.size() && elided_[size_t(o)]))
      return;
    if (std::find(net_.outputs.begin(), net_.outputs.end(), TensorId(o)) != net_.outputs.end()) return;
    const Tensor& t = net_.tensors[size_t(o)];
    Precision want = Precision::kUnset;
    LayerId first = -1;
    for (LayerId c : cons_[size_t(o)]) {
      const LayerId step = absorber_[size_t(c)] >= 0 ? absorber_[size_t(c)] : c;
      if (view_[size_t(c)] || view_[size_t(step)]) return;
      const Layer& sl = net_.layers[size_t(step)];
      const bool reads = chain_in_[size_t(step)] >= 0 ? chain_in_[size_t(step)] == TensorId(o)
                                                      : std::count(sl.inputs.begin(), sl.inputs.end(), TensorId(o)) > 0;
      const Precision p = precision_of(step);
      if (!reads || !emulated(p) || native_[size_t(step)] || !rounds(p, t)) return;
      if (p == Precision::kINT8 && num_.per_channel_axis.count(t.name)) return;  // per-channel copies
      if (want != Precision::kUnset && p != want) return;
      want = p;
      if (first < 0) first = step;
    }
    if (want == Precision::kUnset || on_grid(o, want, t)) return;
    ExecStep r = round_step(first, want, o, o);
    grid_[size_t(o)] = {want, r.scale};
    push(std::move(r));
  }

  // Whether value v (a tensor, or a view of one) already lies on the grid that layer precision p
  // would round tensor t to: its producer rounded it in place to p, INT8 with the same scale
  // (per tensor; per-channel copies are never skipped). Rounding to FP16 is idempotent, and so
  // is INT8 fake quantization with one scale (q * s / s is q again for |q| <= 128:
  // tests/lower), so the copy would hold the same bits.
  bool on_grid(ValueId v, Precision p, const Tensor& t) const {
    const ValueId r = g_.root(v);
    if (size_t(r) >= grid_.size() || grid_[size_t(r)].first != p) return false;
    if (p == Precision::kFP16) return true;
    return !num_.per_channel_axis.count(t.name) && scale_of(t) == grid_[size_t(r)].second;
  }

  // v as a value stored `want` (float: linear; half: half_layout): v itself, or its copy made by
  // one convert step before the first layer that needs it.
  ValueId stored_as(ValueId v, DataType want, LayerId consumer) {
    const ExecValue& val = g_.values[size_t(v)];
    if (val.type != DataType::kFloat || val.storage == want) return v;
    auto it = converts_.find({v, want});
    if (it != converts_.end()) return it->second;
    ExecValue c = val;
    c.name += want == DataType::kHalf ? "@fp16" : "@fp32";
    c.constant = false;
    c.alias_of = -1;
    c.storage = DataType::kFloat;
    c.layout = ValueLayout::kLinear;
    c.bytes = int64_t(volume(c.dims)) * int64_t(element_size(DataType::kFloat));
    g_.values.push_back(c);
    const ValueId copy = ValueId(g_.values.size() - 1);
    if (want == DataType::kHalf) store_half(copy);
    ExecStep s;
    s.kind = StepKind::kRound;
    s.layer = consumer;
    s.precision = Precision::kFP16;
    s.rounding = Rounding::kFp16;
    s.inputs = {v};
    s.outputs = {copy};
    push(std::move(s));
    converts_[{v, want}] = copy;
    return copy;
  }

  ValueId add_copy(TensorId t, const Layer& l, Precision p) {
    ExecValue v = g_.values[size_t(t)];
    v.name = v.name + "@" + l.name;
    v.precision = p;
    v.storage = v.type;  // a rounded copy is float, linear (its source may be stored as half)
    v.layout = ValueLayout::kLinear;
    v.bytes = int64_t(volume(v.dims)) * int64_t(element_size(v.type));
    v.constant = false;
    v.alias_of = -1;
    g_.values.push_back(v);
    return ValueId(g_.values.size() - 1);
  }

  // ---- 6. one arena: liveness over steps, greedy first fit, biggest first ----------------------
  void plan_memory() {
    const size_t nv = g_.values.size();
    std::vector<int> first(nv, INT_MAX), last(nv, -1);
    for (TensorId t : net_.inputs) first[size_t(t)] = -1;
    for (size_t s = 0; s < g_.steps.size(); ++s) {
      for (ValueId v : g_.steps[s].inputs) last[size_t(g_.root(v))] = std::max(last[size_t(g_.root(v))], int(s));
      for (ValueId v : g_.steps[s].outputs) {
        ValueId r = g_.root(v);
        first[size_t(r)] = std::min(first[size_t(r)], int(s));
        last[size_t(r)] = std::max(last[size_t(r)], int(s));
      }
    }
    for (TensorId t : net_.outputs) last[size_t(g_.root(t))] = INT_MAX;
    struct Block { ValueId v; int64_t size; int64_t off; };
    std::vector<Block> blocks;
    const int64_t a = std::max<int64_t>(pol_.alignment, 1);
    for (size_t v = 0; v < nv; ++v) {
      ExecValue& val = g_.values[v];
      if (val.constant) val.materialized = true;
      if (val.constant || val.alias_of >= 0 || first[v] == INT_MAX) continue;
      val.materialized = true;
      if (pol_.keep_all) first[v] = -1, last[v] = INT_MAX;
      blocks.push_back({ValueId(v), std::max((val.bytes + a - 1) / a * a, a), 0});
    }
    for (ExecValue& val : g_.values)
      if (val.alias_of >= 0) val.materialized = g_.values[size_t(val.alias_of)].materialized;
    std::stable_sort(blocks.begin(), blocks.end(), [](const Block& x, const Block& y) { return x.size > y.size; });
    std::vector<Block> placed;
    int64_t top = 0;
    for (Block& b : blocks) {
      std::vector<std::pair<int64_t, int64_t>> busy;
      for (const Block& p : placed)
        if (!(last[size_t(p.v)] < first[size_t(b.v)] || last[size_t(b.v)] < first[size_t(p.v)]))
          busy.push_back({p.off, p.off + p.size});
      std::sort(busy.begin(), busy.end());
      int64_t off = 0;
      for (auto& [s, e] : busy) {
        if (off + b.size <= s) break;
        off = std::max(off, e);
      }
      b.off = off;
      top = std::max(top, off + b.size);
      placed.push_back(b);
      g_.values[size_t(b.v)].offset = off;
    }
    g_.arena_bytes = top;
  }

  const Network& net_;
  const Numerics& num_;
  const LowerPolicy& pol_;
  std::vector<std::vector<LayerId>> cons_;
  ExecGraph g_;
  std::vector<LayerId> absorber_;               // layer -> the layer whose step absorbs it
  std::vector<std::vector<Epilogue>> epilogue_;  // per primary layer (chains: every link)
  std::vector<int> chain_input_at_;
  std::vector<TensorId> chain_in_;    // first layer of a standalone chain -> the chain's input
  std::vector<char> has_chain_;       // convolution -> a chain runs in its epilogue
  std::vector<TensorId> final_out_;   // primary layer -> its output after the epilogue (-1: own)
  std::vector<char> elided_;          // tensor inside a fused step: never materialized
  std::vector<char> view_;            // layer is a view (no step)
  std::vector<char> native_;          // layer computes in half (LowerPolicy::fp16_native)
  // tensor -> the grid its producer rounded it to in place (precision, INT8 scale); kUnset: none
  std::vector<std::pair<Precision, float>> grid_;
  std::map<std::pair<ValueId, DataType>, ValueId> converts_;  // value -> its copy stored otherwise
  std::map<ValueId, ValueId> codes_copies_;  // value -> its int8 codes for INT8 convolutions
};

}  // namespace

ExecGraph lower(const Network& net, const Numerics& numerics, const LowerPolicy& policy) {
  return Lowering(net, numerics, policy).run();
}

std::string describe(const Network& net, const ExecGraph& g) {
  std::string out;
  for (const ExecStep& s : g.steps) {
    const Layer& l = net.layers[size_t(s.layer)];
    out += l.name + " [" + std::string(s.kind == StepKind::kLayer ? to_string(l.kind) : to_string(s.kind));
    if (s.kind == StepKind::kRound) out += " " + std::string(to_string(s.rounding));
    out += "]";
    for (const Epilogue& e : s.epilogue)
      for (LayerId x : e.layers)
        if (x != s.layer) out += " +" + net.layers[size_t(x)].name;
    out += " (";
    for (size_t i = 0; i < s.inputs.size(); ++i) {
      if (i) out += ", ";
      out += g.values[size_t(s.inputs[i])].name;
    }
    out += ") -> ";
    for (size_t i = 0; i < s.outputs.size(); ++i) {
      if (i) out += ", ";
      out += g.values[size_t(s.outputs[i])].name;
    }
    out += "\n";
  }
  return out;
}

}  // namespace tandem
