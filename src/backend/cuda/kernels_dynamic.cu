// CUDA kernels of NonZero and NMS (kernels_dynamic.h); the rules (what is non-zero, IoU, the
// candidate order) are include/tandem/dynamic_semantics.h's, shared with the CPU kernels.
#include "backend/cuda/kernels_dynamic.h"

#include <cstdint>
#include <memory>
#include <string>

#include "tandem/dynamic_semantics.h"

namespace tandem::cuda {

namespace {

constexpr int kNonZeroThreads = 1024;  // one block: 32 warps
constexpr int kNmsThreads = 256;       // a power of two (the tree reduction)

// One block. Pass 1 counts the non-zero elements (n, the extent); pass 2 walks the input in chunks
// of the block's size: each warp ballots, a thread's column is the chunk's base, the warps before
// it and the lanes before it in its warp.
__global__ void nonzero_kernel(const uint8_t* x, Shape dims, int64_t n_in, int es, uint64_t sign, int64_t* y,
                               int64_t bound) {
  __shared__ unsigned long long total;
  __shared__ int64_t warp_base[kNonZeroThreads / 32];
  __shared__ int64_t chunk_total;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5, warps = int(blockDim.x) / 32;
  if (tid == 0) total = 0;
  __syncthreads();
  unsigned long long mine = 0;
  for (int64_t i = tid; i < n_in; i += blockDim.x) mine += ops::element_nonzero(x + i * es, es, sign) ? 1 : 0;
  atomicAdd(&total, mine);
  __syncthreads();
  const int64_t n = int64_t(total);
  int64_t base = 0;
  for (int64_t start = 0; start < n_in; start += blockDim.x) {
    const int64_t i = start + tid;
    const bool hit = i < n_in && ops::element_nonzero(x + i * es, es, sign);
    const unsigned ballot = __ballot_sync(0xffffffffu, hit);
    if (lane == 0) warp_base[warp] = __popc(ballot);
    __syncthreads();
    if (tid == 0) {
      int64_t acc = 0;
      for (int w = 0; w < warps; ++w) {
        const int64_t c = warp_base[w];
        warp_base[w] = acc;
        acc += c;
      }
      chunk_total = acc;
    }
    __syncthreads();
    if (hit) {
      const int64_t col = base + warp_base[warp] + __popc(ballot & ((1u << lane) - 1u));
      int64_t rest = i;
      for (int d = dims.rank - 1; d >= 0; --d) {
        y[int64_t(d) * n + col] = rest % dims.d[d];
        rest /= dims.d[d];
      }
    }
    base += chunk_total;
    __syncthreads();
  }
  if (tid == 0) y[int64_t(dims.rank) * bound] = n;
}

struct NmsScratch {
  uint8_t* alive;  // [B * C, N]: still a candidate
  int64_t* sel;    // [B * C, per_class]: selected box indices, in selection order
  int64_t* count;  // [B * C]
};

NmsScratch nms_parts(void* scratch, int64_t BC, int64_t N, int64_t per_class) {
  auto* p = static_cast<uint8_t*>(scratch);
  const int64_t alive_bytes = (BC * N + 7) / 8 * 8;
  return {p, reinterpret_cast<int64_t*>(p + alive_bytes), reinterpret_cast<int64_t*>(p + alive_bytes) + BC * per_class};
}

// One block per (batch, class): repeatedly take the best remaining candidate (nms_before order, a
// block-wide reduction), select it, and drop every candidate it suppresses, until max boxes.
__global__ void nms_select_kernel(NmsArgs a, NmsScratch sc) {
  __shared__ float best_score[kNmsThreads];
  __shared__ int64_t best_index[kNmsThreads];
  const int tid = int(threadIdx.x);
  const int64_t bc = blockIdx.x, b = bc / a.C, c = bc % a.C, N = a.N;
  const float iou = *a.iou, score_min = *a.score_threshold;
  const int64_t max_boxes =
      a.max_boxes_i64 ? *static_cast<const int64_t*>(a.max_boxes) : int64_t(*static_cast<const int32_t*>(a.max_boxes));
  const int64_t limit = max_boxes < a.per_class ? max_boxes : a.per_class;
  uint8_t* alive = sc.alive + bc * N;
  const float* scores = a.scores + b * N * a.C + c;  // box i's score: scores[i * C]
  const float* boxes = a.boxes + b * N * 4;
  for (int64_t i = tid; i < N; i += blockDim.x) alive[i] = scores[i * a.C] > score_min;
  __syncthreads();
  int64_t k = 0;
  for (; k < limit; ++k) {
    float bs = 0.f;
    int64_t bi = -1;
    for (int64_t i = tid; i < N; i += blockDim.x)
      if (alive[i] && (bi < 0 || ops::nms_before(scores[i * a.C], i, bs, bi))) bs = scores[i * a.C], bi = i;
    best_score[tid] = bs;
    best_index[tid] = bi;
    __syncthreads();
    for (int stride = int(blockDim.x) / 2; stride > 0; stride /= 2) {
      if (tid < stride) {
        const int o = tid + stride;
        if (best_index[o] >= 0 &&
            (best_index[tid] < 0 || ops::nms_before(best_score[o], best_index[o], best_score[tid], best_index[tid])))
          best_score[tid] = best_score[o], best_index[tid] = best_index[o];
      }
      __syncthreads();
    }
    const int64_t pick = best_index[0];
    __syncthreads();  // every thread has read the pick before the next round overwrites it
    if (pick < 0) break;
    const ops::NmsBox pb = ops::nms_box(boxes + pick * 4, a.center_sizes);
    for (int64_t i = tid; i < N; i += blockDim.x)
      if (alive[i] && (i == pick || ops::nms_suppresses(pb, ops::nms_box(boxes + i * 4, a.center_sizes), iou))) alive[i] = 0;
    if (tid == 0) sc.sel[bc * a.per_class + k] = pick;
    __syncthreads();
  }
  if (tid == 0) sc.count[bc] = k;
}

// One block: rows (b, c, box) in (batch, class) order, then the extent after the bound's rows.
__global__ void nms_pack_kernel(NmsScratch sc, int64_t BC, int64_t C, int64_t per_class, int64_t* y, int64_t bound) {
  int64_t base = 0;
  for (int64_t bc = 0; bc < BC; ++bc) {
    const int64_t n = sc.count[bc];
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      int64_t* row = y + (base + k) * 3;
      row[0] = bc / C, row[1] = bc % C, row[2] = sc.sel[bc * per_class + k];
    }
    base += n;
  }
  if (threadIdx.x == 0) y[bound * 3] = base;
}

[[noreturn]] void refuse(const Layer& L, const std::string& what) {
  throw Error("cuda backend: layer '" + L.name + "' (" + std::string(to_string(L.kind)) + "): " + what);
}

}  // namespace

void nonzero(const void* x, Shape dims, int element_bytes, bool is_float, int64_t* y, int64_t bound, cudaStream_t s) {
  int64_t n_in = 1;
  for (int k = 0; k < dims.rank; ++k) n_in *= dims.d[k];
  nonzero_kernel<<<1, kNonZeroThreads, 0, s>>>(static_cast<const uint8_t*>(x), dims, n_in, element_bytes,
                                               ops::nonzero_sign_bit(is_float, element_bytes), y, bound);
}

size_t nms_scratch_bytes(int64_t B, int64_t C, int64_t N, int64_t per_class) {
  const int64_t BC = B * C;
  return size_t((BC * N + 7) / 8 * 8 + (BC * per_class + BC) * int64_t(sizeof(int64_t)));
}

void nms(const NmsArgs& a, void* scratch, int64_t* y, cudaStream_t s) {
  const int64_t BC = a.B * a.C;
  const NmsScratch sc = nms_parts(scratch, BC, a.N, a.per_class);
  nms_select_kernel<<<unsigned(BC), kNmsThreads, 0, s>>>(a, sc);
  nms_pack_kernel<<<1, kNmsThreads, 0, s>>>(sc, BC, a.C, a.per_class, y, BC * a.per_class);
}

bool is_dynamic_layer(const Layer& L) { return L.kind == LayerKind::kNonZero || L.kind == LayerKind::kNMS; }

std::function<void(cudaStream_t)> dynamic_layer_launch(const Network& net, const Layer& L,
                                                       const std::vector<const void*>& in,
                                                       const std::vector<void*>& out) {
  if (out.size() != 1 || in.size() != L.inputs.size()) refuse(L, "inputs or outputs missing");
  auto* y = static_cast<int64_t*>(out[0]);
  const Dims& bound = net.tensors[size_t(L.outputs[0])].dims;
  if (L.kind == LayerKind::kNonZero) {
    const Tensor& x = net.tensors[size_t(L.inputs[0])];
    if (x.dims.size() > size_t(kMaxRank)) refuse(L, "rank above " + std::to_string(kMaxRank));
    Shape d;
    d.rank = int(x.dims.size());
    for (size_t i = 0; i < x.dims.size(); ++i) d.d[i] = x.dims[i];
    const int es = int(element_size(x.type));
    const bool is_float = x.type == DataType::kFloat || x.type == DataType::kHalf;
    const void* xp = in[0];
    const int64_t n_bound = bound[1];
    return [=](cudaStream_t s) { nonzero(xp, d, es, is_float, y, n_bound, s); };
  }
  if (L.kind != LayerKind::kNMS) refuse(L, "not a data-dependent layer");
  const Dims& sd = net.tensors[size_t(L.inputs[1])].dims;  // [B, N, C]
  NmsArgs a;
  a.boxes = static_cast<const float*>(in[0]);
  a.scores = static_cast<const float*>(in[1]);
  a.max_boxes = in[2];
  a.max_boxes_i64 = net.tensors[size_t(L.inputs[2])].type == DataType::kInt64;
  a.iou = static_cast<const float*>(in[3]);
  a.score_threshold = static_cast<const float*>(in[4]);
  a.B = sd[0], a.N = sd[1], a.C = sd[2];
  a.per_class = bound[0] / (a.B * a.C);
  a.center_sizes = L.as<NMSParams>().center_sizes;
  void* p = nullptr;
  const size_t bytes = nms_scratch_bytes(a.B, a.C, a.N, a.per_class);
  if (cudaMalloc(&p, bytes) != cudaSuccess) refuse(L, "cannot allocate " + std::to_string(bytes) + " bytes of scratch");
  std::shared_ptr<void> scratch(p, [](void* q) { cudaFree(q); });
  return [=](cudaStream_t s) { nms(a, scratch.get(), y, s); };
}

}  // namespace tandem::cuda
