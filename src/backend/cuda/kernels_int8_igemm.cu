// tandem's implicit-GEMM INT8 convolution (docs/cuda-backend.md, Real INT8, "Implicit GEMM"): NHWC
// int8 codes in, int32 sums on the INT8 tensor cores (mma.sync m16n8k32, sm_80+), the GEMM
// route's requantizing epilogue, optionally the residual join after it, NHWC codes (or half, or
// the join's half and codes) out. No im2col and no int32 round trip through memory.
//
// GEMM view: rows m = (image, oh, ow) (the output's NHWC pixels), columns n = output channels,
// reduction j = (r, s, c) (the KRSC filter's order). c % 64 == 0, so a 64-byte k-step lies in
// one filter tap: its A tile is 16-byte chunks of input pixels (zeros outside the image),
// gathered with cp.async into a kStages-deep ring of shared-memory tiles; fragments come from
// there with ldmatrix (two int8 are one b16 element: the m16n8k32 s8 fragments have the byte
// layout of m16n8k16 f16's).
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "backend/cuda/kernels.h"
#include "backend/cuda/kernels_igemm.h"
#include "tandem/op_semantics.h"

namespace tandem::cuda {
namespace {

#include "backend/cuda/kernel_common.cuh"
#include "backend/cuda/int8_common.cuh"

constexpr int kBM = 128, kBK = 64, kStages = 4, kThreads = 256;

struct IgemmArgs {
  ConvI8 p;
  const int8_t* x;
  const int8_t* w;  // [k][kh * kw * c] KRSC codes
  const float *alpha, *bias;
  PwChain c;
  int8_t* yq;
  __half* yh;
  float y_scale;
  TiledJoin j;
  int m, kc;  // rows (n * oh * ow), reduction length (kh * kw * c)
};

// Byte offset of 16-byte chunk `chunk` (0..3) of row `row` in a tile of 64-byte rows: chunks
// XOR-swizzled by row / 2, so that the 8 rows an ldmatrix phase reads hit 32 distinct banks.
__device__ __forceinline__ int swz(int row, int chunk) { return row * kBK + ((chunk ^ ((row >> 1) & 3)) << 4); }

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
__device__ __forceinline__ uint32_t smem_u32(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }
#endif

// (sm_80 instructions: the kernel traps before them on older devices, conv_igemm_i8 never
// launches it there; the bodies are left out of pre-sm_80 code.)
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(valid ? 16 : 0));
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
#endif
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
#endif
}
__device__ __forceinline__ void mma_s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// The input rows this thread gathers: rows tid / 4 and tid / 4 + 64 of the block's tile, chunk
// tid % 4 of each 64-byte k-step; per row its image's codes and the window's top-left corner.
struct RowGather {
  const int8_t* img[2];
  int ih0[2], iw0[2];
};

__device__ __forceinline__ RowGather row_gather(const IgemmArgs& a, int m0) {
  const ConvI8& p = a.p;
  RowGather g;
  for (int i = 0; i < 2; ++i) {
    const int m = m0 + int(threadIdx.x) / 4 + 64 * i;
    if (m < a.m) {
      const int ow = m % p.ow, t = m / p.ow, oh = t % p.oh, b = t / p.oh;
      g.img[i] = a.x + int64_t(b) * p.h * p.w * p.c;
      g.ih0[i] = oh * p.sh - p.ph, g.iw0[i] = ow * p.sw - p.pw;
    } else {  // beyond the last row: every tap out of the image (zeros)
      g.img[i] = a.x, g.ih0[i] = -(1 << 28), g.iw0[i] = 0;
    }
  }
  return g;
}

// k-step kt into ring slot `slot`: the A tile (kBM rows x 64 bytes of one tap) and the B tile
// (kBN filter rows x the same 64 bytes of the reduction).
template <int kBN>
__device__ __forceinline__ void load_stage(const IgemmArgs& a, const RowGather& g, char* slot, int kt, int n0) {
  const ConvI8& p = a.p;
  const int chunk = threadIdx.x & 3, row0 = threadIdx.x >> 2;
  const int j0 = kt * kBK, tap = j0 / p.c, c0 = j0 - tap * p.c, r = tap / p.kw, s = tap - r * p.kw;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int ih = g.ih0[i] + r * p.dh, iw = g.iw0[i] + s * p.dw;
    const bool in = ih >= 0 && ih < p.h && iw >= 0 && iw < p.w;
    const int8_t* src = in ? g.img[i] + (int64_t(ih) * p.w + iw) * p.c + c0 + chunk * 16 : a.x;
    cp_async16(slot + swz(row0 + 64 * i, chunk), src, in);
  }
  char* bs = slot + kBM * kBK;
#pragma unroll
  for (int i = 0; i < kBN / 64; ++i) {
    const int row = row0 + 64 * i;
    cp_async16(bs + swz(row, chunk), a.w + int64_t(n0 + row) * a.kc + j0 + chunk * 16, true);
  }
}

// The epilogue's chain c on v by kind, so that each kernel holds only the code it runs (the
// general chain inlined at 64 places per thread is ~100k PTX lines, which the identity case
// would jump over at every element): 0 none (c.n_ops == 0: v itself, as apply_chain gives), 1
// one ReLU spelled out (chain_or_relu<true>), 2 the chain.
template <int kAct>
__device__ __forceinline__ float act_of(const PwChain& c, float v) {
  if (kAct == 0) return v;
  return chain_or_relu<kAct == 1>(c, v);
}

// One 64-byte k-step of the warp's kMT x kNT mma tiles from ring slot `slot`.
template <int kBN, int kMT, int kNT>
__device__ __forceinline__ void mma_stage(const char* slot, int wm0, int wn0, int (&acc)[kMT][kNT][4]) {
  const int lane = threadIdx.x & 31;
  const char* bs = slot + kBM * kBK;
#pragma unroll
  for (int ks = 0; ks < 2; ++ks) {
    uint32_t af[kMT][4], bf[kNT][2];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) ldmatrix_x4(af[mt], slot + swz(wm0 + mt * 16 + (lane & 15), ks * 2 + (lane >> 4)));
#pragma unroll
    for (int np = 0; np < kNT / 2; ++np) {
      uint32_t r[4];
      ldmatrix_x4(r, bs + swz(wn0 + (np * 2 + (lane >> 4)) * 8 + (lane & 7), ks * 2 + ((lane >> 3) & 1)));
      bf[2 * np][0] = r[0], bf[2 * np][1] = r[1], bf[2 * np + 1][0] = r[2], bf[2 * np + 1][1] = r[3];
    }
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt) mma_s8(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
  }
}

// The block's codes from its sums, into a [kBM][kBN + 16] byte tile in shared memory:
// epilogue_codes4_kernel's arithmetic element for element.
template <int kBN, int kMT, int kNT, int kAct>
__device__ __forceinline__ void codes_to_smem(const IgemmArgs& a, const int (&acc)[kMT][kNT][4], int wm0, int wn0,
                                              int n0, int8_t* cs) {
  const int lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
  const float* alpha = a.alpha;
  const float* bias = a.bias;
#pragma unroll
  for (int nt = 0; nt < kNT; ++nt) {
    const int col = wn0 + nt * 8 + tig * 2, ch = n0 + col;
    const float al[2] = {alpha[ch], alpha[ch + 1]}, bi[2] = {bias ? bias[ch] : 0.f, bias ? bias[ch + 1] : 0.f};
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        int q[2];
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float v = float(acc[mt][nt][h * 2 + e]) * al[e];
          if (bias) v += bi[e];
          q[e] = quant(act_of<kAct>(a.c, v), a.y_scale);
        }
        const int row = wm0 + mt * 16 + gid + 8 * h;
        *reinterpret_cast<uint16_t*>(cs + row * (kBN + 16) + col) =
            uint16_t(uint8_t(int8_t(q[0])) | (uint8_t(int8_t(q[1])) << 8));
      }
  }
}

// The tile's codes to memory, 16 channels per thread and store: codes, or their grid values as
// half, or (kJoin) add_act_codes_h's arithmetic on those half values and z: the join's half
// output and codes. kJoin 1: the join has no activation; 2: one ReLU.
template <int kBN, int kJoin>
__device__ __forceinline__ void store_tile(const IgemmArgs& a, const int8_t* cs, int m0, int n0) {
  constexpr int kPerRow = kBN / 16;
  for (int i = threadIdx.x; i < kBM * kPerRow; i += kThreads) {
    const int row = i / kPerRow, cc = (i - row * kPerRow) * 16, m = m0 + row;
    if (m >= a.m) continue;
    const uint4 packed = *reinterpret_cast<const uint4*>(cs + row * (kBN + 16) + cc);
    const int8_t* q = reinterpret_cast<const int8_t*>(&packed);
    const int64_t at = int64_t(m) * a.p.k + n0 + cc;
    if (!kJoin && !a.yh) {
      *reinterpret_cast<uint4*>(a.yq + at) = packed;
      continue;
    }
    uint4 h[2], z[2];
    __half* hv = reinterpret_cast<__half*>(h);
    if (kJoin) {
      const uint4* zp = reinterpret_cast<const uint4*>(static_cast<const __half*>(a.j.z) + at);
      z[0] = zp[0], z[1] = zp[1];
    }
    const __half* zv = reinterpret_cast<const __half*>(z);
    uint32_t codes[4] = {0u, 0u, 0u, 0u};
#pragma unroll
    for (int e = 0; e < 16; ++e) {
      hv[e] = __float2half_rn(float(q[e]) * a.y_scale);
      if (kJoin) {
        // add_act_codes_h's element (join_one), its code computed here as join_one would
        // (words built by shifts: a pointer into a register array would put it in local memory)
        hv[e] = kJoin == 2 ? join_one<true>(hv[e], zv[e], a.j.act, nullptr, 0.f)
                           : join_one<false>(hv[e], zv[e], PwChain{}, nullptr, 0.f);
        codes[e / 4] |= uint32_t(uint8_t(int8_t(quant(__half2float(hv[e]), a.j.q_scale)))) << (8 * (e % 4));
      }
    }
    uint4* yp = reinterpret_cast<uint4*>((kJoin ? static_cast<__half*>(a.j.y) : a.yh) + at);
    yp[0] = h[0], yp[1] = h[1];
    if (kJoin && a.j.q) *reinterpret_cast<uint4*>(a.j.q + at) = make_uint4(codes[0], codes[1], codes[2], codes[3]);
  }
}

// One block: kBM output pixels x kBN output channels; 8 warps of (kBM / kWarpsM) x (kBN / kWarpsN).
template <int kBN, int kAct, int kJoin>
__global__ void __launch_bounds__(kThreads, kBN == 64 ? 3 : 2) conv_igemm_kernel(const IgemmArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // m16n8k32 s8, cp.async: sm_80 (conv_igemm_i8 launches this kernel only there; the helpers
             // compile to nothing before sm_80)
#endif
  constexpr int kWarpsN = kBN == 128 ? 4 : 2, kWarpsM = 8 / kWarpsN;
  constexpr int kMT = kBM / kWarpsM / 16, kNT = kBN / kWarpsN / 8, kSlot = (kBM + kBN) * kBK;
  extern __shared__ int4 smem4[];
  char* smem = reinterpret_cast<char*>(smem4);
  const int tiles_n = a.p.k / kBN;
  const int n0 = int(blockIdx.x % unsigned(tiles_n)) * kBN, m0 = int(blockIdx.x / unsigned(tiles_n)) * kBM;
  const int warp = threadIdx.x >> 5;
  const int wm0 = (warp / kWarpsN) * (kBM / kWarpsM), wn0 = (warp % kWarpsN) * (kBN / kWarpsN);
  const RowGather g = row_gather(a, m0);
  const int steps = a.kc / kBK;
  int acc[kMT][kNT][4];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mt][nt][e] = 0;
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < steps) load_stage<kBN>(a, g, smem + st * kSlot, st, n0);
    cp_async_commit();
  }
  for (int kt = 0; kt < steps; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // k-step kt landed for every thread; slot (kt - 1) % kStages is free again
    const int next = kt + kStages - 1;
    if (next < steps) load_stage<kBN>(a, g, smem + (next % kStages) * kSlot, next, n0);
    cp_async_commit();
    mma_stage<kBN, kMT, kNT>(smem + (kt % kStages) * kSlot, wm0, wn0, acc);
  }
  cp_async_wait<0>();
  __syncthreads();  // the ring is reused for the codes tile
  int8_t* cs = reinterpret_cast<int8_t*>(smem);
  codes_to_smem<kBN, kMT, kNT, kAct>(a, acc, wm0, wn0, n0, cs);
  __syncthreads();
  store_tile<kBN, kJoin>(a, cs, m0, n0);
}

size_t igemm_smem(int bn) { return size_t(kStages) * (kBM + bn) * kBK; }

template <int kBN, int kAct, int kJoin>
bool launch(const IgemmArgs& a, cudaStream_t s) {
  auto kernel = conv_igemm_kernel<kBN, kAct, kJoin>;
  const size_t smem = igemm_smem(kBN);
  static const bool opted = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)) ==
                            cudaSuccess;  // (over 48 KiB: an opt-in per kernel)
  if (!opted) return false;
  const unsigned blocks = unsigned((a.m + kBM - 1) / kBM) * unsigned(a.p.k / kBN);
  kernel<<<blocks, kThreads, smem, s>>>(a);
  return true;
}

// The epilogue's kind (act_of) of chain c.
int act_kind(const PwChain& c) { return c.n_ops == 0 ? 0 : one_relu(c) ? 1 : 2; }

template <int kBN, int kAct>
bool launch_join(const IgemmArgs& a, const TiledJoin* join, cudaStream_t s) {
  if (!join) return launch<kBN, kAct, 0>(a, s);
  return join->act.n_ops == 0 ? launch<kBN, kAct, 1>(a, s) : launch<kBN, kAct, 2>(a, s);
}

template <int kBN>
bool launch_bn(const IgemmArgs& a, const TiledJoin* join, cudaStream_t s) {
  const int act = act_kind(a.c);
  if (act == 0) return launch_join<kBN, 0>(a, join, s);
  if (act == 1) return launch_join<kBN, 1>(a, join, s);
  return !join && launch<kBN, 2, 0>(a, s);  // (a general chain with the join: not offered)
}

}  // namespace

// Whether the kernel's sm_80 code runs here (sm80_code_usable, int8_common.cuh). Asked once per device.
static bool igemm_usable() {
  static int seen[64] = {};
  return sm80_code_usable(reinterpret_cast<const void*>(conv_igemm_kernel<128, 0, 0>), seen);
}

bool conv_igemm_i8_epilogue_ok(const PwChain& c, const TiledJoin* join) {
  return !join || (act_kind(c) != 2 && act_kind(join->act) != 2);
}

bool conv_igemm_i8_supported(const ConvI8& p) {
  const int64_t rows = int64_t(p.n) * p.oh * p.ow;
  return p.groups == 1 && p.c % 64 == 0 && p.k % 64 == 0 && rows * p.k < (int64_t(1) << 31) &&
         int64_t(p.n) * p.h * p.w * p.c < (int64_t(1) << 31) && igemm_usable();
}

bool conv_igemm_i8(const ConvI8& p, const int8_t* x, const int8_t* w, const float* alpha, const float* bias,
                   const PwChain& c, int8_t* yq, void* yh, float y_scale, cudaStream_t s, const TiledJoin* join) {
  if (!conv_igemm_i8_supported(p) || !conv_igemm_i8_epilogue_ok(c, join)) return false;
  IgemmArgs a{p, x, w, alpha, bias, c, yq, static_cast<__half*>(yh), y_scale, join ? *join : TiledJoin{},
              p.n * p.oh * p.ow, p.kh * p.kw * p.c};
  return p.k % 128 == 0 ? launch_bn<128>(a, join, s) : launch_bn<64>(a, join, s);
}

}  // namespace tandem::cuda
