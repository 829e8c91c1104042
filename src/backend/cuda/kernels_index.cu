// CUDA kernels of issue 16's index and sampling layers; semantics and step order as the CPU
// backend's (src/backend/cpu/kernels_index.cpp, kernels_grid_sample.cpp). Built with
// --fmad=false (CMakeLists.txt) so that the double-precision sums round as the CPU's do.
#include "backend/cuda/kernels_index.h"

#include <cstdint>

#include "tandem/op_semantics.h"
#include "tandem/sample_semantics.h"

namespace tandem::cuda {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 1 ? 1 : (b > (int64_t(1) << 30) ? (int64_t(1) << 30) : b));
}

__device__ int64_t load_index(const void* p, bool i64, int64_t i) {
  return i64 ? static_cast<const int64_t*>(p)[i] : int64_t(static_cast<const int32_t*>(p)[i]);
}

// Negative indices count from the end; -1 when still outside [0, n).
__device__ int64_t wrap_index(int64_t k, int64_t n) {
  if (k < 0) k += n;
  return (k < 0 || k >= n) ? -1 : k;
}

__device__ void copy_element(void* dst, int64_t to, const void* src, int64_t from, int es) {
  switch (es) {
    case 1: static_cast<uint8_t*>(dst)[to] = static_cast<const uint8_t*>(src)[from]; break;
    case 2: static_cast<uint16_t*>(dst)[to] = static_cast<const uint16_t*>(src)[from]; break;
    case 4: static_cast<uint32_t*>(dst)[to] = static_cast<const uint32_t*>(src)[from]; break;
    default: static_cast<uint64_t*>(dst)[to] = static_cast<const uint64_t*>(src)[from]; break;
  }
}

__device__ void zero_element(void* dst, int64_t to, int es) {
  for (int b = 0; b < es; ++b) static_cast<uint8_t*>(dst)[to * es + b] = 0;
}

// The element offset in dims `d` of the position of element j of dims `ix` with coordinate
// `axis` replaced by wrapped index v; -1 when v is out of range.
__device__ int64_t element_offset(int64_t j, const Shape& ix, const Shape& d, int axis, int64_t v) {
  int64_t off = 0, rest = j, d_stride = 1;
  int64_t coord[kMaxRank];
  for (int a = ix.rank - 1; a >= 0; --a) {
    coord[a] = rest % ix.d[a];
    rest /= ix.d[a];
  }
  const int64_t k = wrap_index(v, d.d[axis]);
  if (k < 0) return -1;
  for (int a = d.rank - 1; a >= 0; --a) {
    off += (a == axis ? k : coord[a]) * d_stride;
    d_stride *= d.d[a];
  }
  return off;
}

// ---- Gather ------------------------------------------------------------------------------------
__global__ void gather_elements_k(const void* data, Shape dd, const void* idx, bool i64, Shape ix, int axis,
                                  void* out, int es, int64_t n) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    const int64_t off = element_offset(j, ix, dd, axis, load_index(idx, i64, j));
    if (off < 0) zero_element(out, j, es);
    else copy_element(out, j, data, off, es);
  }
}

__global__ void gather_nd_k(const void* data, Shape dd, Shape ds, const void* idx, bool i64, int b, int k,
                            int64_t tuples, int64_t slice, void* out, int es, int64_t n) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    const int64_t q = j / slice, e = j % slice, bi = q / tuples;
    int64_t off = bi * (b > 0 ? ds.d[b - 1] : 0);
    bool ok = true;
    for (int c = 0; c < k; ++c) {
      const int64_t v = wrap_index(load_index(idx, i64, q * k + c), dd.d[b + c]);
      ok = ok && v >= 0;
      off += v * ds.d[b + c];
    }
    if (ok) copy_element(out, j, data, off + e, es);
    else zero_element(out, j, es);
  }
}

// ---- Scatter -----------------------------------------------------------------------------------
// Combines update v into *p as the CPU's combine() does (max: the old value unless it is less).
template <class T>
__device__ T combined(ScatterReduction r, T old, T v) {
  switch (r) {
    case ScatterReduction::kNone: return v;
    case ScatterReduction::kAdd: return old + v;
    case ScatterReduction::kMul: return old * v;
    case ScatterReduction::kMax: return old < v ? v : old;
    case ScatterReduction::kMin: return v < old ? v : old;
  }
  return v;
}

template <class T, class Bits>
__device__ void atomic_combine(T* p, T v, ScatterReduction r) {
  auto* bp = reinterpret_cast<Bits*>(p);
  Bits seen = *reinterpret_cast<volatile Bits*>(bp), assumed;
  do {
    assumed = seen;
    T old;
    memcpy(&old, &assumed, sizeof(T));
    const T nv = combined(r, old, v);
    Bits nb;
    memcpy(&nb, &nv, sizeof(T));
    seen = atomicCAS(bp, assumed, nb);
  } while (seen != assumed);
}

// One update: kNone copies; reductions combine atomically (several updates may meet there).
__device__ void put(void* out, int64_t to, const void* upd, int64_t from, int dt, ScatterReduction r) {
  if (r == ScatterReduction::kNone) {
    const int es = dt == kF32 || dt == kI32 ? 4 : dt == kI64 ? 8 : dt == kF16 ? 2 : 1;
    copy_element(out, to, upd, from, es);
    return;
  }
  if (dt == kF32) {
    const float v = static_cast<const float*>(upd)[from];
    if (r == ScatterReduction::kAdd) atomicAdd(static_cast<float*>(out) + to, v);
    else atomic_combine<float, unsigned int>(static_cast<float*>(out) + to, v, r);
  } else if (dt == kI32) {
    const int v = static_cast<const int*>(upd)[from];
    if (r == ScatterReduction::kAdd) atomicAdd(static_cast<int*>(out) + to, v);
    else atomic_combine<int, unsigned int>(static_cast<int*>(out) + to, v, r);
  } else {
    const long long v = static_cast<const long long*>(upd)[from];
    atomic_combine<long long, unsigned long long>(static_cast<long long*>(out) + to, v, r);
  }
}

__global__ void scatter_elements_k(void* out, Shape dd, const void* idx, bool i64, Shape ix, int axis,
                                   const void* upd, int dt, ScatterReduction r, int64_t n) {
  int64_t axis_stride = 1;
  for (int a = ix.rank - 1; a > axis; --a) axis_stride *= ix.d[a];
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    const int64_t v = wrap_index(load_index(idx, i64, j), dd.d[axis]);
    if (v < 0) continue;
    if (r == ScatterReduction::kNone) {
      // A later update to the same position differs from j only along `axis`: it wins.
      bool superseded = false;
      const int64_t c = (j / axis_stride) % ix.d[axis];
      for (int64_t m = c + 1; m < ix.d[axis] && !superseded; ++m)
        superseded = wrap_index(load_index(idx, i64, j + (m - c) * axis_stride), dd.d[axis]) == v;
      if (superseded) continue;
    }
    put(out, element_offset(j, ix, dd, axis, v), upd, j, dt, r);
  }
}

// One block per index tuple; its threads walk the slice it writes.
__global__ void scatter_nd_k(void* out, Shape dd, Shape ds, const void* idx, bool i64, int k, int64_t tuples,
                             int64_t slice, const void* upd, int dt, ScatterReduction r) {
  for (int64_t t = blockIdx.x; t < tuples; t += gridDim.x) {
    int64_t off = 0;
    bool ok = true;
    for (int c = 0; c < k; ++c) {
      const int64_t v = wrap_index(load_index(idx, i64, t * k + c), dd.d[c]);
      ok = ok && v >= 0;
      off += v * ds.d[c];
    }
    bool later_same = false;  // kNone: a later tuple naming the same slice wins
    if (r == ScatterReduction::kNone)
      for (int64_t u = t + 1 + threadIdx.x; u < tuples && !later_same; u += blockDim.x) {
        bool same = true;
        for (int c = 0; c < k && same; ++c)
          same = wrap_index(load_index(idx, i64, u * k + c), dd.d[c]) ==
                 wrap_index(load_index(idx, i64, t * k + c), dd.d[c]);
        later_same = same;
      }
    if (__syncthreads_or(later_same) || !ok) continue;
    for (int64_t e = threadIdx.x; e < slice; e += blockDim.x) put(out, off + e, upd, t * slice + e, dt, r);
  }
}

// ---- TopK --------------------------------------------------------------------------------------
// Each element counts the elements ranked before it (a total order: value, then index); those
// ranked below k land at their rank.
template <class T>
__global__ void topk_k(const T* x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest, T* values,
                       void* indices, bool idx_i64) {
  const int64_t total = outer * n * inner;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = g % inner, j = (g / inner) % n, o = g / (inner * n);
    const T* row = x + o * n * inner + i;
    const T v = row[j * inner];
    int64_t rank = 0;
    for (int64_t m = 0; m < n && rank < k; ++m) {
      const T w = row[m * inner];
      rank += (w != v) ? (largest ? w > v : w < v) : m < j;
    }
    if (rank >= k) continue;
    const int64_t at = o * k * inner + rank * inner + i;
    values[at] = v;
    if (idx_i64) static_cast<int64_t*>(indices)[at] = j;
    else static_cast<int32_t*>(indices)[at] = int32_t(j);
  }
}

// ---- Einsum ------------------------------------------------------------------------------------
// One thread per output element; the summed labels turn as the CPU's odometer does (the last
// fastest), products and sum in double.
__global__ void einsum_k(EinsumPlan p, float* y, int64_t out_count) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < out_count; e += int64_t(gridDim.x) * blockDim.x) {
    int64_t base[kEinsumInputs] = {};
    int64_t rest = e;
    for (int a = p.out_labels - 1; a >= 0; --a) {
      const int64_t c = rest % p.extent[a];
      rest /= p.extent[a];
      for (int i = 0; i < p.inputs; ++i) base[i] += c * p.stride[i][a];
    }
    int64_t sums = 1;
    for (int a = p.out_labels; a < p.labels; ++a) sums *= p.extent[a];
    double acc = 0.0;
    for (int64_t step = 0; step < sums; ++step) {
      int64_t off[kEinsumInputs];
      for (int i = 0; i < p.inputs; ++i) off[i] = base[i];
      int64_t r = step;
      for (int a = p.labels - 1; a >= p.out_labels; --a) {
        const int64_t c = r % p.extent[a];
        r /= p.extent[a];
        for (int i = 0; i < p.inputs; ++i) off[i] += c * p.stride[i][a];
      }
      double prod = 1.0;
      for (int i = 0; i < p.inputs; ++i) prod *= p.x[i][off[i]];
      acc += prod;
    }
    y[e] = float(acc);
  }
}

// ---- GridSample --------------------------------------------------------------------------------
__global__ void grid_sample_k(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, const float* grid,
                              int64_t Ho, int64_t Wo, ResizeMode interp, bool align, SliceMode m, float* y) {
  const ops::SampleAxis ay = ops::sample_axis(H, align), ax = ops::sample_axis(W, align);
  const int64_t total = N * Ho * Wo;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = g / (Ho * Wo), i = g % (Ho * Wo);
    const float* gp = grid + g * 2;
    const ops::SamplePoint sp = ops::sample_point(gp[0], gp[1], ax, ay, interp, align, m);
    for (int64_t c = 0; c < C; ++c)
      y[(n * C + c) * Ho * Wo + i] = static_cast<float>(ops::sample_plane(x + (n * C + c) * H * W, W, sp));
  }
}

// ---- RoiAlign ----------------------------------------------------------------------------------
// One thread per output element (r, c, ph, pw); the samples in the CPU's order.
__global__ void roi_align_k(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, const float* rois,
                            const void* batch, bool bi64, int64_t R, RoiAlignParams p, float* y) {
  const int64_t total = R * C * p.out_h * p.out_w;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t pw = g % p.out_w, ph = (g / p.out_w) % p.out_h, c = (g / (p.out_w * p.out_h)) % C,
                  r = g / (p.out_w * p.out_h * C);
    const int64_t b = load_index(batch, bi64, r);
    if (b < 0 || b >= N) {
      y[g] = 0.f;
      continue;
    }
    const float* box = rois + r * 4;
    const double off = p.half_pixel ? 0.5 : 0.0;
    const double x1 = double(__fmul_rn(box[0], p.spatial_scale)) - off;
    const double y1 = double(__fmul_rn(box[1], p.spatial_scale)) - off;
    double rw = double(__fmul_rn(box[2], p.spatial_scale)) - off - x1;
    double rh = double(__fmul_rn(box[3], p.spatial_scale)) - off - y1;
    if (!p.half_pixel) rw = rw < 1.0 ? 1.0 : rw, rh = rh < 1.0 ? 1.0 : rh;
    const double bh = rh / double(p.out_h), bw = rw / double(p.out_w);
    const int64_t gh = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(ceil(rh / double(p.out_h)));
    const int64_t gw = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(ceil(rw / double(p.out_w)));
    const double count = double(gh * gw > 1 ? gh * gw : 1);
    const float* plane = x + (b * C + c) * H * W;
    double acc = 0;
    bool first = true;
    for (int64_t iy = 0; iy < gh; ++iy)
      for (int64_t ix = 0; ix < gw; ++ix) {
        const ops::RoiCorner s = ops::roi_bilinear_corners(y1 + double(ph) * bh + (double(iy) + 0.5) * bh / double(gh),
                                          x1 + double(pw) * bw + (double(ix) + 0.5) * bw / double(gw), H, W);
        if (!p.max_mode) {
          if (s.valid) for (int q = 0; q < 4; ++q) acc += s.w[q] * double(plane[s.at[q]]);
          continue;
        }
        double v = 0;  // an invalid sample is 0, as in the ONNX reference
        if (s.valid) {
          v = s.w[0] * double(plane[s.at[0]]);
          for (int q = 1; q < 4; ++q) v = fmax(v, s.w[q] * double(plane[s.at[q]]));
        }
        acc = first ? v : fmax(acc, v);
        first = false;
      }
    y[g] = static_cast<float>(p.max_mode ? acc : acc / count);
  }
}

// ---- Pooling over 1 or 3 spatial axes (2-D pooling is kernels.cu's pool2d) ------------------------
// The CPU reference's loop (kernels_ref.cpp make_pooling): every pooling as 3-D, the window
// clipped to the padded input (count_include_pad's count) and to the input, fp32 sums in order.
__global__ void pool3d_k(const float* x, float* y, int64_t NC, Pool3d p) {
  const int64_t per = p.od[0] * p.od[1] * p.od[2], total = NC * per;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t nc = g / per, o = g % per;
    const int64_t a = o / (p.od[1] * p.od[2]), b = (o / p.od[2]) % p.od[1], c = o % p.od[2];
    const float* px = x + nc * p.id[0] * p.id[1] * p.id[2];
    const int64_t s0 = a * p.s[0] - p.pb[0], s1 = b * p.s[1] - p.pb[1], s2 = c * p.s[2] - p.pb[2];
    int64_t e0 = min(s0 + p.k[0], p.id[0] + p.pe[0]), e1 = min(s1 + p.k[1], p.id[1] + p.pe[1]),
            e2 = min(s2 + p.k[2], p.id[2] + p.pe[2]);
    const int64_t padded = (e0 - s0) * (e1 - s1) * (e2 - s2);
    const int64_t b0 = max(s0, int64_t(0)), b1 = max(s1, int64_t(0)), b2 = max(s2, int64_t(0));
    e0 = min(e0, p.id[0]);
    e1 = min(e1, p.id[1]);
    e2 = min(e2, p.id[2]);
    float acc = ops::pool_identity<float>(p.type);
    for (int64_t i0 = b0; i0 < e0; ++i0)
      for (int64_t i1 = b1; i1 < e1; ++i1)
        for (int64_t i2 = b2; i2 < e2; ++i2) acc = ops::pool_combine(p.type, acc, px[(i0 * p.id[1] + i1) * p.id[2] + i2]);
    if (p.type == PoolingType::kAverage) {
      const int64_t cnt = p.exclude_pad ? (e0 - b0) * (e1 - b1) * (e2 - b2) : padded;
      acc = cnt > 0 ? ops::pool_finish(p.type, acc, cnt) : 0.f;
    }
    y[g] = acc;
  }
}

}  // namespace

void pool3d(const float* x, float* y, int64_t NC, const Pool3d& p, cudaStream_t s) {
  const int64_t n = NC * p.od[0] * p.od[1] * p.od[2];
  if (n > 0) pool3d_k<<<blocks_for(n), kThreads, 0, s>>>(x, y, NC, p);
}

void gather_elements(const void* data, Shape data_dims, const void* idx, bool idx_i64, Shape idx_dims, int axis,
                     void* out, int es, cudaStream_t s) {
  int64_t n = 1;
  for (int a = 0; a < idx_dims.rank; ++a) n *= idx_dims.d[a];
  if (n > 0) gather_elements_k<<<blocks_for(n), kThreads, 0, s>>>(data, data_dims, idx, idx_i64, idx_dims, axis, out, es, n);
}

void gather_nd(const void* data, Shape data_dims, Shape data_strides, const void* idx, bool idx_i64, int batch_dims,
               int k, int64_t batches, int64_t tuples, int64_t slice, void* out, int es, cudaStream_t s) {
  const int64_t n = batches * tuples * slice;
  if (n > 0)
    gather_nd_k<<<blocks_for(n), kThreads, 0, s>>>(data, data_dims, data_strides, idx, idx_i64, batch_dims, k, tuples,
                                                   slice, out, es, n);
}

void scatter_elements(void* out, Shape out_dims, const void* idx, bool idx_i64, Shape idx_dims, int axis,
                      const void* upd, int dt, ScatterReduction red, cudaStream_t s) {
  int64_t n = 1;
  for (int a = 0; a < idx_dims.rank; ++a) n *= idx_dims.d[a];
  if (n > 0)
    scatter_elements_k<<<blocks_for(n), kThreads, 0, s>>>(out, out_dims, idx, idx_i64, idx_dims, axis, upd, dt, red, n);
}

void scatter_nd(void* out, Shape out_dims, Shape out_strides, const void* idx, bool idx_i64, int k, int64_t tuples,
                int64_t slice, const void* upd, int dt, ScatterReduction red, cudaStream_t s) {
  if (tuples <= 0) return;
  const unsigned grid = unsigned(tuples < (int64_t(1) << 30) ? tuples : (int64_t(1) << 30));
  scatter_nd_k<<<grid, kThreads, 0, s>>>(out, out_dims, out_strides, idx, idx_i64, k, tuples, slice, upd, dt, red);
}

void topk(const void* x, int dt, int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest, void* values,
          void* indices, bool indices_i64, cudaStream_t s) {
  const int64_t total = outer * n * inner;
  if (total <= 0 || k <= 0) return;
  const unsigned b = blocks_for(total);
  if (dt == kF32)
    topk_k<float><<<b, kThreads, 0, s>>>(static_cast<const float*>(x), outer, n, inner, k, largest,
                                         static_cast<float*>(values), indices, indices_i64);
  else if (dt == kI32)
    topk_k<int32_t><<<b, kThreads, 0, s>>>(static_cast<const int32_t*>(x), outer, n, inner, k, largest,
                                           static_cast<int32_t*>(values), indices, indices_i64);
  else
    topk_k<int64_t><<<b, kThreads, 0, s>>>(static_cast<const int64_t*>(x), outer, n, inner, k, largest,
                                           static_cast<int64_t*>(values), indices, indices_i64);
}

void einsum(const EinsumPlan& p, float* y, int64_t out_count, cudaStream_t s) {
  if (out_count > 0) einsum_k<<<blocks_for(out_count), kThreads, 0, s>>>(p, y, out_count);
}

void grid_sample(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, const float* grid, int64_t Ho, int64_t Wo,
                 ResizeMode interp, bool align_corners, SliceMode padding, float* y, cudaStream_t s) {
  const int64_t n = N * Ho * Wo;
  if (n > 0)
    grid_sample_k<<<blocks_for(n), kThreads, 0, s>>>(x, N, C, H, W, grid, Ho, Wo, interp, align_corners, padding, y);
}

void roi_align(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, const float* rois, const void* batch,
               bool batch_i64, int64_t R, const RoiAlignParams& p, float* y, cudaStream_t s) {
  const int64_t n = R * C * p.out_h * p.out_w;
  if (n > 0) roi_align_k<<<blocks_for(n), kThreads, 0, s>>>(x, N, C, H, W, rois, batch, batch_i64, R, p, y);
}

}  // namespace tandem::cuda
