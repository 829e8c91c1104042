// Plain-loop kernels of the index and sampling layers (issue 16): Gather in TensorRT's ELEMENT
// and ND modes, Scatter, TopK, Einsum, GridSample. Semantics: NvInfer.h (IGatherLayer,
// IScatterLayer, ITopKLayer, IEinsumLayer, IGridSampleLayer) and the ONNX operators the parser
// maps onto them (GatherElements, GatherND, ScatterElements, ScatterND, TopK, Einsum, GridSample).
#include "kernels_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <string>

#include "tandem/einsum.h"

namespace tandem::cpu {

namespace {

int64_t index_at(const void* p, DataType t, int64_t i) {
  if (t == DataType::kInt64) return static_cast<const int64_t*>(p)[i];
  return static_cast<const int32_t*>(p)[i];
}

std::vector<int64_t> dense_strides(const Dims& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

// An index into a dim of size n: negative ones count from the end (ONNX); out of range throws
// naming the layer.
int64_t checked_index(int64_t k, int64_t n, const std::string& layer) {
  if (k < 0) k += n;
  if (k < 0 || k >= n)
    throw Error("layer '" + layer + "': index " + std::to_string(k < 0 ? k - n : k) + " out of range [" +
                std::to_string(-n) + ", " + std::to_string(n) + ")");
  return k;
}

void require_index_type(const Layer& l, const Tensor& t) {
  if (t.type != DataType::kInt32 && t.type != DataType::kInt64)
    throw Error("layer '" + l.name + "': indices '" + t.name + "' are " + std::string(to_string(t.type)) +
                " (int32 or int64 expected)");
}

void require_float(const Layer& l, const Tensor& t) {
  if (t.type != DataType::kFloat)
    throw Error("layer '" + l.name + "' (" + std::string(to_string(l.kind)) + "): tensor '" + t.name + "' is " +
                std::string(to_string(t.type)) + ", the CPU backend computes it in fp32 only");
}

// ---- Gather ------------------------------------------------------------------------------------
// ELEMENT: out[i] = data[i with coordinate `axis` replaced by indices[i]].
Kernel make_gather_element(const Network& net, const Layer& l) {
  const int axis = l.as<GatherParams>().axis;
  const Tensor& td = net.tensors[l.inputs[0]];
  const Tensor& ti = net.tensors[l.inputs[1]];
  require_index_type(l, ti);
  const Dims ix = ti.dims, dd = td.dims;
  const auto ds = dense_strides(dd), is = dense_strides(ix);
  const size_t es = element_size(td.type);
  const DataType it = ti.type;
  const int64_t n = volume(ix);
  const std::string name = l.name;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const auto* src = static_cast<const uint8_t*>(in[0]);
    auto* dst = static_cast<uint8_t*>(out[0]);
    for (int64_t j = 0; j < n; ++j) {
      int64_t off = 0, rest = j;
      for (size_t d = 0; d < ix.size(); ++d) {
        const int64_t c = rest / is[d];
        rest %= is[d];
        off += (static_cast<int>(d) == axis ? checked_index(index_at(in[1], it, j), dd[d], name) : c) * ds[d];
      }
      std::memcpy(dst + j * es, src + off * es, es);
    }
  };
}

// ND: indices [B.., M.., k]; each k-tuple picks a slice data[b.., i1..ik, :] (b: the
// nb_elementwise_dims batch coordinates, shared by data and indices).
Kernel make_gather_nd(const Network& net, const Layer& l) {
  const auto& p = l.as<GatherParams>();
  const Tensor& td = net.tensors[l.inputs[0]];
  const Tensor& ti = net.tensors[l.inputs[1]];
  require_index_type(l, ti);
  const Dims dd = td.dims;
  const int64_t b = p.nb_elementwise_dims, k = ti.dims.back();
  int64_t batches = 1, slice = 1;
  for (int64_t i = 0; i < b; ++i) batches *= dd[i];
  for (size_t i = b + k; i < dd.size(); ++i) slice *= dd[i];
  const int64_t tuples = volume(ti.dims) / k / batches;
  const auto ds = dense_strides(dd);
  const int64_t batch_stride = b > 0 ? ds[b - 1] : volume(dd);
  const size_t row = size_t(slice) * element_size(td.type);
  const DataType it = ti.type;
  const std::string name = l.name;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    const auto* src = static_cast<const uint8_t*>(in[0]);
    auto* dst = static_cast<uint8_t*>(out[0]);
    for (int64_t bi = 0; bi < batches; ++bi)
      for (int64_t t = 0; t < tuples; ++t) {
        const int64_t q = bi * tuples + t;
        int64_t off = bi * batch_stride;
        for (int64_t c = 0; c < k; ++c) off += checked_index(index_at(in[1], it, q * k + c), dd[b + c], name) * ds[b + c];
        std::memcpy(dst + q * row, src + off * int64_t(element_size(td.type)), row);
      }
  };
}

// ---- Scatter -----------------------------------------------------------------------------------
double combine(ScatterReduction r, double old, double v) {
  switch (r) {
    case ScatterReduction::kNone: return v;
    case ScatterReduction::kAdd: return old + v;
    case ScatterReduction::kMul: return old * v;
    case ScatterReduction::kMax: return std::max(old, v);
    case ScatterReduction::kMin: return std::min(old, v);
  }
  return v;
}

// The output starts as a copy of data; each update then lands at the position its index names
// (later updates win for duplicates, as the ONNX reference's loop; reductions combine).
Kernel make_scatter(const Network& net, const Layer& l) {
  const auto& p = l.as<ScatterParams>();
  const Tensor& td = net.tensors[l.inputs[0]];
  const Tensor& ti = net.tensors[l.inputs[1]];
  require_index_type(l, ti);
  const Dims dd = td.dims, ix = ti.dims;
  const auto ds = dense_strides(dd), is = dense_strides(ix);
  const DataType dt = td.type, it = ti.type;
  const size_t es = element_size(dt);
  const int64_t total = volume(dd);
  const std::string name = l.name;
  const ScatterMode mode = p.mode;
  const ScatterReduction red = p.reduction;
  const int axis = p.axis;
  const int64_t k = ix.empty() ? 0 : ix.back();
  int64_t slice = 1;
  if (mode == ScatterMode::kND)
    for (size_t i = size_t(k); i < dd.size(); ++i) slice *= dd[i];
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    auto* dst = static_cast<uint8_t*>(out[0]);
    const auto* upd = static_cast<const uint8_t*>(in[2]);
    if (out[0] != in[0]) std::memcpy(dst, in[0], size_t(total) * es);
    auto put = [&](int64_t to, int64_t from) {
      if (red == ScatterReduction::kNone) std::memcpy(dst + to * es, upd + from * es, es);
      else store_from_double(dst, dt, to, combine(red, load_as_double(dst, dt, to), load_as_double(upd, dt, from)));
    };
    if (mode == ScatterMode::kElement) {
      const int64_t n = volume(ix);
      for (int64_t j = 0; j < n; ++j) {
        int64_t off = 0, rest = j;
        for (size_t d = 0; d < ix.size(); ++d) {
          const int64_t c = rest / is[d];
          rest %= is[d];
          off += (static_cast<int>(d) == axis ? checked_index(index_at(in[1], it, j), dd[d], name) : c) * ds[d];
        }
        put(off, j);
      }
      return;
    }
    const int64_t tuples = volume(ix) / k;
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = 0;
      for (int64_t c = 0; c < k; ++c) off += checked_index(index_at(in[1], it, t * k + c), dd[c], name) * ds[c];
      for (int64_t e = 0; e < slice; ++e) put(off + e, t * slice + e);
    }
  };
}

// ---- TopK --------------------------------------------------------------------------------------
Kernel make_topk(const Network& net, const Layer& l) {
  const auto& p = l.as<TopKParams>();
  const Tensor& tx = net.tensors[l.inputs[0]];
  const Tensor& tv = net.tensors[l.outputs[0]];
  const Tensor& tix = net.tensors[l.outputs[1]];
  int axis = 0;
  while (p.axes != (1u << axis)) ++axis;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= tx.dims[i];
  for (size_t i = axis + 1; i < tx.dims.size(); ++i) inner *= tx.dims[i];
  const int64_t n = tx.dims[axis], k = p.k;
  const bool largest = p.op == TopKOp::kMax;
  const DataType xt = tx.type, vt = tv.type, ixt = tix.type;
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    std::vector<int64_t> order(size_t(n), 0);
    std::vector<double> v(size_t(n), 0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t base = o * n * inner + i;
        for (int64_t j = 0; j < n; ++j) v[size_t(j)] = load_as_double(in[0], xt, base + j * inner);
        std::iota(order.begin(), order.end(), 0);
        // Ties keep the lower index first (ONNX TopK); partial_sort is not stable, so the index
        // breaks ties explicitly.
        auto before = [&](int64_t a, int64_t b) {
          const double x = v[size_t(a)], y = v[size_t(b)];
          if (x != y) return largest ? x > y : x < y;
          return a < b;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        const int64_t obase = o * k * inner + i;
        for (int64_t j = 0; j < k; ++j) {
          store_from_double(out[0], vt, obase + j * inner, v[size_t(order[size_t(j)])]);
          store_from_double(out[1], ixt, obase + j * inner, double(order[size_t(j)]));
        }
      }
  };
}

// ---- Einsum ------------------------------------------------------------------------------------
// One loop over every label (output labels outermost): each input reads at the sum of its
// labels' strides (a label repeated in one input walks its diagonal); products of the inputs
// accumulate in double into the output element of the output labels.
Kernel make_einsum(const Network& net, const Layer& l) {
  EinsumTerms t;
  std::string why;
  if (!parse_einsum(l.as<EinsumParams>().equation, &t, &why)) throw Error("layer '" + l.name + "': " + why);
  for (TensorId id : l.inputs) require_float(l, net.tensors[id]);
  require_float(l, net.tensors[l.outputs[0]]);
  std::string labels = t.output;
  std::map<char, int64_t> size;
  for (size_t i = 0; i < t.inputs.size(); ++i)
    for (size_t j = 0; j < t.inputs[i].size(); ++j) {
      size[t.inputs[i][j]] = net.tensors[l.inputs[i]].dims[j];
      if (labels.find(t.inputs[i][j]) == std::string::npos) labels += t.inputs[i][j];
    }
  const size_t nl = labels.size(), ni = t.inputs.size();
  std::vector<int64_t> extent(nl);
  for (size_t a = 0; a < nl; ++a) extent[a] = size.at(labels[a]);
  // stride[i][a]: how far input i (or the output, i == ni) moves when label a steps by one.
  std::vector<std::vector<int64_t>> stride(ni + 1, std::vector<int64_t>(nl, 0));
  for (size_t i = 0; i <= ni; ++i) {
    const std::string& term = i < ni ? t.inputs[i] : t.output;
    const auto s = dense_strides(i < ni ? net.tensors[l.inputs[i]].dims : net.tensors[l.outputs[0]].dims);
    for (size_t j = 0; j < term.size(); ++j) stride[i][labels.find(term[j])] += s[j];
  }
  const int64_t out_n = volume(net.tensors[l.outputs[0]].dims);
  return [=](const std::vector<void*>& in, const std::vector<void*>& out) {
    std::vector<double> acc(size_t(out_n), 0.0);
    std::vector<int64_t> pos(nl, 0), off(ni + 1, 0);
    int64_t total = 1;
    for (int64_t e : extent) total *= e;
    for (int64_t step = 0; step < total; ++step) {
      double prod = 1.0;
      for (size_t i = 0; i < ni; ++i) prod *= static_cast<const float*>(in[i])[off[i]];
      acc[size_t(off[ni])] += prod;
      for (size_t a = nl; a-- > 0;) {  // odometer: the last label turns fastest
        ++pos[a];
        for (size_t i = 0; i <= ni; ++i) off[i] += stride[i][a];
        if (pos[a] < extent[a]) break;
        for (size_t i = 0; i <= ni; ++i) off[i] -= stride[i][a] * extent[a];
        pos[a] = 0;
      }
    }
    float* y = static_cast<float*>(out[0]);
    for (int64_t e = 0; e < out_n; ++e) y[e] = static_cast<float>(acc[size_t(e)]);
  };
}

}  // namespace

Kernel make_gather_mode_kernel(const Network& net, const Layer& l) {
  switch (l.as<GatherParams>().mode) {
    case GatherMode::kElement: return make_gather_element(net, l);
    case GatherMode::kND: return make_gather_nd(net, l);
    case GatherMode::kDefault: break;
  }
  throw Error("layer '" + l.name + "': the default Gather mode runs in the reference Gather kernel");
}

Kernel make_index_kernel(const Network& net, const Layer& l) {
  if (l.kind == LayerKind::kScatter) return make_scatter(net, l);
  if (l.kind == LayerKind::kTopK) return make_topk(net, l);
  if (l.kind == LayerKind::kEinsum) return make_einsum(net, l);
  if (l.kind == LayerKind::kGridSample) return make_grid_sample_kernel(net, l);
  if (l.kind == LayerKind::kRoiAlign) return make_roi_align_kernel(net, l);
  throw Error("layer '" + l.name + "': " + std::string(to_string(l.kind)) + " is not an index layer");
}

}  // namespace tandem::cpu
