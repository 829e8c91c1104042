#include "tandem/limits.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace tandem {

namespace {

uint64_t tensor_bytes(const Tensor& t) {
  __int128 n = element_size(t.type);
  for (int64_t d : t.dims) n *= std::max<int64_t>(d, 0);
  return n > (__int128{1} << 62) ? uint64_t{1} << 62 : uint64_t(n);
}

double mib(uint64_t b) { return double(b) / double(1 << 20); }

uint64_t parse_cap(std::string_view s) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (v > (uint64_t{1} << 50)) throw Error(fmt::format("TANDEM_MEMORY_CAP '{}': too large", s));
    v = v * 10 + uint64_t(s[i++] - '0');
  }
  std::string_view unit = s.substr(i);
  uint64_t mul = unit.empty() || unit == "B" ? 1 : unit == "KiB" ? 1 << 10 : unit == "MiB" ? 1 << 20
               : unit == "GiB" ? uint64_t{1} << 30 : 0;
  if (i == 0 || mul == 0 || v == 0)
    throw Error(fmt::format("TANDEM_MEMORY_CAP '{}': expected a positive size such as 8GiB, 512MiB or 1000000", s));
  return v * mul;
}

}  // namespace

MemoryEstimate estimate_memory(const Network& net) {
  MemoryEstimate e;
  const size_t nt = net.tensors.size();
  std::vector<int64_t> last_use(nt, -1);
  std::vector<bool> constant(nt, false);
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    for (TensorId t : l.inputs)
      if (t >= 0 && size_t(t) < nt) last_use[t] = int64_t(i);
    if (l.kind == LayerKind::kConstant)
      for (TensorId t : l.outputs)
        if (t >= 0 && size_t(t) < nt) constant[t] = true;
  }
  for (TensorId t : net.outputs)
    if (t >= 0 && size_t(t) < nt) last_use[t] = int64_t(net.layers.size());
  for (const auto& w : net.weights) e.weight_bytes += w.bytes.size();
  uint64_t live = 0;
  for (TensorId t : net.inputs)
    if (t >= 0 && size_t(t) < nt) live += tensor_bytes(net.tensors[t]);
  std::vector<std::vector<TensorId>> dies(net.layers.size() + 1);
  for (size_t t = 0; t < nt; ++t)
    if (last_use[t] >= 0 && last_use[t] < int64_t(dies.size())) dies[size_t(last_use[t])].push_back(TensorId(t));
  e.peak_activation_bytes = live;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    for (TensorId t : net.layers[i].outputs) {
      if (t < 0 || size_t(t) >= nt || constant[t]) continue;
      const uint64_t b = tensor_bytes(net.tensors[t]);
      live += b;
      if (b > e.largest_bytes) {
        e.largest_bytes = b;
        e.largest_tensor = net.tensors[t].name;
      }
    }
    e.peak_activation_bytes = std::max(e.peak_activation_bytes, live);
    for (TensorId t : dies[i])
      if (!constant[t] && live >= tensor_bytes(net.tensors[t])) live -= tensor_bytes(net.tensors[t]);
  }
  return e;
}

uint64_t memory_cap(uint64_t source_bytes) {
  if (const char* env = std::getenv("TANDEM_MEMORY_CAP"); env && *env) return parse_cap(env);
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const uint64_t machine = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) / 4 * 3 : uint64_t{16} << 30;
  const uint64_t from_file = std::max<uint64_t>(uint64_t{4} << 30, std::min<uint64_t>(source_bytes, uint64_t{1} << 40) * 1024);
  return std::min(machine, from_file);
}

void check_memory_cap(const Network& net, const std::string& source, uint64_t cap) {
  MemoryEstimate e = estimate_memory(net);
  if (e.peak_activation_bytes <= cap) return;
  throw Error(fmt::format("{}: its tensors need {:.0f} MiB at the peak (largest: '{}', {:.0f} MiB), over the memory "
                          "cap of {:.0f} MiB (set TANDEM_MEMORY_CAP, e.g. 64GiB, to allow more)",
                          source, mib(e.peak_activation_bytes), e.largest_tensor, mib(e.largest_bytes), mib(cap)));
}

}  // namespace tandem
