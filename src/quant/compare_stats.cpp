#include <algorithm>
#include <cmath>

#include "tandem/quant.h"

namespace tandem {

double ErrorStats::cosine() const {
  if (n1 == 0 && n2 == 0) return 1;
  if (n1 == 0 || n2 == 0) return 0;
  return dot / std::sqrt(n1 * n2);
}

void ErrorStats::add(const HostTensor& ref, const HostTensor& got, bool classifier) {
  if (ref.type != DataType::kFloat || got.type != DataType::kFloat || ref.count() != got.count()) return;
  const float* a = ref.f32();
  const float* b = got.f32();
  double d = 0, x = 0, y = 0;
  for (int64_t i = 0; i < ref.count(); ++i) {
    const double e = std::fabs(double(a[i]) - b[i]);
    sum_abs += e;
    max_abs = std::max(max_abs, e);
    max_ref = std::max(max_ref, std::fabs(double(a[i])));
    d += double(a[i]) * b[i];
    x += double(a[i]) * a[i];
    y += double(b[i]) * b[i];
  }
  dot += d;
  n1 += x;
  n2 += y;
  count += ref.count();
  min_cos = std::min(min_cos, (x == 0 && y == 0) ? 1.0 : (x == 0 || y == 0) ? 0.0 : d / std::sqrt(x * y));
  if (classifier && ref.dims.size() == 2) {
    const int64_t rows = ref.dims[0], classes = ref.dims[1];
    for (int64_t r = 0; r < rows; ++r) {
      const float* ra = a + r * classes;
      const float* rb = b + r * classes;
      top1_agree += (std::max_element(ra, ra + classes) - ra) == (std::max_element(rb, rb + classes) - rb);
      ++top1_total;
    }
  }
}

bool looks_like_classifier(const Tensor& t) {
  return t.type == DataType::kFloat && t.dims.size() == 2 && t.dims[1] >= 2;
}

}  // namespace tandem
