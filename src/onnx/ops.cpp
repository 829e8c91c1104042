// ONNX op -> TensorRT-style layers, following onnx-tensorrt's importers (docs/onnx-import.md).
#include <cmath>
#include <fmt/format.h>
#include <limits>
#include <numeric>

#include "importer.h"

namespace tandem::onnx_detail {

namespace {

using Outs = std::vector<TensorId>;

bool is_float(DataType t) { return t == DataType::kFloat || t == DataType::kHalf; }

// ---- activations -------------------------------------------------------------------------------
OpFn activation(ActivationType type, float alpha_def = 0.f, float beta_def = 0.f, const char* alpha_name = "alpha",
                const char* beta_name = "beta") {
  return [=](Importer& I) -> Outs {
    ActivationParams p;
    p.type = type;
    p.alpha = alpha_name ? I.attr_f(alpha_name, alpha_def) : alpha_def;
    p.beta = beta_name ? I.attr_f(beta_name, beta_def) : beta_def;
    const TensorId x = I.tin(0);
    if (!is_float(I.dtype(x))) I.fail(fmt::format("input is {}, activations need fp32/fp16", to_string(I.dtype(x))));
    return {I.add(LayerKind::kActivation, p, {x})};
  };
}

Outs op_hardswish(Importer& I) {
  const TensorId x = I.tin(0);
  ActivationParams p{ActivationType::kHardSigmoid, 1.f / 6.f, 0.5f};
  const TensorId hs = I.add(LayerKind::kActivation, p, {x});
  return {I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kProd}, {x, hs})};
}

Outs op_clip(Importer& I) {
  float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
  if (I.opset_ < 11) {
    lo = I.attr_f("min", lo);
    hi = I.attr_f("max", hi);
  } else {
    if (auto c = I.cin_opt(1, "min")) {
      if (c->count() != 1) I.fail("min must be a scalar");
      lo = static_cast<float>(c->f(0));
    }
    if (auto c = I.cin_opt(2, "max")) {
      if (c->count() != 1) I.fail("max must be a scalar");
      hi = static_cast<float>(c->f(0));
    }
  }
  const TensorId x = I.tin(0);
  if (!is_float(I.dtype(x))) I.fail(fmt::format("Clip of a {} tensor is not supported", to_string(I.dtype(x))));
  return {I.add(LayerKind::kActivation, ActivationParams{ActivationType::kClip, lo, hi}, {x})};
}

Outs op_gelu(Importer& I) {
  const std::string a = I.attr_s("approximate", "none");
  ActivationType t;
  if (a == "none") t = ActivationType::kGeluErf;
  else if (a == "tanh") t = ActivationType::kGeluTanh;
  else I.fail(fmt::format("approximate='{}' is not supported (none, tanh)", a));
  return {I.add(LayerKind::kActivation, ActivationParams{t, 0.f, 0.f}, {I.tin(0)})};
}

Outs op_prelu(Importer& I) {
  std::vector<TensorId> ts{I.tin(0), I.tin(1)};
  if (I.rank(ts[1]) > I.rank(ts[0])) I.fail("slope has a higher rank than the input");
  ts[1] = I.to_rank(ts[1], I.rank(ts[0]));
  return {I.add(LayerKind::kParametricReLU, NoParams{}, ts)};
}

// ---- element-wise ------------------------------------------------------------------------------
TensorId binary(Importer& I, ElementWiseOp op, TensorId a, TensorId b) {
  std::vector<TensorId> ts{a, b};
  I.broadcast_ranks(ts);
  if (I.dtype(ts[0]) != I.dtype(ts[1]) && op != ElementWiseOp::kPow)
    I.fail(fmt::format("operand types differ ({} vs {})", to_string(I.dtype(ts[0])), to_string(I.dtype(ts[1]))));
  return I.add(LayerKind::kElementWise, ElementWiseParams{op}, ts);
}

OpFn eltwise(ElementWiseOp op) {
  return [=](Importer& I) -> Outs {
    std::vector<TensorId> xs;
    for (size_t i = 0; i < I.n_in(); ++i)
      if (I.has_in(i)) xs.push_back(I.tin(i));
    if (xs.empty()) I.fail("no inputs");
    if (xs.size() == 1) return {I.add(LayerKind::kIdentity, NoParams{}, {xs[0]})};
    TensorId acc = xs[0];
    for (size_t i = 1; i < xs.size(); ++i) acc = binary(I, op, acc, xs[i]);  // n-ary: a chain
    return {acc};
  };
}

Outs op_mean(Importer& I) {
  Outs s = eltwise(ElementWiseOp::kSum)(I);
  size_t n = 0;
  for (size_t i = 0; i < I.n_in(); ++i) n += I.has_in(i);
  if (n == 1) return s;
  const TensorId c = I.scalar_const(static_cast<float>(n), I.dtype(s[0]), I.rank(s[0]));
  return {binary(I, ElementWiseOp::kDiv, s[0], c)};
}

OpFn or_equal(ElementWiseOp op) {
  return [=](Importer& I) -> Outs {
    const TensorId a = I.tin(0), b = I.tin(1);
    const TensorId g = binary(I, op, a, b);
    const TensorId e = binary(I, ElementWiseOp::kEqual, a, b);
    return {binary(I, ElementWiseOp::kOr, g, e)};
  };
}

OpFn unary(UnaryOp op) {
  return [=](Importer& I) -> Outs { return {I.add(LayerKind::kUnary, UnaryParams{op}, {I.tin(0)})}; };
}

Outs op_where(Importer& I) {
  std::vector<TensorId> ts{I.tin(0), I.tin(1), I.tin(2)};
  if (I.dtype(ts[0]) != DataType::kBool) I.fail("condition is not bool");
  I.broadcast_ranks(ts);
  return {I.add(LayerKind::kSelect, NoParams{}, ts)};
}

// ---- convolution and pooling --------------------------------------------------------------------
struct Spatial {
  Dims kernel, stride, pre, post, dilation;
};

// Reads strides/pads/dilations/auto_pad for ns spatial dims; explicit padding out.
Spatial spatial_attrs(Importer& I, const Dims& in, const Dims& kernel, bool transposed) {
  const size_t ns = kernel.size();
  Spatial s;
  s.kernel = kernel;
  s.stride = I.attr_ints("strides");
  if (s.stride.empty()) s.stride.assign(ns, 1);
  s.dilation = I.attr_ints("dilations");
  if (s.dilation.empty()) s.dilation.assign(ns, 1);
  Dims pads = I.attr_ints("pads");
  if (pads.empty()) pads.assign(2 * ns, 0);
  if (s.stride.size() != ns || s.dilation.size() != ns || pads.size() != 2 * ns)
    I.fail(fmt::format("strides/dilations/pads do not match the {} spatial dims", ns));
  for (size_t i = 0; i < ns; ++i) {
    if (s.stride[i] <= 0 || s.stride[i] > 65536) I.fail(fmt::format("stride {} is not supported", s.stride[i]));
    if (s.dilation[i] <= 0 || s.dilation[i] > 65536) I.fail(fmt::format("dilation {} is not supported", s.dilation[i]));
    if (kernel[i] <= 0 || kernel[i] > 65536) I.fail(fmt::format("kernel size {} is not supported", kernel[i]));
    if (pads[i] < 0 || pads[ns + i] < 0 || pads[i] > 65536 || pads[ns + i] > 65536)
      I.fail(fmt::format("pads {} are not supported", dims_to_string(pads, ',')));
  }
  s.pre.assign(pads.begin(), pads.begin() + ns);
  s.post.assign(pads.begin() + ns, pads.end());
  const std::string ap = I.attr_s("auto_pad", "NOTSET");
  if (ap == "NOTSET") return s;
  if (ap == "VALID") {
    s.pre.assign(ns, 0);
    s.post.assign(ns, 0);
    return s;
  }
  if (ap != "SAME_UPPER" && ap != "SAME_LOWER") I.fail(fmt::format("auto_pad '{}' is not supported", ap));
  if (transposed) I.fail("auto_pad SAME on ConvTranspose without output_shape is not supported");
  for (size_t i = 0; i < ns; ++i) {
    const int64_t h = in[2 + i], st = s.stride[i];
    const int64_t out = (h + st - 1) / st;
    const int64_t eff = (kernel[i] - 1) * s.dilation[i] + 1;
    const int64_t total = std::max<int64_t>((out - 1) * st + eff - h, 0);
    if (ap == "SAME_UPPER") { s.pre[i] = total / 2; s.post[i] = total - total / 2; }
    else { s.post[i] = total / 2; s.pre[i] = total - total / 2; }
  }
  return s;
}

// 1-D ops run as 2-D ones: [N,C,L] -> Shuffle [N,C,L,1] -> op -> Shuffle [N,K,L'] (as the parser).
void to_2d(Spatial& s) {
  s.kernel.push_back(1); s.stride.push_back(1); s.pre.push_back(0); s.post.push_back(0); s.dilation.push_back(1);
}

Outs op_conv(Importer& I) {
  TensorId x = I.tin(0);
  const ConstPtr w = I.cin(1, "weights");
  const ConstPtr b = I.cin_opt(2, "bias");
  const size_t r = I.rank(x);
  if (r < 3 || r > 5) I.fail(fmt::format("input rank {} is not supported (1-D, 2-D and 3-D convolutions)", r));
  if (w->dims.size() != r) I.fail(fmt::format("weights {} do not match the input rank {}", dims_to_string(w->dims), r));
  const int64_t g = I.attr_i("group", 1);
  const int64_t c = I.dims(x)[1];
  if (g <= 0 || c % g != 0 || w->dims[0] % g != 0 || w->dims[1] * g != c)
    I.fail(fmt::format("group {} does not fit input channels {} and weights {}", g, c, dims_to_string(w->dims)));
  Dims kernel(w->dims.begin() + 2, w->dims.end());
  Dims ks = I.attr_ints("kernel_shape");
  if (!ks.empty() && ks != kernel) I.fail("kernel_shape differs from the weights' dims");
  Spatial s = spatial_attrs(I, I.dims(x), kernel, false);
  const Dims in_dims = I.dims(x);
  Dims wdims = w->dims;
  if (r == 3) {
    to_2d(s);
    x = I.reshape(x, {in_dims[0], in_dims[1], in_dims[2], 1});
    wdims.push_back(1);
  }
  ConvolutionParams p;
  p.kernel = s.kernel; p.stride = s.stride; p.pre_padding = s.pre; p.post_padding = s.post; p.dilation = s.dilation;
  p.groups = g;
  p.out_maps = w->dims[0];
  p.kernel_weights = r == 3 ? I.weights_of(w, &wdims) : I.weights_of(w);
  if (b) {
    if (b->count() != p.out_maps) I.fail(fmt::format("bias has {} values for {} output maps", b->count(), p.out_maps));
    p.bias_weights = I.weights_of(b);
  }
  TensorId y = I.add(LayerKind::kConvolution, p, {x});
  if (r == 3) y = I.reshape(y, {I.dims(y)[0], I.dims(y)[1], I.dims(y)[2]});
  return {y};
}

// ConvTranspose's explicit padding: from `output_shape` (also what auto_pad SAME implies: input *
// stride) as total = s*(in-1) + output_padding + eff_k - out, split per auto_pad (ONNX spec).
// total == -1 with an explicit output_shape (one past what the padding-free op gives) grows the
// end by one in *grow: the parser's generatePadding gives pre 0, post -1, and turns the negative
// post padding into output padding; anything smaller needs negative pre-padding, which it refuses.
Spatial deconv_spatial(Importer& I, const Dims& in, const Dims& kernel, const Dims& out_pad, Dims* grow) {
  const size_t ns = kernel.size();
  const std::string ap = I.attr_s("auto_pad", "NOTSET");
  Dims out_shape = I.attr_ints("output_shape");
  const bool same = ap == "SAME_UPPER" || ap == "SAME_LOWER";
  if (out_shape.empty() && !same) return spatial_attrs(I, in, kernel, true);
  Spatial s = spatial_attrs(I, in, kernel, false);
  if (out_shape.empty())
    for (size_t i = 0; i < ns; ++i) out_shape.push_back(in[2 + i] * s.stride[i]);
  if (out_shape.size() == ns + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (out_shape.size() != ns) I.fail(fmt::format("output_shape must give the {} spatial dims", ns));
  for (size_t i = 0; i < ns; ++i) {
    const int64_t eff = (kernel[i] - 1) * s.dilation[i] + 1;
    const int64_t total = s.stride[i] * (in[2 + i] - 1) + out_pad[i] + eff - out_shape[i];
    if (total < -1 || (total == -1 && same))
      I.fail(fmt::format("output_shape {} needs negative pre-padding on spatial axis {} (TensorRT's parser: \"TensorRT "
                         "does not support negative pre-padding in the ConvTranspose operator\")", out_shape[i], i));
    if (total == -1) { s.pre[i] = s.post[i] = 0; (*grow)[i] = 1; continue; }
    if (ap == "SAME_UPPER") { s.pre[i] = total / 2; s.post[i] = total - total / 2; }
    else { s.pre[i] = total - total / 2; s.post[i] = total / 2; }
  }
  return s;
}

Outs op_conv_transpose(Importer& I) {
  TensorId x = I.tin(0);
  const ConstPtr w = I.cin(1, "weights");
  const ConstPtr b = I.cin_opt(2, "bias");
  const size_t r = I.rank(x);
  if (r < 3 || r > 5) I.fail(fmt::format("input rank {} is not supported (1-D, 2-D and 3-D transposed convolutions)", r));
  if (w->dims.size() != r) I.fail(fmt::format("weights {} do not match the input rank {}", dims_to_string(w->dims), r));
  const size_t ns = r - 2;
  const int64_t g = I.attr_i("group", 1);
  const int64_t c = I.dims(x)[1];
  if (g <= 0 || w->dims[0] != c || c % g != 0) I.fail(fmt::format("group {} does not fit weights {}", g, dims_to_string(w->dims)));
  Dims kernel(w->dims.begin() + 2, w->dims.end());
  Dims out_pad = I.attr_ints("output_padding");
  if (out_pad.empty()) out_pad.assign(ns, 0);
  if (out_pad.size() != ns) I.fail("output_padding does not match the spatial dims");
  Dims grow(ns, 0);  // output padding output_shape asks for beyond output_padding
  Spatial s = deconv_spatial(I, I.dims(x), kernel, out_pad, &grow);
  for (size_t i = 0; i < ns; ++i)
    if (out_pad[i] < 0 || out_pad[i] >= std::max(s.stride[i], s.dilation[i]))
      I.fail(fmt::format("output_padding {} must be in [0, max(stride, dilation))", out_pad[i]));
  // output_padding: taken from the post padding where there is some (exact), the rest is a
  // Slice kFILL of zeros followed by the bias add (the parser's emulation).
  Dims extra(ns, 0);
  bool slice = false;
  for (size_t i = 0; i < ns; ++i) {
    const int64_t take = std::min(s.post[i], out_pad[i]);
    s.post[i] -= take;
    extra[i] = out_pad[i] - take + grow[i];
    slice |= extra[i] != 0;
  }
  const Dims in_dims = I.dims(x);
  Dims wdims = w->dims;
  if (r == 3) {  // 1-D runs as 2-D, as for Conv
    to_2d(s);
    extra.push_back(0);
    x = I.reshape(x, {in_dims[0], in_dims[1], in_dims[2], 1});
    wdims.push_back(1);
  }
  ConvolutionParams p;
  p.kernel = s.kernel; p.stride = s.stride; p.pre_padding = s.pre; p.post_padding = s.post; p.dilation = s.dilation;
  p.groups = g;
  p.out_maps = w->dims[1] * g;
  p.kernel_weights = r == 3 ? I.weights_of(w, &wdims) : I.weights_of(w);
  if (b && b->count() != p.out_maps) I.fail(fmt::format("bias has {} values for {} output maps", b->count(), p.out_maps));
  if (b && !slice) p.bias_weights = I.weights_of(b);
  TensorId y = I.add(LayerKind::kDeconvolution, p, {x});
  if (slice) {
    const Dims d = I.dims(y);
    SliceParams sp;
    sp.start = Dims(d.size(), 0);
    sp.size = d;
    for (size_t i = 0; i < extra.size(); ++i) sp.size[2 + i] += extra[i];
    sp.stride = Dims(d.size(), 1);
    sp.mode = SliceMode::kFill;
    y = I.add(LayerKind::kSlice, sp, {y});
    if (b) {
      Dims bd(d.size(), 1);
      bd[1] = p.out_maps;
      const TensorId bt = I.reshape(I.const_tensor(b), bd);
      y = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kSum}, {y, bt});
    }
  }
  if (r == 3) y = I.reshape(y, {I.dims(y)[0], I.dims(y)[1], I.dims(y)[2]});
  return {y};
}

OpFn pooling(PoolingType type) {
  return [=](Importer& I) -> Outs {
    if (I.output_used(1)) I.fail("the Indices output is not supported");
    TensorId x = I.tin(0);
    const size_t r = I.rank(x);
    if (r < 3 || r > 5) I.fail(fmt::format("input rank {} is not supported (1-D, 2-D and 3-D pooling)", r));
    const Dims kernel = I.attr_ints("kernel_shape");
    if (kernel.size() != r - 2) I.fail("kernel_shape must give one size per spatial dim");
    Spatial s = spatial_attrs(I, I.dims(x), kernel, false);
    for (int64_t d : s.dilation)
      if (d != 1) I.fail(fmt::format("dilations {} are not supported (1 only)", dims_to_string(s.dilation, ',')));
    const Dims in_dims = I.dims(x);
    if (r == 3) {
      to_2d(s);
      x = I.reshape(x, {in_dims[0], in_dims[1], in_dims[2], 1});
    }
    PoolingParams p;
    p.type = type;
    p.window = s.kernel; p.stride = s.stride; p.pre_padding = s.pre; p.post_padding = s.post;
    p.padding_mode = I.attr_i("ceil_mode", 0) ? PaddingMode::kExplicitRoundUp : PaddingMode::kExplicitRoundDown;
    p.average_count_excludes_padding = I.attr_i("count_include_pad", 0) == 0;
    TensorId y = I.add(LayerKind::kPooling, p, {x});
    if (r == 3) y = I.reshape(y, {I.dims(y)[0], I.dims(y)[1], I.dims(y)[2]});
    return {y};
  };
}

OpFn global_pool(ReduceOp op) {
  return [=](Importer& I) -> Outs {
    const TensorId x = I.tin(0);
    if (I.rank(x) < 3) I.fail("input rank must be at least 3");
    ReduceParams p;
    p.op = op;
    p.keep_dims = true;
    for (size_t i = 2; i < I.rank(x); ++i) p.axes |= 1u << i;
    return {I.add(LayerKind::kReduce, p, {x})};
  };
}

OpFn reduce(ReduceOp op) {
  return [=](Importer& I) -> Outs {
    const TensorId x = I.tin(0);
    std::vector<int64_t> axes;
    bool axes_input = (I.opset_ >= 18) || (I.node_->op_type() == "ReduceSum" && I.opset_ >= 13);
    if (axes_input) {
      if (auto c = I.cin_opt(1, "axes"))
        for (int64_t k = 0; k < c->count(); ++k) axes.push_back(c->i(k));
    } else {
      axes = I.attr_ints("axes");
    }
    ReduceParams p;
    p.op = op;
    p.keep_dims = I.attr_i("keepdims", 1) != 0;
    if (axes.empty()) {
      if (I.attr_i("noop_with_empty_axes", 0)) return {I.add(LayerKind::kIdentity, NoParams{}, {x})};
      for (size_t i = 0; i < I.rank(x); ++i) p.axes |= 1u << i;
    }
    for (int64_t a : axes) p.axes |= 1u << I.axis(a, I.rank(x));
    return {I.add(LayerKind::kReduce, p, {x})};
  };
}

// ---- normalisation -----------------------------------------------------------------------------
Outs op_batchnorm(Importer& I) {
  for (int i = 1; i < I.node_->output_size(); ++i)
    if (I.output_used(i)) I.fail("training outputs (mean/var) are not supported");
  if (I.attr_i("training_mode", 0)) I.fail("training_mode=1 is not supported");
  TensorId x = I.tin(0);
  const ConstPtr sc = I.cin(1, "scale"), bi = I.cin(2, "B"), mean = I.cin(3, "mean"), var = I.cin(4, "var");
  const float eps = I.attr_f("epsilon", 1e-5f);
  const size_t r = I.rank(x);
  if (r < 2) I.fail("input rank must be at least 2");
  const int64_t c = I.dims(x)[1];
  for (const auto& k : {sc, bi, mean, var})
    if (k->count() != c) I.fail(fmt::format("'{}' has {} values for {} channels", k->name, k->count(), c));
  std::vector<float> scale(c), shift(c);
  for (int64_t i = 0; i < c; ++i) {
    const double s = sc->f(i) / std::sqrt(var->f(i) + eps);
    scale[i] = static_cast<float>(s);
    shift[i] = static_cast<float>(bi->f(i) - mean->f(i) * s);
  }
  ScaleParams p;
  p.mode = ScaleMode::kChannel;
  p.channel_axis = 1;
  p.scale = I.new_weights(I.node_name_ + "_scale", DataType::kFloat, {c}, scale);
  p.shift = I.new_weights(I.node_name_ + "_shift", DataType::kFloat, {c}, shift);
  const Dims in_dims = I.dims(x);
  if (r < 4) {  // the parser reshapes to 4-D around the Scale
    Dims d = in_dims;
    while (d.size() < 4) d.push_back(1);
    x = I.reshape(x, d);
  }
  TensorId y = I.add(LayerKind::kScale, p, {x});
  if (r < 4) y = I.reshape(y, in_dims);
  return {y};
}

Outs op_layernorm(Importer& I) {
  for (int i = 1; i < I.node_->output_size(); ++i)
    if (I.output_used(i)) I.fail("the Mean/InvStdDev outputs are not supported");
  const TensorId x = I.tin(0);
  const size_t r = I.rank(x);
  const int a = I.axis(I.attr_i("axis", -1), r);
  NormalizationParams p;
  p.epsilon = I.attr_f("epsilon", 1e-5f);
  for (size_t i = a; i < r; ++i) p.axes |= 1u << i;
  TensorId s = I.to_rank(I.tin(1), r);
  TensorId b;
  if (I.has_in(2)) {
    b = I.to_rank(I.tin(2), r);
  } else {
    auto z = make_const("", I.dtype(x), I.dims(s));
    b = I.const_tensor(z);
  }
  return {I.add(LayerKind::kNormalization, p, {x, s, b})};
}

// Scale/bias of [C] become Constants of [1,C,1,...] (no Shuffle).
TensorId channel_const(Importer& I, const ConstPtr& c, size_t r) {
  auto k = make_const("", c->type, {});
  Dims d(r, 1);
  d[1] = c->count();
  k->dims = d;
  k->owned.assign(c->ptr, c->ptr + c->nbytes);
  k->ptr = k->owned.data();
  k->nbytes = k->owned.size();
  k->name = c->name;
  return I.const_tensor(k);
}

Outs op_instancenorm(Importer& I) {
  const TensorId x = I.tin(0);
  const size_t r = I.rank(x);
  if (r < 3) I.fail("input rank must be at least 3");
  const ConstPtr s = I.cin(1, "scale"), b = I.cin(2, "B");
  if (s->count() != I.dims(x)[1] || b->count() != I.dims(x)[1]) I.fail("scale/B do not match the channels");
  NormalizationParams p;
  p.epsilon = I.attr_f("epsilon", 1e-5f);
  for (size_t i = 2; i < r; ++i) p.axes |= 1u << i;
  return {I.add(LayerKind::kNormalization, p, {x, channel_const(I, s, r), channel_const(I, b, r)})};
}

Outs op_groupnorm(Importer& I) {
  const TensorId x = I.tin(0);
  const size_t r = I.rank(x);
  if (r < 3) I.fail("input rank must be at least 3");
  const int64_t g = I.attr_i("num_groups", 0);
  const int64_t c = I.dims(x)[1];
  if (g <= 0 || c % g) I.fail(fmt::format("num_groups {} does not divide {} channels", g, c));
  const ConstPtr s = I.cin(1, "scale"), b = I.cin(2, "bias");
  NormalizationParams p;
  p.epsilon = I.attr_f("epsilon", 1e-5f);
  p.groups = g;
  for (size_t i = 2; i < r; ++i) p.axes |= 1u << i;
  if (s->count() == g && b->count() == g && I.opset_ < 21)
    return {I.add(LayerKind::kNormalization, p, {x, channel_const(I, s, r), channel_const(I, b, r)})};
  if (s->count() != c || b->count() != c) I.fail("scale/bias do not match the channels");
  // Per-channel affine (opset 21): unit normalisation per group, then Mul/Add per channel.
  auto ones = make_const("", I.dtype(x), {g});
  auto zeros = make_const("", I.dtype(x), {g});
  for (int64_t i = 0; i < g; ++i) ones->set_f(i, 1.0);
  const TensorId n = I.add(LayerKind::kNormalization, p, {x, channel_const(I, ones, r), channel_const(I, zeros, r)});
  const TensorId m = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kProd}, {n, channel_const(I, s, r)});
  return {I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kSum}, {m, channel_const(I, b, r)})};
}

Outs op_lrn(Importer& I) {
  LRNParams p;
  p.window = I.attr_i("size", 0);
  if (p.window <= 0) I.fail("size must be positive");
  p.alpha = I.attr_f("alpha", 1e-4f);
  p.beta = I.attr_f("beta", 0.75f);
  p.k = I.attr_f("bias", 1.f);
  return {I.add(LayerKind::kLRN, p, {I.tin(0)})};
}

// ---- shape ops -------------------------------------------------------------------------------
Outs op_concat(Importer& I) {
  std::vector<TensorId> ts;
  for (size_t i = 0; i < I.n_in(); ++i)
    if (I.has_in(i)) ts.push_back(I.tin(i));
  if (ts.empty()) I.fail("no inputs");
  ConcatenationParams p;
  p.axis = I.axis(I.attr_i("axis", I.opset_ < 11 ? 1 : 0), I.rank(ts[0]));
  return {I.add(LayerKind::kConcatenation, p, ts)};
}

Dims reshape_dims(Importer& I, const Dims& in, const ConstPtr& shape, bool allowzero) {
  if (shape->dims.size() != 1) I.fail("shape must be 1-D");
  Dims o;
  int infer = -1;
  int64_t known = 1;
  for (int64_t k = 0; k < shape->count(); ++k) {
    int64_t v = shape->i(k);
    if (v == 0 && !allowzero) {
      if (static_cast<size_t>(k) >= in.size()) I.fail(fmt::format("shape {} copies dim {} the input lacks", k, k));
      v = in[k];
    }
    if (v == -1) {
      if (infer >= 0) I.fail("shape has more than one -1");
      infer = static_cast<int>(k);
    } else if (v < 0 || v > (int64_t{1} << 40)) {
      I.fail(fmt::format("shape value {} is invalid", v));
    } else {
      // Checked before multiplying: both factors may be up to 2^40 (found by fuzz_onnx_import).
      if (v != 0 && known > (int64_t{1} << 40) / v) I.fail("shape volume too large");
      known *= v;
    }
    o.push_back(v);
  }
  const int64_t n = volume(in);
  if (infer >= 0) {
    if (known == 0 || n % known) I.fail(fmt::format("cannot reshape {} to {}", dims_to_string(in), dims_to_string(o, ',')));
    o[infer] = n / known;
  } else if (known != n) {
    I.fail(fmt::format("cannot reshape {} to {}", dims_to_string(in), dims_to_string(o)));
  }
  return o;
}

Outs op_reshape(Importer& I) {
  const TensorId x = I.tin(0);
  ConstPtr shape;
  if (I.opset_ < 5 || I.has_attr("shape")) {
    auto v = I.attr_ints("shape");
    shape = make_const("", DataType::kInt64, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) shape->set_i(static_cast<int64_t>(i), v[i]);
  } else {
    shape = I.cin(1, "shape");
  }
  return {I.reshape(x, reshape_dims(I, I.dims(x), shape, I.attr_i("allowzero", 0) != 0))};
}

Outs op_flatten(Importer& I) {
  const TensorId x = I.tin(0);
  const Dims d = I.dims(x);
  int64_t a = I.attr_i("axis", 1);
  const auto r = static_cast<int64_t>(d.size());
  if (a < -r || a > r) I.fail(fmt::format("axis {} out of range", a));
  if (a < 0) a += r;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < r; ++i) (i < a ? outer : inner) *= d[i];
  return {I.reshape(x, {outer, inner})};
}

Outs op_transpose(Importer& I) {
  const TensorId x = I.tin(0);
  const size_t r = I.rank(x);
  std::vector<int64_t> perm = I.attr_ints("perm");
  if (perm.empty())
    for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
  if (perm.size() != r) I.fail("perm does not match the input rank");
  ShuffleParams p;
  std::vector<char> seen(r, 0);
  for (int64_t v : perm) {
    if (v < 0 || v >= static_cast<int64_t>(r) || seen[v]) I.fail("perm is not a permutation");
    seen[v] = 1;
    p.first_transpose.push_back(static_cast<int>(v));
  }
  return {I.add(LayerKind::kShuffle, p, {x})};
}

std::vector<int64_t> axes_arg(Importer& I, size_t input) {
  if (I.opset_ >= 13) {
    std::vector<int64_t> a;
    if (auto c = I.cin_opt(input, "axes"))
      for (int64_t k = 0; k < c->count(); ++k) a.push_back(c->i(k));
    return a;
  }
  return I.attr_ints("axes");
}

Outs op_squeeze(Importer& I) {
  const TensorId x = I.tin(0);
  const Dims d = I.dims(x);
  std::vector<int64_t> axes = axes_arg(I, 1);
  std::vector<char> drop(d.size(), 0);
  if (axes.empty()) {
    for (size_t i = 0; i < d.size(); ++i) drop[i] = d[i] == 1;
  } else {
    for (int64_t a : axes) {
      const int k = I.axis(a, d.size());
      if (d[k] != 1) I.fail(fmt::format("cannot squeeze axis {} of size {}", k, d[k]));
      drop[k] = 1;
    }
  }
  Dims o;
  for (size_t i = 0; i < d.size(); ++i)
    if (!drop[i]) o.push_back(d[i]);
  return {I.reshape(x, o)};
}

Outs op_unsqueeze(Importer& I) {
  const TensorId x = I.tin(0);
  const Dims d = I.dims(x);
  std::vector<int64_t> axes = axes_arg(I, 1);
  if (axes.empty()) I.fail("axes are missing");
  const size_t r = d.size() + axes.size();
  std::vector<char> ins(r, 0);
  for (int64_t a : axes) {
    const int k = I.axis(a, r);
    if (ins[k]) I.fail("axes repeat");
    ins[k] = 1;
  }
  Dims o;
  size_t j = 0;
  for (size_t i = 0; i < r; ++i) o.push_back(ins[i] ? 1 : d[j++]);
  return {I.reshape(x, o)};
}

// ONNX Slice semantics on static dims: per axis start/size/stride.
void slice_axis(Importer& I, int64_t dim, int64_t st, int64_t en, int64_t step, int64_t* start, int64_t* size) {
  if (step == 0) I.fail("slice step is 0");
  if (dim == 0) {  // an empty axis slices to an empty one (and the clamps below need dim >= 1)
    *start = 0;
    *size = 0;
    return;
  }
  if (st < 0) st += dim;
  if (en < 0) en += dim;
  if (step > 0) {
    st = std::clamp<int64_t>(st, 0, dim);
    en = std::clamp<int64_t>(en, 0, dim);
    *size = en > st ? (en - st + step - 1) / step : 0;
  } else {
    st = std::clamp<int64_t>(st, 0, dim - 1);
    en = std::clamp<int64_t>(en, -1, dim - 1);
    *size = st > en ? (st - en + (-step) - 1) / (-step) : 0;
  }
  *start = st;
}

Outs op_slice(Importer& I) {
  const TensorId x = I.tin(0);
  const Dims d = I.dims(x);
  std::vector<int64_t> starts, ends, axes, steps;
  auto read = [&](size_t i, const char* what) {
    std::vector<int64_t> v;
    if (auto c = I.cin_opt(i, what))
      for (int64_t k = 0; k < c->count(); ++k) v.push_back(c->i(k));
    return v;
  };
  if (I.opset_ < 10) {
    starts = I.attr_ints("starts"); ends = I.attr_ints("ends"); axes = I.attr_ints("axes");
  } else {
    starts = read(1, "starts"); ends = read(2, "ends"); axes = read(3, "axes"); steps = read(4, "steps");
  }
  if (starts.size() != ends.size()) I.fail("starts and ends differ in length");
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) I.fail("axes/steps differ in length from starts");
  SliceParams p;
  p.start = Dims(d.size(), 0);
  p.size = d;
  p.stride = Dims(d.size(), 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int a = I.axis(axes[i], d.size());
    slice_axis(I, d[a], starts[i], ends[i], steps[i], &p.start[a], &p.size[a]);
    p.stride[a] = steps[i];
  }
  return {I.add(LayerKind::kSlice, p, {x})};
}

Outs op_split(Importer& I) {
  const TensorId x = I.tin(0);
  const Dims d = I.dims(x);
  const int a = I.axis(I.attr_i("axis", 0), d.size());
  const auto n = static_cast<int64_t>(I.node_->output_size());
  std::vector<int64_t> split;
  if (I.opset_ >= 13) {
    if (auto c = I.cin_opt(1, "split"))
      for (int64_t k = 0; k < c->count(); ++k) split.push_back(c->i(k));
  } else {
    split = I.attr_ints("split");
  }
  if (split.empty()) {
    const int64_t chunk = (d[a] + n - 1) / n;
    for (int64_t i = 0; i < n; ++i) split.push_back(std::min(chunk, d[a] - chunk * i));
  }
  if (static_cast<int64_t>(split.size()) != n) I.fail("split sizes do not match the outputs");
  int64_t total = 0;
  for (int64_t s : split) {
    if (s < 0) I.fail(fmt::format("split size {} is negative", s));
    total += s;
  }
  if (total != d[a]) I.fail(fmt::format("split sizes sum to {}, axis has {}", total, d[a]));
  Outs outs;
  int64_t off = 0;
  for (int64_t s : split) {  // one Slice per output
    SliceParams p;
    p.start = Dims(d.size(), 0);
    p.start[a] = off;
    p.size = d;
    p.size[a] = s;
    p.stride = Dims(d.size(), 1);
    outs.push_back(I.add(LayerKind::kSlice, p, {x}));
    off += s;
  }
  return outs;
}

Outs op_pad(Importer& I) {
  const TensorId x = I.tin(0);
  const Dims d = I.dims(x);
  const size_t r = d.size();
  std::vector<int64_t> pads, axes;
  float value = 0.f;
  if (I.opset_ < 11) {
    pads = I.attr_ints("pads");
    value = I.attr_f("value", 0.f);
  } else {
    const ConstPtr pc = I.cin(1, "pads");
    for (int64_t k = 0; k < pc->count(); ++k) pads.push_back(pc->i(k));
    if (auto v = I.cin_opt(2, "constant_value")) {
      if (v->count() != 1) I.fail("constant_value must be a scalar");
      value = static_cast<float>(v->f(0));
    }
    if (auto ac = I.cin_opt(3, "axes"))
      for (int64_t k = 0; k < ac->count(); ++k) axes.push_back(ac->i(k));
  }
  if (axes.empty())
    for (size_t i = 0; i < r; ++i) axes.push_back(static_cast<int64_t>(i));
  if (pads.size() != 2 * axes.size()) I.fail(fmt::format("{} pads for {} axes", pads.size(), axes.size()));
  const std::string mode = I.attr_s("mode", "constant");
  SliceParams p;
  if (mode == "constant") p.mode = SliceMode::kFill;
  else if (mode == "reflect") p.mode = SliceMode::kReflect;
  else if (mode == "edge") p.mode = SliceMode::kClamp;
  else if (mode == "wrap") p.mode = SliceMode::kWrap;
  else I.fail(fmt::format("mode '{}' is not supported", mode));
  p.fill_value = value;
  p.start = Dims(r, 0);
  p.size = d;
  p.stride = Dims(r, 1);
  const size_t na = axes.size();
  for (size_t i = 0; i < na; ++i) {
    const int a = I.axis(axes[i], r);
    const int64_t pre = pads[i], post = pads[na + i];
    if (std::abs(pre) > (int64_t{1} << 31) || std::abs(post) > (int64_t{1} << 31)) I.fail("pads are too large");
    p.start[a] = -pre;
    p.size[a] = d[a] + pre + post;
    if (p.size[a] <= 0) I.fail(fmt::format("pads remove all of axis {}", a));
  }
  return {I.add(LayerKind::kSlice, p, {x})};
}

Outs op_expand(Importer& I) {
  TensorId x = I.tin(0);
  const ConstPtr sc = I.cin(1, "shape");
  Dims shape;
  for (int64_t k = 0; k < sc->count(); ++k) shape.push_back(sc->i(k));
  const size_t r = std::max(shape.size(), I.rank(x));
  x = I.to_rank(x, r);
  while (shape.size() < r) shape.insert(shape.begin(), 1);
  const Dims d = I.dims(x);
  SliceParams p;  // the parser's broadcast: a Slice with stride 0 on the expanded axes
  p.start = Dims(r, 0);
  p.size = Dims(r);
  p.stride = Dims(r, 1);
  for (size_t i = 0; i < r; ++i) {
    if (d[i] != shape[i] && d[i] != 1 && shape[i] != 1)
      I.fail(fmt::format("cannot expand {} to {}", dims_to_string(d), dims_to_string(shape)));
    p.size[i] = std::max(d[i], shape[i]);
    if (d[i] == 1 && p.size[i] != 1) p.stride[i] = 0;
  }
  return {I.add(LayerKind::kSlice, p, {x})};
}

Outs op_tile(Importer& I) {
  const TensorId x = I.tin(0);
  const ConstPtr rc = I.cin(1, "repeats");
  const Dims d = I.dims(x);
  if (rc->count() != static_cast<int64_t>(d.size())) I.fail("repeats do not match the input rank");
  SliceParams p;
  p.mode = SliceMode::kWrap;
  p.start = Dims(d.size(), 0);
  p.stride = Dims(d.size(), 1);
  for (size_t i = 0; i < d.size(); ++i) {
    const int64_t rep = rc->i(static_cast<int64_t>(i));
    if (rep <= 0 || rep > (int64_t{1} << 20)) I.fail(fmt::format("repeat {} is not supported", rep));
    p.size.push_back(d[i] * rep);
  }
  return {I.add(LayerKind::kSlice, p, {x})};
}

Outs op_gather(Importer& I) {
  const Value& data = I.in(0);
  const size_t r = data.t >= 0 ? I.rank(data.t) : I.cin(0, "data")->dims.size();
  if (r == 0) I.fail("data is a scalar");
  const int a = I.axis(I.attr_i("axis", 0), r);
  TensorId dt = I.tin(0);
  TensorId it;
  if (I.in(1).c) {  // constant indices: normalise negative ones at import
    const ConstPtr c = I.in(1).c;
    const int64_t n = I.dims(dt)[a];
    bool neg = false;
    for (int64_t k = 0; k < c->count(); ++k) {
      const int64_t v = c->i(k);
      if (v < -n || v >= n) I.fail(fmt::format("index {} out of range [{}, {})", v, -n, n));
      neg |= v < 0;
    }
    if (neg) {
      auto f = make_const(c->name, c->type, c->dims);
      for (int64_t k = 0; k < c->count(); ++k) f->set_i(k, c->i(k) < 0 ? c->i(k) + n : c->i(k));
      f->name = "";
      it = I.const_tensor(f);
    } else {
      it = I.const_tensor(c);
    }
  } else {
    it = I.tin(1);
  }
  if (I.dtype(it) != DataType::kInt32 && I.dtype(it) != DataType::kInt64) I.fail("indices are not int32/int64");
  return {I.add(LayerKind::kGather, GatherParams{a}, {dt, it})};
}

bool onnx_cast_type(int64_t to, DataType* out) {
  if (to == onnx::TensorProto::DOUBLE) { *out = DataType::kFloat; return true; }  // as the parser
  return onnx_to_data_type(static_cast<int>(to), out);
}

Outs op_cast(Importer& I) {
  DataType to;
  const int64_t t = I.attr_i("to", -1);
  if (!onnx_cast_type(t, &to)) I.fail(fmt::format("cast to {} is not supported", onnx_type_name(static_cast<int>(t))));
  return {I.add(LayerKind::kCast, CastParams{to}, {I.tin(0)})};
}

// DepthToSpace / SpaceToDepth: Shuffle(reshape to 6-D, then transpose) + Shuffle(reshape back).
OpFn space_depth(bool to_space) {
  return [=](Importer& I) -> Outs {
    const TensorId x = I.tin(0);
    if (I.rank(x) != 4) I.fail("input must be 4-D");
    const Dims d = I.dims(x);
    const int64_t b = I.attr_i("blocksize", 0);
    if (b <= 0 || b > 4096) I.fail(fmt::format("blocksize {} is not supported", b));
    const int64_t n = d[0], c = d[1], h = d[2], w = d[3];
    ShuffleParams p;
    Dims out;
    if (to_space) {
      if (c % (b * b)) I.fail(fmt::format("channels {} not divisible by blocksize^2", c));
      const std::string mode = I.attr_s("mode", "DCR");
      if (mode == "DCR") { p.reshape = Dims{n, b, b, c / (b * b), h, w}; p.second_transpose = {0, 3, 4, 1, 5, 2}; }
      else if (mode == "CRD") { p.reshape = Dims{n, c / (b * b), b, b, h, w}; p.second_transpose = {0, 1, 4, 2, 5, 3}; }
      else I.fail(fmt::format("mode '{}' is not supported", mode));
      out = {n, c / (b * b), h * b, w * b};
    } else {
      if (h % b || w % b) I.fail(fmt::format("spatial dims {}x{} not divisible by blocksize {}", h, w, b));
      p.reshape = Dims{n, c, h / b, b, w / b, b};
      p.second_transpose = {0, 3, 5, 1, 2, 4};
      out = {n, c * b * b, h / b, w / b};
    }
    const TensorId t = I.add(LayerKind::kShuffle, p, {x});
    return {I.reshape(t, out)};
  };
}

Outs op_cast_like(Importer& I) {
  const Value& like = I.in(1);
  if (!like.present()) I.fail("target_type input is missing");
  const DataType to = like.t >= 0 ? I.dtype(like.t) : like.c->type;
  return {I.add(LayerKind::kCast, CastParams{to}, {I.tin(0)})};
}

Outs op_identity(Importer& I) {
  if (I.node_->op_type() != "Dropout") return {I.add(LayerKind::kIdentity, NoParams{}, {I.tin(0)})};
  // Dropout in inference, as the parser imports it: `training_mode` must be a constant false
  // (onnx-tensorrt: "TensorRT does not support the Dropout operator in training mode"); the output
  // is the input, and the mask (if asked for) is ElementWise EQUAL(x, x) from opset 12 (all true
  // but at NaNs, exactly the parser's layer), LESS(x, x) before (all false, the parser's choice).
  if (const ConstPtr training = I.cin_opt(2, "training_mode"); training && training->count() && training->i(0))
    I.fail("training_mode is true; Dropout imports in inference mode only (as TensorRT's parser)");
  const TensorId x = I.tin(0);
  const TensorId y = I.add(LayerKind::kIdentity, NoParams{}, {x});
  if (!I.output_used(1)) return {y};
  const ElementWiseOp op = I.opset_ >= 12 ? ElementWiseOp::kEqual : ElementWiseOp::kLess;
  return {y, I.add(LayerKind::kElementWise, ElementWiseParams{op}, {x, x})};
}

OpFn softmax(bool log) {
  return [=](Importer& I) -> Outs {
    const TensorId x = I.tin(0);
    const Dims d = I.dims(x);
    const size_t r = d.size();
    TensorId y;
    if (I.opset_ >= 13) {
      const int a = I.axis(I.attr_i("axis", -1), r);
      y = I.add(LayerKind::kSoftMax, SoftMaxParams{1u << a}, {x});
    } else {  // flatten to 2-D around the axis, SoftMax on axis 1, reshape back (as the parser)
      const int a = I.axis(I.attr_i("axis", 1), r);
      int64_t outer = 1, inner = 1;
      for (size_t i = 0; i < r; ++i) (static_cast<int>(i) < a ? outer : inner) *= d[i];
      const TensorId f = I.reshape(x, {outer, inner});
      y = I.add(LayerKind::kSoftMax, SoftMaxParams{1u << 1}, {f});
    }
    if (log) y = I.add(LayerKind::kUnary, UnaryParams{UnaryOp::kLog}, {y});
    return {I.reshape(y, d)};  // the parser's trailing reshape to the input shape
  };
}

// ---- matrix multiply ---------------------------------------------------------------------------
Outs op_matmul(Importer& I) {
  TensorId a = I.tin(0), b = I.tin(1);
  const bool a1 = I.rank(a) == 1, b1 = I.rank(b) == 1;
  if (I.rank(a) == 0 || I.rank(b) == 0) I.fail("scalar operands are not supported");
  if (a1) a = I.reshape(a, {1, I.dims(a)[0]});
  if (b1) b = I.reshape(b, {I.dims(b)[0], 1});
  std::vector<TensorId> ts{a, b};
  I.broadcast_ranks(ts);
  TensorId y = I.add(LayerKind::kMatrixMultiply, MatrixMultiplyParams{}, ts);
  if (a1 || b1) {
    Dims d = I.dims(y);
    if (b1) d.pop_back();
    if (a1) d.erase(d.end() - (b1 ? 1 : 2));
    y = I.reshape(y, d);
  }
  return {y};
}

Outs op_gemm(Importer& I) {
  const TensorId a = I.tin(0), b = I.tin(1);
  if (I.rank(a) != 2 || I.rank(b) != 2) I.fail("A and B must be 2-D");
  MatrixMultiplyParams p;
  p.op0 = I.attr_i("transA", 0) ? MatrixOp::kTranspose : MatrixOp::kNone;
  p.op1 = I.attr_i("transB", 0) ? MatrixOp::kTranspose : MatrixOp::kNone;
  const float alpha = I.attr_f("alpha", 1.f), beta = I.attr_f("beta", 1.f);
  TensorId y = I.add(LayerKind::kMatrixMultiply, p, {a, b});
  if (alpha != 1.f)
    y = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kProd}, {y, I.scalar_const(alpha, I.dtype(y), 2)});
  if (I.has_in(2) && beta != 0.f) {
    TensorId c = I.to_rank(I.tin(2), 2);
    if (beta != 1.f)
      c = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kProd}, {c, I.scalar_const(beta, I.dtype(c), 2)});
    y = I.add(LayerKind::kElementWise, ElementWiseParams{ElementWiseOp::kSum}, {y, c});
  }
  return {y};
}

// ---- resize ------------------------------------------------------------------------------------
Outs op_resize(Importer& I) {
  const TensorId x = I.tin(0);
  const size_t r = I.rank(x);
  const std::string& op = I.node_->op_type();
  ResizeParams p;
  std::string mode = I.attr_s("mode", "nearest");
  if (mode == "nearest") p.mode = ResizeMode::kNearest;
  else if (mode == "linear" || mode == "bilinear") p.mode = ResizeMode::kLinear;
  else if (mode == "cubic") p.mode = ResizeMode::kCubic;
  else I.fail(fmt::format("mode '{}' is not supported", mode));
  ConstPtr scales, sizes;
  if (op == "Upsample" || I.opset_ < 11) {
    p.transform = ResizeCoordinateTransform::kAsymmetric;
    p.rounding = ResizeRounding::kFloor;
    if (I.opset_ < 9 && op == "Upsample") {
      auto v = I.attr_floats("scales");
      scales = make_const("", DataType::kFloat, {static_cast<int64_t>(v.size())});
      for (size_t i = 0; i < v.size(); ++i) scales->set_f(static_cast<int64_t>(i), v[i]);
    } else {
      scales = I.cin(1, "scales");
    }
  } else {
    const std::string ct = I.attr_s("coordinate_transformation_mode", "half_pixel");
    if (ct == "half_pixel") p.transform = ResizeCoordinateTransform::kHalfPixel;
    else if (ct == "pytorch_half_pixel") { p.transform = ResizeCoordinateTransform::kHalfPixel; p.selector = ResizeSelector::kUpper; }
    else if (ct == "align_corners") p.transform = ResizeCoordinateTransform::kAlignCorners;
    else if (ct == "asymmetric") p.transform = ResizeCoordinateTransform::kAsymmetric;
    else if (ct == "tf_half_pixel_for_nn") p.transform = ResizeCoordinateTransform::kHalfPixel;
    else I.fail(fmt::format("coordinate_transformation_mode '{}' is not supported", ct));
    const std::string nm = I.attr_s("nearest_mode", "round_prefer_floor");
    if (nm == "round_prefer_floor") p.rounding = ResizeRounding::kHalfDown;
    else if (nm == "round_prefer_ceil") p.rounding = ResizeRounding::kHalfUp;
    else if (nm == "floor") p.rounding = ResizeRounding::kFloor;
    else if (nm == "ceil") p.rounding = ResizeRounding::kCeil;
    else I.fail(fmt::format("nearest_mode '{}' is not supported", nm));
    if (ct == "tf_half_pixel_for_nn") p.rounding = ResizeRounding::kCeil;
    p.cubic_coeff = I.attr_f("cubic_coeff_a", -0.75f);
    if (I.attr_i("exclude_outside", 0)) I.fail("exclude_outside=1 is not supported");
    if (I.attr_i("antialias", 0)) I.fail("antialias=1 is not supported");
    const std::string kar = I.attr_s("keep_aspect_ratio_policy", "stretch");
    if (kar != "stretch") I.fail(fmt::format("keep_aspect_ratio_policy '{}' is not supported", kar));
    scales = I.cin_opt(2, "scales");
    sizes = I.cin_opt(3, "sizes");
    if (scales && scales->count() == 0) scales = nullptr;
    if (sizes && sizes->count() == 0) sizes = nullptr;
    if (!scales && !sizes) I.fail("neither scales nor sizes is given");
    if (scales && sizes) I.fail("both scales and sizes are given");
  }
  std::vector<int64_t> axes = I.attr_ints("axes");
  std::vector<int> ax;
  if (axes.empty()) for (size_t i = 0; i < r; ++i) ax.push_back(static_cast<int>(i));
  else for (int64_t a : axes) ax.push_back(I.axis(a, r));
  const ConstPtr& given = scales ? scales : sizes;
  if (given->count() != static_cast<int64_t>(ax.size()))
    I.fail(fmt::format("{} {} for {} axes", given->count(), scales ? "scales" : "sizes", ax.size()));
  if (scales) {
    p.scales.assign(r, 1.f);
    for (size_t i = 0; i < ax.size(); ++i) {
      const double s = scales->f(static_cast<int64_t>(i));
      if (!(s > 0) || s > 65536) I.fail(fmt::format("scale {} is not supported", s));
      p.scales[ax[i]] = static_cast<float>(s);
    }
  } else {
    p.output_dims = I.dims(x);
    for (size_t i = 0; i < ax.size(); ++i) {
      const int64_t s = sizes->i(static_cast<int64_t>(i));
      if (s <= 0 || s > (int64_t{1} << 31)) I.fail(fmt::format("size {} is not supported", s));
      p.output_dims[ax[i]] = s;
    }
  }
  return {I.add(LayerKind::kResize, p, {x})};
}

}  // namespace

// ops_decomposed.cpp: ops without a layer kind, decomposed into existing layers.
void register_decomposed_ops(std::unordered_map<std::string, OpFn>& m);
// ops_index.cpp: Gather/Scatter modes, TopK, Einsum, GridSample.
void register_index_ops(std::unordered_map<std::string, OpFn>& m);
void register_recurrent_ops(std::unordered_map<std::string, OpFn>& m);  // ops_recurrent.cpp
void register_control_ops(std::unordered_map<std::string, OpFn>& m);    // ops_control.cpp
void register_dynamic_ops(std::unordered_map<std::string, OpFn>& m);    // ops_dynamic.cpp: NonZero, NMS
void register_mod_op(std::unordered_map<std::string, OpFn>& m);         // ops_mod.cpp
void register_random_ops(std::unordered_map<std::string, OpFn>& m);     // ops_random.cpp: RandomUniformLike

const std::unordered_map<std::string, OpFn>& op_importers() {
  static const std::unordered_map<std::string, OpFn> m = [] {
    std::unordered_map<std::string, OpFn> m = {
      {"Conv", op_conv},
      {"ConvTranspose", op_conv_transpose},
      {"BatchNormalization", op_batchnorm},
      {"Relu", activation(ActivationType::kRelu, 0, 0, nullptr, nullptr)},
      {"Sigmoid", activation(ActivationType::kSigmoid, 0, 0, nullptr, nullptr)},
      {"Tanh", activation(ActivationType::kTanh, 0, 0, nullptr, nullptr)},
      {"LeakyRelu", activation(ActivationType::kLeakyRelu, 0.01f, 0, "alpha", nullptr)},
      {"Elu", activation(ActivationType::kElu, 1.f, 0, "alpha", nullptr)},
      {"Selu", activation(ActivationType::kSelu, 1.67326319217681884765625f, 1.05070102214813232421875f, "alpha", "gamma")},
      {"Softplus", activation(ActivationType::kSoftplus, 1.f, 1.f, nullptr, nullptr)},
      {"Softsign", activation(ActivationType::kSoftsign, 0, 0, nullptr, nullptr)},
      {"ThresholdedRelu", activation(ActivationType::kThresholdedRelu, 1.f, 0, "alpha", nullptr)},
      {"HardSigmoid", activation(ActivationType::kHardSigmoid, 0.2f, 0.5f)},
      {"HardSwish", op_hardswish},
      {"Clip", op_clip},
      {"Gelu", op_gelu},
      {"PRelu", op_prelu},
      {"Add", eltwise(ElementWiseOp::kSum)},
      {"Sum", eltwise(ElementWiseOp::kSum)},
      {"Sub", eltwise(ElementWiseOp::kSub)},
      {"Mul", eltwise(ElementWiseOp::kProd)},
      {"Div", eltwise(ElementWiseOp::kDiv)},
      {"Pow", eltwise(ElementWiseOp::kPow)},
      {"Max", eltwise(ElementWiseOp::kMax)},
      {"Min", eltwise(ElementWiseOp::kMin)},
      {"Mean", op_mean},
      {"Equal", eltwise(ElementWiseOp::kEqual)},
      {"Greater", eltwise(ElementWiseOp::kGreater)},
      {"Less", eltwise(ElementWiseOp::kLess)},
      {"GreaterOrEqual", or_equal(ElementWiseOp::kGreater)},
      {"LessOrEqual", or_equal(ElementWiseOp::kLess)},
      {"And", eltwise(ElementWiseOp::kAnd)},
      {"Or", eltwise(ElementWiseOp::kOr)},
      {"Xor", eltwise(ElementWiseOp::kXor)},
      {"Where", op_where},
      {"Sqrt", unary(UnaryOp::kSqrt)},
      {"Exp", unary(UnaryOp::kExp)},
      {"Log", unary(UnaryOp::kLog)},
      {"Abs", unary(UnaryOp::kAbs)},
      {"Neg", unary(UnaryOp::kNeg)},
      {"Erf", unary(UnaryOp::kErf)},
      {"Reciprocal", unary(UnaryOp::kRecip)},
      {"Floor", unary(UnaryOp::kFloor)},
      {"Ceil", unary(UnaryOp::kCeil)},
      {"Round", unary(UnaryOp::kRound)},
      {"Sign", unary(UnaryOp::kSign)},
      {"Not", unary(UnaryOp::kNot)},
      {"Sin", unary(UnaryOp::kSin)},
      {"Cos", unary(UnaryOp::kCos)},
      {"Tan", unary(UnaryOp::kTan)},
      {"Sinh", unary(UnaryOp::kSinh)},
      {"Cosh", unary(UnaryOp::kCosh)},
      {"Asin", unary(UnaryOp::kAsin)},
      {"Acos", unary(UnaryOp::kAcos)},
      {"Atan", unary(UnaryOp::kAtan)},
      {"Asinh", unary(UnaryOp::kAsinh)},
      {"Acosh", unary(UnaryOp::kAcosh)},
      {"Atanh", unary(UnaryOp::kAtanh)},
      {"MaxPool", pooling(PoolingType::kMax)},
      {"AveragePool", pooling(PoolingType::kAverage)},
      {"GlobalAveragePool", global_pool(ReduceOp::kAvg)},
      {"GlobalMaxPool", global_pool(ReduceOp::kMax)},
      {"ReduceMean", reduce(ReduceOp::kAvg)},
      {"ReduceMax", reduce(ReduceOp::kMax)},
      {"ReduceMin", reduce(ReduceOp::kMin)},
      {"ReduceSum", reduce(ReduceOp::kSum)},
      {"ReduceProd", reduce(ReduceOp::kProd)},
      {"LRN", op_lrn},
      {"LayerNormalization", op_layernorm},
      {"InstanceNormalization", op_instancenorm},
      {"GroupNormalization", op_groupnorm},
      {"Concat", op_concat},
      {"Reshape", op_reshape},
      {"Flatten", op_flatten},
      {"Transpose", op_transpose},
      {"Squeeze", op_squeeze},
      {"Unsqueeze", op_unsqueeze},
      {"Slice", op_slice},
      {"Split", op_split},
      {"Pad", op_pad},
      {"Expand", op_expand},
      {"Tile", op_tile},
      {"Gather", op_gather},
      {"Cast", op_cast},
      {"CastLike", op_cast_like},
      {"DepthToSpace", space_depth(true)},
      {"SpaceToDepth", space_depth(false)},
      {"Identity", op_identity},
      {"Dropout", op_identity},
      {"Softmax", softmax(false)},
      {"LogSoftmax", softmax(true)},
      {"MatMul", op_matmul},
      {"Gemm", op_gemm},
      {"Resize", op_resize},
      {"Upsample", op_resize},
  };
    register_qdq_ops(m);
    register_decomposed_ops(m);
    register_index_ops(m);
    register_recurrent_ops(m);
    register_control_ops(m);
    register_dynamic_ops(m);
    register_mod_op(m);
    register_random_ops(m);
    return m;
  }();
  return m;
}

}  // namespace tandem::onnx_detail
