#include "tandem/broadcast.h"

#include <algorithm>

namespace tandem {

std::optional<Dims> broadcast_dims(const Dims& a, const Dims& b) {
  const size_t r = std::max(a.size(), b.size());
  Dims o(r, 1);
  for (size_t j = 0; j < r; ++j) {
    const int64_t x = j + a.size() >= r ? a[j + a.size() - r] : 1;
    const int64_t y = j + b.size() >= r ? b[j + b.size() - r] : 1;
    if (x == y || y == 1) o[j] = x;
    else if (x == 1) o[j] = y;
    else return std::nullopt;
  }
  return o;
}

Strides dense_strides(const Dims& d) {
  Strides s(d.size(), 1);
  for (int i = int(d.size()) - 2; i >= 0; --i) s[size_t(i)] = s[size_t(i) + 1] * d[size_t(i) + 1];
  return s;
}

Strides broadcast_strides(const Dims& in, const Dims& out) {
  Strides s(out.size(), 0);
  const Strides dense = dense_strides(in);
  const size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) s[off + i] = (in[i] == 1 && out[off + i] != 1) ? 0 : dense[i];
  return s;
}

std::vector<int64_t> broadcast_source_index(const Dims& in, const Dims& out) {
  const int64_t n = volume(out);
  std::vector<int64_t> idx(size_t(n > 0 ? n : 0));
  const Strides stride = broadcast_strides(in, out);
  const size_t r = out.size();
  std::vector<int64_t> pos(r, 0);
  int64_t src = 0;
  for (int64_t k = 0; k < n; ++k) {  // an odometer over out, carrying src along
    idx[size_t(k)] = src;
    for (size_t i = r; i-- > 0;) {
      ++pos[i];
      src += stride[i];
      if (pos[i] < out[i]) break;
      src -= stride[i] * pos[i];
      pos[i] = 0;
    }
  }
  return idx;
}

}  // namespace tandem
