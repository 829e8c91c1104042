// The CPU executor: compile (support check, numerics check, fusion, arena plan, kernels), run.
#include <sys/resource.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels.h"
#include "tandem/runtime.h"

namespace tandem {

namespace {

using cpu::Kernel;

bool is_float_kind(LayerKind k) {
  switch (k) {
    case LayerKind::kConvolution: case LayerKind::kDeconvolution: case LayerKind::kPooling:
    case LayerKind::kActivation: case LayerKind::kScale: case LayerKind::kSoftMax:
    case LayerKind::kMatrixMultiply: case LayerKind::kLRN: case LayerKind::kNormalization:
    case LayerKind::kParametricReLU: case LayerKind::kResize:
      return true;
    case LayerKind::kElementWise: case LayerKind::kConcatenation: case LayerKind::kShuffle:
    case LayerKind::kSlice: case LayerKind::kReduce: case LayerKind::kUnary: case LayerKind::kConstant:
    case LayerKind::kGather: case LayerKind::kIdentity: case LayerKind::kCast: case LayerKind::kSelect:
      return false;
  }
  return false;
}

std::string layer_desc(const Layer& l) {
  return "layer '" + l.name + "' (" + std::string(to_string(l.kind)) + ")";
}

Precision precision_of(const Numerics& n, LayerId id) {
  return size_t(id) < n.layer_precision.size() ? n.layer_precision[id] : Precision::kUnset;
}
bool emulated(Precision p) { return p == Precision::kINT8 || p == Precision::kFP16; }

// Per output channel, symmetric: scale = max|w| / 127 (channel k of `channels`, `inner` values
// each, `stride` apart between channel blocks: handles [K, ...] and [C, K/g, ...] layouts).
// Returns the scales (1 for an all-zero channel, as the Q/DQ export writes).
std::vector<float> quantize_per_channel(std::vector<float>& w, int64_t blocks, int64_t channels, int64_t inner) {
  std::vector<float> scales(size_t(channels), 1.f);
  for (int64_t k = 0; k < channels; ++k) {
    float m = 0.f;
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t i = 0; i < inner; ++i) m = std::max(m, std::fabs(w[(b * channels + k) * inner + i]));
    if (m == 0.f) continue;
    float scale = m / 127.f;
    scales[size_t(k)] = scale;
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t i = 0; i < inner; ++i) {
        float& v = w[(b * channels + k) * inner + i];
        v = fake_quant_int8_weight(v, scale);
      }
  }
  return scales;
}

// The bias of an INT8 convolution joins the INT32 accumulator: quantized to int32 with scale
// s_in * s_w[k] (round half to even), as the DLA adds it in its integer accumulator and as ONNX
// Runtime's WeightBiasQuantization (core/optimizer/qdq_transformer/weight_bias_quantization.h)
// does to a Q/DQ Conv, so the Q/DQ export runs the same arithmetic.
void quantize_bias(std::vector<float>& bias, float in_scale, const std::vector<float>& w_scales) {
  for (size_t k = 0; k < bias.size() && k < w_scales.size(); ++k) {
    const float s = in_scale * w_scales[k];
    if (s > 0.f && std::isfinite(s)) bias[k] = std::nearbyint(bias[k] / s) * s;
  }
}

std::vector<float> weights_f32(const Network& net, WeightsId id) {
  if (id < 0) return {};
  const Weights& w = net.weights[id];
  std::vector<float> v(w.count());
  for (int64_t i = 0; i < w.count(); ++i) v[i] = float(w.at(i));
  return v;
}

struct Step {
  LayerId layer;
  Kernel kernel;
  std::vector<void*> in, out;     // what the kernel sees (scratch copies when emulating)
  std::vector<void*> raw_in;      // the real input buffers
  Precision precision = Precision::kUnset;
  std::vector<float> in_scale, out_scale;   // INT8: per input / output (0: not float, skip)
  std::vector<int64_t> in_count, out_count;  // 0: not emulated (not float, or unquantized)
  std::vector<int64_t> in_channels, in_inner;  // INT8 per-channel weights: channels, inner size
  std::vector<std::vector<float>> scratch;  // per input, emulation only
};

class CpuExecutor : public Executor {
 public:
  CpuExecutor(const Network& net, const ExecOptions& opt, bool keep_all)
      : threads_(opt.threads), keep_all_(keep_all) {
    net.verify();
    std::string why = cpu_unsupported_reason(net);
    if (!why.empty()) throw Error(why);
    cpu::set_threads(threads_);
    const Numerics& num = opt.numerics;
    check_numerics(net, num);
    size_t nt = net.tensors.size();
    tensors_.resize(nt);
    for (size_t i = 0; i < nt; ++i) tensors_[i] = {net.tensors[i].name, net.tensors[i].type, net.tensors[i].dims, {}};
    inputs_ = net.inputs;
    outputs_ = net.outputs;

    // ---- Fusion: conv [+ Scale] [+ activations] -> one oneDNN primitive ----------------------
    auto consumers = net.consumers();
    std::vector<bool> fused_away(net.layers.size(), false);  // absorbed into an earlier layer
    std::vector<bool> elided(nt, false);                     // never materialised
    std::vector<cpu::ConvSpec> conv_specs(net.layers.size());
    std::vector<TensorId> final_out(net.layers.size(), -1);
    auto conv_scratch = std::make_shared<cpu::ConvScratch>();
    for (LayerId id = 0; id < LayerId(net.layers.size()); ++id) {
      const Layer& l = net.layers[id];
      if (l.kind != LayerKind::kConvolution && l.kind != LayerKind::kDeconvolution) continue;
      cpu::ConvSpec& s = conv_specs[id];
      const auto& p = l.as<ConvolutionParams>();
      s.layer = &l;
      s.scratch = conv_scratch;
      s.in_dims = net.tensors[l.inputs[0]].dims;
      s.out_dims = net.tensors[l.outputs[0]].dims;
      s.kernel = weights_f32(net, p.kernel_weights);
      s.bias = weights_f32(net, p.bias_weights);
      Precision prec = precision_of(num, id);
      int64_t K = s.out_dims[1];
      if (prec == Precision::kINT8) {
        int64_t inner = 1;
        for (int64_t k : p.kernel) inner *= k;
        std::vector<float> w_scales(size_t(K), 1.f);
        if (l.kind == LayerKind::kConvolution) {
          w_scales = quantize_per_channel(s.kernel, 1, K, int64_t(s.kernel.size()) / K);
        } else {  // [C, K/g, k...]: output channel = group * K/g + j
          int64_t g = p.groups, C = s.in_dims[1], kg = K / g;
          std::vector<float> w = s.kernel;
          // Quantize per output channel across all input channels of its group.
          for (int64_t gi = 0; gi < g; ++gi)
            for (int64_t j = 0; j < kg; ++j) {
              float m = 0.f;
              for (int64_t c = gi * (C / g); c < (gi + 1) * (C / g); ++c)
                for (int64_t i = 0; i < inner; ++i) m = std::max(m, std::fabs(w[(c * kg + j) * inner + i]));
              if (m == 0.f) continue;
              w_scales[size_t(gi * kg + j)] = m / 127.f;
              for (int64_t c = gi * (C / g); c < (gi + 1) * (C / g); ++c)
                for (int64_t i = 0; i < inner; ++i) {
                  float& v = s.kernel[(c * kg + j) * inner + i];
                  v = fake_quant_int8_weight(v, m / 127.f);
                }
            }
        }
        const std::string& in_name = net.tensors[l.inputs[0]].name;
        if (!num.unquantized.count(in_name)) quantize_bias(s.bias, num.tensor_scales.at(in_name), w_scales);
      } else if (prec == Precision::kFP16) {
        for (float& v : s.kernel) v = round_to_fp16(v);
        for (float& v : s.bias) v = round_to_fp16(v);
      }
      TensorId t = l.outputs[0];
      final_out[id] = t;
      if (!opt.fuse || opt.reference_kernels || keep_all || emulated(prec)) continue;
      for (;;) {
        const Tensor& tt = net.tensors[t];
        if (tt.is_output) break;
        const auto& cs = consumers[t];
        if (cs.size() == 1) {
          const Layer& c = net.layers[cs[0]];
          if (emulated(precision_of(num, cs[0]))) break;
          if (c.kind == LayerKind::kScale && s.post_ops.empty() && c.inputs[0] == t) {
            const auto& sp = c.as<ScaleParams>();
            if (sp.power >= 0 || sp.mode == ScaleMode::kElementwise) break;
            if (sp.mode == ScaleMode::kChannel && sp.channel_axis != 1) break;
            std::vector<float> sc = weights_f32(net, sp.scale), sh = weights_f32(net, sp.shift);
            int64_t per = int64_t(s.kernel.size()) / K;
            if (s.bias.empty()) s.bias.assign(K, 0.f);
            if (l.kind == LayerKind::kConvolution) {
              for (int64_t k = 0; k < K; ++k) {
                float a = sc.empty() ? 1.f : sc[sc.size() == 1 ? 0 : k];
                float b = sh.empty() ? 0.f : sh[sh.size() == 1 ? 0 : k];
                for (int64_t i = 0; i < per; ++i) s.kernel[k * per + i] *= a;
                s.bias[k] = s.bias[k] * a + b;
              }
            } else {
              int64_t g = p.groups, kg = K / g, inner = 1;
              for (int64_t k : p.kernel) inner *= k;
              int64_t C = s.in_dims[1];
              for (int64_t c = 0; c < C; ++c)
                for (int64_t j = 0; j < kg; ++j) {
                  int64_t k = (c / (C / g)) * kg + j;
                  float a = sc.empty() ? 1.f : sc[sc.size() == 1 ? 0 : k];
                  for (int64_t i = 0; i < inner; ++i) s.kernel[(c * kg + j) * inner + i] *= a;
                }
              for (int64_t k = 0; k < K; ++k) {
                float a = sc.empty() ? 1.f : sc[sc.size() == 1 ? 0 : k];
                float b = sh.empty() ? 0.f : sh[sh.size() == 1 ? 0 : k];
                s.bias[k] = s.bias[k] * a + b;
              }
            }
            fused_away[cs[0]] = true;
            elided[t] = true;
            t = c.outputs[0];
            continue;
          }
          if (c.kind == LayerKind::kActivation) {
            cpu::PostOp po{cpu::PostOp::kActivation, c.as<ActivationParams>()};
            if (!cpu::dnnl_can_append_post_op(s.post_ops, po)) break;
            s.post_ops.push_back(po);
            fused_away[cs[0]] = true;
            elided[t] = true;
            t = c.outputs[0];
            continue;
          }
          break;
        }
        // HardSwish: y = t * HardSigmoid(t) with alpha 1/6, beta 1/2.
        if (cs.size() == 2) {
          LayerId h = -1, m = -1;
          for (LayerId c : cs) {
            const Layer& cl = net.layers[c];
            if (cl.kind == LayerKind::kActivation && cl.as<ActivationParams>().type == ActivationType::kHardSigmoid) h = c;
            if (cl.kind == LayerKind::kElementWise && cl.as<ElementWiseParams>().op == ElementWiseOp::kProd) m = c;
          }
          if (h < 0 || m < 0 || emulated(precision_of(num, h)) || emulated(precision_of(num, m))) break;
          const auto& ap = net.layers[h].as<ActivationParams>();
          TensorId ht = net.layers[h].outputs[0];
          const Layer& ml = net.layers[m];
          bool shape_ok = net.tensors[ht].dims == tt.dims && net.tensors[ml.outputs[0]].dims == tt.dims;
          bool wiring = (ml.inputs[0] == t && ml.inputs[1] == ht) || (ml.inputs[1] == t && ml.inputs[0] == ht);
          if (!shape_ok || !wiring || consumers[ht].size() != 1 || net.tensors[ht].is_output ||
              std::fabs(ap.alpha - 1.f / 6.f) > 1e-6f || std::fabs(ap.beta - 0.5f) > 1e-6f)
            break;
          s.post_ops.push_back({cpu::PostOp::kHardSwish, {}});
          fused_away[h] = fused_away[m] = true;
          elided[t] = elided[ht] = true;
          t = ml.outputs[0];
          continue;
        }
        break;
      }
      final_out[id] = t;
    }

    // ---- Constants: evaluated once, stored outside the arena -----------------------------------
    std::vector<bool> is_const(nt, false);
    for (LayerId id = 0; id < LayerId(net.layers.size()); ++id) {
      const Layer& l = net.layers[id];
      if (l.kind != LayerKind::kConstant) continue;
      TensorId t = l.outputs[0];
      is_const[t] = true;
      const_store_.emplace_back(size_t(volume(net.tensors[t].dims)) * element_size(net.tensors[t].type) + 1);
      tensors_[t].ptr = const_store_.back().data();
      Kernel k = cpu::make_ref_kernel(net, l, net.weights);
      k({}, {tensors_[t].ptr});
    }

    // ---- Arena: liveness over steps, greedy first fit by size --------------------------------
    std::vector<LayerId> order;
    for (LayerId id = 0; id < LayerId(net.layers.size()); ++id)
      if (!fused_away[id] && net.layers[id].kind != LayerKind::kConstant) order.push_back(id);
    std::vector<int> first(nt, INT_MAX), last(nt, -1);
    for (TensorId t : net.inputs) first[t] = -1;
    for (size_t s = 0; s < order.size(); ++s) {
      const Layer& l = net.layers[order[s]];
      for (TensorId t : l.inputs) last[t] = std::max(last[t], int(s));
      TensorId o0 = (l.kind == LayerKind::kConvolution || l.kind == LayerKind::kDeconvolution)
                        ? final_out[order[s]] : -1;
      if (o0 >= 0) first[o0] = std::min(first[o0], int(s)), last[o0] = std::max(last[o0], int(s));
      for (TensorId t : l.outputs)
        if (o0 < 0) first[t] = std::min(first[t], int(s)), last[t] = std::max(last[t], int(s));
    }
    for (TensorId t : net.outputs) last[t] = INT_MAX;
    struct Block { TensorId t; int64_t size; int64_t off; };
    std::vector<Block> blocks;
    for (TensorId t = 0; t < TensorId(nt); ++t) {
      if (is_const[t] || elided[t] || first[t] == INT_MAX) continue;
      if (keep_all) last[t] = INT_MAX, first[t] = -1;
      int64_t bytes = (int64_t(volume(net.tensors[t].dims)) * int64_t(element_size(net.tensors[t].type)) + 63) / 64 * 64;
      blocks.push_back({t, std::max<int64_t>(bytes, 64), 0});
    }
    std::stable_sort(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) { return a.size > b.size; });
    std::vector<Block> placed;
    int64_t arena_bytes = 0;
    for (Block& b : blocks) {
      std::vector<std::pair<int64_t, int64_t>> busy;
      for (const Block& p : placed)
        if (!(last[p.t] < first[b.t] || last[b.t] < first[p.t])) busy.push_back({p.off, p.off + p.size});
      std::sort(busy.begin(), busy.end());
      int64_t off = 0;
      for (auto& [s, e] : busy) {
        if (off + b.size <= s) break;
        off = std::max(off, e);
      }
      b.off = off;
      arena_bytes = std::max(arena_bytes, off + b.size);
      placed.push_back(b);
    }
    arena_bytes_ = arena_bytes;
    arena_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, size_t(std::max<int64_t>(arena_bytes, 64)))));
    if (!arena_) throw Error("cannot allocate the CPU arena (" + std::to_string(arena_bytes) + " bytes)");
    for (const Block& b : placed) tensors_[b.t].ptr = arena_.get() + b.off;

    // ---- Kernels ---------------------------------------------------------------------------
    for (LayerId id : order) {
      const Layer& l = net.layers[id];
      Step s;
      s.layer = id;
      s.precision = precision_of(num, id);
      std::vector<Weights> rounded;  // FP16 layers: weights rounded (Scale)
      const std::vector<Weights>* weights = &net.weights;
      if (s.precision == Precision::kFP16 && l.kind == LayerKind::kScale) {
        rounded = net.weights;
        for (WeightsId w : {l.as<ScaleParams>().scale, l.as<ScaleParams>().shift, l.as<ScaleParams>().power})
          if (w >= 0 && rounded[w].type == DataType::kFloat)
            for (int64_t i = 0; i < rounded[w].count(); ++i) rounded[w].f32()[i] = round_to_fp16(rounded[w].f32()[i]);
        weights = &rounded;
      }
      // The reference: plain loops for every layer; a convolution's prepared (rounded) weights
      // replace the layer's own in a copy of the weights.
      if (opt.reference_kernels && (l.kind == LayerKind::kConvolution || l.kind == LayerKind::kDeconvolution)) {
        rounded = net.weights;
        const auto& cp = l.as<ConvolutionParams>();
        auto put = [&](WeightsId w, const std::vector<float>& v) {
          if (w < 0) return;
          Weights& dst = rounded[w];
          dst.type = DataType::kFloat;
          dst.bytes.resize(v.size() * sizeof(float));
          std::memcpy(dst.bytes.data(), v.data(), dst.bytes.size());
        };
        put(cp.kernel_weights, conv_specs[id].kernel);
        put(cp.bias_weights, conv_specs[id].bias);
        weights = &rounded;
      }
      try {
        if (opt.reference_kernels) {
          s.kernel = cpu::make_ref_kernel(net, l, *weights);
        } else switch (l.kind) {
          case LayerKind::kConvolution:
          case LayerKind::kDeconvolution:
            s.kernel = cpu::make_conv_kernel(conv_specs[id]);
            break;
          case LayerKind::kMatrixMultiply:
            s.kernel = cpu::make_matmul_kernel(net, l);
            break;
          case LayerKind::kPooling: case LayerKind::kActivation: case LayerKind::kElementWise:
          case LayerKind::kScale: case LayerKind::kConcatenation: case LayerKind::kResize:
          case LayerKind::kShuffle: case LayerKind::kSlice: case LayerKind::kSoftMax:
          case LayerKind::kReduce: case LayerKind::kUnary: case LayerKind::kConstant:
          case LayerKind::kParametricReLU: case LayerKind::kLRN: case LayerKind::kGather:
          case LayerKind::kIdentity: case LayerKind::kCast: case LayerKind::kNormalization:
          case LayerKind::kSelect:
            s.kernel = cpu::make_ref_kernel(net, l, *weights);
            break;
        }
      } catch (const dnnl::error& e) {
        throw Error(layer_desc(l) + ": oneDNN cannot create the primitive (" + e.what() + ")");
      }
      for (TensorId t : l.inputs) s.raw_in.push_back(tensors_[t].ptr);
      s.in = s.raw_in;
      TensorId fo = final_out[id];
      for (TensorId t : l.outputs) s.out.push_back(tensors_[fo >= 0 ? fo : t].ptr);
      if (emulated(s.precision)) setup_emulation(net, num, l, s);
      steps_.push_back(std::move(s));
    }
  }

  TensorMap run(const TensorMap& inputs) override {
    cpu::set_threads(threads_);
    for (TensorId t : inputs_) {
      const Slot& s = tensors_[t];
      auto it = inputs.find(s.name);
      if (it == inputs.end()) throw Error("missing input '" + s.name + "' (" + dims_to_string(s.dims) + " " + std::string(to_string(s.type)) + ")");
      const HostTensor& h = it->second;
      if (h.type != s.type)
        throw Error("input '" + s.name + "': expected " + std::string(to_string(s.type)) + ", got " + std::string(to_string(h.type)));
      if (h.dims != s.dims)
        throw Error("input '" + s.name + "': expected shape " + dims_to_string(s.dims) + ", got " + dims_to_string(h.dims));
      if (h.data.size() != size_t(volume(s.dims)) * element_size(s.type))
        throw Error("input '" + s.name + "': " + std::to_string(h.data.size()) + " bytes for shape " + dims_to_string(s.dims));
      std::memcpy(s.ptr, h.data.data(), h.data.size());
    }
    for (Step& s : steps_) {
      if (s.precision == Precision::kINT8 || s.precision == Precision::kFP16) pre(s);
      s.kernel(s.in, s.out);
      if (s.precision == Precision::kINT8 || s.precision == Precision::kFP16) post(s);
    }
    TensorMap out;
    for (TensorId t : outputs_) out[tensors_[t].name] = to_host(t);
    if (keep_all_) {
      all_.clear();
      for (TensorId t = 0; t < TensorId(tensors_.size()); ++t)
        if (tensors_[t].ptr) all_[tensors_[t].name] = to_host(t);
    }
    return out;
  }

  const TensorMap& all_tensors() const override { return all_; }
  std::string backend_name() const override { return "cpu"; }

 private:
  struct Slot {
    std::string name;
    DataType type;
    Dims dims;
    uint8_t* ptr = nullptr;
  };
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };

  // Which inputs / outputs of an emulated layer are rounded, and how (per tensor, per channel).
  static void setup_emulation(const Network& net, const Numerics& num, const Layer& l, Step& s) {
    const bool int8 = s.precision == Precision::kINT8;
    // Inside a fused INT8 block TensorRT keeps FP32: those tensors are not rounded at all.
    auto rounded = [&](const Tensor& t) {
      return t.type == DataType::kFloat && !(int8 && num.unquantized.count(t.name));
    };
    for (size_t i = 0; i < l.inputs.size(); ++i) {
      const Tensor& t = net.tensors[l.inputs[i]];
      const bool f = rounded(t);
      s.in_count.push_back(f ? volume(t.dims) : 0);
      s.in_scale.push_back(f && int8 ? num.tensor_scales.at(t.name) : 0.f);
      int64_t channels = 0, inner = 1;
      if (auto pc = num.per_channel_axis.find(t.name); f && int8 && pc != num.per_channel_axis.end()) {
        const int axis = pc->second;
        channels = t.dims[axis];
        for (size_t d = size_t(axis) + 1; d < t.dims.size(); ++d) inner *= t.dims[d];
      }
      s.in_channels.push_back(channels);
      s.in_inner.push_back(inner);
      s.scratch.emplace_back(f ? size_t(volume(t.dims)) : 0);
      if (f) s.in[i] = s.scratch.back().data();
    }
    for (TensorId o : l.outputs) {
      const Tensor& t = net.tensors[o];
      const bool f = rounded(t);
      s.out_count.push_back(f ? volume(t.dims) : 0);
      s.out_scale.push_back(f && int8 ? num.tensor_scales.at(t.name) : 0.f);
    }
  }

  void check_numerics(const Network& net, const Numerics& num) {
    if (num.layer_precision.size() > net.layers.size())
      throw Error("numerics: " + std::to_string(num.layer_precision.size()) + " layer precisions for a network of " +
                  std::to_string(net.layers.size()) + " layers");
    for (LayerId id = 0; id < LayerId(net.layers.size()); ++id) {
      Precision p = precision_of(num, id);
      if (p == Precision::kFP8)
        throw Error(layer_desc(net.layers[id]) + ": FP8 numerics are not emulated by the CPU backend");
      if (p != Precision::kINT8) continue;
      const Layer& l = net.layers[id];
      for (const auto* list : {&l.inputs, &l.outputs})
        for (TensorId t : *list) {
          const Tensor& tt = net.tensors[t];
          if (tt.type != DataType::kFloat || num.unquantized.count(tt.name)) continue;
          auto it = num.tensor_scales.find(tt.name);
          if (it == num.tensor_scales.end())
            throw Error("tensor '" + tt.name + "' (" + (list == &l.inputs ? "input" : "output") + " of INT8 layer '" +
                        l.name + "') has no INT8 scale");
          if (!(it->second > 0.f) || !std::isfinite(it->second))
            throw Error("tensor '" + tt.name + "': INT8 scale " + std::to_string(it->second) + " is not a positive number");
        }
    }
  }

  static void emulate(float* x, int64_t n, Precision p, float scale) {
    if (p == Precision::kINT8) {
      float inv = scale;
      for (int64_t i = 0; i < n; ++i) x[i] = fake_quant_int8(x[i], inv);
    } else {
      for (int64_t i = 0; i < n; ++i) x[i] = round_to_fp16(x[i]);
    }
  }
  // Weights used as a tensor (FC / MatMul B): symmetric per output channel, as TensorRT
  // quantizes the weights of fully connected layers; channel c holds the elements whose index
  // satisfies (i / inner) % channels == c.
  static void quantize_channels(float* x, int64_t n, int64_t channels, int64_t inner) {
    std::vector<float> amax(size_t(channels), 0.f);
    for (int64_t i = 0; i < n; ++i) {
      float& m = amax[size_t((i / inner) % channels)];
      m = std::max(m, std::fabs(x[i]));
    }
    for (int64_t i = 0; i < n; ++i) {
      float m = amax[size_t((i / inner) % channels)];
      if (m > 0.f) x[i] = fake_quant_int8_weight(x[i], m / 127.f);
    }
  }
  void pre(Step& s) {
    for (size_t i = 0; i < s.raw_in.size(); ++i) {
      if (s.in_count[i] == 0) continue;
      std::memcpy(s.in[i], s.raw_in[i], size_t(s.in_count[i]) * sizeof(float));
      float* x = static_cast<float*>(s.in[i]);
      if (s.precision == Precision::kINT8 && s.in_channels[i] > 0)
        quantize_channels(x, s.in_count[i], s.in_channels[i], s.in_inner[i]);
      else
        emulate(x, s.in_count[i], s.precision, s.in_scale[i]);
    }
  }
  void post(Step& s) {
    for (size_t i = 0; i < s.out.size(); ++i)
      if (s.out_count[i]) emulate(static_cast<float*>(s.out[i]), s.out_count[i], s.precision, s.out_scale[i]);
  }

  HostTensor to_host(TensorId t) const {
    const Slot& s = tensors_[t];
    HostTensor h;
    h.name = s.name;
    h.type = s.type;
    h.dims = s.dims;
    h.data.assign(s.ptr, s.ptr + size_t(volume(s.dims)) * element_size(s.type));
    return h;
  }

  int threads_;
  bool keep_all_;
  std::vector<Slot> tensors_;
  std::vector<TensorId> inputs_, outputs_;
  std::vector<std::vector<uint8_t>> const_store_;
  std::unique_ptr<uint8_t, FreeDeleter> arena_;
  int64_t arena_bytes_ = 0;
  std::vector<Step> steps_;
  TensorMap all_;
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
        bool ok = t == DataType::kFloat || op == UnaryOp::kAbs || op == UnaryOp::kNeg ||
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
      case LayerKind::kSelect:
        break;
    }
  }
  return "";
}

std::unique_ptr<Executor> make_cpu_executor(const Network& net, const ExecOptions& opt, bool keep_all) {
  return std::make_unique<CpuExecutor>(net, opt, keep_all);
}

int64_t peak_rss_kib() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace tandem
