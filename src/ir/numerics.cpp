// The one implementation of tandem's numerics (include/tandem/numerics.h).
#include "tandem/numerics.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tandem {

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mant = x & 0x7fffffu;
  const int32_t exp = int32_t((x >> 23) & 0xff);
  if (exp == 0xff) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf / quiet nan
  const int32_t e = exp - 127 + 15;
  if (e >= 31) return uint16_t(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {                                  // subnormal half (or zero)
    if (e < -10) return uint16_t(sign);
    mant |= 0x800000u;
    const uint32_t shift = uint32_t(14 - e);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return uint16_t(sign | h);
  }
  uint32_t h = (uint32_t(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: right
  return uint16_t(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (mant != 0) {  // subnormal: mant * 2^-24, exact in float
      const float f = std::ldexp(float(mant), -24);
      return sign ? -f : f;
    }
    x = sign;
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

float round_to_fp16(float x) { return half_to_float(float_to_half(x)); }

uint16_t float_to_bfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  // A NaN whose payload sits only in the dropped bits must not become inf: set the quiet bit.
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x0040u);
  // Round half to even: add 0x7fff plus the kept part's lowest bit; a carry into the exponent
  // is right (up to the next binade, or to inf past the largest finite value).
  const uint32_t lsb = (x >> 16) & 1u;
  return uint16_t((x + 0x7fffu + lsb) >> 16);
}

float bfloat16_to_float(uint16_t b) {
  const uint32_t x = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// TensorRT's quantization is round_half_even(clip(x / s, -128, 127)) (TensorRT developer guide,
// "Quantization Scheme"; ONNX QuantizeLinear saturates int8 the same way). Clipping before or
// after the rounding gives the same result.
float fake_quant_int8(float x, float scale) {
  float q = std::nearbyint(x / scale);  // round half to even (default rounding mode)
  if (q > 127.f) q = 127.f;
  if (q < -128.f) q = -128.f;
  return q * scale;
}

int8_t quantize_int8(float x, float scale) {
  const float q = scale > 0.f ? std::nearbyint(x / scale) : 0.f;
  return int8_t(std::min(127.f, std::max(-128.f, q)));
}

float fake_quant_int8_weight(float x, float scale) { return float(quantize_int8_weight(x, scale)) * scale; }

int8_t quantize_int8_weight(float x, float scale) {
  float q = std::nearbyint(x / scale);
  if (q > 127.f) q = 127.f;
  if (q < -127.f) q = -127.f;
  return int8_t(q);
}

ChannelLayout channel_layout(const std::vector<int64_t>& dims, int axis) {
  ChannelLayout c;
  for (int d = 0; d < int(dims.size()); ++d) {
    if (d < axis) c.blocks *= dims[size_t(d)];
    else if (d == axis) c.channels = dims[size_t(d)];
    else c.inner *= dims[size_t(d)];
  }
  return c;
}

std::vector<float> int8_weight_scales(const float* w, ChannelLayout L) {
  std::vector<float> amax(size_t(L.channels), 0.f);
  for (int64_t b = 0; b < L.blocks; ++b)
    for (int64_t k = 0; k < L.channels; ++k) {
      float& m = amax[size_t(k)];
      const float* p = w + (b * L.channels + k) * L.inner;
      for (int64_t i = 0; i < L.inner; ++i) m = std::max(m, std::fabs(p[i]));
    }
  for (float& m : amax) m = m > 0.f ? m / 127.f : 1.f;
  return amax;
}

void quantize_int8_weights(const float* w, ChannelLayout L, const std::vector<float>& scales, int8_t* q) {
  for (int64_t b = 0; b < L.blocks; ++b)
    for (int64_t k = 0; k < L.channels; ++k) {
      const int64_t base = (b * L.channels + k) * L.inner;
      for (int64_t i = 0; i < L.inner; ++i) q[base + i] = quantize_int8_weight(w[base + i], scales[size_t(k)]);
    }
}

std::vector<float> fake_quant_int8_weights(float* w, ChannelLayout L) {
  std::vector<float> scales = int8_weight_scales(w, L);
  for (int64_t b = 0; b < L.blocks; ++b)
    for (int64_t k = 0; k < L.channels; ++k) {
      float* p = w + (b * L.channels + k) * L.inner;
      for (int64_t i = 0; i < L.inner; ++i) p[i] = fake_quant_int8_weight(p[i], scales[size_t(k)]);
    }
  return scales;
}

void dequantize_int8_weights(const int8_t* q, ChannelLayout L, const std::vector<float>& scales, float* w) {
  for (int64_t b = 0; b < L.blocks; ++b)
    for (int64_t k = 0; k < L.channels; ++k) {
      const int64_t base = (b * L.channels + k) * L.inner;
      for (int64_t i = 0; i < L.inner; ++i) w[base + i] = float(q[base + i]) * scales[size_t(k)];
    }
}

float fake_quant_int32_bias(float bias, float in_scale, float w_scale) {
  const float s = in_scale * w_scale;
  if (!(s > 0.f) || !std::isfinite(s)) return bias;
  return std::nearbyint(bias / s) * s;
}

}  // namespace tandem
