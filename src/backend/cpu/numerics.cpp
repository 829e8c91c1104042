// DLA numerics emulation helpers: FP16 rounding and INT8 fake quantization.
#include <cmath>
#include <cstring>

#include "kernels.h"
#include "tandem/runtime.h"

namespace tandem {

namespace cpu {

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mant = x & 0x7fffffu;
  int32_t exp = int32_t((x >> 23) & 0xff);
  if (exp == 0xff) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf / nan
  int32_t e = exp - 127 + 15;
  if (e >= 31) return uint16_t(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {                                  // subnormal half (or zero)
    if (e < -10) return uint16_t(sign);
    mant |= 0x800000u;
    uint32_t shift = uint32_t(14 - e);
    uint32_t h = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return uint16_t(sign | h);
  }
  uint32_t h = (uint32_t(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: right
  return uint16_t(sign | h);
}

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal
      float f = std::ldexp(float(mant), -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace cpu

float round_to_fp16(float x) { return cpu::half_to_float(cpu::float_to_half(x)); }

// Activations: TensorRT's quantization is round_half_even(clip(x / s, -128, 127)) (TensorRT
// developer guide, "Quantization Scheme"; ONNX QuantizeLinear saturates int8 the same way), so
// the negative side keeps -128. Clipping before or after the rounding gives the same result.
float fake_quant_int8(float x, float scale) {
  float q = std::nearbyint(x / scale);  // round half to even (default rounding mode)
  if (q > 127.f) q = 127.f;
  if (q < -128.f) q = -128.f;
  return q * scale;
}

// Weights: symmetric [-127, 127] (TensorRT quantizes weights with scale max|w| / 127 and never
// uses -128, so that a weight and its negation stay exact opposites).
float fake_quant_int8_weight(float x, float scale) {
  float q = std::nearbyint(x / scale);
  if (q > 127.f) q = 127.f;
  if (q < -127.f) q = -127.f;
  return q * scale;
}

}  // namespace tandem
