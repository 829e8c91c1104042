// A run of point-wise chain links computed in registers (kernels_chain.cpp decides which links
// qualify; chain_fused_avx512.cpp and chain_fused_avx2.cpp compute them).
//
// The link-by-link chain loads and stores the block once per link, and most links are one
// arithmetic instruction: a chain of ten links was ten passes over L1. Here each group of four
// vectors is loaded once, every link of the run is applied to it in registers (the chain input
// kept in registers too), and stored once. Each operation is the one the link's own loop does
// (the same IEEE instruction, the same operand order for min / max, no FMA contraction), so the
// values are the same bits.
//
// This header is included by the per-ISA translation units: plain declarations only, nothing
// that could be instantiated there and linked into code running on a CPU without that ISA.
#pragma once

#include <cstdint>

namespace tandem::cpu::fused {

// What a link computes. The binary forms name where the other operand comes from: a constant
// (a) or the chain input x0, on the right (op(v, other)) or on the left (op(other, v)).
enum class Form : uint8_t { kConstRight, kConstLeft, kInputRight, kInputLeft, kUnary };
enum class Binary : uint8_t { kAdd, kMul, kSub, kDiv, kMax, kMin };
enum class Unary : uint8_t { kCapture, kRelu, kLeakyRelu, kClip, kHardSigmoid, kRoundFp16, kRoundInt8 };

struct Op {
  Form form = Form::kUnary;
  Binary binary = Binary::kAdd;
  Unary unary = Unary::kCapture;
  // The constant; LeakyRelu's slope; Clip's bounds; HardSigmoid's alpha, beta; RoundInt8's scale
  // and, where scale and reciprocal are normal, fl(1 / scale) (else 0: no codes taken from it).
  float a = 0.f, b = 0.f;
};

// v = ops(s) over m values. x0: the chain input as the run finds it (read only if a link reads it
// before a capture; x0 == s allowed, then it is not loaded twice). x0_out (may be null): where the
// chain input ends up after the run (a capture's value), for links after the run. v may be s.
//
// An INT8 convolution's requantization runs as one too: with `sums` (int32 or integer-valued
// float), the run's input is float(sum[i]) * alpha[i % period] (+ bias[i % period]), as
// kernels_int8.cpp's dequantize computes it (period: a multiple of 128, the channels' factors
// repeated), and x0 is that value; with `codes`, the result goes out as int8 codes
// clamp(rne(v * inv_scale), -128, 127) (a NaN: -128), as codes_s8 makes them, instead of to v.
struct Run {
  const Op* ops;
  int n_ops;
  const float* s;
  const float* x0;
  float* v;
  float* x0_out;
  int64_t m;
  const int32_t* sums_s32 = nullptr;
  const float* sums_f32 = nullptr;
  const float* alpha = nullptr;
  const float* bias = nullptr;  // null: none
  int64_t period = 0;
  int8_t* codes = nullptr;
  float inv_scale = 0.f;
};
void run_avx512(const Run& r);  // AVX-512F + F16C
void run_avx2(const Run& r);    // AVX2 + F16C

}  // namespace tandem::cpu::fused
