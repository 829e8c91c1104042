// Numerics shared by every module and backend, one implementation each: FP16 conversion, INT8
// fake quantization of activations and weights, per-channel INT8 weight quantization, INT32 bias
// quantization. They define what "FP16" and "INT8" mean in tandem (TensorRT's scheme), so the
// CPU emulation, the CUDA executor, the engine file, the Q/DQ export and the importer agree bit
// for bit. Implemented in src/ir/numerics.cpp (tandem_ir).
#pragma once

#include <cstdint>
#include <vector>

namespace tandem {

// ---- FP16 (IEEE binary16) -------------------------------------------------------------------
// Round to nearest even; overflow -> inf; NaN stays a (quiet) NaN; subnormals kept.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);  // exact
float round_to_fp16(float x);     // half_to_float(float_to_half(x))

// ---- BF16 (bfloat16: FP32's sign and 8-bit exponent, 7 mantissa bits) ----------------------
// The top 16 bits of an FP32, rounded to nearest even on the 16 dropped bits (as TensorRT,
// ONNX Runtime and onnx.helper.float32_to_bfloat16 round; ONNX 1.12's node test data truncates,
// docs/conformance.md); overflow -> inf; NaN stays a quiet NaN of the same sign; subnormals kept.
uint16_t float_to_bfloat16(float f);
float bfloat16_to_float(uint16_t b);  // exact: the bits shifted back

// ---- INT8, TensorRT's symmetric scheme (scale = range / 127) -------------------------------
// Activations: clamp(round_half_even(x / scale), -128, 127) * scale.
float fake_quant_int8(float x, float scale);
// The integer of an activation: clamp(round_half_even(x / scale), -128, 127); 0 when scale is
// not positive (the engine's INT8 input/output conversion).
int8_t quantize_int8(float x, float scale);
// Weights: clamp(round_half_even(x / scale), -127, 127) * scale (never -128, so a weight and its
// negation stay exact opposites).
float fake_quant_int8_weight(float x, float scale);
// The integer of fake_quant_int8_weight: clamp(round_half_even(x / scale), -127, 127).
int8_t quantize_int8_weight(float x, float scale);

// Where the channels of a weight tensor lie: element (block b, channel k, inner i) is at
// (b * channels + k) * inner + i. Convolution [K, C/g, kh, kw]: {1, K, C/g*kh*kw};
// deconvolution [C, K/g, kh, kw]: {C, K/g, kh*kw}; a MatMul B [.., K, N] along N: {.., K*.., 1}.
struct ChannelLayout {
  int64_t blocks = 1;
  int64_t channels = 1;
  int64_t inner = 1;
  int64_t count() const { return blocks * channels * inner; }
};
// Along axis `axis` of dims (row-major).
ChannelLayout channel_layout(const std::vector<int64_t>& dims, int axis);

// Per output channel, symmetric: scale[k] = max|w| / 127 over channel k; an all-zero channel
// gets scale 1 (its values quantize to 0 either way; a DequantizeLinear needs a positive scale).
std::vector<float> int8_weight_scales(const float* w, ChannelLayout layout);
// q[i] = quantize_int8_weight(w[i], scale of i's channel); q has layout.count() elements.
void quantize_int8_weights(const float* w, ChannelLayout layout, const std::vector<float>& scales,
                           int8_t* q);
// In place: w[i] = fake_quant_int8_weight(w[i], scale of i's channel). Returns the scales.
std::vector<float> fake_quant_int8_weights(float* w, ChannelLayout layout);
// w[i] = q[i] * scale of i's channel.
void dequantize_int8_weights(const int8_t* q, ChannelLayout layout, const std::vector<float>& scales,
                             float* w);

// ---- INT32 bias ------------------------------------------------------------------------------
// The bias of an INT8 convolution / fully connected layer joins the INT32 accumulator, quantized
// with scale in_scale * w_scale (round half to even), as the DLA adds it and as ONNX Runtime's
// WeightBiasQuantization does to a Q/DQ Conv. Returns the dequantized value; a scale that is 0
// or not finite leaves the bias as it is.
float fake_quant_int32_bias(float bias, float in_scale, float w_scale);

}  // namespace tandem
