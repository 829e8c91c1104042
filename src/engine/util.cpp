#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/internal.h"
#include "tandem/numerics.h"

namespace tandem::engine_detail {

// Channel layout of an engine weight: output channels along axis 0.
ChannelLayout axis0_layout(const Weights& w) {
  ChannelLayout c;
  c.channels = w.dims.empty() ? 1 : w.dims[0];
  c.inner = c.channels ? w.count() / c.channels : 0;
  return c;
}

QuantizedWeights quantize_per_channel(const Weights& w) {
  const ChannelLayout layout = axis0_layout(w);
  QuantizedWeights out;
  out.scales = int8_weight_scales(w.f32(), layout);
  out.q.resize(size_t(w.count()));
  quantize_int8_weights(w.f32(), layout, out.scales, out.q.data());
  return out;
}

void dequantize_per_channel(const int8_t* q, const std::vector<float>& scales, const Weights& w, float* out) {
  ChannelLayout layout = axis0_layout(w);
  layout.channels = int64_t(scales.size());
  layout.inner = layout.channels ? w.count() / layout.channels : 0;
  dequantize_int8_weights(q, layout, scales, out);
}

FileLock::FileLock(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(fmt::format("{}: cannot open lock file: {}", path, std::strerror(errno)));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    ::close(fd_);
    throw Error(fmt::format("{}: cannot lock: {}", path, std::strerror(e)));
  }
}
FileLock::~FileLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace tandem::engine_detail
