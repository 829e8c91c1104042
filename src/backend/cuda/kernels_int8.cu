// tandem's own CUDA kernels around real INT8 execution (docs/cuda-backend.md, Numerics): the
// int8 codes of a float value on an INT8 grid, im2col over channels-last int8, a direct int8
// convolution with int32 accumulation (grouped, depthwise, and the fall-back when cuBLASLt offers
// no INT8 algorithm), the epilogues that turn int32 sums into the float values or the int8 codes
// the next step reads, and activations over int8-stored values (LowerPolicy::int8_native). The
// matrix products themselves are cuBLASLt's INT8 tensor-core GEMMs (executor.cpp).
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "backend/cuda/kernels.h"
#include "tandem/op_semantics.h"

namespace tandem::cuda {
namespace {

#include "backend/cuda/kernel_common.cuh"
#include "backend/cuda/int8_common.cuh"

constexpr int kTile = 32, kRows = 8;  // transposing tiles: 32 x 32 values, 32 x 8 threads


// x float [b][c][hw] -> q int8 [b][hw][c], one 32 x 32 (channel, position) tile per block.
__global__ void quantize_nhwc_kernel(const float* __restrict__ x, int8_t* __restrict__ q, idx_t c, idx_t hw,
                                     float scale) {
  __shared__ float tile[kTile][kTile + 1];
  const idx_t b = blockIdx.z, p0 = idx_t(blockIdx.x) * kTile, c0 = idx_t(blockIdx.y) * kTile;
  for (int j = threadIdx.y; j < kTile; j += kRows) {
    const idx_t ch = c0 + j, p = p0 + threadIdx.x;
    if (ch < c && p < hw) tile[j][threadIdx.x] = x[(b * c + ch) * hw + p];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < kTile; j += kRows) {
    const idx_t p = p0 + j, ch = c0 + threadIdx.x;
    if (ch < c && p < hw) q[(b * hw + p) * c + ch] = int8_t(quant(tile[threadIdx.x][j], scale));
  }
}

// x float [b][c][hw] -> q int8 [b][hw][cp], zeros in channels c..cp-1; one thread per position
// (coalesced reads along hw), 4 codes per store (cp % 4 == 0).
__global__ void quantize_nhwc_pad_kernel(const float* __restrict__ x, int8_t* __restrict__ q, idx_t c, idx_t cp,
                                         idx_t hw, float scale, idx_t n) {
  GRID_LOOP(i, n) {  // i = b * hw + p
    const idx_t b = i / hw, p = i - b * hw;
    for (idx_t c0 = 0; c0 < cp; c0 += 4) {
      uint32_t packed = 0;
      for (int e = 0; e < 4; ++e) {
        const idx_t ch = c0 + e;
        const int code = ch < c ? quant(x[(b * c + ch) * hw + p], scale) : 0;
        packed |= uint32_t(uint8_t(int8_t(code))) << (8 * e);
      }
      *reinterpret_cast<uint32_t*>(q + i * cp + c0) = packed;
    }
  }
}

// col[m][j], m = (b, oh, ow), j = (r, s, ch) (channels fastest, as the KRSC weights), zeros for
// padding and for j >= kh * kw * c; V bytes per thread (V divides c).
template <int V>
struct Bytes;
template <> struct Bytes<1> { using T = int8_t; };
template <> struct Bytes<4> { using T = int32_t; };
template <> struct Bytes<16> { using T = int4; };
template <int V>
__global__ void im2col_kernel(Im2col p, const int8_t* __restrict__ x, int8_t* __restrict__ col, idx_t n_chunks) {
  using T = typename Bytes<V>::T;
  const idx_t per_row = p.kc_pad / V, kc = p.kh * p.kw * p.c;
  GRID_LOOP(i, n_chunks) {
    const idx_t m = i / per_row, j = (i - m * per_row) * V;
    T v{};
    if (j < kc) {
      const idx_t rs = j / p.c, ch = j - rs * p.c, r = rs / p.kw, s = rs - r * p.kw;
      const idx_t ow = m % p.ow, t = m / p.ow, oh = t % p.oh, b = t / p.oh;
      const idx_t ih = oh * p.sh - p.ph + r * p.dh, iw = ow * p.sw - p.pw + s * p.dw;
      if (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w)
        v = *reinterpret_cast<const T*>(x + ((b * p.h + ih) * p.w + iw) * p.c + ch);
    }
    *reinterpret_cast<T*>(col + idx_t(m) * p.kc_pad + j) = v;
  }
}

// acc int32 [b][hw][ld] (the GEMM's rows = (image, position), columns = output channels) ->
// y float [b][k][hw] = chain(acc * alpha[k] + bias[k]), one 32 x 32 tile per block.
__global__ void epilogue_nchw_kernel(const int32_t* __restrict__ acc, idx_t ld, idx_t k, idx_t hw,
                                     const float* __restrict__ alpha, const float* __restrict__ bias, PwChain c,
                                     float* __restrict__ y) {
  __shared__ int32_t tile[kTile][kTile + 1];
  const idx_t b = blockIdx.z, p0 = idx_t(blockIdx.x) * kTile, k0 = idx_t(blockIdx.y) * kTile;
  for (int j = threadIdx.y; j < kTile; j += kRows) {
    const idx_t p = p0 + j, ch = k0 + threadIdx.x;
    if (ch < k && p < hw) tile[j][threadIdx.x] = acc[(b * hw + p) * ld + ch];
  }
  __syncthreads();
  for (int j = threadIdx.y; j < kTile; j += kRows) {
    const idx_t ch = k0 + j, p = p0 + threadIdx.x;
    if (ch < k && p < hw) {
      float v = float(tile[threadIdx.x][j]) * alpha[ch];
      if (bias) v += bias[ch];
      y[(b * k + ch) * hw + p] = apply_chain(c, v);
    }
  }
}

// acc int32 [rows][ld] -> codes y [rows][k] (NHWC: rows = (image, position)) of
// chain(acc * alpha[k] + bias[k]) on the grid of y_scale: the output rounding of the emulation,
// done before the value is stored; or (yh not null) that grid value q * y_scale as half.
__global__ void epilogue_codes_kernel(const int32_t* __restrict__ acc, idx_t ld, idx_t k, const float* __restrict__ alpha,
                                      const float* __restrict__ bias, PwChain c, float y_scale,
                                      int8_t* __restrict__ y, __half* __restrict__ yh, idx_t n) {
  GRID_LOOP(i, n) {
    const idx_t row = i / k, ch = i - row * k;
    float v = float(acc[row * ld + ch]) * alpha[ch];
    if (bias) v += bias[ch];
    const int q = quant(apply_chain(c, v), y_scale);
    if (yh) {
      yh[i] = __float2half_rn(float(q) * y_scale);
    } else {
      y[i] = int8_t(q);
    }
  }
}


// epilogue_codes_kernel for 4 channels per thread (k and ld multiples of 4: 16-byte loads of
// the sums, 4- or 8-byte stores); n4 = rows * k / 4.
template <bool kRelu>
__global__ void epilogue_codes4_kernel(const int32_t* __restrict__ acc, idx_t ld, idx_t k,
                                       const float* __restrict__ alpha, const float* __restrict__ bias, PwChain c,
                                       float y_scale, int8_t* __restrict__ y, __half* __restrict__ yh, idx_t n4) {
  const idx_t k4 = k / 4;
  GRID_LOOP(i, n4) {
    const idx_t row = i / k4, ch = (i - row * k4) * 4;
    const int4 s = *reinterpret_cast<const int4*>(acc + row * ld + ch);
    const int32_t sums[4] = {s.x, s.y, s.z, s.w};
    uint32_t packed = 0;
    __half h[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float v = float(sums[e]) * alpha[ch + e];
      if (bias) v += bias[ch + e];
      const int q = quant(chain_or_relu<kRelu>(c, v), y_scale);
      packed |= uint32_t(uint8_t(int8_t(q))) << (8 * e);
      if (yh) h[e] = __float2half_rn(float(q) * y_scale);
    }
    if (yh) {
      *reinterpret_cast<uint2*>(yh + row * k + ch) = *reinterpret_cast<const uint2*>(h);
    } else {
      *reinterpret_cast<uint32_t*>(y + row * k + ch) = packed;
    }
  }
}

// One thread per output; x int8 codes NHWC, w int8 [k][c/g][kh][kw], int32 sums, the epilogue
// above. Output: float NCHW y, or (yq not null) codes NHWC on the grid of y_scale, or (yh not
// null) that grid's values as half NHWC.
__global__ void conv_direct_kernel(ConvI8 p, const int8_t* __restrict__ x, const int8_t* __restrict__ w,
                                   const float* __restrict__ alpha, const float* __restrict__ bias, PwChain c,
                                   float* __restrict__ y, int8_t* __restrict__ yq, __half* __restrict__ yh,
                                   float y_scale, idx_t n) {
  GRID_LOOP(i, n) {
    idx_t ow, oh, k, b;
    if (yq || yh) {  // channels fastest
      k = i % p.k;
      const idx_t t = i / p.k;
      ow = t % p.ow, oh = (t / p.ow) % p.oh, b = t / (idx_t(p.ow) * p.oh);
    } else {
      ow = i % p.ow;
      const idx_t t = i / p.ow;
      oh = t % p.oh, k = (t / p.oh) % p.k, b = t / (idx_t(p.oh) * p.k);
    }
    const idx_t cg = p.c / p.groups, kg = p.k / p.groups, c_first = (k / kg) * cg;
    const idx_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    int32_t acc = 0;
    for (int r = 0; r < p.kh; ++r) {
      const idx_t hh = h0 + r * p.dh;
      if (hh < 0 || hh >= p.h) continue;
      for (int s = 0; s < p.kw; ++s) {
        const idx_t ww = w0 + s * p.dw;
        if (ww < 0 || ww >= p.w) continue;
        const int8_t* xp = x + ((b * p.h + hh) * p.w + ww) * p.c + c_first;
        const int8_t* wp = w + k * cg * p.kh * p.kw + r * p.kw + s;
        for (idx_t ci = 0; ci < cg; ++ci) acc += int32_t(xp[ci]) * int32_t(wp[ci * p.kh * p.kw]);
      }
    }
    float v = float(acc) * alpha[k];
    if (bias) v += bias[k];
    v = apply_chain(c, v);
    if (yq) {
      yq[i] = int8_t(quant(v, y_scale));
    } else if (yh) {
      yh[i] = __float2half_rn(float(quant(v, y_scale)) * y_scale);
    } else {
      y[i] = v;
    }
  }
}

// 8 output channels per thread (one 16-byte store): codes [pixels][c] -> half [pixels][ch].
__global__ void codes_to_half_kernel(const int8_t* __restrict__ x, idx_t c, idx_t ch, uint4* __restrict__ y, idx_t n8) {
  const idx_t per_pixel = ch / 8;
  GRID_LOOP(i, n8) {
    const idx_t pixel = i / per_pixel, c0 = (i - pixel * per_pixel) * 8;
    uint4 v;
    __half* h = reinterpret_cast<__half*>(&v);
#pragma unroll
    for (int e = 0; e < 8; ++e) h[e] = c0 + e < c ? __int2half_rn(int(x[pixel * c + c0 + e])) : __ushort_as_half(0);
    y[i] = v;
  }
}

// conv_tiled_i8's tile: kTH x kTW output pixels x kTK channels per block of 256 threads; a
// thread sums 4 neighbouring pixels of one row x 8 channels.
constexpr int kTH = 8, kTW = 16, kTK = 64;

__host__ __device__ inline int tiled_patch(int tile, int stride, int kernel, int dilation) {
  return (tile - 1) * stride + (kernel - 1) * dilation + 1;
}

template <bool kRelu>
__global__ void __launch_bounds__(256)
    conv_tiled_kernel(ConvI8 p, const int32_t* __restrict__ x, const int32_t* __restrict__ w,
                      const float* __restrict__ alpha, const float* __restrict__ bias, PwChain c,
                      int8_t* __restrict__ yq, __half* __restrict__ yh, float y_scale) {
  extern __shared__ int4 smem4[];
  int32_t* ws = reinterpret_cast<int32_t*>(smem4);  // [tap][kTK]
  const int c4 = p.c / 4, taps = p.kh * p.kw * c4;
  const int IH = tiled_patch(kTH, p.sh, p.kh, p.dh), IW = tiled_patch(kTW, p.sw, p.kw, p.dw);
  int32_t* xs = ws + taps * kTK;  // [IH][IW][c4]
  const int tiles_w = (p.ow + kTW - 1) / kTW, tiles_h = (p.oh + kTH - 1) / kTH;
  const int tw = blockIdx.x % tiles_w, th = (blockIdx.x / tiles_w) % tiles_h, b = blockIdx.x / (tiles_w * tiles_h);
  const int k0 = blockIdx.y * kTK, oh0 = th * kTH, ow0 = tw * kTW;
  const int ih0 = oh0 * p.sh - p.ph, iw0 = ow0 * p.sw - p.pw;
  for (int i = threadIdx.x; i < taps * kTK; i += blockDim.x) ws[i] = w[idx_t(i / kTK) * p.k + k0 + i % kTK];
  for (int i = threadIdx.x; i < IH * IW * c4; i += blockDim.x) {
    const int cw = i % c4, t = i / c4, col = t % IW, row = t / IW, ih = ih0 + row, iw = iw0 + col;
    xs[i] = ih >= 0 && ih < p.h && iw >= 0 && iw < p.w ? x[((idx_t(b) * p.h + ih) * p.w + iw) * c4 + cw] : 0;
  }
  __syncthreads();
  const int cg = threadIdx.x % 8, pg = threadIdx.x / 8, orow = pg / 4, ocol0 = (pg % 4) * 4;
  int acc[4][8];
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[j][e] = 0;
  for (int r = 0; r < p.kh; ++r)
    for (int s = 0; s < p.kw; ++s)
      for (int cw = 0; cw < c4; ++cw) {
        const int t = (r * p.kw + s) * c4 + cw;
        const int4 wa = *reinterpret_cast<const int4*>(ws + t * kTK + cg * 8);
        const int4 wb = *reinterpret_cast<const int4*>(ws + t * kTK + cg * 8 + 4);
        const int wv[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int xv = xs[((orow * p.sh + r * p.dh) * IW + (ocol0 + j) * p.sw + s * p.dw) * c4 + cw];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[j][e] = __dp4a(xv, wv[e], acc[j][e]);
        }
      }
  const int oh = oh0 + orow, kb = k0 + cg * 8;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int ow = ow0 + ocol0 + j;
    if (oh >= p.oh || ow >= p.ow) continue;
    const idx_t at = ((idx_t(b) * p.oh + oh) * p.ow + ow) * p.k + kb;
    uint2 packed = {0u, 0u};
    __half h[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      // (epilogue_codes4_kernel's arithmetic)
      float v = float(acc[j][e]) * alpha[kb + e];
      if (bias) v += bias[kb + e];
      const int q = quant(chain_or_relu<kRelu>(c, v), y_scale);
      (e < 4 ? packed.x : packed.y) |= uint32_t(uint8_t(int8_t(q))) << (8 * (e % 4));
      h[e] = __float2half_rn(float(q) * y_scale);
    }
    if (yh) {
      *reinterpret_cast<uint4*>(yh + at) = *reinterpret_cast<const uint4*>(h);
    } else {
      *reinterpret_cast<uint2*>(yq + at) = packed;
    }
  }
}

// The same tile on tensor cores: mma.sync m16n8k32 (int8 x int8 -> int32, exact), the A operand
// read straight from the input patch (a 32-byte k-step is 8 words of 4 channels: word g is tap
// g / c4, channels 4 * (g % c4) ..), B from the filter's words [g][kWs] (a row padded to 72 words
// so that the 8 x 4 lanes of a fragment load hit distinct banks). Warp w sums output row w of the
// tile (16 pixels) x 64 channels; the epilogue is epilogue_codes4_kernel's arithmetic.
constexpr int kWs = kTK + 8;

// kJoin: 0 none; 1 the residual join after the convolution (TiledJoin), its activation j.act;
// 2 the same with j.act one ReLU (spelled out).
template <bool kRelu, int kJoin>
__global__ void __launch_bounds__(256)
    conv_tiled_mma_kernel(ConvI8 p, const int32_t* __restrict__ x, const int32_t* __restrict__ w,
                          const float* __restrict__ alpha, const float* __restrict__ bias, PwChain c,
                          int8_t* __restrict__ yq, __half* __restrict__ yh, float y_scale, TiledJoin j) {
  extern __shared__ int4 smem4[];
  int32_t* ws = reinterpret_cast<int32_t*>(smem4);
  const int c4 = p.c / 4, words = p.kh * p.kw * c4, words_pad = (words + 7) / 8 * 8;
  const int IH = tiled_patch(kTH, p.sh, p.kh, p.dh), IW = tiled_patch(kTW, p.sw, p.kw, p.dw);
  int32_t* xs = ws + words_pad * kWs;  // [IH][IW][c4]
  const int tiles_w = (p.ow + kTW - 1) / kTW, tiles_h = (p.oh + kTH - 1) / kTH;
  const int tw = blockIdx.x % tiles_w, th = (blockIdx.x / tiles_w) % tiles_h, b = blockIdx.x / (tiles_w * tiles_h);
  const int k0 = blockIdx.y * kTK, oh0 = th * kTH, ow0 = tw * kTW;
  const int ih0 = oh0 * p.sh - p.ph, iw0 = ow0 * p.sw - p.pw;
  for (int i = threadIdx.x; i < words_pad * kTK; i += blockDim.x) {
    const int t = i / kTK, n = i % kTK;
    ws[t * kWs + n] = t < words ? w[idx_t(t) * p.k + k0 + n] : 0;
  }
  for (int i = threadIdx.x; i < IH * IW * c4; i += blockDim.x) {
    const int cw = i % c4, t = i / c4, col = t % IW, row = t / IW, ih = ih0 + row, iw = iw0 + col;
    xs[i] = ih >= 0 && ih < p.h && iw >= 0 && iw < p.w ? x[((idx_t(b) * p.h + ih) * p.w + iw) * c4 + cw] : 0;
  }
  __syncthreads();
  const int orow = threadIdx.x / 32, lane = threadIdx.x % 32, gid = lane >> 2, tig = lane & 3;
  int acc[8][4];
#pragma unroll
  for (int nt = 0; nt < 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nt][e] = 0;
  for (int g0 = 0; g0 < words_pad; g0 += 8) {
    uint32_t a[4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int g = g0 + tig + 4 * h, tap = g / c4, cw = g - tap * c4, r = tap / p.kw, sx = tap - r * p.kw;
#pragma unroll
      for (int m = 0; m < 2; ++m) {
        const int ocol = gid + 8 * m;
        a[h * 2 + m] = g < words ? uint32_t(xs[((orow * p.sh + r * p.dh) * IW + ocol * p.sw + sx * p.dw) * c4 + cw]) : 0u;
      }
    }
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const uint32_t b0 = uint32_t(ws[(g0 + tig) * kWs + nt * 8 + gid]);
      const uint32_t b1 = uint32_t(ws[(g0 + 4 + tig) * kWs + nt * 8 + gid]);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
      (void)b0, (void)b1;
      __trap();  // m16n8k32 s8 needs sm_80; conv_tiled_i8 launches this kernel only there (tiled_mma_usable)
#else
      asm volatile(
          "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+r"(acc[nt][0]), "+r"(acc[nt][1]), "+r"(acc[nt][2]), "+r"(acc[nt][3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
    }
  }
  const int oh = oh0 + orow;
#pragma unroll
  for (int m = 0; m < 2; ++m) {
    const int ow = ow0 + gid + 8 * m;
    if (oh >= p.oh || ow >= p.ow) continue;
    const idx_t at = ((idx_t(b) * p.oh + oh) * p.ow + ow) * p.k;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      const int ch = k0 + nt * 8 + tig * 2;
      int q[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        // (epilogue_codes4_kernel's arithmetic)
        float v = float(acc[nt][m * 2 + e]) * alpha[ch + e];
        if (bias) v += bias[ch + e];
        q[e] = quant(chain_or_relu<kRelu>(c, v), y_scale);
      }
      if (kJoin) {  // add_act_codes_h's arithmetic on the half value the convolution would write
        const __half2 zz = *reinterpret_cast<const __half2*>(static_cast<const __half*>(j.z) + at + ch);
        int8_t codes[2];
        const __half y0 = join_one<kJoin == 2>(__float2half_rn(float(q[0]) * y_scale), __low2half(zz), j.act,
                                               j.q ? codes : nullptr, j.q_scale);
        const __half y1 = join_one<kJoin == 2>(__float2half_rn(float(q[1]) * y_scale), __high2half(zz), j.act,
                                               j.q ? codes + 1 : nullptr, j.q_scale);
        *reinterpret_cast<__half2*>(static_cast<__half*>(j.y) + at + ch) = __halves2half2(y0, y1);
        if (j.q) *reinterpret_cast<uint16_t*>(j.q + at + ch) = uint16_t(uint8_t(codes[0]) | (uint8_t(codes[1]) << 8));
      } else if (yh) {
        const __half2 h2 = __halves2half2(__float2half_rn(float(q[0]) * y_scale), __float2half_rn(float(q[1]) * y_scale));
        *reinterpret_cast<__half2*>(yh + at + ch) = h2;
      } else {
        *reinterpret_cast<uint16_t*>(yq + at + ch) = uint16_t(uint8_t(int8_t(q[0])) | (uint8_t(int8_t(q[1])) << 8));
      }
    }
  }
}

// Codes of n values of x (float or half, in the codes' layout) on the grid of scale.
__global__ void quantize_codes_kernel(const void* __restrict__ x, bool half, int8_t* __restrict__ q, float scale,
                                      idx_t n) {
  GRID_LOOP(i, n) {
    const float v = half ? __half2float(static_cast<const __half*>(x)[i]) : static_cast<const float*>(x)[i];
    q[i] = int8_t(quant(v, scale));
  }
}

__device__ __forceinline__ float to_half_grid(float v) { return __half2float(__float2half_rn(v)); }

// An activation (chain c) over codes x (values q * x_scale), element by element in one layout.
// fp16: a native FP16 layer's arithmetic (its input and output on the half grid). Output: codes
// on the grid of y_scale (yq), or half (yh).
__global__ void activation_codes_kernel(const int8_t* __restrict__ x, float x_scale, bool fp16, PwChain c,
                                        int8_t* __restrict__ yq, float y_scale, __half* __restrict__ yh, idx_t n) {
  GRID_LOOP(i, n) {
    float v = float(x[i]) * x_scale;
    if (fp16) v = to_half_grid(v);
    v = apply_chain(c, v);
    if (fp16) v = to_half_grid(v);
    if (yq) {
      yq[i] = int8_t(quant(v, y_scale));
    } else {
      yh[i] = __float2half_rn(v);
    }
  }
}


// 8 halves per thread (16-byte loads; n8 = n / 8 groups, the arena aligns to 256 bytes). No
// __restrict__: y may be a or z (each thread reads its group before writing it).
template <bool kRelu>
__global__ void add_act_codes_h8_kernel(const uint4* a, const uint4* z, PwChain c, uint4* y, uint2* q, float q_scale,
                                        idx_t n8) {
  GRID_LOOP(i, n8) {
    const uint4 va = a[i], vz = z[i];
    uint4 vy;
    uint2 vq;
    const __half* ha = reinterpret_cast<const __half*>(&va);
    const __half* hz = reinterpret_cast<const __half*>(&vz);
    __half* hy = reinterpret_cast<__half*>(&vy);
    int8_t* codes = reinterpret_cast<int8_t*>(&vq);
#pragma unroll
    for (int e = 0; e < 8; ++e) hy[e] = join_one<kRelu>(ha[e], hz[e], c, q ? codes + e : nullptr, q_scale);
    y[i] = vy;
    if (q) q[i] = vq;
  }
}
// The same, one value per thread (n not a multiple of 8).
__global__ void add_act_codes_h1_kernel(const __half* a, const __half* z, PwChain c, __half* y, int8_t* q,
                                        float q_scale, idx_t n) {
  GRID_LOOP(i, n) y[i] = join_one<false>(a[i], z[i], c, q ? q + i : nullptr, q_scale);
}


// V channels per thread (V = 4: 4-byte loads and stores, c % 4 == 0), the window of
// pool2d_nhwc_h_kernel; n counts groups of V outputs (b, oh, ow, ch..ch+V-1), channels fastest.
template <int V, bool kRelu>
__global__ void maxpool_act_codes_kernel(Pool2d p, idx_t c, const int8_t* __restrict__ x, float x_scale, PwChain act,
                                         int8_t* __restrict__ y, float y_scale, idx_t n) {
  using T = typename Bytes<V>::T;
  const idx_t cv = c / V;
  GRID_LOOP(i, n) {
    const idx_t ch = (i % cv) * V, t = i / cv;
    const idx_t ow = t % p.ow, oh = (t / p.ow) % p.oh, b = t / (p.ow * p.oh);
    const idx_t hs = oh * p.sh - p.ph, ws = ow * p.sw - p.pw;
    const idx_t h0 = max(hs, idx_t(0)), w0 = max(ws, idx_t(0));
    const idx_t h1 = min(hs + idx_t(p.kh), idx_t(p.h)), w1 = min(ws + idx_t(p.kw), idx_t(p.w));
    const int8_t* xp = x + b * p.h * p.w * c + ch;
    int q[V];
#pragma unroll
    for (int e = 0; e < V; ++e) q[e] = -129;  // below every code: an empty window pools to -inf, as the half kernel's
    for (idx_t hh = h0; hh < h1; ++hh)
      for (idx_t ww = w0; ww < w1; ++ww) {
        const T v = *reinterpret_cast<const T*>(xp + (hh * p.w + ww) * c);
        const int8_t* codes = reinterpret_cast<const int8_t*>(&v);
#pragma unroll
        for (int e = 0; e < V; ++e) q[e] = max(q[e], int(codes[e]));
      }
    T out;
    int8_t* o = reinterpret_cast<int8_t*>(&out);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const float pooled = to_half_grid(chain_or_relu<kRelu>(act, to_half_grid(float(q[e]) * x_scale)));
      o[e] = int8_t(quant(q[e] < -128 ? -INFINITY : pooled, y_scale));
    }
    *reinterpret_cast<T*>(y + i * V) = out;
  }
}

}  // namespace

// ---- launchers -------------------------------------------------------------------------------
void quantize_nhwc_i8(const float* x, int8_t* q, int64_t batch, int64_t c, int64_t hw, float scale, cudaStream_t s) {
  dim3 grid(unsigned((hw + kTile - 1) / kTile), unsigned((c + kTile - 1) / kTile), unsigned(batch));
  quantize_nhwc_kernel<<<grid, dim3(kTile, kRows), 0, s>>>(x, q, idx_t(c), idx_t(hw), scale);
}

void quantize_nhwc_pad_i8(const float* x, int8_t* q, int64_t batch, int64_t c, int64_t cp, int64_t hw, float scale,
                          cudaStream_t s) {
  const int64_t n = batch * hw;
  quantize_nhwc_pad_kernel<<<blocks_for(n), kBlock, 0, s>>>(x, q, idx_t(c), idx_t(cp), idx_t(hw), scale, idx_t(n));
}

void im2col_i8(const Im2col& p, const int8_t* x, int8_t* col, cudaStream_t s) {
  const int64_t bytes = int64_t(p.n) * p.oh * p.ow * p.kc_pad;
  if (p.c % 16 == 0) {
    im2col_kernel<16><<<blocks_for(bytes / 16), kBlock, 0, s>>>(p, x, col, idx_t(bytes / 16));
  } else if (p.c % 4 == 0) {
    im2col_kernel<4><<<blocks_for(bytes / 4), kBlock, 0, s>>>(p, x, col, idx_t(bytes / 4));
  } else {
    im2col_kernel<1><<<blocks_for(bytes), kBlock, 0, s>>>(p, x, col, idx_t(bytes));
  }
}

void int8_epilogue_nchw(const int32_t* acc, int64_t ld, int64_t batch, int64_t k, int64_t hw, const float* alpha,
                        const float* bias, const PwChain& c, float* y, cudaStream_t s) {
  dim3 grid(unsigned((hw + kTile - 1) / kTile), unsigned((k + kTile - 1) / kTile), unsigned(batch));
  epilogue_nchw_kernel<<<grid, dim3(kTile, kRows), 0, s>>>(acc, idx_t(ld), idx_t(k), idx_t(hw), alpha, bias, c, y);
}

void int8_epilogue_codes(const int32_t* acc, int64_t ld, int64_t rows, int64_t k, const float* alpha,
                         const float* bias, const PwChain& c, float y_scale, int8_t* y, void* yh, cudaStream_t s) {
  const int64_t n = rows * k;
  if (k % 4 == 0 && ld % 4 == 0) {
    auto kernel = one_relu(c) ? epilogue_codes4_kernel<true> : epilogue_codes4_kernel<false>;
    kernel<<<blocks_for(n / 4), kBlock, 0, s>>>(acc, idx_t(ld), idx_t(k), alpha, bias, c, y_scale, y,
                                               static_cast<__half*>(yh), idx_t(n / 4));
    return;
  }
  epilogue_codes_kernel<<<blocks_for(n), kBlock, 0, s>>>(acc, idx_t(ld), idx_t(k), alpha, bias, c, y_scale, y,
                                                         static_cast<__half*>(yh), idx_t(n));
}

void conv_direct_i8(const ConvI8& p, const int8_t* x, const int8_t* w, const float* alpha, const float* bias,
                    const PwChain& c, float* y, int8_t* yq, void* yh, float y_scale, cudaStream_t s) {
  const int64_t n = int64_t(p.n) * p.k * p.oh * p.ow;
  conv_direct_kernel<<<blocks_for(n), kBlock, 0, s>>>(p, x, w, alpha, bias, c, y, yq, static_cast<__half*>(yh), y_scale,
                                                      idx_t(n));
}

// (the tensor-core kernel's, which is the larger: its filter rows padded)
// Whether the tensor-core kernel runs here (sm80_code_usable, int8_common.cuh). Asked once per device.
static bool tiled_mma_usable() {
  static int seen[64] = {};
  return sm80_code_usable(reinterpret_cast<const void*>(conv_tiled_mma_kernel<false, 0>), seen);
}

bool conv_tiled_i8_join_supported() { return tiled_mma_usable(); }

size_t conv_tiled_i8_smem(const ConvI8& p) {
  const int c4 = p.c / 4, words_pad = (p.kh * p.kw * c4 + 7) / 8 * 8;
  return sizeof(int32_t) * (size_t(words_pad) * kWs +
                            size_t(tiled_patch(kTH, p.sh, p.kh, p.dh)) * tiled_patch(kTW, p.sw, p.kw, p.dw) * c4);
}

bool conv_tiled_i8(const ConvI8& p, const int8_t* x, const int32_t* w, const float* alpha, const float* bias,
                   const PwChain& c, int8_t* yq, void* yh, float y_scale, cudaStream_t s, const TiledJoin* join) {
  const size_t smem = conv_tiled_i8_smem(p);
  if (smem > 48 * 1024) return false;
  const dim3 grid(unsigned(int64_t(p.n) * ((p.oh + kTH - 1) / kTH) * ((p.ow + kTW - 1) / kTW)), unsigned(p.k / kTK));
  // TANDEM_CUDA_INT8_TILED_DP4A=1: the dp4a kernel (no tensor cores), for comparison
  static const bool dp4a = [] {
    const char* e = std::getenv("TANDEM_CUDA_INT8_TILED_DP4A");
    return e && e[0] == '1';
  }();
  const int32_t* xw = reinterpret_cast<const int32_t*>(x);
  // The tensor-core kernel needs compute capability 8.0 (mma.sync m16n8k32 s8); before it the
  // dp4a one, and no fused join.
  const bool mma = tiled_mma_usable();
  if (join && !mma) return false;
  if (join) {  // (the tensor-core kernel only)
    auto kernel = one_relu(c) ? (one_relu(join->act) ? conv_tiled_mma_kernel<true, 2> : conv_tiled_mma_kernel<true, 1>)
                              : (one_relu(join->act) ? conv_tiled_mma_kernel<false, 2> : conv_tiled_mma_kernel<false, 1>);
    kernel<<<grid, 256, smem, s>>>(p, xw, w, alpha, bias, c, yq, static_cast<__half*>(yh), y_scale, *join);
    return true;
  }
  if (dp4a || !mma) {
    auto kernel = one_relu(c) ? conv_tiled_kernel<true> : conv_tiled_kernel<false>;
    kernel<<<grid, 256, smem, s>>>(p, xw, w, alpha, bias, c, yq, static_cast<__half*>(yh), y_scale);
    return true;
  }
  auto kernel = one_relu(c) ? conv_tiled_mma_kernel<true, 0> : conv_tiled_mma_kernel<false, 0>;
  kernel<<<grid, 256, smem, s>>>(p, xw, w, alpha, bias, c, yq, static_cast<__half*>(yh), y_scale, TiledJoin{});
  return true;
}

void codes_to_half_i8(const int8_t* x, int64_t pixels, int64_t c, int64_t ch, void* y, cudaStream_t s) {
  const int64_t n8 = pixels * ch / 8;
  codes_to_half_kernel<<<blocks_for(n8), kBlock, 0, s>>>(x, idx_t(c), idx_t(ch), static_cast<uint4*>(y), idx_t(n8));
}

void quantize_codes_i8(const void* x, bool half, int8_t* q, int64_t n, float scale, cudaStream_t s) {
  quantize_codes_kernel<<<blocks_for(n), kBlock, 0, s>>>(x, half, q, scale, idx_t(n));
}

void activation_codes_i8(const int8_t* x, float x_scale, bool fp16, const PwChain& c, int8_t* yq, float y_scale,
                         void* yh, int64_t n, cudaStream_t s) {
  activation_codes_kernel<<<blocks_for(n), kBlock, 0, s>>>(x, x_scale, fp16, c, yq, y_scale, static_cast<__half*>(yh),
                                                           idx_t(n));
}

void add_act_codes_h(const void* a, const void* z, const PwChain& c, void* y, int8_t* q, float q_scale, int64_t n,
                     cudaStream_t s) {
  auto aligned = [](const void* p, uintptr_t to) { return reinterpret_cast<uintptr_t>(p) % to == 0; };
  const bool relu = one_relu(c);
  if (n % 8 == 0 && aligned(a, 16) && aligned(z, 16) && aligned(y, 16) && aligned(q, 8)) {
    auto kernel = relu ? add_act_codes_h8_kernel<true> : add_act_codes_h8_kernel<false>;
    kernel<<<blocks_for(n / 8), kBlock, 0, s>>>(static_cast<const uint4*>(a), static_cast<const uint4*>(z), c,
                                                static_cast<uint4*>(y), reinterpret_cast<uint2*>(q), q_scale,
                                                idx_t(n / 8));
  } else {
    add_act_codes_h1_kernel<<<blocks_for(n), kBlock, 0, s>>>(static_cast<const __half*>(a), static_cast<const __half*>(z),
                                                             c, static_cast<__half*>(y), q, q_scale, idx_t(n));
  }
}

void maxpool_act_codes_i8(const Pool2d& p, int64_t c, const int8_t* x, float x_scale, const PwChain& act, int8_t* y,
                          float y_scale, cudaStream_t s) {
  const int64_t n = int64_t(p.nc) * p.oh * p.ow * c;
  const bool relu = one_relu(act);
  if (c % 4 == 0) {
    auto kernel = relu ? maxpool_act_codes_kernel<4, true> : maxpool_act_codes_kernel<4, false>;
    kernel<<<blocks_for(n / 4), kBlock, 0, s>>>(p, idx_t(c), x, x_scale, act, y, y_scale, idx_t(n / 4));
  } else {
    auto kernel = relu ? maxpool_act_codes_kernel<1, true> : maxpool_act_codes_kernel<1, false>;
    kernel<<<blocks_for(n), kBlock, 0, s>>>(p, idx_t(c), x, x_scale, act, y, y_scale, idx_t(n));
  }
}

}  // namespace tandem::cuda
