// Static shape and type inference over IR layers (TensorRT semantics of each layer kind): a
// function of the IR alone (the importer calls it as it adds layers; hooks and tests too).
#include "tandem/shape_inference.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "tandem/broadcast.h"
#include "tandem/constant_origin.h"
#include "tandem/einsum.h"

namespace tandem {

namespace {

using Outputs = std::vector<std::pair<Dims, DataType>>;

[[noreturn]] void fail(const Layer& l, const std::string& why) {
  throw Error(fmt::format("layer '{}' ({}): {}", l.name, to_string(l.kind), why));
}

// Input i of l, checked.
const Tensor& input(const Network& net, const Layer& l, size_t i) {
  if (i >= l.inputs.size() || l.inputs[i] < 0 || l.inputs[i] >= static_cast<TensorId>(net.tensors.size()))
    fail(l, fmt::format("input {} missing", i));
  return net.tensors[l.inputs[i]];
}

Outputs one(Dims d, DataType t) { return Outputs{{std::move(d), t}}; }

Dims broadcast(const Layer& l, const Dims& a, const Dims& b) {
  if (a.size() != b.size())
    fail(l, fmt::format("operand ranks differ ({} vs {})", dims_to_string(a), dims_to_string(b)));
  std::optional<Dims> o = broadcast_dims(a, b);
  if (!o) fail(l, fmt::format("cannot broadcast {} with {}", dims_to_string(a), dims_to_string(b)));
  return *o;
}

bool valid_perm(const std::vector<int>& p, size_t rank) {
  if (p.size() != rank) return false;
  std::vector<char> seen(rank, 0);
  for (int v : p) {
    if (v < 0 || static_cast<size_t>(v) >= rank || seen[v]) return false;
    seen[v] = 1;
  }
  return true;
}

int64_t conv_out(const Layer& l, int64_t in, int64_t k, int64_t s, int64_t pre, int64_t post, int64_t d) {
  if (s <= 0 || d <= 0 || k <= 0) fail(l, "kernel, stride and dilation must be positive");
  const int64_t eff = (k - 1) * d + 1;
  const int64_t span = in + pre + post - eff;
  if (span < 0) fail(l, fmt::format("kernel {} (dilated {}) larger than the padded input {}", k, eff, in + pre + post));
  return span / s + 1;
}

Outputs convolution_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<ConvolutionParams>();
  const Tensor& x = input(net, l, 0);
  const size_t ns = p.kernel.size();
  if (x.dims.size() != ns + 2) fail(l, fmt::format("input {} is not {}-D", dims_to_string(x.dims), ns + 2));
  if (p.stride.size() != ns || p.pre_padding.size() != ns || p.post_padding.size() != ns || p.dilation.size() != ns)
    fail(l, "kernel, stride, padding and dilation ranks differ");
  Dims o{x.dims[0], p.out_maps};
  for (size_t i = 0; i < ns; ++i) {
    const int64_t h = x.dims[2 + i];
    if (l.kind == LayerKind::kConvolution) {
      o.push_back(conv_out(l, h, p.kernel[i], p.stride[i], p.pre_padding[i], p.post_padding[i], p.dilation[i]));
    } else {
      const int64_t v = (h - 1) * p.stride[i] + (p.kernel[i] - 1) * p.dilation[i] + 1 - p.pre_padding[i] - p.post_padding[i];
      if (v <= 0) fail(l, "output size is not positive");
      o.push_back(v);
    }
  }
  return one(o, x.type);
}

Outputs pooling_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<PoolingParams>();
  const Tensor& x = input(net, l, 0);
  const size_t ns = p.window.size();
  if (x.dims.size() != ns + 2) fail(l, fmt::format("input {} is not {}-D", dims_to_string(x.dims), ns + 2));
  Dims o{x.dims[0], x.dims[1]};
  for (size_t i = 0; i < ns; ++i) {
    const int64_t k = p.window[i], s = p.stride.at(i);
    if (k <= 0 || s <= 0) fail(l, "window and stride must be positive");
    const int64_t span = x.dims[2 + i] + p.pre_padding.at(i) + p.post_padding.at(i) - k;
    if (span < 0) fail(l, "window larger than the padded input");
    o.push_back((p.padding_mode == PaddingMode::kExplicitRoundUp ? (span + s - 1) / s : span / s) + 1);
  }
  return one(o, x.type);
}

Outputs concatenation_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<ConcatenationParams>();
  Dims o = input(net, l, 0).dims;
  if (p.axis < 0 || p.axis >= static_cast<int>(o.size())) fail(l, fmt::format("axis {} out of range", p.axis));
  for (size_t i = 1; i < l.inputs.size(); ++i) {
    const Dims& d = input(net, l, i).dims;
    if (d.size() != o.size()) fail(l, "inputs of different ranks");
    for (size_t j = 0; j < d.size(); ++j)
      if (static_cast<int>(j) != p.axis && d[j] != o[j])
        fail(l, fmt::format("input {} has dims {}, expected {} off the axis", i, dims_to_string(d), dims_to_string(o)));
    o[p.axis] += d[p.axis];
  }
  return one(o, input(net, l, 0).type);
}

Outputs resize_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<ResizeParams>();
  const Dims& x = input(net, l, 0).dims;
  if (!p.output_dims.empty()) {
    if (p.output_dims.size() != x.size()) fail(l, "output dims rank differs from the input's");
    return one(p.output_dims, input(net, l, 0).type);
  }
  if (p.scales.size() != x.size()) fail(l, fmt::format("{} scales for a rank-{} input", p.scales.size(), x.size()));
  Dims o(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = std::floor(static_cast<double>(x[i]) * p.scales[i]);
    if (!(v >= 1 && v < 1e12)) fail(l, fmt::format("scale {} gives output dim {}", p.scales[i], v));
    o[i] = static_cast<int64_t>(v);
  }
  return one(o, input(net, l, 0).type);
}

Outputs shuffle_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<ShuffleParams>();
  Dims d = input(net, l, 0).dims;
  if (!p.first_transpose.empty()) {
    if (!valid_perm(p.first_transpose, d.size())) fail(l, "first transpose is not a permutation of the input dims");
    Dims t(d.size());
    for (size_t i = 0; i < d.size(); ++i) t[i] = d[p.first_transpose[i]];
    d = t;
  }
  if (p.reshape) {
    if (volume(*p.reshape) != volume(d))
      fail(l, fmt::format("reshape {} -> {} changes the volume", dims_to_string(d), dims_to_string(*p.reshape)));
    d = *p.reshape;
  }
  if (!p.second_transpose.empty()) {
    if (!valid_perm(p.second_transpose, d.size())) fail(l, "second transpose is not a permutation");
    Dims t(d.size());
    for (size_t i = 0; i < d.size(); ++i) t[i] = d[p.second_transpose[i]];
    d = t;
  }
  return one(d, input(net, l, 0).type);
}

Outputs matrix_multiply_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<MatrixMultiplyParams>();
  Dims a = input(net, l, 0).dims, b = input(net, l, 1).dims;
  if (a.size() < 2 || a.size() != b.size()) fail(l, "operands must have the same rank >= 2");
  const size_t r = a.size();
  if (p.op0 == MatrixOp::kTranspose) std::swap(a[r - 1], a[r - 2]);
  if (p.op1 == MatrixOp::kTranspose) std::swap(b[r - 1], b[r - 2]);
  if (a[r - 1] != b[r - 2])
    fail(l, fmt::format("inner dims differ ({} vs {})", dims_to_string(a), dims_to_string(b)));
  Dims ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  Dims o = broadcast(l, ab, bb);
  o.push_back(a[r - 2]);
  o.push_back(b[r - 1]);
  return one(o, input(net, l, 0).type);
}

Outputs gather_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<GatherParams>();
  const Dims& d = input(net, l, 0).dims;
  const Dims& ix = input(net, l, 1).dims;
  const DataType t = input(net, l, 0).type;
  switch (p.mode) {
    case GatherMode::kDefault: break;
    case GatherMode::kElement:
      if (p.axis < 0 || p.axis >= static_cast<int>(d.size())) fail(l, fmt::format("axis {} out of range", p.axis));
      if (ix.size() != d.size())
        fail(l, fmt::format("indices {} and data {} ranks differ", dims_to_string(ix), dims_to_string(d)));
      return one(ix, t);
    case GatherMode::kND: {
      const int64_t b = p.nb_elementwise_dims;
      if (ix.empty()) fail(l, "indices are a scalar");
      const int64_t k = ix.back();
      if (b < 0 || b >= static_cast<int64_t>(ix.size()) || b >= static_cast<int64_t>(d.size()))
        fail(l, fmt::format("{} element-wise dims for indices {} and data {}", b, dims_to_string(ix), dims_to_string(d)));
      if (k < 1 || b + k > static_cast<int64_t>(d.size()))
        fail(l, fmt::format("index tuples of {} for data {} after {} batch dims", k, dims_to_string(d), b));
      for (int64_t i = 0; i < b; ++i)
        if (ix[i] != d[i]) fail(l, fmt::format("batch dim {} differs: indices {} data {}", i, dims_to_string(ix), dims_to_string(d)));
      Dims o(ix.begin(), ix.end() - 1);
      o.insert(o.end(), d.begin() + b + k, d.end());
      return one(o, t);
    }
  }
  if (p.axis < 0 || p.axis >= static_cast<int>(d.size())) fail(l, fmt::format("axis {} out of range", p.axis));
  Dims o(d.begin(), d.begin() + p.axis);
  o.insert(o.end(), ix.begin(), ix.end());
  o.insert(o.end(), d.begin() + p.axis + 1, d.end());
  return one(o, t);
}

Outputs scatter_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<ScatterParams>();
  const Dims& d = input(net, l, 0).dims;
  const Dims& ix = input(net, l, 1).dims;
  const Dims& up = input(net, l, 2).dims;
  if (input(net, l, 2).type != input(net, l, 0).type) fail(l, "updates and data types differ");
  switch (p.mode) {
    case ScatterMode::kElement:
      if (p.axis < 0 || p.axis >= static_cast<int>(d.size())) fail(l, fmt::format("axis {} out of range", p.axis));
      if (ix != up || ix.size() != d.size())
        fail(l, fmt::format("indices {}, updates {} and data {} do not match", dims_to_string(ix), dims_to_string(up), dims_to_string(d)));
      break;
    case ScatterMode::kND: {
      if (ix.empty()) fail(l, "indices are a scalar");
      const int64_t k = ix.back();
      if (k < 1 || k > static_cast<int64_t>(d.size())) fail(l, fmt::format("index tuples of {} for data {}", k, dims_to_string(d)));
      Dims want(ix.begin(), ix.end() - 1);
      want.insert(want.end(), d.begin() + k, d.end());
      if (up != want) fail(l, fmt::format("updates {} are not {}", dims_to_string(up), dims_to_string(want)));
      break;
    }
  }
  return one(d, input(net, l, 0).type);
}

Outputs topk_outputs(const Network& net, const Layer& l) {
  const auto& p = l.as<TopKParams>();
  Dims d = input(net, l, 0).dims;
  int axis = -1;
  for (size_t i = 0; i < d.size(); ++i)
    if (p.axes == (1u << i)) axis = static_cast<int>(i);
  if (axis < 0) fail(l, fmt::format("axes mask {} is not one axis of a rank-{} input", p.axes, d.size()));
  if (p.k < 1 || p.k > d[axis]) fail(l, fmt::format("k {} outside [1, {}]", p.k, d[axis]));
  d[axis] = p.k;
  return Outputs{{d, input(net, l, 0).type}, {d, DataType::kInt32}};
}

Outputs einsum_outputs(const Network& net, const Layer& l) {
  EinsumTerms t;
  std::string why;
  if (!parse_einsum(l.as<EinsumParams>().equation, &t, &why)) fail(l, why);
  if (t.inputs.size() != l.inputs.size()) fail(l, fmt::format("{} terms for {} inputs", t.inputs.size(), l.inputs.size()));
  std::map<char, int64_t> size;
  for (size_t i = 0; i < t.inputs.size(); ++i) {
    const Dims& d = input(net, l, i).dims;
    if (t.inputs[i].size() != d.size())
      fail(l, fmt::format("term '{}' for input {} of dims {}", t.inputs[i], i, dims_to_string(d)));
    if (input(net, l, i).type != input(net, l, 0).type) fail(l, "input types differ");
    for (size_t j = 0; j < d.size(); ++j) {
      auto [it, fresh] = size.emplace(t.inputs[i][j], d[j]);
      if (!fresh && it->second != d[j])
        fail(l, fmt::format("label '{}' has sizes {} and {}", t.inputs[i][j], it->second, d[j]));
    }
  }
  Dims o;
  for (char c : t.output) o.push_back(size.at(c));
  return one(o, input(net, l, 0).type);
}

Outputs grid_sample_outputs(const Network& net, const Layer& l) {
  const Dims& x = input(net, l, 0).dims;
  const Dims& g = input(net, l, 1).dims;
  if (x.size() != 4 || g.size() != 4 || g[0] != x[0] || g[3] != 2)
    fail(l, fmt::format("input {} and grid {} are not [N,C,H,W] and [N,Ho,Wo,2]", dims_to_string(x), dims_to_string(g)));
  if (input(net, l, 1).type != input(net, l, 0).type) fail(l, "grid and input types differ");
  return one({x[0], x[1], g[1], g[2]}, input(net, l, 0).type);
}

// INMSLayer's bound: B * C * min(N, max boxes) when max boxes is a constant, else B * C * N (TensorRT's
// upper bound on the allocation, NvInfer.h INMSLayer).
Outputs nms_outputs(const Network& net, const Layer& l) {
  const Dims& b = input(net, l, 0).dims;
  const Dims& s = input(net, l, 1).dims;
  if (b.size() != 3 || b[2] != 4 || s.size() != 3 || s[0] != b[0] || s[1] != b[1])
    fail(l, fmt::format("boxes {} and scores {} are not [B, N, 4] and [B, N, C]", dims_to_string(b), dims_to_string(s)));
  const Tensor& m = input(net, l, 2);
  if ((m.type != DataType::kInt32 && m.type != DataType::kInt64) || volume(m.dims) != 1)
    fail(l, "max output boxes per class is not one int32/int64 value");
  for (size_t i : {size_t(3), size_t(4)})
    if (input(net, l, i).type != DataType::kFloat || volume(input(net, l, i).dims) != 1)
      fail(l, fmt::format("input {} (a threshold) is not one fp32 value", i));
  int64_t per_class = b[1];
  if (auto c = constant_origin(net, l.inputs[2]))
    per_class = static_cast<int64_t>(std::clamp(net.weights[size_t(c->weights)].at(0), 0.0, double(per_class)));
  return one({b[0] * s[2] * per_class, 3}, DataType::kInt64);
}

}  // namespace

std::vector<std::pair<Dims, DataType>> infer_layer_outputs(const Network& net, const Layer& l) {
  auto in = [&](size_t i) -> const Tensor& { return input(net, l, i); };
  switch (l.kind) {
    case LayerKind::kConvolution:
    case LayerKind::kDeconvolution: return convolution_outputs(net, l);
    case LayerKind::kPooling: return pooling_outputs(net, l);
    case LayerKind::kActivation:
    case LayerKind::kScale:
    case LayerKind::kSoftMax:
    case LayerKind::kLRN:
    case LayerKind::kIdentity:
    case LayerKind::kNormalization:
    case LayerKind::kParametricReLU: return one(in(0).dims, in(0).type);
    case LayerKind::kUnary: {
      const auto& p = l.as<UnaryParams>();
      return one(in(0).dims, p.op == UnaryOp::kNot ? DataType::kBool : in(0).type);
    }
    case LayerKind::kCast: return one(in(0).dims, l.as<CastParams>().to);
    case LayerKind::kElementWise: {
      const auto op = l.as<ElementWiseParams>().op;
      const bool cmp = op == ElementWiseOp::kEqual || op == ElementWiseOp::kGreater || op == ElementWiseOp::kLess;
      return one(broadcast(l, in(0).dims, in(1).dims), cmp ? DataType::kBool : in(0).type);
    }
    case LayerKind::kSelect: {
      Dims o = broadcast(l, broadcast(l, in(0).dims, in(1).dims), in(2).dims);
      return one(o, in(1).type);
    }
    case LayerKind::kConcatenation: return concatenation_outputs(net, l);
    case LayerKind::kResize: return resize_outputs(net, l);
    case LayerKind::kShuffle: return shuffle_outputs(net, l);
    case LayerKind::kSlice: {
      const auto& p = l.as<SliceParams>();
      if (p.size.size() != in(0).dims.size() || p.start.size() != p.size.size() || p.stride.size() != p.size.size())
        fail(l, "start/size/stride ranks differ from the input's");
      return one(p.size, in(0).type);
    }
    case LayerKind::kReduce: {
      const auto& p = l.as<ReduceParams>();
      const Dims& x = in(0).dims;
      Dims o;
      for (size_t i = 0; i < x.size(); ++i) {
        if (p.axes & (1u << i)) {
          if (p.keep_dims) o.push_back(1);
        } else {
          o.push_back(x[i]);
        }
      }
      return one(o, in(0).type);
    }
    case LayerKind::kMatrixMultiply: return matrix_multiply_outputs(net, l);
    case LayerKind::kConstant: {
      const auto& p = l.as<ConstantParams>();
      if (p.weights < 0 || p.weights >= static_cast<WeightsId>(net.weights.size())) fail(l, "weights id out of range");
      return one(net.weights[p.weights].dims, net.weights[p.weights].type);
    }
    case LayerKind::kGather: return gather_outputs(net, l);
    case LayerKind::kScatter: return scatter_outputs(net, l);
    case LayerKind::kTopK: return topk_outputs(net, l);
    case LayerKind::kEinsum: return einsum_outputs(net, l);
    case LayerKind::kGridSample: return grid_sample_outputs(net, l);
    case LayerKind::kRoiAlign: {
      const auto& p = l.as<RoiAlignParams>();
      const Dims& x = in(0).dims;
      const Dims& r = in(1).dims;
      const Dims& b = in(2).dims;
      if (x.size() != 4 || r.size() != 2 || r[1] != 4 || b.size() != 1 || b[0] != r[0])
        fail(l, fmt::format("input {}, rois {} and batch indices {} are not [N,C,H,W], [R,4] and [R]",
                            dims_to_string(x), dims_to_string(r), dims_to_string(b)));
      if (p.out_h < 1 || p.out_w < 1 || p.sampling_ratio < 0) fail(l, "output size and sampling ratio must be positive");
      if (in(2).type != DataType::kInt32 && in(2).type != DataType::kInt64) fail(l, "batch indices are not int32/int64");
      return one({r[0], x[1], p.out_h, p.out_w}, in(0).type);
    }
    case LayerKind::kNonZero: {  // bound: every element non-zero
      const Dims& x = in(0).dims;
      if (x.empty()) fail(l, "a scalar input (its output would be [0, n])");
      return one({static_cast<int64_t>(x.size()), volume(x)}, DataType::kInt64);
    }
    case LayerKind::kNMS: return nms_outputs(net, l);
  }
  fail(l, "unknown layer kind");
}

void infer_shapes(Network& net) {
  for (const Layer& l : net.layers) {
    auto outs = infer_layer_outputs(net, l);
    if (outs.size() != l.outputs.size()) fail(l, "output count differs");
    for (size_t i = 0; i < outs.size(); ++i) {
      Tensor& t = net.tensors.at(l.outputs[i]);
      t.dims = std::move(outs[i].first);
      t.type = outs[i].second;
    }
  }
}

}  // namespace tandem
