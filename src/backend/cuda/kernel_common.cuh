// What every .cu file of tandem's own kernels shares: the block size, 32-bit index arithmetic,
// grid-stride loops and the strided offset of a linear index. Included inside an anonymous
// namespace of tandem::cuda, so each translation unit keeps its own copies (no ODR coupling).
#pragma once

constexpr int kBlock = 256;

// Index arithmetic is 32-bit (64-bit division costs ~10x more on the GPU); the executor
// rejects tensors of 2^31 elements or more at compile.
using idx_t = int32_t;
struct IShape {
  int rank = 0;
  idx_t d[kMaxRank] = {};
  IShape() = default;
  IShape(const Shape& s) : rank(s.rank) {  // NOLINT: implicit on purpose (launchers pass Shape)
    for (int k = 0; k < s.rank; ++k) d[k] = idx_t(s.d[k]);
  }
};

inline int blocks_for(int64_t n) {
  int64_t b = (n + kBlock - 1) / kBlock;
  if (b > 65535LL * 8) b = 65535LL * 8;  // grid-stride loops cover the rest
  return b < 1 ? 1 : static_cast<int>(b);
}

#define GRID_LOOP(i, n)                                                                  \
  for (idx_t i = idx_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);                 \
       i += idx_t(gridDim.x) * blockDim.x)

// Offset of linear index `i` over `dims` with element strides `st`.
__device__ __forceinline__ idx_t offset_of(idx_t i, const IShape& dims, const IShape& st) {
  idx_t off = 0;
  for (int k = dims.rank - 1; k >= 0; --k) {
    idx_t d = dims.d[k];
    idx_t q = i / d;
    off += (i - q * d) * st.d[k];
    i = q;
  }
  return off;
}

inline int64_t count_of(const Shape& s) {
  int64_t n = 1;
  for (int k = 0; k < s.rank; ++k) n *= s.d[k];
  return n;
}

// A reduction's identity and step (float accumulation, whatever the storage).
__device__ __forceinline__ float red_init(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: case ReduceOp::kAvg: return 0.f;
    case ReduceOp::kProd: return 1.f;
    case ReduceOp::kMax: return -FLT_MAX;
    case ReduceOp::kMin: return FLT_MAX;
  }
  return 0.f;
}
__device__ __forceinline__ float red_op(ReduceOp op, float a, float b) {
  switch (op) {
    case ReduceOp::kSum: case ReduceOp::kAvg: return a + b;
    case ReduceOp::kProd: return a * b;
    case ReduceOp::kMax: return fmaxf(a, b);
    case ReduceOp::kMin: return fminf(a, b);
  }
  return a + b;
}

// A point-wise chain on one value (kernels.h: PwChain), with the op-semantics header's arithmetic
// (the CPU reference's): x0 is the value before op x0_at.
__device__ __forceinline__ float apply_chain(const PwChain& c, float v) {
  float x0 = v;
  for (int k = 0; k < c.n_ops; ++k) {
    if (k == c.x0_at) x0 = v;
    const PwOp o = c.ops[k];
    switch (o.kind) {
      case PwKind::kActivation: v = ops::activation<float>(o.act, v, o.a, o.b); break;
      case PwKind::kScalarRight: v = ops::elementwise<float>(o.op, v, o.a); break;
      case PwKind::kScalarLeft: v = ops::elementwise<float>(o.op, o.a, v); break;
      case PwKind::kChainInputRight: v = ops::elementwise<float>(o.op, v, x0); break;
      case PwKind::kChainInputLeft: v = ops::elementwise<float>(o.op, x0, v); break;
    }
  }
  return v;
}
