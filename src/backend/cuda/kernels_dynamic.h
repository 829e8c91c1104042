// CUDA kernels of the layers with a data-dependent output shape (kernels_dynamic.cu): NonZero and
// NMS. Each writes what the CPU backend's kernel writes (src/backend/cpu/kernels_dynamic.cpp): the
// real shape's int64 elements packed at the start of the output, then the extent as one int64
// after the bound's elements (include/tandem/network.h, data_dependent_axis), which the executor
// reads back with the output. Simple, correct kernels: NonZero is one block (a count, then a
// block-wide prefix over chunks); NMS is one block per (batch, class), then one block that packs
// the rows in (batch, class) order.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <vector>

#include "backend/cuda/kernels.h"
#include "tandem/network.h"

namespace tandem::cuda {

// x: `dims` elements of `element_bytes` each; is_float: fp32/fp16 (-0 counts as zero).
// y: int64 [rank, bound] written as [rank, n], then n at y + rank * bound.
void nonzero(const void* x, Shape dims, int element_bytes, bool is_float, int64_t* y, int64_t bound, cudaStream_t s);

// boxes [B, N, 4], scores [B, N, C]; max boxes per class: one int32/int64 on the device; thresholds
// one float each. per_class: the rows reserved per (batch, class) (the bound is B * C * per_class).
// scratch: nms_scratch_bytes(B, C, N, per_class) bytes on the device.
struct NmsArgs {
  const float* boxes = nullptr;
  const float* scores = nullptr;
  const void* max_boxes = nullptr;
  bool max_boxes_i64 = true;
  const float* iou = nullptr;
  const float* score_threshold = nullptr;
  int64_t B = 0, N = 0, C = 0, per_class = 0;
  bool center_sizes = false;
};
size_t nms_scratch_bytes(int64_t B, int64_t C, int64_t N, int64_t per_class);
void nms(const NmsArgs& a, void* scratch, int64_t* y, cudaStream_t s);

// The launch of a NonZero or NMS layer over fixed device pointers; an NMS launch owns its scratch.
bool is_dynamic_layer(const Layer& L);
std::function<void(cudaStream_t)> dynamic_layer_launch(const Network& net, const Layer& L,
                                                       const std::vector<const void*>& in,
                                                       const std::vector<void*>& out);

}  // namespace tandem::cuda
