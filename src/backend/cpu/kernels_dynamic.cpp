// The CPU kernels of the layers with a data-dependent output shape (NonZero, NMS): each writes the
// real shape's elements packed at the start of its output buffer, then the extent as one int64
// after the bound's elements (include/tandem/network.h, data_dependent_axis).
#include "kernels_dynamic.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "tandem/dynamic_semantics.h"

namespace tandem::cpu {

namespace {

void write_extent(void* out, const Dims& bound, int64_t extent) {
  std::memcpy(static_cast<uint8_t*>(out) + data_extent_offset(bound, DataType::kInt64), &extent, sizeof extent);
}

// NonZero: out [rank, n] holds the coordinates of the n non-zero elements, one column each, in
// row-major order of the input.
Kernel make_nonzero_kernel(const Network& net, const Layer& l) {
  const Tensor& x = net.tensors[size_t(l.inputs[0])];
  const Dims dims = x.dims, bound = net.tensors[size_t(l.outputs[0])].dims;
  const int bytes = int(element_size(x.type));
  const uint64_t sign = ops::nonzero_sign_bit(x.type == DataType::kFloat || x.type == DataType::kHalf, bytes);
  return [dims, bound, bytes, sign](const std::vector<void*>& in, const std::vector<void*>& out) {
    const auto* p = static_cast<const uint8_t*>(in[0]);
    auto* y = static_cast<int64_t*>(out[0]);
    const int64_t n_in = volume(dims);
    const size_t rank = dims.size();
    int64_t n = 0;
    for (int64_t i = 0; i < n_in; ++i) n += ops::element_nonzero(p + i * bytes, bytes, sign);
    int64_t col = 0;
    for (int64_t i = 0; i < n_in; ++i) {
      if (!ops::element_nonzero(p + i * bytes, bytes, sign)) continue;
      for (size_t d = rank, rest = size_t(i); d-- > 0;) {  // i's coordinates, last axis first
        y[int64_t(d) * n + col] = int64_t(rest % size_t(dims[d]));
        rest /= size_t(dims[d]);
      }
      ++col;
    }
    write_extent(out[0], bound, n);
  };
}

// NMS per batch item and class: candidates with score > score threshold, in nms_before order;
// each is selected unless a box selected before it suppresses it, until max boxes per class.
// Rows (batch, class, box) in batch, then class order, then selection order (ONNX's order).
Kernel make_nms_kernel(const Network& net, const Layer& l) {
  const Dims s = net.tensors[size_t(l.inputs[1])].dims;  // [B, N, C]
  const Dims bound = net.tensors[size_t(l.outputs[0])].dims;
  const DataType max_type = net.tensors[size_t(l.inputs[2])].type;
  const bool center = l.as<NMSParams>().center_sizes;
  return [s, bound, max_type, center](const std::vector<void*>& in, const std::vector<void*>& out) {
    const int64_t B = s[0], N = s[1], C = s[2];
    const auto* boxes = static_cast<const float*>(in[0]);
    const auto* scores = static_cast<const float*>(in[1]);
    const int64_t max_boxes = max_type == DataType::kInt64 ? *static_cast<const int64_t*>(in[2])
                                                           : int64_t(*static_cast<const int32_t*>(in[2]));
    const float iou = *static_cast<const float*>(in[3]), score_min = *static_cast<const float*>(in[4]);
    auto* y = static_cast<int64_t*>(out[0]);
    int64_t rows = 0;
    std::vector<int64_t> order;
    std::vector<ops::NmsBox> picked;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) {
        auto score = [&](int64_t i) { return scores[(b * N + i) * C + c]; };
        order.clear();
        for (int64_t i = 0; i < N; ++i)
          if (score(i) > score_min) order.push_back(i);
        std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return ops::nms_before(score(i), i, score(j), j); });
        picked.clear();
        for (int64_t i : order) {
          if (int64_t(picked.size()) >= max_boxes || rows >= bound[0]) break;
          const ops::NmsBox box = ops::nms_box(boxes + (b * N + i) * 4, center);
          if (std::any_of(picked.begin(), picked.end(), [&](const ops::NmsBox& p) { return ops::nms_suppresses(p, box, iou); }))
            continue;
          picked.push_back(box);
          y[rows * 3] = b, y[rows * 3 + 1] = c, y[rows * 3 + 2] = i;
          ++rows;
        }
      }
    write_extent(out[0], bound, rows);
  };
}

}  // namespace

Kernel make_dynamic_kernel(const Network& net, const Layer& l) {
  if (l.kind == LayerKind::kNonZero) return make_nonzero_kernel(net, l);
  if (l.kind == LayerKind::kNMS) return make_nms_kernel(net, l);
  throw Error("layer '" + l.name + "' (" + std::string(to_string(l.kind)) + "): not a data-dependent layer");
}

}  // namespace tandem::cpu
