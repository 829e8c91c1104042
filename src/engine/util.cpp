#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/internal.h"

namespace tandem::engine_detail {

QuantizedWeights quantize_per_channel(const Weights& w) {
  QuantizedWeights out;
  const int64_t k = w.dims.empty() ? 1 : w.dims[0];
  const int64_t n = w.count();
  const int64_t per = k ? n / k : 0;
  const float* src = w.f32();
  out.q.resize(size_t(n));
  out.scales.resize(size_t(k));
  for (int64_t c = 0; c < k; ++c) {
    float amax = 0;
    for (int64_t i = 0; i < per; ++i) amax = std::max(amax, std::fabs(src[c * per + i]));
    float s = amax / 127.f;
    out.scales[c] = s;
    for (int64_t i = 0; i < per; ++i) {
      float v = s > 0 ? std::nearbyint(src[c * per + i] / s) : 0.f;  // default rounding: half to even
      v = std::min(127.f, std::max(-127.f, v));
      out.q[c * per + i] = int8_t(v);
    }
  }
  return out;
}

void dequantize_per_channel(const int8_t* q, const std::vector<float>& scales, Weights& w) {
  const int64_t n = w.count();
  const int64_t k = int64_t(scales.size());
  const int64_t per = k ? n / k : 0;
  w.bytes.assign(size_t(n) * 4, 0);
  float* dst = w.f32();
  for (int64_t c = 0; c < k; ++c)
    for (int64_t i = 0; i < per; ++i) dst[c * per + i] = float(q[c * per + i]) * scales[c];
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

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t mant = x & 0x7fffff;
  int32_t exp = int32_t((x >> 23) & 0xff);
  if (exp == 255) return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 31) return uint16_t(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return uint16_t(sign);
    mant |= 0x800000;
    int shift = 14 - e;
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = (uint32_t(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // may carry into the exponent: fine
  return uint16_t(sign | half);
}

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {
      int e = -1;
      do { ++e; mant <<= 1; } while (!(mant & 0x400));
      x = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000 | (mant << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace tandem::engine_detail
