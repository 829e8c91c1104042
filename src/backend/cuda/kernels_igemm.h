// The implicit-GEMM INT8 convolution's epilogue limits (kernels_int8_igemm.cu; the kernel itself
// is declared in kernels.h).
#pragma once

#include "backend/cuda/kernels.h"

namespace tandem::cuda {

// Whether conv_igemm_i8 takes chain c (any chain without the join) and, join not null, that
// join: with the join, c and the join's activation must each be none or one ReLU.
bool conv_igemm_i8_epilogue_ok(const PwChain& c, const TiledJoin* join);

}  // namespace tandem::cuda
