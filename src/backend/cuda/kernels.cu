// tandem's own CUDA kernels. Simple and clear first: grid-stride loops, int64 indexing,
// one thread per output element except reductions (one warp or block per row).
#include <cuda_fp16.h>

#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backend/cuda/kernels.h"
#include "tandem/op_semantics.h"

namespace tandem::cuda {
namespace {

#include "backend/cuda/kernel_common.cuh"

// ---- binary ----------------------------------------------------------------------------------
// Integer operands: tandem's element-wise semantics with a floor division that rounds toward
// negative infinity. Comparisons and logic have their own kernels.
template <class T>
__device__ __forceinline__ T arith(ElementWiseOp op, T a, T b) {
  switch (op) {
    case ElementWiseOp::kSum: return a + b;
    case ElementWiseOp::kProd: return a * b;
    case ElementWiseOp::kMax: return a > b ? a : b;
    case ElementWiseOp::kMin: return a < b ? a : b;
    case ElementWiseOp::kSub: return a - b;
    case ElementWiseOp::kDiv: return a / b;
    case ElementWiseOp::kPow: return T(pow(double(a), double(b)));
    case ElementWiseOp::kFloorDiv: {
      T q = a / b;
      if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
      return q;
    }
    case ElementWiseOp::kAnd: case ElementWiseOp::kOr: case ElementWiseOp::kXor:
    case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
      return T(0);
  }
  return T(0);
}
// Float operands: the op-semantics header (the CPU reference's arithmetic).
template <>
__device__ __forceinline__ float arith<float>(ElementWiseOp op, float a, float b) {
  return ops::elementwise<float>(op, a, b);
}
// PReLU: x >= 0 ? x : x * slope.
template <class T>
__device__ __forceinline__ T binary_op(ElementWiseOp op, bool prelu, T a, T b) {
  return prelu ? (a >= T(0) ? a : a * b) : arith<T>(op, a, b);
}

// mode 1: both dense like the output; 2: a dense, b one value; 3: a one value, b dense;
// 0: general broadcast (index decomposition).
template <class T>
__global__ void binary_kernel(ElementWiseOp op, bool prelu, const T* a, IShape sa, const T* b, IShape sb,
                              T* out, IShape dims, idx_t n, int mode) {
  if (mode == 1) {
    GRID_LOOP(i, n) out[i] = binary_op<T>(op, prelu, a[i], b[i]);
  } else if (mode == 2) {
    const T bv = b[0];
    GRID_LOOP(i, n) out[i] = binary_op<T>(op, prelu, a[i], bv);
  } else if (mode == 3) {
    const T av = a[0];
    GRID_LOOP(i, n) out[i] = binary_op<T>(op, prelu, av, b[i]);
  } else {
    GRID_LOOP(i, n) out[i] = binary_op<T>(op, prelu, a[offset_of(i, dims, sa)], b[offset_of(i, dims, sb)]);
  }
}

template <class T>
__global__ void compare_kernel(ElementWiseOp op, const T* a, IShape sa, const T* b, IShape sb, uint8_t* out,
                               IShape dims, idx_t n) {
  GRID_LOOP(i, n) {
    T x = a[offset_of(i, dims, sa)], y = b[offset_of(i, dims, sb)];
    bool r = op == ElementWiseOp::kEqual ? x == y : op == ElementWiseOp::kGreater ? x > y : x < y;
    out[i] = r ? 1 : 0;
  }
}

__global__ void logic_kernel(ElementWiseOp op, const uint8_t* a, IShape sa, const uint8_t* b, IShape sb,
                             uint8_t* out, IShape dims, idx_t n) {
  GRID_LOOP(i, n) {
    bool x = a[offset_of(i, dims, sa)] != 0, y = b[offset_of(i, dims, sb)] != 0;
    bool r = op == ElementWiseOp::kAnd ? (x && y) : op == ElementWiseOp::kOr ? (x || y) : (x != y);
    out[i] = r ? 1 : 0;
  }
}

// Which kernel family computes an element-wise op.
enum class OpClass { kArith, kCompare, kLogic };
OpClass kind_of(ElementWiseOp op) {
  switch (op) {
    case ElementWiseOp::kSum: case ElementWiseOp::kProd: case ElementWiseOp::kMax: case ElementWiseOp::kMin:
    case ElementWiseOp::kSub: case ElementWiseOp::kDiv: case ElementWiseOp::kPow: case ElementWiseOp::kFloorDiv:
      return OpClass::kArith;
    case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
      return OpClass::kCompare;
    case ElementWiseOp::kAnd: case ElementWiseOp::kOr: case ElementWiseOp::kXor:
      return OpClass::kLogic;
  }
  return OpClass::kArith;
}

bool is_same_layout(const IShape& st, const IShape& dims) {
  idx_t expect = 1;
  for (int k = dims.rank - 1; k >= 0; --k) {
    if (dims.d[k] != 1 && st.d[k] != expect) return false;
    expect *= dims.d[k];
  }
  return true;
}

template <class T>
void binary_t(ElementWiseOp op, bool prelu, const void* a, IShape sa, const void* b, IShape sb, void* out,
              IShape dims, idx_t n, cudaStream_t s) {
  if (!prelu && kind_of(op) == OpClass::kCompare) {
    compare_kernel<T><<<blocks_for(n), kBlock, 0, s>>>(op, static_cast<const T*>(a), sa,
                                                       static_cast<const T*>(b), sb,
                                                       static_cast<uint8_t*>(out), dims, n);
    return;
  }
  auto one_value = [&](const IShape& st) {
    for (int k = 0; k < dims.rank; ++k)
      if (st.d[k] != 0 && dims.d[k] != 1) return false;
    return true;
  };
  bool da = is_same_layout(sa, dims), db = is_same_layout(sb, dims);
  int mode = da && db ? 1 : da && one_value(sb) ? 2 : db && one_value(sa) ? 3 : 0;
  binary_kernel<T><<<blocks_for(n), kBlock, 0, s>>>(op, prelu, static_cast<const T*>(a), sa,
                                                    static_cast<const T*>(b), sb,
                                                    static_cast<T*>(out), dims, n, mode);
}

// ---- select ----------------------------------------------------------------------------------
template <class T>
__global__ void select_kernel(const uint8_t* c, IShape sc, const T* a, IShape sa, const T* b,
                              IShape sb, T* y, IShape dims, idx_t n) {
  GRID_LOOP(i, n) {
    y[i] = c[offset_of(i, dims, sc)] ? a[offset_of(i, dims, sa)] : b[offset_of(i, dims, sb)];
  }
}

// ---- activations -----------------------------------------------------------------------------
// Activations: the op-semantics header (the CPU reference's arithmetic).
__device__ __forceinline__ float act(ActivationType type, float x, float alpha, float beta) {
  return ops::activation<float>(type, x, alpha, beta);
}

__global__ void activation_kernel(ActivationType type, float alpha, float beta, const float* x, float* y,
                                  idx_t n) {
  GRID_LOOP(i, n) y[i] = act(type, x[i], alpha, beta);
}

__global__ void bias_act_kernel(float* y, const float* bias, idx_t C, idx_t inner, int type,
                                float alpha, float beta, idx_t n) {
  GRID_LOOP(i, n) {
    float v = y[i];
    if (bias) v += bias[(i / inner) % C];
    if (type >= 0) v = act(ActivationType(type), v, alpha, beta);
    y[i] = v;
  }
}

// ---- depthwise convolution -------------------------------------------------------------------
__global__ void dwconv_kernel(DwConv p, const float* __restrict__ x, const float* __restrict__ w,
                              const float* __restrict__ bias, float* __restrict__ y, int type,
                              float alpha, float beta, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t ow = i % p.ow, t = i / p.ow;
    idx_t oh = t % p.oh;
    t /= p.oh;
    idx_t c = t % p.c;  // t = b * C + c
    const float* xp = x + t * p.h * p.w;
    const float* wp = w + c * p.kh * p.kw;
    float acc = bias ? bias[c] : 0.f;
    idx_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    for (int r = 0; r < p.kh; ++r) {
      idx_t hh = h0 + r * p.dh;
      if (hh < 0 || hh >= p.h) continue;
      for (int q = 0; q < p.kw; ++q) {
        idx_t ww = w0 + q * p.dw;
        if (ww < 0 || ww >= p.w) continue;
        acc = fmaf(xp[hh * p.w + ww], wp[r * p.kw + q], acc);
      }
    }
    y[i] = type >= 0 ? act(ActivationType(type), acc, alpha, beta) : acc;
  }
}

// ---- point-wise chains ------------------------------------------------------------------------
__global__ void pw_chain_kernel(PwChain c, const float* __restrict__ x, float* __restrict__ y,
                                idx_t n) {
  GRID_LOOP(i, n) y[i] = apply_chain(c, x[i]);
}
__global__ void bias_chain_kernel(float* y, const float* bias, idx_t C, idx_t inner, PwChain c,
                                  idx_t n) {
  GRID_LOOP(i, n) {
    float v = y[i];
    if (bias) v += bias[(i / inner) % C];
    y[i] = apply_chain(c, v);
  }
}

// ---- unary -----------------------------------------------------------------------------------
__global__ void unary_kernel(UnaryOp op, const float* x, float* y, idx_t n) {
  GRID_LOOP(i, n) y[i] = ops::unary<float>(op, x[i]);
}
__global__ void not_kernel(const uint8_t* x, uint8_t* y, idx_t n) {
  GRID_LOOP(i, n) y[i] = x[i] ? 0 : 1;
}

// ---- scale -----------------------------------------------------------------------------------
__global__ void scale_kernel(const float* x, float* y, idx_t n, int mode, idx_t C,
                             idx_t inner, const float* shift, const float* scl,
                             const float* power) {
  GRID_LOOP(i, n) {
    idx_t k = mode == 0 ? 0 : mode == 1 ? (i / inner) % C : i % C;
    float v = x[i] * (scl ? scl[k] : 1.f) + (shift ? shift[k] : 0.f);
    if (power) v = powf(v, power[k]);
    y[i] = v;
  }
}

// ---- pooling ---------------------------------------------------------------------------------
__global__ void pool2d_kernel(Pool2d p, const float* x, float* y, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t ow = i % p.ow, oh = (i / p.ow) % p.oh, nc = i / (p.ow * p.oh);
    idx_t hs = oh * p.sh - p.ph, ws = ow * p.sw - p.pw;
    idx_t he = hs + p.kh, we = ws + p.kw;
    // The average's divisor with padding counted: the window clipped to the padded bounds.
    idx_t pad_count = (min(he, p.hp) - hs) * (min(we, p.wp) - ws);
    idx_t h0 = max(hs, idx_t(0)), w0 = max(ws, idx_t(0));
    idx_t h1 = min(he, p.h), w1 = min(we, p.w);
    const float* xp = x + nc * p.h * p.w;
    // A window wholly in the padding has no element: max over nothing is -inf (as the CPU).
    float acc = p.max ? -INFINITY : 0.f;
    for (idx_t hh = h0; hh < h1; ++hh)
      for (idx_t ww = w0; ww < w1; ++ww) {
        float v = xp[hh * p.w + ww];
        acc = p.max ? fmaxf(acc, v) : acc + v;
      }
    if (!p.max) {
      idx_t cnt = p.exclude_pad ? (h1 - h0) * (w1 - w0) : pad_count;
      acc = cnt > 0 ? acc / float(cnt) : 0.f;
    }
    y[i] = acc;
  }
}

// ---- reduce: one warp per output -------------------------------------------------------------
__global__ void reduce_kernel(ReduceOp op, const float* x, float* y, IShape kd, IShape ks, IShape rd,
                              IShape rs, idx_t nout, idx_t nred) {
  int lane = threadIdx.x & 31;
  idx_t warp = (idx_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  idx_t nwarps = (idx_t(gridDim.x) * blockDim.x) >> 5;
  for (idx_t o = warp; o < nout; o += nwarps) {
    idx_t base = offset_of(o, kd, ks);
    float acc = red_init(op);
    for (idx_t r = lane; r < nred; r += 32) acc = red_op(op, acc, x[base + offset_of(r, rd, rs)]);
    for (int off = 16; off > 0; off >>= 1) acc = red_op(op, acc, __shfl_xor_sync(0xffffffffu, acc, off));
    if (lane == 0) y[o] = op == ReduceOp::kAvg ? acc / float(nred) : acc;
  }
}

// Rows of nred contiguous elements, one block per row (the common GlobalAveragePool shape).
__global__ void reduce_rows_kernel(ReduceOp op, const float* x, float* y, idx_t nred) {
  __shared__ float sh[32];
  const float* xr = x + idx_t(blockIdx.x) * nred;
  float acc = red_init(op);
  for (idx_t j = threadIdx.x; j < nred; j += blockDim.x) acc = red_op(op, acc, xr[j]);
  for (int off = 16; off > 0; off >>= 1) acc = red_op(op, acc, __shfl_xor_sync(0xffffffffu, acc, off));
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) sh[w] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = red_init(op);
    for (int k = 0; k < int(blockDim.x >> 5); ++k) t = red_op(op, t, sh[k]);
    y[blockIdx.x] = op == ReduceOp::kAvg ? t / float(nred) : t;
  }
}

// Integer reduce (int32/int64; ArgMax/ArgMin/Hardmax reduce int64 indices): one warp per output,
// accumulated in int64 and stored in T, as the CPU reference (kernels_ref.cpp make_reduce) whose
// double accumulator is exact below 2^53. kMax/kMin start from the type's limits; kAvg divides
// with truncation toward zero, as the reference's int64_t(double) conversion.
__device__ __forceinline__ long long red_init_i(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: case ReduceOp::kAvg: return 0;
    case ReduceOp::kProd: return 1;
    case ReduceOp::kMax: return LLONG_MIN;
    case ReduceOp::kMin: return LLONG_MAX;
  }
  return 0;
}
__device__ __forceinline__ long long red_op_i(ReduceOp op, long long a, long long b) {
  switch (op) {
    case ReduceOp::kSum: case ReduceOp::kAvg: return a + b;
    case ReduceOp::kProd: return a * b;
    case ReduceOp::kMax: return a > b ? a : b;
    case ReduceOp::kMin: return a < b ? a : b;
  }
  return a + b;
}
template <class T>
__global__ void reduce_int_kernel(ReduceOp op, const T* x, T* y, IShape kd, IShape ks, IShape rd, IShape rs,
                                  idx_t nout, idx_t nred) {
  int lane = threadIdx.x & 31;
  idx_t warp = (idx_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  idx_t nwarps = (idx_t(gridDim.x) * blockDim.x) >> 5;
  for (idx_t o = warp; o < nout; o += nwarps) {
    idx_t base = offset_of(o, kd, ks);
    long long acc = red_init_i(op);
    for (idx_t r = lane; r < nred; r += 32) acc = red_op_i(op, acc, (long long)x[base + offset_of(r, rd, rs)]);
    for (int off = 16; off > 0; off >>= 1) acc = red_op_i(op, acc, __shfl_xor_sync(0xffffffffu, acc, off));
    if (lane == 0) y[o] = T(op == ReduceOp::kAvg ? acc / (long long)nred : acc);
  }
}

// ---- resize ----------------------------------------------------------------------------------
__device__ __forceinline__ float src_coord(const Resize2d& r, bool vertical, idx_t o) {
  const idx_t in = vertical ? r.ih : r.iw, out = vertical ? r.oh : r.ow;
  const float scale = vertical ? r.scale_h : r.scale_w, len = vertical ? r.len_h : r.len_w;
  if (out == 1 && r.selector == ResizeSelector::kUpper) return 0.f;
  switch (r.transform) {
    case ResizeCoordinateTransform::kAlignCorners:
      return (out == 1 || len <= 1.f) ? 0.f : float(o) * float(in - 1) / (len - 1.f);
    case ResizeCoordinateTransform::kAsymmetric: return float(o) / scale;
    case ResizeCoordinateTransform::kHalfPixel: return (float(o) + 0.5f) / scale - 0.5f;
  }
  return 0.f;
}
__device__ __forceinline__ idx_t nearest_index(float c, ResizeRounding rounding, idx_t in) {
  float r = c;
  switch (rounding) {
    case ResizeRounding::kHalfUp: r = floorf(c + 0.5f); break;    // round_prefer_ceil
    case ResizeRounding::kHalfDown: r = ceilf(c - 0.5f); break;   // round_prefer_floor
    case ResizeRounding::kFloor: r = floorf(c); break;
    case ResizeRounding::kCeil: r = ceilf(c); break;
  }
  idx_t k = idx_t(r);
  return k < 0 ? 0 : k >= in ? in - 1 : k;
}
__global__ void resize_kernel(Resize2d r, const float* x, float* y, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t ox = i % r.ow, oy = (i / r.ow) % r.oh, p = i / (r.ow * r.oh);
    const float* xp = x + p * r.ih * r.iw;
    float cy = src_coord(r, true, oy);
    float cx = src_coord(r, false, ox);
    if (r.mode == ResizeMode::kNearest) {
      y[i] = xp[nearest_index(cy, r.rounding, r.ih) * r.iw + nearest_index(cx, r.rounding, r.iw)];
    } else {
      cy = fminf(fmaxf(cy, 0.f), float(r.ih - 1));
      cx = fminf(fmaxf(cx, 0.f), float(r.iw - 1));
      idx_t y0 = idx_t(floorf(cy)), x0 = idx_t(floorf(cx));
      idx_t y1 = min(y0 + 1, r.ih - 1), x1 = min(x0 + 1, r.iw - 1);
      float fy = cy - float(y0), fx = cx - float(x0);
      float v00 = xp[y0 * r.iw + x0], v01 = xp[y0 * r.iw + x1];
      float v10 = xp[y1 * r.iw + x0], v11 = xp[y1 * r.iw + x1];
      float top = v00 + (v01 - v00) * fx, bot = v10 + (v11 - v10) * fx;
      y[i] = top + (bot - top) * fy;
    }
  }
}

// ---- copies ----------------------------------------------------------------------------------
template <class T>
__global__ void strided_copy_kernel(const T* x, idx_t base, IShape st, T* y, IShape dims,
                                    idx_t n) {
  GRID_LOOP(i, n) y[i] = x[base + offset_of(i, dims, st)];
}

// An index outside [0, d) folded by the slice mode; kFill (and kDefault, which never reaches
// here out of range) marks the element as the fill value.
__device__ __forceinline__ idx_t fold_index(idx_t k, idx_t d, SliceMode mode, bool* fill) {
  if (k >= 0 && k < d) return k;
  switch (mode) {
    case SliceMode::kWrap: return ((k % d) + d) % d;
    case SliceMode::kClamp: return k < 0 ? 0 : d - 1;
    case SliceMode::kReflect: {
      if (d == 1) return 0;
      idx_t period = 2 * (d - 1);
      idx_t m = ((k % period) + period) % period;
      return m < d ? m : period - m;
    }
    case SliceMode::kFill:
    case SliceMode::kDefault: break;
  }
  *fill = true;
  return 0;
}
template <class T>
__global__ void slice_mode_kernel(const T* x, IShape in, IShape start, IShape step, T* y,
                                  IShape out, SliceMode mode, T fill, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t rem = i, off = 0, stride = 1;
    bool is_fill = false;
    for (int k = out.rank - 1; k >= 0; --k) {
      idx_t c = rem % out.d[k];
      rem /= out.d[k];
      idx_t src = fold_index(start.d[k] + c * step.d[k], in.d[k], mode, &is_fill);
      off += src * stride;
      stride *= in.d[k];
    }
    y[i] = is_fill ? fill : x[off];
  }
}

// ---- softmax: one warp per row ---------------------------------------------------------------
__global__ void softmax_kernel(const float* x, float* y, idx_t outer, idx_t axis,
                               idx_t inner) {
  int lane = threadIdx.x & 31;
  idx_t warp = (idx_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  idx_t nwarps = (idx_t(gridDim.x) * blockDim.x) >> 5;
  idx_t rows = outer * inner;
  for (idx_t r = warp; r < rows; r += nwarps) {
    idx_t base = (r / inner) * axis * inner + (r % inner);
    float m = -FLT_MAX;
    for (idx_t j = lane; j < axis; j += 32) m = fmaxf(m, x[base + j * inner]);
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    float sum = 0.f;
    for (idx_t j = lane; j < axis; j += 32) sum += expf(x[base + j * inner] - m);
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    float inv = 1.f / sum;
    for (idx_t j = lane; j < axis; j += 32) y[base + j * inner] = expf(x[base + j * inner] - m) * inv;
  }
}

// ---- gather ----------------------------------------------------------------------------------
template <class T>
__global__ void gather_kernel(const T* d, const void* idx, bool idx64, T* y, idx_t axis_len,
                              idx_t nidx, idx_t inner, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t j = i % inner, k = (i / inner) % nidx, o = i / (inner * nidx);
    idx_t v = idx64 ? static_cast<const int64_t*>(idx)[k] : static_cast<const int32_t*>(idx)[k];
    if (v < 0) v += axis_len;
    v = v < 0 ? 0 : v >= axis_len ? axis_len - 1 : v;  // out-of-range indices clamp, never fault
    y[i] = d[(o * axis_len + v) * inner + j];
  }
}

// ---- cast ------------------------------------------------------------------------------------
// bfloat16 <-> float by tandem's rule (tandem::float_to_bfloat16, numerics.h): round half to even
// on the 16 dropped bits, a NaN stays a quiet NaN of its sign. Bit arithmetic, not cuda_bf16.h,
// so that the GPU gives the CPU backend's bits by construction.
__device__ __forceinline__ uint16_t float_to_bf16_bits(float f) {
  const uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x0040u);
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
__device__ __forceinline__ float bf16_bits_to_float(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }

__device__ __forceinline__ double load_as_double(int dt, const void* x, idx_t i) {
  switch (dt) {
    case kBF16: return bf16_bits_to_float(static_cast<const uint16_t*>(x)[i]);
    case kF32: return static_cast<const float*>(x)[i];
    case kF16: return __half2float(static_cast<const __half*>(x)[i]);
    case kI8: return static_cast<const int8_t*>(x)[i];
    case kU8: return static_cast<const uint8_t*>(x)[i];
    case kI32: return static_cast<const int32_t*>(x)[i];
    case kI64: return double(static_cast<const int64_t*>(x)[i]);
    default: return static_cast<const uint8_t*>(x)[i] ? 1.0 : 0.0;
  }
}
__global__ void cast_kernel(int from, int to, const void* x, void* y, idx_t n) {
  GRID_LOOP(i, n) {
    if (from == kI64 && to == kI32) {  // exact path for large integers
      static_cast<int32_t*>(y)[i] = int32_t(static_cast<const int64_t*>(x)[i]);
      continue;
    }
    if (from == kI32 && to == kI64) {
      static_cast<int64_t*>(y)[i] = static_cast<const int32_t*>(x)[i];
      continue;
    }
    double v = load_as_double(from, x, i);
    switch (to) {
      case kF32: static_cast<float*>(y)[i] = float(v); break;
      case kF16: static_cast<__half*>(y)[i] = __float2half_rn(float(v)); break;
      case kI8: static_cast<int8_t*>(y)[i] = int8_t(v); break;
      case kU8: static_cast<uint8_t*>(y)[i] = uint8_t(v); break;
      case kI32: static_cast<int32_t*>(y)[i] = int32_t(v); break;
      case kI64: static_cast<int64_t*>(y)[i] = int64_t(v); break;
      case kBF16: static_cast<uint16_t*>(y)[i] = float_to_bf16_bits(float(v)); break;
      default: static_cast<uint8_t*>(y)[i] = v != 0.0 ? 1 : 0; break;
    }
  }
}

// ---- normalization: one block per row (two passes: mean, then variance) ----------------------
__device__ float block_sum(float v, float* sh) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  float t = 0.f;
  for (int k = 0; k < int(blockDim.x >> 5); ++k) t += sh[k];
  return t;
}
__global__ void norm_stats_kernel(const float* x, idx_t L, float eps, float* stats) {
  __shared__ float sh[32];
  const float* xr = x + idx_t(blockIdx.x) * L;
  float s = 0.f;
  for (idx_t j = threadIdx.x; j < L; j += blockDim.x) s += xr[j];
  float mean = block_sum(s, sh) / float(L);
  float q = 0.f;
  for (idx_t j = threadIdx.x; j < L; j += blockDim.x) {
    float d = xr[j] - mean;
    q += d * d;
  }
  float var = block_sum(q, sh) / float(L);
  if (threadIdx.x == 0) {
    stats[2 * blockIdx.x] = mean;
    stats[2 * blockIdx.x + 1] = rsqrtf(var + eps);
  }
}
__global__ void norm_apply_kernel(const float* x, float* y, idx_t L, const float* scl,
                                  IShape ss, const float* bias, IShape bs, IShape dims,
                                  const float* stats, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t r = i / L;
    float v = (x[i] - stats[2 * r]) * stats[2 * r + 1];
    if (scl) v *= scl[offset_of(i, dims, ss)];
    if (bias) v += bias[offset_of(i, dims, bs)];
    y[i] = v;
  }
}

// ---- LRN -------------------------------------------------------------------------------------
__global__ void lrn_kernel(const float* x, float* y, idx_t c, idx_t hw, int window,
                           float alpha, float beta, float k, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t p = i % hw, ch = (i / hw) % c, b = i / (hw * c);
    idx_t lo = ch - (window - 1) / 2, hi = ch + window / 2;
    lo = lo < 0 ? 0 : lo;
    hi = hi >= c ? c - 1 : hi;
    float sq = 0.f;
    for (idx_t q = lo; q <= hi; ++q) {
      float v = x[(b * c + q) * hw + p];
      sq += v * v;
    }
    y[i] = x[i] / powf(k + alpha / float(window) * sq, beta);
  }
}

// ---- numerics emulation ----------------------------------------------------------------------
__global__ void round_fp16_kernel(const float* x, float* y, idx_t n) {
  GRID_LOOP(i, n) y[i] = __half2float(__float2half_rn(x[i]));
}
__global__ void fake_quant_kernel(const float* x, float* y, idx_t n, float scale) {
  GRID_LOOP(i, n) {
    float q = rintf(x[i] / scale);
    q = fminf(fmaxf(q, -128.f), 127.f);  // activations: TensorRT's int8 range [-128, 127]
    y[i] = q * scale;
  }
}
// Weights used as a tensor (FC / MatMul B), symmetric per output channel: one thread per channel,
// since each channel needs its own max first and these tensors are small.
__global__ void fake_quant_channels_kernel(const float* x, float* y, idx_t n, idx_t channels,
                                           idx_t inner) {
  idx_t c = idx_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  const idx_t outer = n / (channels * inner);
  float m = 0.f;
  for (idx_t o = 0; o < outer; ++o)
    for (idx_t k = 0; k < inner; ++k) m = fmaxf(m, fabsf(x[(o * channels + c) * inner + k]));
  const float scale = m / 127.f;
  for (idx_t o = 0; o < outer; ++o)
    for (idx_t k = 0; k < inner; ++k) {
      const idx_t i = (o * channels + c) * inner + k;
      y[i] = m > 0.f ? fminf(fmaxf(rintf(x[i] / scale), -127.f), 127.f) * scale : x[i];
    }
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------
void binary(ElementWiseOp op, bool prelu, int dt, const void* a, Shape sa, const void* b, Shape sb,
            void* out, Shape dims, cudaStream_t s) {
  int64_t n = count_of(dims);
  if (!prelu && kind_of(op) == OpClass::kLogic) {
    logic_kernel<<<blocks_for(n), kBlock, 0, s>>>(op, static_cast<const uint8_t*>(a), sa,
                                                  static_cast<const uint8_t*>(b), sb,
                                                  static_cast<uint8_t*>(out), dims, n);
    return;
  }
  switch (dt) {
    case kI32: binary_t<int32_t>(op, prelu, a, sa, b, sb, out, dims, n, s); break;
    case kI64: binary_t<int64_t>(op, prelu, a, sa, b, sb, out, dims, n, s); break;
    default: binary_t<float>(op, prelu, a, sa, b, sb, out, dims, n, s); break;
  }
}

void select(const uint8_t* cond, Shape sc, const void* a, Shape sa, const void* b, Shape sb,
            void* y, Shape dims, int es, cudaStream_t s) {
  int64_t n = count_of(dims);
  int g = blocks_for(n);
  switch (es) {
    case 1: select_kernel<uint8_t><<<g, kBlock, 0, s>>>(cond, sc, (const uint8_t*)a, sa, (const uint8_t*)b, sb, (uint8_t*)y, dims, n); break;
    case 2: select_kernel<uint16_t><<<g, kBlock, 0, s>>>(cond, sc, (const uint16_t*)a, sa, (const uint16_t*)b, sb, (uint16_t*)y, dims, n); break;
    case 8: select_kernel<uint64_t><<<g, kBlock, 0, s>>>(cond, sc, (const uint64_t*)a, sa, (const uint64_t*)b, sb, (uint64_t*)y, dims, n); break;
    default: select_kernel<uint32_t><<<g, kBlock, 0, s>>>(cond, sc, (const uint32_t*)a, sa, (const uint32_t*)b, sb, (uint32_t*)y, dims, n); break;
  }
}

void activation(ActivationType type, float alpha, float beta, const float* x, float* y, int64_t n,
                cudaStream_t s) {
  activation_kernel<<<blocks_for(n), kBlock, 0, s>>>(type, alpha, beta, x, y, n);
}

void bias_activation(float* y, const float* bias, int64_t C, int64_t inner, int type,
                     float alpha, float beta, int64_t n, cudaStream_t s) {
  bias_act_kernel<<<blocks_for(n), kBlock, 0, s>>>(y, bias, C, inner, type, alpha, beta, n);
}

void depthwise_conv(const DwConv& p, const float* x, const float* w, const float* bias, float* y,
                    int act, float alpha, float beta, cudaStream_t s) {
  int64_t n = int64_t(p.n) * p.c * p.oh * p.ow;
  dwconv_kernel<<<blocks_for(n), kBlock, 0, s>>>(p, x, w, bias, y, act, alpha, beta, idx_t(n));
}

void pointwise_chain(const PwChain& c, const float* x, float* y, int64_t n, cudaStream_t s) {
  pw_chain_kernel<<<blocks_for(n), kBlock, 0, s>>>(c, x, y, idx_t(n));
}
void bias_chain(float* y, const float* bias, int64_t C, int64_t inner, const PwChain& c, int64_t n,
                cudaStream_t s) {
  bias_chain_kernel<<<blocks_for(n), kBlock, 0, s>>>(y, bias, idx_t(C), idx_t(inner), c, idx_t(n));
}

void unary(UnaryOp op, int dt, const void* x, void* y, int64_t n, cudaStream_t s) {
  if (dt == kBool)
    not_kernel<<<blocks_for(n), kBlock, 0, s>>>(static_cast<const uint8_t*>(x),
                                                static_cast<uint8_t*>(y), n);
  else
    unary_kernel<<<blocks_for(n), kBlock, 0, s>>>(op, static_cast<const float*>(x),
                                                  static_cast<float*>(y), n);
}

void scale(const float* x, float* y, int64_t n, int mode, int64_t C, int64_t inner,
           const float* shift, const float* scl, const float* power, cudaStream_t s) {
  scale_kernel<<<blocks_for(n), kBlock, 0, s>>>(x, y, n, mode, C, inner, shift, scl, power);
}

void pooling2d(const Pool2d& p, const float* x, float* y, cudaStream_t s) {
  int64_t n = p.nc * p.oh * p.ow;
  pool2d_kernel<<<blocks_for(n), kBlock, 0, s>>>(p, x, y, n);
}

void reduce(ReduceOp op, const float* x, float* y, Shape kd, Shape ks, Shape rd, Shape rs,
            cudaStream_t s) {
  int64_t nout = count_of(kd), nred = count_of(rd);
  // Contiguous rows (reduced axes trailing and dense): one block per row.
  bool rows = rs.d[rd.rank - 1] == 1 && ks.d[kd.rank - 1] == nred;
  for (int k = rd.rank - 2; k >= 0 && rows; --k) rows = rs.d[k] == rs.d[k + 1] * rd.d[k + 1];
  for (int k = kd.rank - 2; k >= 0 && rows; --k) rows = ks.d[k] == ks.d[k + 1] * kd.d[k + 1] || kd.d[k] == 1;
  if (rows && nred >= 128 && nout < 65536 * 32) {
    reduce_rows_kernel<<<static_cast<unsigned>(nout), kBlock, 0, s>>>(op, x, y, idx_t(nred));
    return;
  }
  reduce_kernel<<<blocks_for(nout * 32), kBlock, 0, s>>>(op, x, y, kd, ks, rd, rs, nout, nred);
}

void reduce_int(ReduceOp op, bool i64, const void* x, void* y, Shape kd, Shape ks, Shape rd, Shape rs,
                cudaStream_t s) {
  int64_t nout = count_of(kd), nred = count_of(rd);
  if (i64)
    reduce_int_kernel<int64_t><<<blocks_for(nout * 32), kBlock, 0, s>>>(
        op, static_cast<const int64_t*>(x), static_cast<int64_t*>(y), kd, ks, rd, rs, nout, nred);
  else
    reduce_int_kernel<int32_t><<<blocks_for(nout * 32), kBlock, 0, s>>>(
        op, static_cast<const int32_t*>(x), static_cast<int32_t*>(y), kd, ks, rd, rs, nout, nred);
}

void resize2d(const Resize2d& r, const float* x, float* y, cudaStream_t s) {
  int64_t n = r.outer * r.oh * r.ow;
  resize_kernel<<<blocks_for(n), kBlock, 0, s>>>(r, x, y, n);
}

void strided_copy(const void* x, int64_t base, Shape st, void* y, Shape dims, int es,
                  cudaStream_t s) {
  int64_t n = count_of(dims);
  int g = blocks_for(n);
  switch (es) {
    case 1: strided_copy_kernel<uint8_t><<<g, kBlock, 0, s>>>((const uint8_t*)x, base, st, (uint8_t*)y, dims, n); break;
    case 2: strided_copy_kernel<uint16_t><<<g, kBlock, 0, s>>>((const uint16_t*)x, base, st, (uint16_t*)y, dims, n); break;
    case 8: strided_copy_kernel<uint64_t><<<g, kBlock, 0, s>>>((const uint64_t*)x, base, st, (uint64_t*)y, dims, n); break;
    default: strided_copy_kernel<uint32_t><<<g, kBlock, 0, s>>>((const uint32_t*)x, base, st, (uint32_t*)y, dims, n); break;
  }
}

void slice_mode(const void* x, Shape in, Shape start, Shape step, void* y, Shape out, SliceMode mode,
                float fill, int dt, int es, cudaStream_t s) {
  int64_t n = count_of(out);
  int g = blocks_for(n);
  switch (dt) {
    case kF32: slice_mode_kernel<float><<<g, kBlock, 0, s>>>((const float*)x, in, start, step, (float*)y, out, mode, fill, n); break;
    case kI32: slice_mode_kernel<int32_t><<<g, kBlock, 0, s>>>((const int32_t*)x, in, start, step, (int32_t*)y, out, mode, int32_t(fill), n); break;
    case kI64: slice_mode_kernel<int64_t><<<g, kBlock, 0, s>>>((const int64_t*)x, in, start, step, (int64_t*)y, out, mode, int64_t(fill), n); break;
    default:
      if (es == 1) slice_mode_kernel<uint8_t><<<g, kBlock, 0, s>>>((const uint8_t*)x, in, start, step, (uint8_t*)y, out, mode, uint8_t(fill), n);
      else slice_mode_kernel<uint16_t><<<g, kBlock, 0, s>>>((const uint16_t*)x, in, start, step, (uint16_t*)y, out, mode, uint16_t(0), n);
      break;
  }
}

void softmax(const float* x, float* y, int64_t outer, int64_t axis, int64_t inner,
             cudaStream_t s) {
  softmax_kernel<<<blocks_for(outer * inner * 32), kBlock, 0, s>>>(x, y, outer, axis, inner);
}

void gather(const void* data, const void* idx, bool idx64, void* y, int64_t outer,
            int64_t axis_len, int64_t nidx, int64_t inner, int es, cudaStream_t s) {
  int64_t n = outer * nidx * inner;
  int g = blocks_for(n);
  switch (es) {
    case 1: gather_kernel<uint8_t><<<g, kBlock, 0, s>>>((const uint8_t*)data, idx, idx64, (uint8_t*)y, axis_len, nidx, inner, n); break;
    case 2: gather_kernel<uint16_t><<<g, kBlock, 0, s>>>((const uint16_t*)data, idx, idx64, (uint16_t*)y, axis_len, nidx, inner, n); break;
    case 8: gather_kernel<uint64_t><<<g, kBlock, 0, s>>>((const uint64_t*)data, idx, idx64, (uint64_t*)y, axis_len, nidx, inner, n); break;
    default: gather_kernel<uint32_t><<<g, kBlock, 0, s>>>((const uint32_t*)data, idx, idx64, (uint32_t*)y, axis_len, nidx, inner, n); break;
  }
}

void cast(int from, int to, const void* x, void* y, int64_t n, cudaStream_t s) {
  cast_kernel<<<blocks_for(n), kBlock, 0, s>>>(from, to, x, y, n);
}

void normalization(const float* x, float* y, int64_t rows, int64_t L, float eps,
                   const float* scl, Shape ss, const float* bias, Shape bs, Shape dims,
                   float* stats, cudaStream_t s) {
  norm_stats_kernel<<<static_cast<unsigned>(rows), kBlock, 0, s>>>(x, L, eps, stats);
  int64_t n = rows * L;
  norm_apply_kernel<<<blocks_for(n), kBlock, 0, s>>>(x, y, L, scl, ss, bias, bs, dims, stats, n);
}

void lrn(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int window, float alpha,
         float beta, float k, cudaStream_t s) {
  int64_t total = n * c * hw;
  lrn_kernel<<<blocks_for(total), kBlock, 0, s>>>(x, y, c, hw, window, alpha, beta, k, total);
}

void round_fp16(const float* x, float* y, int64_t n, cudaStream_t s) {
  round_fp16_kernel<<<blocks_for(n), kBlock, 0, s>>>(x, y, n);
}

void fake_quant(const float* x, float* y, int64_t n, float scale, cudaStream_t s) {
  fake_quant_kernel<<<blocks_for(n), kBlock, 0, s>>>(x, y, n, scale);
}

void fake_quant_channels(const float* x, float* y, int64_t n, int64_t channels, int64_t inner,
                         cudaStream_t s) {
  fake_quant_channels_kernel<<<blocks_for(channels), kBlock, 0, s>>>(x, y, idx_t(n), idx_t(channels),
                                                                    idx_t(inner));
}

}  // namespace tandem::cuda
