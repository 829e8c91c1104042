// oneDNN kernels: convolution, deconvolution and matrix multiply, primitives created once.
#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <memory>

#include "kernels.h"

namespace tandem::cpu {

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::memory::dims to_dnnl(const Dims& d) { return dnnl::memory::dims(d.begin(), d.end()); }

tag plain_tag(size_t rank) {
  switch (rank) {
    case 1: return tag::a;
    case 2: return tag::ab;
    case 3: return tag::abc;
    case 4: return tag::abcd;
    case 5: return tag::abcde;
    case 6: return tag::abcdef;
    default: return tag::undef;
  }
}

// Appends one activation as oneDNN post-ops. Returns false if it has no exact equivalent.
bool append_activation(dnnl::post_ops& po, const PostOp& p) {
  using A = dnnl::algorithm;
  if (p.kind == PostOp::kHardSwish) {
    po.append_eltwise(1.f, A::eltwise_hardswish, 0.f, 0.f);
    return true;
  }
  const ActivationParams& a = p.act;
  switch (a.type) {
    case ActivationType::kRelu: po.append_eltwise(1.f, A::eltwise_relu, 0.f, 0.f); return true;
    case ActivationType::kLeakyRelu: po.append_eltwise(1.f, A::eltwise_relu, a.alpha, 0.f); return true;
    case ActivationType::kSigmoid: po.append_eltwise(1.f, A::eltwise_logistic, 0.f, 0.f); return true;
    case ActivationType::kTanh: po.append_eltwise(1.f, A::eltwise_tanh, 0.f, 0.f); return true;
    case ActivationType::kClip: po.append_eltwise(1.f, A::eltwise_clip_v2, a.alpha, a.beta); return true;
    case ActivationType::kElu: po.append_eltwise(1.f, A::eltwise_elu, a.alpha, 0.f); return true;
    case ActivationType::kHardSigmoid:
      po.append_eltwise(1.f, A::eltwise_linear, a.alpha, a.beta);
      po.append_eltwise(1.f, A::eltwise_clip_v2, 0.f, 1.f);
      return true;
    case ActivationType::kGeluErf: po.append_eltwise(1.f, A::eltwise_gelu_erf, 0.f, 0.f); return true;
    case ActivationType::kGeluTanh: po.append_eltwise(1.f, A::eltwise_gelu_tanh, 0.f, 0.f); return true;
    case ActivationType::kSelu: case ActivationType::kSoftplus: case ActivationType::kSoftsign:
    case ActivationType::kThresholdedRelu: case ActivationType::kScaledTanh:
      return false;
  }
  return false;
}

}  // namespace

bool dnnl_supports_post_op(const PostOp& p) {
  dnnl::post_ops po;
  return append_activation(po, p);
}

Kernel make_conv_kernel(const ConvSpec& s) {
  const Layer& l = *s.layer;
  const ConvolutionParams& p = l.as<ConvolutionParams>();
  bool deconv = l.kind == LayerKind::kDeconvolution;
  size_t r = p.kernel.size();
  int64_t C = s.in_dims[1], K = s.out_dims[1], g = p.groups;
  dnnl::memory::dims strides, dil, pl, pr;
  for (size_t i = 0; i < r; ++i) {
    int64_t st = p.stride.empty() ? 1 : p.stride[i];
    int64_t d = p.dilation.empty() ? 1 : p.dilation[i];
    int64_t a = p.pre_padding.empty() ? 0 : p.pre_padding[i];
    strides.push_back(st);
    dil.push_back(d - 1);
    pl.push_back(a);
    // The right padding that makes the output size come out as the tensor says (covers ceil
    // modes and ConvTranspose output_padding).
    int64_t in = s.in_dims[2 + i], out = s.out_dims[2 + i], ek = (p.kernel[i] - 1) * d + 1;
    if (!deconv) pr.push_back((out - 1) * st + ek - in - a);
    else pr.push_back((in - 1) * st + ek - a - out);
  }
  // Weights as stored: conv [K, C/g, k...] (g, o, i, k... when grouped); deconv [C, K/g, k...]
  // (logically g, o, i, k... stored as g, i, o, k...). Described by strides.
  int64_t ksz = 1;
  for (int64_t k : p.kernel) ksz *= k;
  dnnl::memory::dims wd, ws;
  int64_t o = K / g, i = C / g;
  if (g > 1) wd = {g, o, i};
  else wd = {o, i};
  if (!deconv) ws = g > 1 ? dnnl::memory::dims{o * i * ksz, i * ksz, ksz} : dnnl::memory::dims{i * ksz, ksz};
  else ws = g > 1 ? dnnl::memory::dims{o * i * ksz, ksz, o * ksz} : dnnl::memory::dims{ksz, o * ksz};
  int64_t wst = ksz;
  for (int64_t k : p.kernel) {
    wd.push_back(k);
    wst /= k;
    ws.push_back(wst);
  }
  auto& eng = cpu_engine();
  dnnl::memory::desc src_md(to_dnnl(s.in_dims), dt::f32, plain_tag(r + 2));
  dnnl::memory::desc dst_md(to_dnnl(s.out_dims), dt::f32, plain_tag(r + 2));
  dnnl::memory::desc w_user_md(wd, dt::f32, ws);
  dnnl::memory::desc w_any_md(wd, dt::f32, tag::any);
  dnnl::memory::desc b_md({K}, dt::f32, tag::a);
  bool has_bias = !s.bias.empty();

  dnnl::primitive_attr attr;
  dnnl::post_ops po;
  for (const PostOp& op : s.post_ops)
    if (!append_activation(po, op))
      throw Error("layer '" + l.name + "': activation cannot be fused (internal)");
  attr.set_post_ops(po);

  dnnl::primitive prim;
  dnnl::memory::desc w_md;
  if (!deconv) {
    auto d = has_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                            dnnl::algorithm::convolution_direct, src_md, w_any_md, b_md, dst_md,
                            strides, dil, pl, pr)
                      : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                            dnnl::algorithm::convolution_direct, src_md, w_any_md, dst_md,
                            strides, dil, pl, pr);
    dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    prim = dnnl::convolution_forward(pd);
    w_md = pd.weights_desc();
  } else {
    auto d = has_bias ? dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_inference,
                            dnnl::algorithm::deconvolution_direct, src_md, w_any_md, b_md, dst_md,
                            strides, dil, pl, pr)
                      : dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_inference,
                            dnnl::algorithm::deconvolution_direct, src_md, w_any_md, dst_md,
                            strides, dil, pl, pr);
    dnnl::deconvolution_forward::primitive_desc pd(d, attr, eng);
    prim = dnnl::deconvolution_forward(pd);
    w_md = pd.weights_desc();
  }
  // Reorder the weights once into the layout the primitive wants.
  dnnl::stream st(eng);
  auto kernel = std::make_shared<std::vector<float>>(s.kernel);
  dnnl::memory w_user(w_user_md, eng, kernel->data());
  dnnl::memory w_mem(w_md, eng);
  dnnl::reorder(w_user, w_mem).execute(st, w_user, w_mem);
  st.wait();
  auto bias = std::make_shared<std::vector<float>>(s.bias);
  dnnl::memory b_mem;
  if (has_bias) b_mem = dnnl::memory(b_md, eng, bias->data());
  dnnl::memory src_mem(src_md, eng, nullptr), dst_mem(dst_md, eng, nullptr);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) mutable {
    (void)bias;
    src_mem.set_data_handle(in[0]);
    dst_mem.set_data_handle(out[0]);
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, dst_mem}};
    if (has_bias) args[DNNL_ARG_BIAS] = b_mem;
    dnnl::stream s(cpu_engine());
    prim.execute(s, args);
    s.wait();
  };
}

Kernel make_matmul_kernel(const Network& net, const Layer& l) {
  const MatrixMultiplyParams& p = l.as<MatrixMultiplyParams>();
  const Tensor& ta = net.tensors[l.inputs[0]];
  const Tensor& tb = net.tensors[l.inputs[1]];
  const Tensor& to = net.tensors[l.outputs[0]];
  size_t rank = to.dims.size();
  if (rank < 2 || rank > 12)
    throw Error("layer '" + l.name + "': matrix multiply of rank " + std::to_string(rank) +
                " (the CPU backend takes 2..12)");
  // Right-align both operands to the output rank; a transposed operand is described by strides.
  auto describe = [&](const Tensor& t, bool trans) {
    Dims d(rank, 1);
    for (size_t i = 0; i < t.dims.size(); ++i) d[rank - t.dims.size() + i] = t.dims[i];
    dnnl::memory::dims strides(rank, 0);
    int64_t s = 1;
    for (int i = int(rank) - 1; i >= 0; --i) {
      strides[i] = s;
      s *= d[i];
    }
    if (trans) {
      std::swap(d[rank - 1], d[rank - 2]);
      std::swap(strides[rank - 1], strides[rank - 2]);
    }
    return dnnl::memory::desc(to_dnnl(d), dt::f32, strides);
  };
  dnnl::memory::desc a_md = describe(ta, p.op0 == MatrixOp::kTranspose);
  dnnl::memory::desc b_md = describe(tb, p.op1 == MatrixOp::kTranspose);
  dnnl::memory::desc c_md(to_dnnl(to.dims), dt::f32, plain_tag(rank) == tag::undef
                              ? dnnl::memory::format_tag::undef : plain_tag(rank));
  if (plain_tag(rank) == tag::undef) {
    dnnl::memory::dims strides(rank);
    int64_t s = 1;
    for (int i = int(rank) - 1; i >= 0; --i) {
      strides[i] = s;
      s *= to.dims[i];
    }
    c_md = dnnl::memory::desc(to_dnnl(to.dims), dt::f32, strides);
  }
  auto& eng = cpu_engine();
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), eng);
  dnnl::matmul prim(pd);
  dnnl::memory a(a_md, eng, nullptr), b(b_md, eng, nullptr), c(c_md, eng, nullptr);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) mutable {
    a.set_data_handle(in[0]);
    b.set_data_handle(in[1]);
    c.set_data_handle(out[0]);
    dnnl::stream s(cpu_engine());
    prim.execute(s, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    s.wait();
  };
}

}  // namespace tandem::cpu
