// NVIDIA's DLA layer rules, one data table per target and one check per layer kind. Source keys
// (S1..S22) and implementation notes: docs/dla-rules-impl.md.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "tandem/dla.h"

namespace tandem {

namespace {

template <class E>
constexpr uint32_t bits(std::initializer_list<E> es) {
  uint32_t m = 0;
  for (E e : es) m |= 1u << static_cast<unsigned>(e);
  return m;
}
template <class E>
bool has(uint32_t mask, E e) {
  return (mask >> static_cast<unsigned>(e)) & 1u;
}

// ---- The two targets --------------------------------------------------------------------------
// Orin: Jetson Orin, JetPack 6, TensorRT 8.6.2, DLA 3.14.1 (S10 pairing table).
const DlaTargetInfo kOrin{
    DlaTarget::kOrin, "orin", "8.6 (JetPack 6, DLA 3.14)", 8602,
    8600,  // calibration header TRT-8600-... (S14)
    16,    // loadables per core, 8.5+ docs (S1, S9)
    2,     // DLA cores on AGX Orin (S10 README)
    4096,  // max DLA batch (S1)
    8192,  // max non-batch dim (S1, S6)
    true,  // trtexec --layerDeviceTypes: 8.6+ (S7)
    DlaLimits{
        4096, 8192,                            // S1
        32, 8, 31, 32, 8192, 8192,             // conv kernel, stride, pad, dilation, K, groups (S5)
        16,                                    // CBUF banks (S8 formula, S11 "CBUF validation")
        32, 32, {64, 96, 128}, 23, 32, 8192,   // deconv (S5; square 23-32 off: S8, S9)
        8, 16, 7,                              // pooling window, stride, padding (S5)
        true,                                  // AVG exclusive padding allowed on Orin (S5 8.4-8.6)
        bits({ActivationType::kRelu, ActivationType::kSigmoid, ActivationType::kTanh,
              ActivationType::kClip, ActivationType::kLeakyRelu}),  // S1, S8, S9
        1, 127,                                // clip upper bound [1,127] (S8, S9)
        // SUM, SUB, PROD, MAX (S5). MIN: NvInfer.h lists it, the Orin operator matrix says "See
        // RFE" at JetPack 5.1.1 and JetPack 6 (S10): conflict, so the conservative "no".
        // DIV/POW: native only from TRT 8.6.12 (S10); TRT 8.6.2 rejects them (S16 #16449).
        bits({ElementWiseOp::kSum, ElementWiseOp::kSub, ElementWiseOp::kProd, ElementWiseOp::kMax}),
        // Equal native from TRT 8.5.2 on Orin; Greater/Less only from 8.6.12 (DRIVE) (S10).
        bits({ElementWiseOp::kEqual}),
        bits({UnaryOp::kAbs}),                 // ABS only; SIN/COS/ATANH from 8.6.12 DRIVE (S5, S10)
        {3, 5, 7, 9},                          // LRN windows (S5)
        32, 4,                                 // resize nearest / linear scale max (S5)
        true, 8192, 1024,                      // SoftMax on Orin; accurate / optimized classes (S5)
        true,                                  // Shuffle: Reshape/Transpose native (S10)
        false,                                 // reshape beside Slice/Concat split off (S16)
        0,                                     // Reduce MAX: native only from TRT 8.6.12 (S10)
    }};

// Xavier: Jetson AGX Xavier / Xavier NX, JetPack 5.1, TensorRT 8.5.2 (last JetPack for Xavier).
const DlaTargetInfo kXavier{
    DlaTarget::kXavier, "xavier", "8.5 (JetPack 5.1, DLA 1.0)", 8502,
    8500,   // calibration header TRT-8500-... (format S6; the number itself unverified)
    16,     // loadables per core (S1, S9: 8.5 guide)
    2,      // DLA cores on AGX Xavier (S10 README)
    4096, 8192,
    false,  // trtexec 8.5 has no --layerDeviceTypes (S7, S14)
    DlaLimits{
        4096, 8192,
        32, 8, 31, 32, 8192, 8192,
        16,
        32, 32, {64, 96, 128}, 23, 32, 8192,
        8, 16, 7,
        false,  // Xavier: AVG pooling inclusive padding only (S5 8.4-8.6 "On Xavier")
        bits({ActivationType::kRelu, ActivationType::kSigmoid, ActivationType::kTanh,
              ActivationType::kClip, ActivationType::kLeakyRelu}),
        1, 127,
        // SUB is emulated (Scale + Sum) on Xavier (S8), still accepted; MIN: NvInfer.h 8.5 and the
        // 8.5 guide (S5, S9), and the Orin-only matrix does not speak for Xavier; DIV/POW: no (S10).
        bits({ElementWiseOp::kSum, ElementWiseOp::kSub, ElementWiseOp::kProd, ElementWiseOp::kMax,
              ElementWiseOp::kMin}),
        0,      // Comparison: no source covers Xavier (S10 is Orin only): unverified, so "no"
        bits({UnaryOp::kAbs}),
        {3, 5, 7, 9},
        32, 4,
        false, 8192, 1024,  // SoftMax not supported on Xavier (S5 8.4-8.6, S9)
        false,              // Shuffle: no source covers Xavier (S10 is Orin only): unverified
        false,              // (Shuffle is rejected anyway)
        0,                  // Reduce: "See RFE" even on Orin with TRT 8.5.2 (S10)
    }};

struct Checker {
  const Network& net;
  const Layer& L;
  const DlaTargetInfo& T;
  const DlaLimits& lim;
  bool int8;
  Support s;

  template <class... A>
  void fail(fmt::format_string<A...> f, A&&... a) {
    // "<layer>: <first failure>; <second failure>; ..." (notes of an earlier "yes" are dropped).
    if (s.ok) s.reason = L.name + ": ";
    else s.reason += "; ";
    s.ok = false;
    s.reason += fmt::format(f, std::forward<A>(a)...);
  }
  template <class... A>
  void note(fmt::format_string<A...> f, A&&... a) {
    if (!s.ok) return;
    if (!s.reason.empty()) s.reason += "; ";
    s.reason += fmt::format(f, std::forward<A>(a)...);
  }

  const Tensor& in(size_t i = 0) const { return net.tensors[L.inputs.at(i)]; }
  const Tensor& out(size_t i = 0) const { return net.tensors[L.outputs.at(i)]; }
  std::string_view kind() const { return to_string(L.kind); }

  void range2(std::string_view what, const Dims& d, int64_t lo, int64_t hi, std::string_view layer) {
    if (d.size() != 2) {
      fail("{} has {} dims; DLA {} supports 2 spatial dims only", what, d.size(), layer);
      return;
    }
    for (int64_t v : d)
      if (v < lo || v > hi) {
        fail("{} {} outside DLA {} limit [{},{}]", what, dims_to_string(d), layer, lo, hi);
        return;
      }
  }

  // Which rank a layer's rule asks for. kAtLeast4: the general reading (S1 "2D only" layers;
  // TensorRT inserts a non-DLA shuffle before a tensor of fewer than 4 dims, S16 #23488), with
  // the dims before the last three folded into the DLA batch (S1: NPQRS -> batch N*P).
  // kExactly4: a layer whose own rule says 4-D (Slice: S5). kFullyConnected: 2-D [M, K]
  // operands, checked by matrix_multiply itself.
  enum class Rank : uint8_t { kAtLeast4, kExactly4, kFullyConnected };

  // General restrictions (S1, S5, S6): FP16/INT8 tensor types, static shapes, the layer's rank
  // rule, DLA batch <= max_batch, every non-batch dim <= max_dim. bool_ok: the one tensor that
  // may be BOOL (a comparison's output, and the Cast that reads it: S1).
  void general(Rank rank, TensorId bool_ok = -1) {
    auto check_tensor = [&](TensorId id, std::string_view role) {
      const Tensor& t = net.tensors[id];
      switch (t.type) {
        case DataType::kFloat:
        case DataType::kHalf:
        case DataType::kInt8: break;
        case DataType::kBool:
          if (id == bool_ok) break;
          [[fallthrough]];
        case DataType::kUInt8:
        case DataType::kInt32:
        case DataType::kInt64:
        // No bfloat16 either: the DLA computes FP16 and INT8 only (S1); TensorRT's
        // DataType::kBF16 is a GPU type.
        case DataType::kBFloat16:
          fail("{} '{}' is {}; DLA runs FP16 and INT8 only", role, t.name, to_string(t.type));
          return;
      }
      for (int64_t d : t.dims)
        if (d <= 0) {
          fail("{} '{}' has dynamic shape {}; DLA needs static shapes", role, t.name,
               dims_to_string(t.dims));
          return;
        }
      const size_t r = t.dims.size();
      switch (rank) {
        case Rank::kAtLeast4:
          if (r < 4) {
            fail("{} '{}' has rank {} ({}); DLA needs at least 4 dims (batch dims, C, H, W)", role,
                 t.name, r, dims_to_string(t.dims));
            return;
          }
          break;
        case Rank::kExactly4:
          if (r != 4) {
            fail("{} '{}' has rank {} ({}); DLA {} needs 4-D tensors", role, t.name, r,
                 dims_to_string(t.dims), kind());
            return;
          }
          break;
        case Rank::kFullyConnected: break;
      }
      if (r >= 3) {
        int64_t batch = 1;
        for (size_t i = 0; i + 3 < r; ++i) batch *= t.dims[i];
        if (batch > T.max_batch)
          fail("{} '{}' DLA batch {} exceeds limit {}", role, t.name, batch, T.max_batch);
        for (size_t i = r - 3; i < r; ++i)
          if (t.dims[i] > T.max_dim) {
            fail("{} '{}' dim {} = {} exceeds DLA limit {}", role, t.name, i, t.dims[i], T.max_dim);
            break;
          }
      } else {
        for (int64_t d : t.dims)
          if (d > T.max_dim) {
            fail("{} '{}' dim {} exceeds DLA limit {}", role, t.name, d, T.max_dim);
            break;
          }
      }
    };
    for (TensorId id : L.inputs) check_tensor(id, "input");
    for (TensorId id : L.outputs) check_tensor(id, "output");
  }

  // Layers reading tensor t (the network is small enough for a scan per question).
  std::vector<LayerId> consumers(TensorId t) const {
    std::vector<LayerId> r;
    for (LayerId i = 0; i < static_cast<LayerId>(net.layers.size()); ++i)
      for (TensorId in : net.layers[i].inputs)
        if (in == t) {
          r.push_back(i);
          break;
        }
    return r;
  }

  void fp16_only(std::string_view what) {
    if (int8) fail("{} runs on DLA in FP16 only, not INT8", what);
  }

  // CBUF heuristic (S8 pseudo-code; S11: TRT 8.6 "CBUF validation").
  void cbuf(int64_t c, int64_t kh, int64_t kw, int64_t w, int64_t dil_h) {
    const double bpe = int8 ? 1.0 : 2.0;
    auto round_up = [](double v, double m) { return std::ceil(v / m) * m; };
    const auto wt_banks =
        static_cast<int64_t>(std::ceil(round_up(double(c) * kh * kw * bpe, 128) / 32768.0));
    const auto entries = static_cast<int64_t>(std::ceil(std::ceil(double(c) * bpe / 32.0) * double(w) / 4.0));
    const int64_t dil_kh = (kh - 1) * dil_h + 1;
    const auto data_banks = static_cast<int64_t>(std::ceil(double(entries) * double(dil_kh) / 256.0));
    if (wt_banks + data_banks > lim.cbuf_banks)
      fail("CBUF needs {} weight + {} data banks = {} > {} (input C={}, W={}, kernel {}x{})", wt_banks,
           data_banks, wt_banks + data_banks, lim.cbuf_banks, c, w, kh, kw);
  }

  void convolution() {
    general(Rank::kAtLeast4);
    const auto& p = L.as<ConvolutionParams>();
    range2("kernel", p.kernel, 1, lim.conv_kernel_max, "convolution");
    range2("stride", p.stride, 1, lim.conv_stride_max, "convolution");
    range2("dilation", p.dilation, 1, lim.conv_dilation_max, "convolution");
    for (const Dims* pad : {&p.pre_padding, &p.post_padding}) {
      const char* which = pad == &p.pre_padding ? "pre-padding" : "post-padding";
      if (pad->size() != 2) continue;
      for (size_t i = 0; i < 2; ++i) {
        const int64_t v = (*pad)[i];
        if (v < 0 || v > lim.conv_pad_max) {
          fail("{} {} outside DLA convolution limit [0,{}]", which, v, lim.conv_pad_max);
          break;
        }
        if (p.kernel.size() == 2 && v >= p.kernel[i]) {
          fail("{} {} must be less than kernel {} on DLA convolution", which, v, p.kernel[i]);
          break;
        }
      }
    }
    if (p.out_maps < 1 || p.out_maps > lim.conv_out_maps_max)
      fail("output maps {} outside DLA limit [1,{}]", p.out_maps, lim.conv_out_maps_max);
    if (p.groups < 1 || p.groups > lim.conv_groups_max)
      fail("groups {} outside DLA limit [1,{}]", p.groups, lim.conv_groups_max);
    if (s.ok && in().dims.size() == 4 && p.kernel.size() == 2 && p.dilation.size() == 2)
      cbuf(in().dims[1], p.kernel[0], p.kernel[1], in().dims[3], p.dilation[0]);
  }

  void deconvolution() {
    general(Rank::kAtLeast4);
    const auto& p = L.as<ConvolutionParams>();
    auto allowed = [&](const Dims& d, int64_t max, std::string_view what) {
      if (d.size() != 2) {
        fail("{} has {} dims; DLA deconvolution supports 2 spatial dims only", what, d.size());
        return;
      }
      auto is_long = [&](int64_t v) {
        return std::find(lim.deconv_long_sizes.begin(), lim.deconv_long_sizes.end(), v) !=
               lim.deconv_long_sizes.end();
      };
      const bool plain = d[0] >= 1 && d[0] <= max && d[1] >= 1 && d[1] <= max;
      const bool lng = (d[0] == 1 && is_long(d[1])) || (d[1] == 1 && is_long(d[0]));
      if (!plain && !lng) {
        fail("{} {} outside DLA deconvolution limit [1,{}] (or 1x{{64,96,128}})", what,
             dims_to_string(d), max);
        return;
      }
      if (d[0] == d[1] && d[0] >= lim.deconv_square_off_lo && d[0] <= lim.deconv_square_off_hi)
        fail("square {} {} in [{},{}] is disabled on DLA deconvolution", what, dims_to_string(d),
             lim.deconv_square_off_lo, lim.deconv_square_off_hi);
    };
    allowed(p.kernel, lim.deconv_kernel_max, "kernel");
    allowed(p.stride, lim.deconv_stride_max, "stride");
    for (const Dims* pad : {&p.pre_padding, &p.post_padding})
      for (int64_t v : *pad)
        if (v != 0) {
          fail("padding {} must be 0 on DLA deconvolution", v);
          goto pad_done;
        }
  pad_done:
    for (int64_t v : p.dilation)
      if (v != 1) {
        fail("dilation {} must be 1 on DLA deconvolution", v);
        break;
      }
    if (p.groups != 1) fail("groups {} must be 1 on DLA deconvolution", p.groups);
    if (p.out_maps < 1 || p.out_maps > lim.deconv_channels_max)
      fail("output channels {} outside DLA limit [1,{}]", p.out_maps, lim.deconv_channels_max);
    if (in().dims.size() == 4 && (in().dims[1] < 1 || in().dims[1] > lim.deconv_channels_max))
      fail("input channels {} outside DLA limit [1,{}]", in().dims[1], lim.deconv_channels_max);
  }

  void pooling() {
    general(Rank::kAtLeast4);
    const auto& p = L.as<PoolingParams>();
    range2("window", p.window, 1, lim.pool_window_max, "pooling");
    range2("stride", p.stride, 1, lim.pool_stride_max, "pooling");
    bool padded = false;
    for (const Dims* pad : {&p.pre_padding, &p.post_padding})
      for (int64_t v : *pad) {
        if (v > 0) padded = true;
        if (v < 0 || v > lim.pool_pad_max) {
          fail("padding {} outside DLA pooling limit [0,{}]", v, lim.pool_pad_max);
          goto pad_done;
        }
      }
  pad_done:
    if (p.type == PoolingType::kAverage && padded && p.average_count_excludes_padding &&
        !lim.pool_avg_exclusive_padding)
      fail("average pooling excludes padding (count_include_pad=0); DLA on {} supports inclusive "
           "padding only", T.name);
    if (s.ok && int8 && int8_equal_range_tensors(net, L).tensors.size() >= 2) {
      s.int8_equal_ranges = true;
      note("INT8: input and output ranges must be equal");
    }
  }

  void activation() {
    general(Rank::kAtLeast4);
    const auto& p = L.as<ActivationParams>();
    if (!has(lim.activations, p.type)) {
      fail("activation {} not supported on DLA (ReLU, Sigmoid, TanH, Clip, LeakyReLU only)",
           to_string(p.type));
      return;
    }
    if (p.type == ActivationType::kClip) {
      if (p.alpha != 0.f)
        fail("clip lower bound {} must be 0 on DLA (clipped ReLU)", p.alpha);
      if (p.beta < lim.clip_max_lo || p.beta > lim.clip_max_hi)
        fail("clip upper bound {} outside DLA limit [{},{}]", p.beta, lim.clip_max_lo, lim.clip_max_hi);
    }
    if (s.ok && int8 && (p.type == ActivationType::kSigmoid || p.type == ActivationType::kTanh))
      note("INT8 {} runs as FP16 inside DLA", to_string(p.type));
  }

  void prelu() {
    general(Rank::kAtLeast4);
    if (L.inputs.size() < 2 || !is_constant_tensor(net, L.inputs[1])) {
      fail("slopes must be a build-time constant on DLA");
      return;
    }
    if (in(1).dims.size() != in(0).dims.size())
      fail("slopes rank {} must equal input rank {} on DLA", in(1).dims.size(), in(0).dims.size());
  }

  // Broadcast rule (8.6 guide, unverified): the other operand equal, [batch, C, 1, 1] or
  // [batch, 1, 1, 1]; the batch dims (all but the last three) must match.
  void broadcast() {
    if (L.inputs.size() != 2) return;
    const Dims& a = in(0).dims;
    const Dims& b = in(1).dims;
    if (a.size() < 4 || a.size() != b.size() || a == b) return;
    auto ok_pair = [](const Dims& full, const Dims& o) {
      const size_t c = full.size() - 3;
      for (size_t i = 0; i < c; ++i)
        if (o[i] != full[i]) return false;
      return (o[c] == full[c] || o[c] == 1) && o[c + 1] == 1 && o[c + 2] == 1;
    };
    if (!ok_pair(a, b) && !ok_pair(b, a))
      fail("broadcast {} with {} not supported on DLA (NCHW, NC11 or N111 only)",
           dims_to_string(a), dims_to_string(b));
  }

  // Why an op left out of the target's table is "no": the version that brings it, or the
  // conflict between sources (docs/dla-rules-impl.md, items 2 and 7).
  std::string_view op_gate(ElementWiseOp op) const {
    switch (op) {
      case ElementWiseOp::kDiv:
      case ElementWiseOp::kPow:
      case ElementWiseOp::kGreater:
      case ElementWiseOp::kLess:
        return T.target == DlaTarget::kOrin ? "native only from TensorRT 8.6.12 (DRIVE OS 6.0.9)"
                                            : "NvInfer.h 8.5 lists only kSUM, kPROD, kMAX, kMIN "
                                              "and kSUB for DLA";
      case ElementWiseOp::kMin:
        return "NvInfer.h lists kMIN for DLA but NVIDIA's Orin operator matrix marks Min 'See RFE' "
               "(not exposed through TensorRT); sources conflict, unverified";
      case ElementWiseOp::kEqual:
        return "the operator matrix lists Equal as native on Orin only; Xavier unverified";
      case ElementWiseOp::kSum:
      case ElementWiseOp::kSub:
      case ElementWiseOp::kProd:
      case ElementWiseOp::kMax:
      case ElementWiseOp::kFloorDiv:
      case ElementWiseOp::kAnd:
      case ElementWiseOp::kOr:
      case ElementWiseOp::kXor: break;
    }
    return "not in the DLA op list";
  }

  static bool is_comparison(ElementWiseOp op) {
    return op == ElementWiseOp::kEqual || op == ElementWiseOp::kGreater || op == ElementWiseOp::kLess;
  }
  // A Cast that DLA can run as the comparison's output conversion: to FP16 or INT8 (S1).
  static bool is_dla_cast(const Layer& l) {
    return l.kind == LayerKind::kCast &&
           (l.as<CastParams>().to == DataType::kHalf || l.as<CastParams>().to == DataType::kInt8);
  }

  // Comparison (S1: INT8 only, "output must be cast to FP16/INT8 immediately"; S10: which ops).
  // The BOOL output is allowed because the Cast right after it converts it on the DLA.
  void comparison(ElementWiseOp op) {
    if (!has(lim.comparison_ops, op)) {
      fail("comparison {} not supported on DLA for {} (TensorRT {}): {}", to_string(op), T.name,
           T.tensorrt, op_gate(op));
      return;
    }
    general(Rank::kAtLeast4, L.outputs.at(0));
    if (!int8) fail("comparison {} runs on DLA in INT8 only, not FP16", to_string(op));
    broadcast();
    if (out().is_output)
      fail("output '{}' is a network output; DLA needs it cast to FP16/INT8 immediately", out().name);
    const std::vector<LayerId> users = consumers(L.outputs.at(0));
    if (users.empty() && !out().is_output)
      fail("output '{}' has no consumer; DLA needs it cast to FP16/INT8 immediately", out().name);
    for (LayerId u : users) {
      const Layer& c = net.layers[u];
      if (!is_dla_cast(c)) {
        fail("output consumer '{}' is {}, not a Cast to FP16/INT8; DLA needs the cast immediately",
             c.name, c.kind == LayerKind::kCast
                         ? fmt::format("a Cast to {}", to_string(c.as<CastParams>().to))
                         : std::string(to_string(c.kind)));
        break;
      }
    }
    if (s.ok) note("output cast to FP16/INT8 by the next layer, as DLA requires");
  }

  // Cast: DLA runs it only as the FP16/INT8 conversion right after a DLA comparison (S1).
  void cast() {
    const Tensor& x = in();
    const LayerId p = x.producer;
    const bool after_cmp = p >= 0 && net.layers[p].kind == LayerKind::kElementWise &&
                           is_comparison(net.layers[p].as<ElementWiseParams>().op);
    if (!after_cmp) {
      fail("Cast has no DLA support (only as the FP16/INT8 cast right after a DLA comparison)");
      return;
    }
    if (!is_dla_cast(L)) {
      fail("cast to {} after comparison '{}'; DLA casts a comparison output to FP16/INT8 only",
           to_string(L.as<CastParams>().to), net.layers[p].name);
      return;
    }
    const Support cmp = check_layer(
        net, p, DlaOptions{T.target, int8 ? DlaPrecision::kInt8 : DlaPrecision::kFp16});
    if (!cmp.ok) {
      fail("comparison '{}' before this cast does not run on DLA", net.layers[p].name);
      return;
    }
    general(Rank::kAtLeast4, L.inputs.at(0));
    if (s.ok) note("runs with comparison '{}' on DLA", net.layers[p].name);
  }

  void elementwise() {
    const auto op = L.as<ElementWiseParams>().op;
    if (is_comparison(op)) {
      comparison(op);
      return;
    }
    general(Rank::kAtLeast4);
    if (!has(lim.elementwise_ops, op)) {
      fail("DLA cores do not support {} ElementWise operation on {} (TensorRT {}): {}",
           to_string(op), T.name, T.tensorrt, op_gate(op));
      return;
    }
    broadcast();
    if (!s.ok) return;
    if (op == ElementWiseOp::kSub && T.target == DlaTarget::kXavier)
      note("SUB is emulated as Scale + Sum on Xavier");
    if (int8 && int8_equal_range_tensors(net, L).tensors.size() >= 2) {
      s.int8_equal_ranges = true;
      note("INT8: input ranges must be equal");
    }
  }

  void scale() {
    general(Rank::kAtLeast4);
    const auto& p = L.as<ScaleParams>();
    if (p.power >= 0) {
      const Weights& w = net.weights.at(p.power);
      for (int64_t i = 0; i < w.count(); ++i)
        if (w.at(i) != 1.0) {
          fail("power {} must be 1 on DLA scale (scale and shift only)", w.at(i));
          break;
        }
    }
  }

  void lrn() {
    general(Rank::kAtLeast4);
    const auto w = L.as<LRNParams>().window;
    if (std::find(lim.lrn_windows.begin(), lim.lrn_windows.end(), w) == lim.lrn_windows.end())
      fail("window {} not supported on DLA LRN (3, 5, 7 or 9)", w);
    if (s.ok && int8) note("INT8 LRN runs as FP16 inside DLA");
  }

  void concatenation() {
    general(Rank::kAtLeast4);
    const auto axis = L.as<ConcatenationParams>().axis;
    const int rank = static_cast<int>(out().dims.size());
    if (L.inputs.size() < 2) fail("concatenation on DLA requires at least two inputs");
    if (axis != rank - 3)
      fail("concatenation axis {} must be the channel axis {} on DLA", axis, rank - 3);
    if (s.ok) {
      for (size_t i = 1; i < L.inputs.size(); ++i) {
        const Dims& a = in(0).dims;
        const Dims& b = in(i).dims;
        const size_t r = a.size();
        if (r >= 4 && b.size() == r && (a[r - 2] != b[r - 2] || a[r - 1] != b[r - 1])) {
          fail("inputs have different spatial dims {} and {} on DLA concatenation", dims_to_string(a),
               dims_to_string(b));
          break;
        }
      }
    }
    if (s.ok && int8 && int8_equal_range_tensors(net, L).tensors.size() >= 2) {
      s.int8_equal_ranges = true;
      note("INT8: all input ranges must equal the output range");
    }
  }

  void resize() {
    general(Rank::kAtLeast4);
    const auto& p = L.as<ResizeParams>();
    if (p.scales.empty()) {
      fail("output size given instead of scales (setOutputDimensions is not supported on DLA)");
      return;
    }
    if (p.scales.size() != 4) {
      fail("{} scales; DLA resize needs exactly 4", p.scales.size());
      return;
    }
    if (p.scales[0] != 1.f || p.scales[1] != 1.f)
      fail("scales {}x{} on N and C must be 1 on DLA resize", p.scales[0], p.scales[1]);
    const int64_t max = p.mode == ResizeMode::kNearest ? lim.resize_nearest_max : lim.resize_linear_max;
    for (int i = 2; i < 4; ++i) {
      const float v = p.scales[i];
      if (v != std::floor(v)) {
        fail("scale {} must be an integer on DLA resize", v);
        break;
      }
      if (v < 1 || v > max) {
        fail("{} scale {} outside DLA limit [1,{}]", to_string(p.mode), v, max);
        break;
      }
    }
    using CT = ResizeCoordinateTransform;
    using RR = ResizeRounding;
    using SE = ResizeSelector;
    switch (p.mode) {
      case ResizeMode::kNearest: {
        const bool ok = p.selector == SE::kFormula &&
                        ((p.transform == CT::kAsymmetric && p.rounding == RR::kFloor) ||
                         (p.transform == CT::kHalfPixel &&
                          (p.rounding == RR::kHalfDown || p.rounding == RR::kHalfUp)));
        if (!ok)
          fail("nearest ({}, {}, {}) not supported on DLA (asymmetric+formula+floor or "
               "half_pixel+formula+half_down/half_up)",
               to_string(p.transform), to_string(p.selector), to_string(p.rounding));
        break;
      }
      case ResizeMode::kLinear:
        if (p.transform != CT::kHalfPixel)
          fail("linear coordinate transform {} not supported on DLA (half_pixel only)",
               to_string(p.transform));
        break;
      case ResizeMode::kCubic: fail("cubic resize not supported on DLA (nearest, linear only)"); break;
    }
  }

  void slice() {
    general(Rank::kExactly4);  // NvInfer.h: "The input tensor has four dimensions" (S5)
    fp16_only("slice");
    const auto& p = L.as<SliceParams>();
    if (L.inputs.size() > 1) fail("start/size/stride given as tensors; DLA slice must be static");
    if (p.mode != SliceMode::kDefault)
      fail("slice mode {} must be DEFAULT on DLA (no out-of-bounds slicing)", to_string(p.mode));
    for (int64_t v : p.stride)
      if (v != 1) {
        fail("stride {} must be 1 on DLA slice", v);
        break;
      }
    const Dims& d = in().dims;
    if (!d.empty() && !p.start.empty() && !p.size.empty() && (p.start[0] != 0 || p.size[0] != d[0]))
      fail("slicing the batch dimension is not supported on DLA");
  }

  void softmax() {
    if (!lim.softmax) {
      fail("SoftMax is not supported on DLA on {}", T.name);
      return;
    }
    general(Rank::kAtLeast4);
    fp16_only("softmax");
    const uint32_t axes = L.as<SoftMaxParams>().axes;
    const Dims& d = in().dims;
    const int r = static_cast<int>(d.size());
    if (r < 4) return;
    int axis = -1;
    for (int i = 0; i < r; ++i)
      if (axes & (1u << i)) axis = i;
    // S5: the axis is the channel or a spatial dim, i.e. one of the last three (not batch).
    if (axis < r - 3) {
      fail("softmax axis {} must be C, H or W (axis {}..{}) on DLA", axis, r - 3, r - 1);
      return;
    }
    bool others_one = true;
    for (int i = r - 3; i < r; ++i)
      if (i != axis && d[i] != 1) others_one = false;
    if (others_one && d[axis] > lim.softmax_accurate_max)
      fail("softmax axis size {} exceeds DLA limit {}", d[axis], lim.softmax_accurate_max);
    if (!others_one && d[axis] > lim.softmax_optimized_max)
      fail("softmax axis size {} exceeds DLA limit {} when other non-batch dims are > 1", d[axis],
           lim.softmax_optimized_max);
  }

  // Shuffle: the operator matrix lists Reshape and Transpose as native on Orin (S10) without a
  // precision or rank; FP16-only and 4-D are kept from the 8.6 guide as recalled (unverified).
  void shuffle() {
    if (!lim.shuffle) {
      fail("Shuffle on {} (TensorRT {}): the operator matrix lists Reshape/Transpose as native on "
           "Orin only, no source covers this target; rejected, unverified",
           T.name, T.tensorrt);
      return;
    }
    general(Rank::kExactly4);
    if (int8) fail("shuffle runs on DLA in FP16 only, not INT8 (unverified: no source gives its precision)");
    const auto& p = L.as<ShuffleParams>();
    if ((!p.first_transpose.empty() && p.first_transpose[0] != 0) ||
        (!p.second_transpose.empty() && p.second_transpose[0] != 0))
      fail("transpose moves the batch dimension; not supported on DLA");
    if (p.reshape && !p.reshape->empty() && !in().dims.empty() && (*p.reshape)[0] != in().dims[0])
      fail("reshape changes the batch dimension {} -> {}; not supported on DLA", in().dims[0],
           (*p.reshape)[0]);
    if (p.reshape && !lim.reshape_beside_slice_concat) reshape_neighbours();
  }

  // TensorRT on Orin: "This version of DLA does not support reshape layers directly connected
  // to Slice or Concat", then splits the reshape off the DLA subgraph (S16 ultralytics#18012).
  void reshape_neighbours() {
    auto slice_or_concat = [](const Layer& l) {
      return l.kind == LayerKind::kSlice || l.kind == LayerKind::kConcatenation;
    };
    const LayerId p = in().producer;
    if (p >= 0 && slice_or_concat(net.layers[p])) {
      fail("reshape directly after {} '{}'; DLA on {} (TensorRT {}) splits it off the DLA subgraph",
           to_string(net.layers[p].kind), net.layers[p].name, T.name, T.tensorrt);
      return;
    }
    for (LayerId c : consumers(L.outputs.at(0)))
      if (slice_or_concat(net.layers[c])) {
        fail("reshape directly before {} '{}'; DLA on {} (TensorRT {}) splits it off the DLA "
             "subgraph", to_string(net.layers[c].kind), net.layers[c].name, T.name, T.tensorrt);
        return;
      }
  }

  // Reduce: GlobalMaxPool (Reduce MAX) is native on Orin only from TensorRT 8.6.12, "See RFE"
  // with TensorRT 8.5.2 (S10); neither table has it. The rest is the 8.6 guide (unverified).
  void reduce() {
    const auto& p = L.as<ReduceParams>();
    if (!has(lim.reduce_ops, p.op)) {
      fail("Reduce {} not supported on DLA on {} (TensorRT {}): {}", to_string(p.op), T.name,
           T.tensorrt,
           p.op == ReduceOp::kMax
               ? (T.target == DlaTarget::kOrin
                      ? "Reduce MAX is native only from TensorRT 8.6.12 (DRIVE OS 6.0.9); a "
                        "MaxPool with window <= 8 is the DLA alternative"
                      : "ReduceMax/GlobalMaxPool are 'See RFE' with TensorRT 8.5")
               : "only Reduce MAX is listed, and only from TensorRT 8.6.12");
      return;
    }
    general(Rank::kExactly4);
    fp16_only("reduce");
    if (p.axes & 1u) fail("reduction over the batch dimension is not supported on DLA");
  }

  void unary() {
    general(Rank::kAtLeast4);
    const auto op = L.as<UnaryParams>().op;
    if (!has(lim.unary_ops, op)) fail("unary {} not supported on DLA (ABS only)", to_string(op));
  }

  // MatrixMultiply with a constant second input: TensorRT turns it into a FullyConnected / 1x1
  // convolution (S10). The sources show it only as a fully connected layer: a 2-D activation
  // [batch, K] (Gemm's inputs are 2-D, S15; Gemm on DLA, S13) times constant 2-D weights [K, N].
  // A 3-D or 4-D activation would be a batched product that no source puts on DLA.
  void matrix_multiply() {
    const auto& p = L.as<MatrixMultiplyParams>();
    if (L.inputs.size() != 2 || !is_constant_tensor(net, L.inputs[1])) {
      fail("matrix multiply with a non-constant second input has no DLA support");
      return;
    }
    general(Rank::kFullyConnected);
    const Dims& a = in(0).dims;
    const Dims& b = in(1).dims;
    if (a.size() != 2) {
      fail("input '{}' has rank {} ({}); DLA runs a matrix multiply only as fully connected on a "
           "2-D input [batch, K]", in(0).name, a.size(), dims_to_string(a));
      return;
    }
    if (b.size() != 2) {
      fail("constant operand {} is not 2-D weights [K, N]; not a fully connected layer on DLA",
           dims_to_string(b));
      return;
    }
    if (p.op0 == MatrixOp::kTranspose) {
      fail("first input transposed; DLA fully connected takes [batch, K] as is");
      return;
    }
    const int64_t k = a[1];
    const int64_t n = p.op1 == MatrixOp::kTranspose ? b[0] : b[1];
    if (a[0] > T.max_batch)
      fail("fully connected batch {} exceeds DLA limit {}", a[0], T.max_batch);
    if (n < 1 || n > lim.conv_out_maps_max)
      fail("fully connected output channels {} outside DLA limit [1,{}]", n, lim.conv_out_maps_max);
    if (k > T.max_dim) fail("fully connected input channels {} exceed DLA limit {}", k, T.max_dim);
    if (s.ok) cbuf(k, 1, 1, 1, 1);
    if (s.ok) note("constant-weight matrix multiply runs as fully connected (1x1 convolution)");
  }

  void run() {
    switch (L.kind) {
      case LayerKind::kConvolution: convolution(); break;
      case LayerKind::kDeconvolution: deconvolution(); break;
      case LayerKind::kPooling: pooling(); break;
      case LayerKind::kActivation: activation(); break;
      case LayerKind::kElementWise: elementwise(); break;
      case LayerKind::kScale: scale(); break;
      case LayerKind::kConcatenation: concatenation(); break;
      case LayerKind::kResize: resize(); break;
      case LayerKind::kShuffle: shuffle(); break;
      case LayerKind::kSlice: slice(); break;
      case LayerKind::kSoftMax: softmax(); break;
      case LayerKind::kReduce: reduce(); break;
      case LayerKind::kMatrixMultiply: matrix_multiply(); break;
      case LayerKind::kUnary: unary(); break;
      case LayerKind::kParametricReLU: prelu(); break;
      case LayerKind::kLRN: lrn(); break;
      case LayerKind::kConstant:
        fail("Constant has no DLA support (folded into a DLA consumer's weights when possible)");
        break;
      case LayerKind::kGather: fail("Gather has no DLA support"); break;
      case LayerKind::kIdentity: fail("Identity has no DLA support"); break;
      case LayerKind::kCast: cast(); break;
      case LayerKind::kNormalization: fail("Normalization has no DLA support"); break;
      case LayerKind::kSelect: fail("Select has no DLA support"); break;
      // Not in NVIDIA's DLA supported-layers list (S1: "Working with DLA", DLA Supported
      // Layers and Restrictions): TensorRT runs these on the GPU only.
      case LayerKind::kScatter: fail("Scatter is not a DLA-supported layer (DLA supported-layers list)"); break;
      case LayerKind::kTopK: fail("TopK is not a DLA-supported layer (DLA supported-layers list)"); break;
      case LayerKind::kEinsum: fail("Einsum is not a DLA-supported layer (DLA supported-layers list)"); break;
      case LayerKind::kGridSample: fail("GridSample is not a DLA-supported layer (DLA supported-layers list)"); break;
      case LayerKind::kRoiAlign:
        fail("RoiAlign is TensorRT's ROIAlign_TRT plugin, not a DLA-supported layer (DLA supported-layers list)");
        break;
      // Not in the list either, and a DLA loadable's shapes are fixed at build time: a layer whose
      // output shape depends on the data cannot be one.
      case LayerKind::kNonZero:
        fail("NonZero is not a DLA-supported layer (DLA supported-layers list; its output shape depends on the data)");
        break;
      case LayerKind::kNMS:
        fail("NMS is not a DLA-supported layer (DLA supported-layers list; its output shape depends on the data)");
        break;
    }
  }
};

}  // namespace

const DlaTargetInfo& dla_target_info(DlaTarget t) {
  switch (t) {
    case DlaTarget::kOrin: return kOrin;
    case DlaTarget::kXavier: return kXavier;
  }
  return kOrin;
}

std::string_view to_string(DlaTarget t) { return dla_target_info(t).name; }
std::string_view to_string(DlaPrecision p) {
  switch (p) {
    case DlaPrecision::kInt8: return "int8";
    case DlaPrecision::kFp16: return "fp16";
  }
  return "?";
}
bool parse_dla_target(std::string_view s, DlaTarget* out) {
  if (s == "orin") *out = DlaTarget::kOrin;
  else if (s == "xavier") *out = DlaTarget::kXavier;
  else return false;
  return true;
}
bool parse_dla_precision(std::string_view s, DlaPrecision* out) {
  if (s == "int8") *out = DlaPrecision::kInt8;
  else if (s == "fp16") *out = DlaPrecision::kFp16;
  else return false;
  return true;
}

Int8RangeTie int8_equal_range_tensors(const Network& net, const Layer& L) {
  Int8RangeTie r;
  switch (L.kind) {
    case LayerKind::kConcatenation:  // every input equals the output (DLA concatenation; TensorRT)
      r.tensors = L.inputs;
      r.tensors.insert(r.tensors.end(), L.outputs.begin(), L.outputs.end());
      r.derived = L.inputs;
      break;
    case LayerKind::kElementWise:
      // A constant operand becomes weights of the layer (a Scale layer; docs/quantization.md,
      // "Range tying"), not an INT8 tensor: only the other inputs are equal (DLA: "if the dynamic
      // ranges are generated using calibrator, the largest value shall be used").
      for (TensorId t : L.inputs)
        if (!is_constant_tensor(net, t)) r.tensors.push_back(t);
      break;
    case LayerKind::kPooling:  // "Pooling must have the same input and output scales"
      r.tensors = {L.inputs.at(0)};
      r.tensors.insert(r.tensors.end(), L.outputs.begin(), L.outputs.end());
      r.derived = L.outputs;
      break;
    case LayerKind::kConvolution: case LayerKind::kDeconvolution: case LayerKind::kActivation:
    case LayerKind::kScale: case LayerKind::kResize: case LayerKind::kShuffle: case LayerKind::kSlice:
    case LayerKind::kSoftMax: case LayerKind::kReduce: case LayerKind::kMatrixMultiply: case LayerKind::kUnary:
    case LayerKind::kConstant: case LayerKind::kParametricReLU: case LayerKind::kLRN: case LayerKind::kGather:
    case LayerKind::kIdentity: case LayerKind::kCast: case LayerKind::kNormalization: case LayerKind::kSelect:
    case LayerKind::kScatter: case LayerKind::kTopK: case LayerKind::kEinsum: case LayerKind::kGridSample:
    case LayerKind::kRoiAlign: case LayerKind::kNonZero: case LayerKind::kNMS:
      break;  // no range rule
  }
  return r;
}

Support check_layer(const Network& net, LayerId layer, const DlaOptions& opt) {
  const DlaTargetInfo& T = dla_target_info(opt.target);
  Checker c{net, net.layers.at(layer), T, T.limits, opt.precision == DlaPrecision::kInt8, {}};
  c.run();
  return c.s;
}

}  // namespace tandem
