// Issue 16's index and sampling layers on the CUDA backend: the arguments of kernels_index.cu's
// launchers, derived once from the layer, and the launch closure the executor adds as a step.
// What is refused here, support.cpp's check_index_layer refuses from the network alone.
#include <string>

#include "backend/cuda/kernels_dynamic.h"
#include "backend/cuda/kernels_index.h"
#include "tandem/einsum.h"

namespace tandem::cuda {

namespace {

using Launch = std::function<void(cudaStream_t)>;

[[noreturn]] void refuse(const Layer& L, const std::string& what) {
  throw Error("cuda backend: layer '" + L.name + "' (" + std::string(to_string(L.kind)) + "): " + what);
}

Shape shape_of(const Layer& L, const Dims& d) {
  if (d.size() > size_t(kMaxRank)) refuse(L, "rank " + std::to_string(d.size()) + " above " + std::to_string(kMaxRank));
  Shape s;
  s.rank = int(d.size());
  for (size_t i = 0; i < d.size(); ++i) s.d[i] = d[i];
  return s;
}

Shape dense_strides(const Layer& L, const Dims& d) {
  Shape s = shape_of(L, d);
  int64_t st = 1;
  for (int i = s.rank - 1; i >= 0; --i) {
    const int64_t n = s.d[i];
    s.d[i] = st;
    st *= n;
  }
  return s;
}

bool index_i64(const Network& net, const Layer& L, TensorId t) {
  const DataType it = net.tensors[t].type;
  if (it != DataType::kInt32 && it != DataType::kInt64)
    refuse(L, "indices '" + net.tensors[t].name + "' are " + std::string(to_string(it)) + " (int32 or int64 expected)");
  return it == DataType::kInt64;
}

int normalized_axis(const Layer& L, int axis, size_t rank) {
  if (axis < 0) axis += int(rank);
  if (axis < 0 || axis >= int(rank)) refuse(L, "axis " + std::to_string(axis) + " outside rank " + std::to_string(rank));
  return axis;
}

void require_float(const Network& net, const Layer& L, TensorId t) {
  if (net.tensors[t].type != DataType::kFloat)
    refuse(L, "tensor '" + net.tensors[t].name + "' is " + std::string(to_string(net.tensors[t].type)) +
                  ", only fp32 is supported here");
}

Launch gather_launch(const Network& net, const Layer& L, const std::vector<const void*>& in, void* y) {
  const auto& p = L.as<GatherParams>();
  const Dims& dd = net.tensors[L.inputs[0]].dims;
  const Dims& ix = net.tensors[L.inputs[1]].dims;
  const bool i64 = index_i64(net, L, L.inputs[1]);
  const int es = int(element_size(net.tensors[L.inputs[0]].type));
  const void *x = in[0], *idx = in[1];
  const Shape sd = shape_of(L, dd), si = shape_of(L, ix);
  if (p.mode == GatherMode::kElement) {
    const int axis = normalized_axis(L, p.axis, dd.size());
    if (ix.size() != dd.size()) refuse(L, "indices and data ranks differ");
    return [=](cudaStream_t s) { gather_elements(x, sd, idx, i64, si, axis, y, es, s); };
  }
  const int b = p.nb_elementwise_dims;
  const int64_t k = ix.empty() ? 0 : ix.back();
  if (k < 1 || b < 0 || size_t(b + k) > dd.size()) refuse(L, "GatherND's index depth does not fit the data rank");
  int64_t batches = 1, slice = 1;
  for (int i = 0; i < b; ++i) batches *= dd[size_t(i)];
  for (size_t i = size_t(b + k); i < dd.size(); ++i) slice *= dd[i];
  const int64_t tuples = volume(ix) / k / batches;
  const Shape ds = dense_strides(L, dd);
  return [=](cudaStream_t s) { gather_nd(x, sd, ds, idx, i64, b, int(k), batches, tuples, slice, y, es, s); };
}

Launch scatter_launch(const Network& net, const Layer& L, const std::vector<const void*>& in, void* y) {
  const auto& p = L.as<ScatterParams>();
  const Tensor& td = net.tensors[L.inputs[0]];
  const Dims& ix = net.tensors[L.inputs[1]].dims;
  const bool i64 = index_i64(net, L, L.inputs[1]);
  const DataType dt = td.type;
  const ScatterReduction red = p.reduction;
  if (red != ScatterReduction::kNone && dt != DataType::kFloat && dt != DataType::kInt32 && dt != DataType::kInt64)
    refuse(L, "scatter reductions on " + std::string(to_string(dt)) + " (fp32, int32 or int64 only)");
  const size_t bytes = size_t(volume(td.dims)) * element_size(dt);
  const void *x = in[0], *idx = in[1], *upd = in[2];
  const Shape sd = shape_of(L, td.dims), si = shape_of(L, ix);
  const int dti = int(dt);
  auto copy = [=](cudaStream_t s) {
    if (y != x && bytes) cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice, s);
  };
  switch (p.mode) {
    case ScatterMode::kElement: {
      const int axis = normalized_axis(L, p.axis, td.dims.size());
      if (ix.size() != td.dims.size()) refuse(L, "indices and data ranks differ");
      return [=](cudaStream_t s) {
        copy(s);
        scatter_elements(y, sd, idx, i64, si, axis, upd, dti, red, s);
      };
    }
    case ScatterMode::kND: {
      const int64_t k = ix.empty() ? 0 : ix.back();
      if (k < 1 || size_t(k) > td.dims.size()) refuse(L, "ScatterND's index depth does not fit the data rank");
      int64_t slice = 1;
      for (size_t i = size_t(k); i < td.dims.size(); ++i) slice *= td.dims[i];
      const int64_t tuples = volume(ix) / k;
      const Shape ds = dense_strides(L, td.dims);
      return [=](cudaStream_t s) {
        copy(s);
        scatter_nd(y, sd, ds, idx, i64, int(k), tuples, slice, upd, dti, red, s);
      };
    }
  }
  refuse(L, "unknown scatter mode");
}

Launch topk_launch(const Network& net, const Layer& L, const std::vector<const void*>& in,
                   const std::vector<void*>& out) {
  const auto& p = L.as<TopKParams>();
  if (out.size() != 2) refuse(L, "TopK needs two outputs (values, indices)");
  const Tensor& tx = net.tensors[L.inputs[0]];
  const DataType xt = tx.type;
  if (xt != DataType::kFloat && xt != DataType::kInt32 && xt != DataType::kInt64)
    refuse(L, "TopK over " + std::string(to_string(xt)) + " (fp32, int32 or int64 only)");
  if (net.tensors[L.outputs[0]].type != xt) refuse(L, "values of another type than the input");
  const bool i64 = index_i64(net, L, L.outputs[1]);
  int axis = 0;
  while (axis < 32 && p.axes != (1u << axis)) ++axis;
  if (axis >= int(tx.dims.size())) refuse(L, "TopK needs exactly one axis of the input");
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= tx.dims[size_t(i)];
  for (size_t i = size_t(axis) + 1; i < tx.dims.size(); ++i) inner *= tx.dims[i];
  const int64_t n = tx.dims[size_t(axis)], k = p.k;
  if (k > n) refuse(L, "k " + std::to_string(k) + " above the axis size " + std::to_string(n));
  const bool largest = p.op == TopKOp::kMax;
  const int dt = int(xt);
  const void* x = in[0];
  void *v = out[0], *ix = out[1];
  return [=](cudaStream_t s) { topk(x, dt, outer, n, inner, k, largest, v, ix, i64, s); };
}

Launch einsum_launch(const Network& net, const Layer& L, const std::vector<const void*>& in, float* y) {
  EinsumTerms t;
  std::string why;
  if (!parse_einsum(L.as<EinsumParams>().equation, &t, &why)) refuse(L, why);
  if (t.inputs.size() > size_t(kEinsumInputs) || t.inputs.size() != L.inputs.size())
    refuse(L, std::to_string(L.inputs.size()) + " inputs (at most " + std::to_string(kEinsumInputs) + ")");
  for (TensorId id : L.inputs) require_float(net, L, id);
  require_float(net, L, L.outputs[0]);
  // Labels as the CPU kernel orders them: the output's, then each input's new ones in turn.
  std::string labels = t.output;
  for (const std::string& term : t.inputs)
    for (char c : term)
      if (labels.find(c) == std::string::npos) labels += c;
  EinsumPlan plan;
  plan.inputs = int(t.inputs.size());
  plan.out_labels = int(t.output.size());
  plan.labels = int(labels.size());
  for (size_t i = 0; i < t.inputs.size(); ++i) {
    const Dims& d = net.tensors[L.inputs[i]].dims;
    if (d.size() != t.inputs[i].size()) refuse(L, "term '" + t.inputs[i] + "' and its input's rank differ");
    int64_t st = 1;
    for (size_t j = d.size(); j-- > 0;) {
      const size_t a = labels.find(t.inputs[i][j]);
      plan.extent[a] = d[j];
      plan.stride[i][a] += st;
      st *= d[j];
    }
    plan.x[i] = static_cast<const float*>(in[i]);
  }
  const int64_t count = volume(net.tensors[L.outputs[0]].dims);
  return [=](cudaStream_t s) { einsum(plan, y, count, s); };
}

Launch sampling_launch(const Network& net, const Layer& L, const std::vector<const void*>& in, float* y) {
  for (TensorId t : {L.inputs[0], L.inputs[1], L.outputs[0]}) require_float(net, L, t);
  const Dims& xd = net.tensors[L.inputs[0]].dims;
  if (xd.size() != 4) refuse(L, "input of rank " + std::to_string(xd.size()) + " (4-D NCHW only)");
  const int64_t N = xd[0], C = xd[1], H = xd[2], W = xd[3];
  const auto* x = static_cast<const float*>(in[0]);
  const auto* g = static_cast<const float*>(in[1]);
  if (L.kind == LayerKind::kGridSample) {
    const auto p = L.as<GridSampleParams>();
    const Dims& gd = net.tensors[L.inputs[1]].dims;
    if (gd.size() != 4 || gd[3] != 2) refuse(L, "grid must be [N, Ho, Wo, 2]");
    const int64_t Ho = gd[1], Wo = gd[2];
    return [=](cudaStream_t s) {
      grid_sample(x, N, C, H, W, g, Ho, Wo, p.interpolation, p.align_corners, p.sample_mode, y, s);
    };
  }
  const auto p = L.as<RoiAlignParams>();
  const bool i64 = index_i64(net, L, L.inputs[2]);
  const int64_t R = net.tensors[L.inputs[1]].dims[0];
  const void* batch = in[2];
  return [=](cudaStream_t s) { roi_align(x, N, C, H, W, g, batch, i64, R, p, y, s); };
}

Launch pooling_launch(const Network& net, const Layer& L, const void* x, float* y) {
  const auto& P = L.as<PoolingParams>();
  require_float(net, L, L.inputs[0]);
  const Dims& xd = net.tensors[L.inputs[0]].dims;
  const Dims& yd = net.tensors[L.outputs[0]].dims;
  const size_t r = P.window.size();
  if ((r != 1 && r != 3) || xd.size() != 2 + r || yd.size() != xd.size())
    refuse(L, "pooling over " + std::to_string(r) + " axes of a rank-" + std::to_string(xd.size()) + " input");
  Pool3d p{};
  for (int j = 0; j < 3; ++j) p.id[j] = p.od[j] = p.k[j] = p.s[j] = 1, p.pb[j] = p.pe[j] = 0;
  for (size_t i = 0; i < r; ++i) {
    const size_t j = 3 - r + i;
    p.id[j] = xd[2 + i];
    p.od[j] = yd[2 + i];
    p.k[j] = P.window[i];
    p.s[j] = P.stride.empty() ? 1 : P.stride[i];
    p.pb[j] = P.pre_padding.empty() ? 0 : P.pre_padding[i];
    p.pe[j] = P.post_padding.empty() ? 0 : P.post_padding[i];
  }
  p.type = P.type;
  p.exclude_pad = P.average_count_excludes_padding;
  const int64_t NC = xd[0] * xd[1];
  const auto* xf = static_cast<const float*>(x);
  return [=](cudaStream_t s) { pool3d(xf, y, NC, p, s); };
}

}  // namespace

bool is_index_layer(const Layer& L) {
  switch (L.kind) {
    case LayerKind::kGather: return L.as<GatherParams>().mode != GatherMode::kDefault;
    case LayerKind::kScatter: case LayerKind::kTopK: case LayerKind::kEinsum: case LayerKind::kGridSample:
    case LayerKind::kRoiAlign: case LayerKind::kNonZero: case LayerKind::kNMS:
      return true;
    case LayerKind::kPooling: return L.as<PoolingParams>().window.size() != 2;
    case LayerKind::kConvolution: case LayerKind::kDeconvolution: case LayerKind::kMatrixMultiply:
    case LayerKind::kShuffle: case LayerKind::kConstant: case LayerKind::kActivation:
    case LayerKind::kParametricReLU: case LayerKind::kElementWise: case LayerKind::kScale:
    case LayerKind::kConcatenation: case LayerKind::kResize: case LayerKind::kSlice: case LayerKind::kSoftMax:
    case LayerKind::kReduce: case LayerKind::kUnary: case LayerKind::kLRN: case LayerKind::kIdentity:
    case LayerKind::kCast: case LayerKind::kSelect: case LayerKind::kNormalization:
      return false;
  }
  return false;
}

Launch index_layer_launch(const Network& net, const Layer& L, std::vector<const void*> in, std::vector<void*> out) {
  if (out.empty() || in.size() != L.inputs.size()) refuse(L, "inputs or outputs missing");
  switch (L.kind) {
    case LayerKind::kGather: return gather_launch(net, L, in, out[0]);
    case LayerKind::kScatter: return scatter_launch(net, L, in, out[0]);
    case LayerKind::kTopK: return topk_launch(net, L, in, out);
    case LayerKind::kEinsum: return einsum_launch(net, L, in, static_cast<float*>(out[0]));
    case LayerKind::kGridSample: case LayerKind::kRoiAlign:
      return sampling_launch(net, L, in, static_cast<float*>(out[0]));
    case LayerKind::kPooling: return pooling_launch(net, L, in[0], static_cast<float*>(out[0]));
    case LayerKind::kNonZero: case LayerKind::kNMS: return dynamic_layer_launch(net, L, in, out);  // kernels_dynamic.cu
    case LayerKind::kConvolution: case LayerKind::kDeconvolution: case LayerKind::kMatrixMultiply:
    case LayerKind::kShuffle: case LayerKind::kConstant: case LayerKind::kActivation:
    case LayerKind::kParametricReLU: case LayerKind::kElementWise: case LayerKind::kScale:
    case LayerKind::kConcatenation: case LayerKind::kResize: case LayerKind::kSlice: case LayerKind::kSoftMax:
    case LayerKind::kReduce: case LayerKind::kUnary: case LayerKind::kLRN: case LayerKind::kIdentity:
    case LayerKind::kCast: case LayerKind::kSelect: case LayerKind::kNormalization:
      break;
  }
  refuse(L, "not an index or sampling layer");
}

}  // namespace tandem::cuda
