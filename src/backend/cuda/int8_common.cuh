// What the INT8 kernels share (kernels_int8.cu, kernels_int8_igemm.cu): the requantization and
// the residual join's element arithmetic, so that every route computes the same codes. Included
// inside an anonymous namespace of tandem::cuda after kernel_common.cuh.
#pragma once

// The code of x on the grid of `scale`: clamp(rne(x / scale), -128, 127), as the emulation's
// fake_quant (so a value it rounded gives back exactly its integer).
__device__ __forceinline__ int quant(float x, float scale) {
  return int(fminf(fmaxf(rintf(x / scale), -128.f), 127.f));
}

// The chain c on v, or (kRelu: c is one ReLU) that ReLU spelled out: v > 0 ? v : 0, the chain's
// arithmetic without its per-element dispatch (these kernels are compute-bound).
template <bool kRelu>
__device__ __forceinline__ float chain_or_relu(const PwChain& c, float v) {
  if (kRelu) return v > 0.f ? v : 0.f;
  return apply_chain(c, v);
}

// One element of the residual join (add_act_codes_h): the FP16 sum rounded to half, the
// activation on it rounded to half, the code of that half value. kRelu: the activation is one
// ReLU, spelled out (x > 0 ? x : 0 on a half value gives back that value or +0: the same bits
// as the chain's arithmetic, without its per-element dispatch).
template <bool kRelu>
__device__ __forceinline__ __half join_one(__half a, __half z, const PwChain& c, int8_t* q, float q_scale) {
  const __half sum = __float2half_rn(__half2float(a) + __half2float(z));
  __half y = sum;
  if (kRelu) {
    y = __half2float(sum) > 0.f ? sum : __float2half_rn(0.f);
  } else if (c.n_ops > 0) {
    y = __float2half_rn(apply_chain(c, __half2float(sum)));
  }
  if (q) *q = int8_t(quant(__half2float(y), q_scale));
  return y;
}

// Whether chain c is one ReLU (the kernels' spelled-out path).
inline bool one_relu(const PwChain& c) {
  return c.n_ops == 1 && c.ops[0].kind == PwKind::kActivation && c.ops[0].act == ActivationType::kRelu;
}

// Whether `kernel`'s sm_80 code runs on the current device: compute capability 8.0 or newer and
// the kernel compiled for it (a compute_75 PTX JIT-compiled on a newer GPU still holds the sm_75
// body, which traps). `seen` keeps the answer per device: 0 unknown, 1 no, 2 yes.
inline bool sm80_code_usable(const void* kernel, int (&seen)[64]) {
  int d = 0;
  if (cudaGetDevice(&d) != cudaSuccess || d < 0 || d >= 64) return false;
  if (!seen[d]) {
    int major = 0;
    cudaFuncAttributes fa{};
    const bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d) == cudaSuccess &&
                    cudaFuncGetAttributes(&fa, kernel) == cudaSuccess;
    seen[d] = ok && major >= 8 && fa.ptxVersion >= 80 ? 2 : 1;
  }
  return seen[d] == 2;
}
