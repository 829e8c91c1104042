// tandem's own CUDA kernels on half-precision values (real FP16 execution, see
// docs/cuda-backend.md): storage is __half, arithmetic is FP32 (each value is widened on load and
// rounded to nearest-even once on store), as the CPU backend's FP16 emulation computes.
// 4-d half values are channels-last (NHWC) in memory.
#include <algorithm>
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "backend/cuda/kernels.h"
#include "tandem/op_semantics.h"

namespace tandem::cuda {
namespace {

#include "backend/cuda/kernel_common.cuh"
__device__ __forceinline__ float ld(const __half* p, idx_t i) { return __half2float(p[i]); }
__device__ __forceinline__ __half st(float v) { return __float2half_rn(v); }

// ---- conversions ------------------------------------------------------------------------------
// One element per thread over the destination; src/dst each float or half, NCHW or NHWC.
__global__ void convert_kernel(const void* x, bool x_half, bool x_nhwc, void* y, bool y_half, bool y_nhwc,
                               idx_t c, idx_t hw, idx_t n) {
  GRID_LOOP(i, n) {
    // (b, ch, p): p = h * W + w; the destination index i decomposed in its own layout.
    idx_t b, ch, p;
    if (y_nhwc) ch = i % c, p = (i / c) % hw, b = i / (c * hw);
    else p = i % hw, ch = (i / hw) % c, b = i / (c * hw);
    idx_t j = x_nhwc ? (b * hw + p) * c + ch : (b * c + ch) * hw + p;
    float v = x_half ? __half2float(static_cast<const __half*>(x)[j]) : static_cast<const float*>(x)[j];
    if (y_half) static_cast<__half*>(y)[i] = st(v);
    else static_cast<float*>(y)[i] = v;
  }
}

// ---- point-wise ---------------------------------------------------------------------------------
__device__ __forceinline__ float arith(ElementWiseOp op, float a, float b) { return ops::elementwise<float>(op, a, b); }
__global__ void pw_chain_h_kernel(PwChain c, const __half* __restrict__ x, __half* __restrict__ y, idx_t n) {
  GRID_LOOP(i, n) y[i] = st(apply_chain(c, ld(x, i)));
}
// Channel c = (i / inner) % C (NHWC: inner 1, C = channels).
__global__ void bias_chain_h_kernel(__half* y, const float* bias, idx_t C, idx_t inner, PwChain c, idx_t n) {
  GRID_LOOP(i, n) {
    float v = ld(y, i);
    if (bias) v += bias[(i / inner) % C];
    y[i] = st(apply_chain(c, v));
  }
}
// The epilogue of a convolution that kept its FP32 accumulator: y = half(chain(acc + bias[c])),
// one rounding (as the emulation and TensorRT's fused kernels round).
__global__ void bias_chain_f2h_kernel(const float* __restrict__ acc, __half* __restrict__ y, const float* bias, idx_t C,
                                      idx_t inner, PwChain c, idx_t n) {
  GRID_LOOP(i, n) {
    float v = acc[i];
    if (bias) v += bias[(i / inner) % C];
    y[i] = st(apply_chain(c, v));
  }
}

// Depthwise convolution of an NHWC half value, one output per thread with the channel fastest (the
// loads coalesce over channels): FP32 sums of half products, then bias and chain on the sum and
// one rounding to half. Zero padding by bounds checks. w: half, [c][kh][kw].
__global__ void depthwise_h_kernel(DwConv q, const __half* __restrict__ x, const __half* __restrict__ w,
                                   const float* bias, PwChain c, __half* __restrict__ y, idx_t n) {
  GRID_LOOP(i, n) {
    const idx_t ch = i % q.c;
    idx_t t = i / q.c;
    const int ox = int(t % q.ow);
    t /= q.ow;
    const int oy = int(t % q.oh);
    const idx_t b = t / q.oh;
    float acc = 0.f;
    for (int r = 0; r < q.kh; ++r) {
      const int iy = oy * q.sh - q.ph + r * q.dh;
      if (iy < 0 || iy >= q.h) continue;
      for (int k = 0; k < q.kw; ++k) {
        const int ix = ox * q.sw - q.pw + k * q.dw;
        if (ix < 0 || ix >= q.w) continue;
        acc += ld(x, ((b * q.h + iy) * q.w + ix) * q.c + ch) * ld(w, (ch * q.kh + r) * q.kw + k);
      }
    }
    if (bias) acc += bias[ch];
    y[i] = st(apply_chain(c, acc));
  }
}

// mode 1: both dense like the output; 2: a dense, b one value; 0: general broadcast.
__global__ void binary_h_kernel(ElementWiseOp op, bool prelu, const __half* a, IShape sa, const __half* b, IShape sb,
                                __half* out, IShape dims, idx_t n, int mode) {
  auto f = [&](float x, float w) { return prelu ? (x >= 0.f ? x : x * w) : arith(op, x, w); };
  if (mode == 1) {
    GRID_LOOP(i, n) out[i] = st(f(ld(a, i), ld(b, i)));
  } else if (mode == 2) {
    const float bv = ld(b, 0);
    GRID_LOOP(i, n) out[i] = st(f(ld(a, i), bv));
  } else {
    GRID_LOOP(i, n) out[i] = st(f(ld(a, offset_of(i, dims, sa)), ld(b, offset_of(i, dims, sb))));
  }
}
// Dense operands, 4 halves (8 bytes) per thread: n4 = n / 4 groups (the arena aligns to 256).
// b_one: b is one value.
__global__ void binary_h4_kernel(ElementWiseOp op, const uint2* a, const uint2* b, bool b_one, uint2* out, idx_t n4) {
  const float bv = b_one ? __half2float(reinterpret_cast<const __half*>(b)[0]) : 0.f;
  GRID_LOOP(i, n4) {
    uint2 va = a[i], vb = b_one ? uint2{} : b[i], vo;
    const __half* ha = reinterpret_cast<const __half*>(&va);
    const __half* hb = reinterpret_cast<const __half*>(&vb);
    __half* ho = reinterpret_cast<__half*>(&vo);
#pragma unroll
    for (int k = 0; k < 4; ++k) ho[k] = st(arith(op, __half2float(ha[k]), b_one ? bv : __half2float(hb[k])));
    out[i] = vo;
  }
}
// NHWC value a times a per-(image, channel) value b ([N, C, 1, 1]: squeeze-excitation scaling):
// b's offset is (i / (hw * c)) * c + i % c, or i % c when b has one image.
__global__ void binary_h_channel_kernel(ElementWiseOp op, bool b_left, const __half* a, const __half* b, __half* out,
                                        idx_t c, idx_t img, bool b_batched, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t j = (b_batched ? (i / img) * c : 0) + i % c;
    float x = ld(a, i), w = ld(b, j);
    out[i] = st(b_left ? arith(op, w, x) : arith(op, x, w));
  }
}

bool dense_like(const IShape& st, const IShape& dims) {
  idx_t expect = 1;
  for (int k = dims.rank - 1; k >= 0; --k) {
    if (dims.d[k] != 1 && st.d[k] != expect) return false;
    expect *= dims.d[k];
  }
  return true;
}
bool one_value(const IShape& st, const IShape& dims) {
  for (int k = 0; k < dims.rank; ++k)
    if (st.d[k] != 0 && dims.d[k] != 1) return false;
  return true;
}

// ---- pooling, NHWC: one thread per output (b, oh, ow, ch), channels fastest (coalesced) ----------
__global__ void pool2d_nhwc_h_kernel(Pool2d p, idx_t c, const __half* x, __half* y, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t ch = i % c, t = i / c;
    idx_t ow = t % p.ow, oh = (t / p.ow) % p.oh, b = t / (p.ow * p.oh);
    idx_t hs = oh * p.sh - p.ph, ws = ow * p.sw - p.pw;
    idx_t he = hs + p.kh, we = ws + p.kw;
    idx_t pad_count = (min(he, p.hp) - hs) * (min(we, p.wp) - ws);
    idx_t h0 = max(hs, idx_t(0)), w0 = max(ws, idx_t(0));
    idx_t h1 = min(he, p.h), w1 = min(we, p.w);
    const __half* xp = x + b * p.h * p.w * c + ch;
    float acc = p.max ? -INFINITY : 0.f;
    for (idx_t hh = h0; hh < h1; ++hh)
      for (idx_t ww = w0; ww < w1; ++ww) {
        float v = ld(xp, (hh * p.w + ww) * c);
        acc = p.max ? fmaxf(acc, v) : acc + v;
      }
    if (!p.max) {
      idx_t cnt = p.exclude_pad ? (h1 - h0) * (w1 - w0) : pad_count;
      acc = cnt > 0 ? acc / float(cnt) : 0.f;
    }
    y[i] = st(acc);
  }
}

// ---- spatial reduce, NHWC -> [N, C]: a block per (b, 32-channel tile, pixel segment), 32 x Y threads
// Segments > 1: each writes its FP32 partial; spatial_reduce_final_kernel combines them in order.
__global__ void spatial_reduce_h_kernel(ReduceOp op, const __half* x, __half* y, float* partial, idx_t hw, idx_t c,
                                        idx_t tiles, idx_t segs, idx_t seg_len) {
  __shared__ float sh[32][33];
  const idx_t blk = idx_t(blockIdx.x), seg = blk % segs, b = blk / segs / tiles;
  const idx_t ch = ((blk / segs) % tiles) * 32 + threadIdx.x;
  const idx_t p0 = seg * seg_len, p1 = p0 + seg_len < hw ? p0 + seg_len : hw;
  float acc = red_init(op);
  if (ch < c)
    for (idx_t p = p0 + threadIdx.y; p < p1; p += blockDim.y) acc = red_op(op, acc, ld(x, (b * hw + p) * c + ch));
  sh[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && ch < c) {
    float t = red_init(op);
    for (unsigned k = 0; k < blockDim.y; ++k) t = red_op(op, t, sh[k][threadIdx.x]);
    if (segs > 1) partial[(b * segs + seg) * c + ch] = t;
    else y[b * c + ch] = st(op == ReduceOp::kAvg ? t / float(hw) : t);
  }
}
__global__ void spatial_reduce_final_kernel(ReduceOp op, const float* partial, __half* y, idx_t hw, idx_t c, idx_t segs,
                                            idx_t n) {
  const idx_t i = idx_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const idx_t b = i / c, ch = i % c;
  float t = red_init(op);
  for (idx_t s = 0; s < segs; ++s) t = red_op(op, t, partial[(b * segs + s) * c + ch]);
  y[i] = st(op == ReduceOp::kAvg ? t / float(hw) : t);
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------
void convert(const void* x, bool x_half, bool x_nhwc, void* y, bool y_half, bool y_nhwc, int64_t n, int64_t c,
             int64_t hw, cudaStream_t s) {
  if (c < 1) c = 1;
  if (hw < 1) hw = 1;
  convert_kernel<<<blocks_for(n), kBlock, 0, s>>>(x, x_half, x_nhwc, y, y_half, y_nhwc, idx_t(c), idx_t(hw), idx_t(n));
}
void pointwise_chain_h(const PwChain& c, const void* x, void* y, int64_t n, cudaStream_t s) {
  pw_chain_h_kernel<<<blocks_for(n), kBlock, 0, s>>>(c, static_cast<const __half*>(x), static_cast<__half*>(y), idx_t(n));
}
void bias_chain_h(void* y, const float* bias, int64_t C, int64_t inner, const PwChain& c, int64_t n, cudaStream_t s) {
  bias_chain_h_kernel<<<blocks_for(n), kBlock, 0, s>>>(static_cast<__half*>(y), bias, idx_t(C), idx_t(inner), c,
                                                      idx_t(n));
}
void depthwise_h(const DwConv& q, const void* x, const void* w, const float* bias, const PwChain& c, void* y,
                 cudaStream_t s) {
  const int64_t n = int64_t(q.n) * q.oh * q.ow * q.c;
  depthwise_h_kernel<<<blocks_for(n), kBlock, 0, s>>>(q, static_cast<const __half*>(x), static_cast<const __half*>(w),
                                                     bias, c, static_cast<__half*>(y), idx_t(n));
}
void bias_chain_f2h(const float* acc, void* y, const float* bias, int64_t C, int64_t inner, const PwChain& c, int64_t n,
                    cudaStream_t s) {
  bias_chain_f2h_kernel<<<blocks_for(n), kBlock, 0, s>>>(acc, static_cast<__half*>(y), bias, idx_t(C), idx_t(inner), c,
                                                        idx_t(n));
}
namespace {
// b broadcast per (image, channel) over a dense NHWC-ordered output [N, H, W, C]: strides
// (C or 0, 0, 0, 1).
bool channel_broadcast(const IShape& st, const IShape& dims) {
  return dims.rank == 4 && st.d[3] == 1 && st.d[1] == 0 && st.d[2] == 0 && (st.d[0] == 0 || st.d[0] == dims.d[3]) &&
         dims.d[1] * dims.d[2] > 1;
}
}  // namespace

BinaryHalfPath binary_h_path(ElementWiseOp op, Shape sa, Shape sb, Shape dims) {
  IShape ia(sa), ib(sb), id(dims);
  const int64_t n = count_of(dims);
  const bool da = dense_like(ia, id), db = dense_like(ib, id);
  const bool commutes = op == ElementWiseOp::kSum || op == ElementWiseOp::kProd || op == ElementWiseOp::kMax ||
                        op == ElementWiseOp::kMin;
  if (da && db) return n % 4 == 0 ? BinaryHalfPath::kDenseVec : BinaryHalfPath::kDense;
  if (da && one_value(ib, id)) return n % 4 == 0 ? BinaryHalfPath::kScalarVec : BinaryHalfPath::kScalar;
  if (da && channel_broadcast(ib, id)) return BinaryHalfPath::kChannelRight;
  if (db && channel_broadcast(ia, id)) return BinaryHalfPath::kChannelLeft;
  if (commutes && db && one_value(ia, id)) return n % 4 == 0 ? BinaryHalfPath::kScalarVecSwapped : BinaryHalfPath::kGeneral;
  return BinaryHalfPath::kGeneral;
}

void binary_h(ElementWiseOp op, bool prelu, const void* a, Shape sa, const void* b, Shape sb, void* out, Shape dims,
              cudaStream_t s) {
  const int64_t n = count_of(dims);
  const BinaryHalfPath path = prelu ? BinaryHalfPath::kGeneral : binary_h_path(op, sa, sb, dims);
  auto* o = static_cast<__half*>(out);
  auto* ha = static_cast<const __half*>(a);
  auto* hb = static_cast<const __half*>(b);
  const IShape id(dims);
  switch (path) {
    case BinaryHalfPath::kDenseVec: case BinaryHalfPath::kScalarVec: case BinaryHalfPath::kScalarVecSwapped: {
      const bool swapped = path == BinaryHalfPath::kScalarVecSwapped;
      binary_h4_kernel<<<blocks_for(n / 4), kBlock, 0, s>>>(
          op, static_cast<const uint2*>(swapped ? b : a), static_cast<const uint2*>(swapped ? a : b),
          path != BinaryHalfPath::kDenseVec, static_cast<uint2*>(out), idx_t(n / 4));
      return;
    }
    case BinaryHalfPath::kChannelRight: case BinaryHalfPath::kChannelLeft: {
      const bool left = path == BinaryHalfPath::kChannelLeft;
      const IShape sc(left ? sa : sb);
      binary_h_channel_kernel<<<blocks_for(n), kBlock, 0, s>>>(op, left, left ? hb : ha, left ? ha : hb, o, id.d[3],
                                                              id.d[1] * id.d[2] * id.d[3], sc.d[0] != 0, idx_t(n));
      return;
    }
    case BinaryHalfPath::kDense: case BinaryHalfPath::kScalar: case BinaryHalfPath::kGeneral: {
      const int mode = path == BinaryHalfPath::kDense ? 1 : path == BinaryHalfPath::kScalar ? 2 : 0;
      binary_h_kernel<<<blocks_for(n), kBlock, 0, s>>>(op, prelu, ha, sa, hb, sb, o, id, idx_t(n), mode);
      return;
    }
  }
}
void pooling2d_nhwc_h(const Pool2d& p, int64_t c, const void* x, void* y, cudaStream_t s) {
  int64_t n = int64_t(p.nc) * p.oh * p.ow * c;  // p.nc: the batch
  pool2d_nhwc_h_kernel<<<blocks_for(n), kBlock, 0, s>>>(p, idx_t(c), static_cast<const __half*>(x),
                                                        static_cast<__half*>(y), idx_t(n));
}
int64_t spatial_reduce_h_segments(int64_t batch, int64_t hw, int64_t c) {
  constexpr int64_t kTargetBlocks = 264, kMinPixels = 256;  // two blocks per H100/H200 SM; a segment's least work
  const int64_t blocks = batch * ((c + 31) / 32);
  if (blocks >= kTargetBlocks || hw < 2 * kMinPixels) return 1;
  return std::max<int64_t>(1, std::min((kTargetBlocks + blocks - 1) / blocks, hw / kMinPixels));
}
void spatial_reduce_h(ReduceOp op, const void* x, void* y, int64_t batch, int64_t hw, int64_t c, int64_t segments,
                      float* partial, cudaStream_t s) {
  const idx_t tiles = idx_t((c + 31) / 32), segs = idx_t(std::max<int64_t>(1, segments));
  const idx_t seg_len = idx_t((hw + segs - 1) / segs);
  dim3 block(32, seg_len >= 256 ? 32 : 8);
  spatial_reduce_h_kernel<<<unsigned(batch * tiles * segs), block, 0, s>>>(
      op, static_cast<const __half*>(x), static_cast<__half*>(y), partial, idx_t(hw), idx_t(c), tiles, segs, seg_len);
  if (segs > 1)
    spatial_reduce_final_kernel<<<blocks_for(batch * c), kBlock, 0, s>>>(op, partial, static_cast<__half*>(y), idx_t(hw),
                                                                         idx_t(c), segs, idx_t(batch * c));
}

}  // namespace tandem::cuda
