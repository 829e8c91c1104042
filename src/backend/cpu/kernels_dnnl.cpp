// oneDNN kernels: convolution, deconvolution and matrix multiply, primitives created once.
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstdlib>
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

// A kScalar post-op as a binary one over a one-element tensor of the destination's rank.
bool append_scalar(dnnl::post_ops& po, const PostOp& p, int ndims) {
  using A = dnnl::algorithm;
  A alg = A::binary_add;
  switch (p.op) {
    case ElementWiseOp::kSum: alg = A::binary_add; break;
    case ElementWiseOp::kProd: alg = A::binary_mul; break;
    case ElementWiseOp::kSub: alg = A::binary_sub; break;
    case ElementWiseOp::kDiv: alg = A::binary_div; break;
    case ElementWiseOp::kMax: case ElementWiseOp::kMin: case ElementWiseOp::kPow: case ElementWiseOp::kFloorDiv:
    case ElementWiseOp::kAnd: case ElementWiseOp::kOr: case ElementWiseOp::kXor: case ElementWiseOp::kEqual:
    case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
      return false;
  }
  po.append_binary(alg, dnnl::memory::desc(dnnl::memory::dims(size_t(ndims), 1), dt::f32, plain_tag(ndims)));
  return true;
}

// Appends one post-op (activation, hard-swish, scalar). Returns false if it has no exact equivalent.
bool append_activation(dnnl::post_ops& po, const PostOp& p, int ndims = 4) {
  using A = dnnl::algorithm;
  if (p.kind == PostOp::kScalar) return append_scalar(po, p, ndims);
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

// A 4-d tensor stored nChw<block>c (block 8 or 16), channels-last (kNhwcBlock), or plain
// row-major (0).
dnnl::memory::desc buffer_desc(const Dims& d, int block) {
  if (block == kNhwcBlock) return dnnl::memory::desc(to_dnnl(d), dt::f32, tag::nhwc);
  if (block == 16) return dnnl::memory::desc(to_dnnl(d), dt::f32, tag::nChw16c);
  if (block == 8) return dnnl::memory::desc(to_dnnl(d), dt::f32, tag::nChw8c);
  return dnnl::memory::desc(to_dnnl(d), dt::f32, plain_tag(d.size()));
}

// A (de)convolution's strides, dilations (oneDNN's: minus one) and paddings.
struct ConvGeometry {
  dnnl::memory::dims strides, dil, pl, pr;
};

// The primitive descriptor of a convolution_forward or deconvolution_forward (same constructors).
template <class Fwd>
typename Fwd::primitive_desc conv_pd(dnnl::algorithm alg, const dnnl::memory::desc& src, const dnnl::memory::desc& w,
                                     const dnnl::memory::desc* bias, const dnnl::memory::desc& dst,
                                     const ConvGeometry& g, const dnnl::primitive_attr& attr) {
  const auto prop = dnnl::prop_kind::forward_inference;
  auto d = bias ? typename Fwd::desc(prop, alg, src, w, *bias, dst, g.strides, g.dil, g.pl, g.pr)
                : typename Fwd::desc(prop, alg, src, w, dst, g.strides, g.dil, g.pl, g.pr);
  return typename Fwd::primitive_desc(d, attr, cpu_engine());
}

}  // namespace

int dnnl_conv_block() {
  // What oneDNN picks for a 3x3 convolution with 64 channels on this CPU: oneDNN 2.6 takes
  // channels-last (brgemm kernels) on AVX-512 cores, nChw8c/16c (jit kernels) elsewhere; 0
  // (nothing kept out of plain layout) for anything else.
  static const int block = [] {
    try {
      const Dims d = {1, 64, 28, 28};
      dnnl::memory::desc any(to_dnnl(d), dt::f32, tag::any);
      dnnl::memory::desc w({64, 64, 3, 3}, dt::f32, tag::any);
      dnnl::convolution_forward::primitive_desc pd(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, any,
                                          w, any, {1, 1}, {0, 0}, {1, 1}, {1, 1}),
          cpu_engine());
      if (pd.dst_desc() == buffer_desc(d, kNhwcBlock)) return kNhwcBlock;
      if (pd.dst_desc() == buffer_desc(d, 16)) return 16;
      if (pd.dst_desc() == buffer_desc(d, 8)) return 8;
    } catch (const dnnl::error&) {
    }
    return 0;
  }();
  return block;
}

bool dnnl_can_append_post_op(const std::vector<PostOp>& chain, const PostOp& p) {
  dnnl::post_ops po;
  for (const PostOp& c : chain) append_activation(po, c);
  const int before = po.len();
  if (!append_activation(po, p)) return false;
  // oneDNN 2.6 computes two eltwise post-ops of one algorithm with different parameters wrongly
  // (conv + LeakyReLU + ReLU leaks negatives; Elu(a) + Elu(b) uses one alpha): found by the
  // differential test against ONNX Runtime (docs/reliability.md). Such a chain stops fusing.
  for (int j = before; j < po.len(); ++j) {
    dnnl::algorithm aj, ai;
    float sj, alj, bej, si, ali, bei;
    if (po.kind(j) != dnnl::primitive::kind::eltwise) continue;
    po.get_params_eltwise(j, sj, aj, alj, bej);
    for (int i = 0; i < j; ++i) {
      if (po.kind(i) != dnnl::primitive::kind::eltwise) continue;
      po.get_params_eltwise(i, si, ai, ali, bei);
      if (ai == aj && (ali != alj || bei != bej)) return false;
    }
  }
  return true;
}

namespace {

// A convolution's post-ops; kScalar ones read their scalar from a one-element memory each (the
// binary post-op's src1): their post-op indices and values.
dnnl::post_ops conv_post_ops(const ConvSpec& s, std::vector<int>* scalar_at, std::vector<float>* scalars) {
  dnnl::post_ops po;
  for (const PostOp& op : s.post_ops) {
    if (op.kind == PostOp::kScalar) {
      scalar_at->push_back(po.len());
      scalars->push_back(op.scalar);
    }
    if (!append_activation(po, op, int(s.out_dims.size())))
      throw Error("layer '" + s.layer->name + "': post-op cannot be fused (internal)");
  }
  return po;
}

// The primitive's strides, dilations and paddings, and the weights as stored: conv [K, C/g, k...]
// (g, o, i, k... when grouped); deconv [C, K/g, k...] (logically g, o, i, k... stored as
// g, i, o, k...), described by strides.
struct ConvShape {
  ConvGeometry geo;
  dnnl::memory::dims wd, ws;
  int64_t ksz = 1;  // kernel volume
};

ConvShape conv_shape(const ConvSpec& s) {
  const ConvolutionParams& p = s.layer->as<ConvolutionParams>();
  const bool deconv = s.layer->kind == LayerKind::kDeconvolution;
  const size_t r = p.kernel.size();
  const int64_t C = s.in_dims[1], K = s.out_dims[1], g = p.groups;
  ConvShape cs;
  for (size_t i = 0; i < r; ++i) {
    int64_t st = p.stride.empty() ? 1 : p.stride[i];
    int64_t d = p.dilation.empty() ? 1 : p.dilation[i];
    int64_t a = p.pre_padding.empty() ? 0 : p.pre_padding[i];
    cs.geo.strides.push_back(st);
    cs.geo.dil.push_back(d - 1);
    cs.geo.pl.push_back(a);
    // The right padding that makes the output size come out as the tensor says (covers ceil
    // modes and ConvTranspose output_padding).
    int64_t in = s.in_dims[2 + i], out = s.out_dims[2 + i], ek = (p.kernel[i] - 1) * d + 1;
    if (!deconv) cs.geo.pr.push_back((out - 1) * st + ek - in - a);
    else cs.geo.pr.push_back((in - 1) * st + ek - a - out);
  }
  for (int64_t k : p.kernel) cs.ksz *= k;
  const int64_t o = K / g, i = C / g, ksz = cs.ksz;
  if (g > 1) cs.wd = {g, o, i};
  else cs.wd = {o, i};
  if (!deconv) cs.ws = g > 1 ? dnnl::memory::dims{o * i * ksz, i * ksz, ksz} : dnnl::memory::dims{i * ksz, ksz};
  else cs.ws = g > 1 ? dnnl::memory::dims{o * i * ksz, ksz, o * ksz} : dnnl::memory::dims{ksz, o * ksz};
  int64_t wst = ksz;
  for (int64_t k : p.kernel) {
    cs.wd.push_back(k);
    wst /= k;
    cs.ws.push_back(wst);
  }
  return cs;
}

}  // namespace

Kernel make_conv_kernel(const ConvSpec& s) {
  const Layer& l = *s.layer;
  const ConvolutionParams& p = l.as<ConvolutionParams>();
  bool deconv = l.kind == LayerKind::kDeconvolution;
  int64_t C = s.in_dims[1], K = s.out_dims[1], g = p.groups;
  const ConvShape cs = conv_shape(s);
  const int64_t ksz = cs.ksz;
  auto& eng = cpu_engine();
  // The buffers' layouts: plain (NCHW), or blocked where the executor keeps a convolution
  // chain's values blocked (ConvSpec::src_block / dst_block: no reorder at all).
  dnnl::memory::desc src_md = buffer_desc(s.in_dims, s.src_block), dst_md = buffer_desc(s.out_dims, s.dst_block);
  // Layout the primitive computes in. oneDNN's NCHW depthwise convolutions go through im2col +
  // gemm and are slow; let oneDNN choose (blocked nChw8c/16c) where a side is blocked already,
  // and for small tensors, reordering a plain side in and out around the primitive.
  // TANDEM_CPU_LAYOUT=any does it for every convolution, =plain for none with plain buffers.
  const char* layout = std::getenv("TANDEM_CPU_LAYOUT");
  // Default: blocked only for small tensors, where oneDNN's blocked kernels win and the reorders
  // cost little (measured on PP-OCR cls vs det; see docs/cpu-backend.md).
  int64_t elems = volume(s.in_dims) + volume(s.out_dims);
  bool blocked = layout ? std::string(layout) == "any" : elems < (int64_t(1) << 17);
  if (layout && std::string(layout) == "plain") blocked = false;
  blocked = blocked || s.src_block > 0 || s.dst_block > 0;
  dnnl::memory::desc src_req = blocked ? dnnl::memory::desc(to_dnnl(s.in_dims), dt::f32, tag::any) : src_md;
  dnnl::memory::desc dst_req = blocked ? dnnl::memory::desc(to_dnnl(s.out_dims), dt::f32, tag::any) : dst_md;
  dnnl::memory::desc w_user_md(cs.wd, dt::f32, cs.ws);
  dnnl::memory::desc w_any_md(cs.wd, dt::f32, tag::any);
  dnnl::memory::desc b_md({K}, dt::f32, tag::a);
  bool has_bias = !s.bias.empty();

  dnnl::primitive_attr attr;
  auto scalars = std::make_shared<std::vector<float>>();
  std::vector<int> scalar_at;
  attr.set_post_ops(conv_post_ops(s, &scalar_at, scalars.get()));

  dnnl::primitive prim;
  dnnl::memory::desc w_md, src_pd_md = src_md, dst_pd_md = dst_md;
  const ConvGeometry& geo = cs.geo;
  const dnnl::memory::desc* bias_md = has_bias ? &b_md : nullptr;
  auto take = [&](const auto& pd) {
    w_md = pd.weights_desc();
    src_pd_md = pd.src_desc();
    dst_pd_md = pd.dst_desc();
  };
  if (!deconv) {
    using Conv = dnnl::convolution_forward;
    auto pd = conv_pd<Conv>(dnnl::algorithm::convolution_direct, src_req, w_any_md, bias_md, dst_req, geo, attr);
    // A plain-layout convolution with a kernel wider than 1x1 that oneDNN can only run as im2col
    // + GEMM ("gemm:jit": a scalar im2col, then sgemm) is slower than its blocked direct kernel
    // with a reorder on each side: PP-OCR det's 3x3 96->24 convolutions at 160x160 (docs/cpu-backend.md).
    // Unless the layout is forced, compute those blocked.
    if (!layout && !blocked && ksz > 1 && std::string(pd.impl_info_str()).find("gemm") != std::string::npos)
      pd = conv_pd<Conv>(dnnl::algorithm::convolution_direct, dnnl::memory::desc(to_dnnl(s.in_dims), dt::f32, tag::any),
                         w_any_md, bias_md, dnnl::memory::desc(to_dnnl(s.out_dims), dt::f32, tag::any), geo, attr);
    prim = Conv(pd);
    take(pd);
  } else {
    using Deconv = dnnl::deconvolution_forward;
    auto pd = conv_pd<Deconv>(dnnl::algorithm::deconvolution_direct, src_req, w_any_md, bias_md, dst_req, geo, attr);
    prim = Deconv(pd);
    take(pd);
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
  bool reorder_src = src_pd_md != src_md, reorder_dst = dst_pd_md != dst_md;
  auto scratch = s.scratch ? s.scratch : std::make_shared<ConvScratch>();
  dnnl::memory src_blk, dst_blk;
  dnnl::reorder to_blk, from_blk;
  if (reorder_src) {
    size_t n = src_pd_md.get_size() / sizeof(float) + 16;
    if (scratch->src.size() < n) scratch->src.resize(n);
    src_blk = dnnl::memory(src_pd_md, eng, nullptr);
    to_blk = dnnl::reorder(src_mem, src_blk);
  }
  if (reorder_dst) {
    size_t n = dst_pd_md.get_size() / sizeof(float) + 16;
    if (scratch->dst.size() < n) scratch->dst.resize(n);
    dst_blk = dnnl::memory(dst_pd_md, eng, nullptr);
    from_blk = dnnl::reorder(dst_blk, dst_mem);
  }
  // Small convolutions run on one thread: a parallel region costs more than it saves, and far
  // more when the machine is loaded (each barrier waits for the other thread's time slice).
  int64_t macs = volume(s.out_dims) * (C / g);
  for (int64_t k : p.kernel) macs *= k;
  bool serial = macs < (int64_t(1) << 21);
  auto stream = std::make_shared<dnnl::stream>(eng);
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, reorder_src ? src_blk : src_mem},
                                                {DNNL_ARG_WEIGHTS, w_mem},
                                                {DNNL_ARG_DST, reorder_dst ? dst_blk : dst_mem}};
  if (has_bias) args[DNNL_ARG_BIAS] = b_mem;
  const dnnl::memory::desc one_md(dnnl::memory::dims(s.out_dims.size(), 1), dt::f32, plain_tag(s.out_dims.size()));
  for (size_t k = 0; k < scalar_at.size(); ++k)
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(scalar_at[k]) | DNNL_ARG_SRC_1] = dnnl::memory(one_md, eng, scalars->data() + k);
  std::vector<ChainLink> chain = s.chain;
  const bool tail = !s.tail.empty();  // chain then tail in one pass, from out[0] into out[1]
  chain.insert(chain.end(), s.tail.begin(), s.tail.end());
  const int64_t out_count = volume(s.out_dims);
  prepare_chain(chain, out_count);
  // Codes for INT8 readers (Int8CodesIo): a chain ending on an INT8 grid, a channels-last output
  // the primitive writes as it is. Without a tail the primitive's values go to scratch->dst (unused
  // then: no reorder), the output block holds the codes.
  auto io = s.codes_io ? s.codes_io : std::make_shared<Int8CodesIo>();
  const float final_scale = chain_final_int8_scale(chain);
  io->can_write = final_scale > 0.f && s.dst_block == kNhwcBlock && !reorder_dst;
  io->write_scale = io->can_write ? final_scale : 0.f;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) mutable {
    (void)bias, (void)scalars;  // kept alive: the memories point into them
    src_mem.set_data_handle(in[0]);
    // (the scratch grows once, at the first run after the executor linked the codes)
    if (io->write && !tail && scratch->dst.size() < size_t(out_count)) scratch->dst.resize(size_t(out_count));
    float* values = io->write && !tail ? scratch->dst.data() : static_cast<float*>(out[0]);
    dst_mem.set_data_handle(values);
    if (reorder_src) {
      src_blk.set_data_handle(scratch->src.data());
      to_blk.execute(*stream, src_mem, src_blk);
    }
    int threads = omp_get_max_threads();
    if (serial) omp_set_num_threads(1);
    if (reorder_dst) dst_blk.set_data_handle(scratch->dst.data());
    prim.execute(*stream, args);
    if (reorder_dst) from_blk.execute(*stream, dst_blk, dst_mem);
    stream->wait();
    if (serial) omp_set_num_threads(threads);
    if (io->write) return apply_chain_codes(chain, values, static_cast<int8_t*>(out[tail ? 1 : 0]), out_count, 1.f / io->write_scale);
    if (!chain.empty()) apply_chain(chain, values, static_cast<float*>(out[tail ? 1 : 0]), out_count);
  };
}

Kernel make_eltwise_kernel(const ActivationParams& a, int64_t n) {
  using A = dnnl::algorithm;
  A alg;
  float alpha = 0.f, beta = 0.f;
  switch (a.type) {
    case ActivationType::kSigmoid: alg = A::eltwise_logistic; break;
    case ActivationType::kTanh: alg = A::eltwise_tanh; break;
    case ActivationType::kElu: alg = A::eltwise_elu; alpha = a.alpha; break;
    case ActivationType::kGeluErf: alg = A::eltwise_gelu_erf; break;
    case ActivationType::kGeluTanh: alg = A::eltwise_gelu_tanh; break;
    case ActivationType::kRelu: case ActivationType::kLeakyRelu: case ActivationType::kClip:
    case ActivationType::kHardSigmoid: case ActivationType::kSelu: case ActivationType::kSoftplus:
    case ActivationType::kSoftsign: case ActivationType::kThresholdedRelu: case ActivationType::kScaledTanh:
      return {};
  }
  auto& eng = cpu_engine();
  dnnl::memory::desc md({n}, dt::f32, tag::a);
  dnnl::eltwise_forward::primitive_desc pd(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, alg, md, alpha, beta), eng);
  dnnl::eltwise_forward prim(pd);
  dnnl::memory src(md, eng, nullptr), dst(md, eng, nullptr);
  auto stream = std::make_shared<dnnl::stream>(eng);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) mutable {
    src.set_data_handle(in[0]);
    dst.set_data_handle(out[0]);
    prim.execute(*stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    stream->wait();
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
  auto stream = std::make_shared<dnnl::stream>(eng);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) mutable {
    a.set_data_handle(in[0]);
    b.set_data_handle(in[1]);
    c.set_data_handle(out[0]);
    prim.execute(*stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream->wait();
  };
}

}  // namespace tandem::cpu
