// tandem's own CUDA kernels (kernels.cu): plain launchers, one per layer family.
// All tensors are dense row-major; every launcher is asynchronous on `s` and checks nothing
// itself (the executor checks cudaGetLastError after each launch while compiling).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "tandem/network.h"

namespace tandem::cuda {

constexpr int kMaxRank = 8;

// Dims (or element strides) of up to kMaxRank axes, passed by value to kernels.
struct Shape {
  int rank = 0;
  int64_t d[kMaxRank] = {};
};

// Element types by tandem::DataType's order: float, half, int8, uint8, int32, int64, bool, bfloat16.
enum Dt : int { kF32 = 0, kF16, kI8, kU8, kI32, kI64, kBool, kBF16 };

// out[i] = op(a[broadcast], b[broadcast]) (prelu: a >= 0 ? a : a * b, op unused); sa/sb are
// element strides in out's coordinates (0 on broadcast axes). dt: kF32, kI32 or kI64 (kBool for
// And/Or/Xor). Comparison ops write bool.
void binary(ElementWiseOp op, bool prelu, int dt, const void* a, Shape sa, const void* b, Shape sb, void* out,
            Shape out_dims, cudaStream_t s);
// y = cond ? a : b, all three broadcast to out_dims; es = element size of a/b/y.
void select(const uint8_t* cond, Shape sc, const void* a, Shape sa, const void* b, Shape sb,
            void* y, Shape out_dims, int es, cudaStream_t s);

// Activation, float.
void activation(ActivationType type, float alpha, float beta, const float* x, float* y, int64_t n,
                cudaStream_t s);
// In place: y = act(y + bias[c]); c = (i / inner) % C. act: an ActivationType's value, < 0: none;
// bias may be null.
void bias_activation(float* y, const float* bias, int64_t C, int64_t inner, int act, float alpha,
                     float beta, int64_t n, cudaStream_t s);
// Unary; dt kF32 (all but Not) or kBool (Not).
void unary(UnaryOp op, int dt, const void* x, void* y, int64_t n, cudaStream_t s);

// Scale: y = (x * scale[k] + shift[k]) ^ power[k]; k = 0 (uniform), (i / inner) % C (channel),
// i % C (elementwise, C = weight count). Null pointers: 1, 0, 1.
void scale(const float* x, float* y, int64_t n, int mode, int64_t C, int64_t inner,
           const float* shift, const float* scl, const float* power, cudaStream_t s);

struct Pool2d {
  int nc, h, w, oh, ow;
  int kh, kw, sh, sw, ph, pw;  // pre padding
  int hp, wp;                  // h + post padding, w + post padding (bounds counted for average)
  bool max, exclude_pad;
};
void pooling2d(const Pool2d& p, const float* x, float* y, cudaStream_t s);

// Reduce: one output per `kept` index; `red` spans the reduced axes.
// kept/red strides are the input's element strides of those axes.
void reduce(ReduceOp op, const float* x, float* y, Shape kept_dims, Shape kept_strides,
            Shape red_dims, Shape red_strides, cudaStream_t s);
// The same over int32 (i64 false) or int64 values, accumulated in int64 (reduce_int_kernel).
void reduce_int(ReduceOp op, bool i64, const void* x, void* y, Shape kept_dims, Shape kept_strides,
                Shape red_dims, Shape red_strides, cudaStream_t s);

// Depthwise convolution (groups == C == K), NCHW, one thread per output; bias and activation
// (act < 0: none) fused.
struct DwConv {
  int n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};
void depthwise_conv(const DwConv& p, const float* x, const float* w, const float* bias, float* y,
                    int act, float alpha, float beta, cudaStream_t s);

// A chain of point-wise ops in one pass: v = x; for each op: v = op(v). kActivation: act with
// a/b = alpha/beta; kScalarRight: v = v (op) a; kScalarLeft: v = a (op) v; kChainInputRight:
// v = v (op) x; kChainInputLeft: v = x (op) v (op: ElementWiseOp Sum..Pow, x = the chain's input).
constexpr int kMaxPwOps = 8;
enum class PwKind : int { kActivation, kScalarRight, kScalarLeft, kChainInputRight, kChainInputLeft };
struct PwOp {
  PwKind kind;
  ActivationType act;
  ElementWiseOp op;
  float a, b;
};
struct PwChain {
  int n_ops;
  int x0_at;  // x = the value before op x0_at (0: the chain's input)
  PwOp ops[kMaxPwOps];
};
void pointwise_chain(const PwChain& c, const float* x, float* y, int64_t n, cudaStream_t s);
// Convolution epilogue in place: y = chain(y + bias[c]); c = (i / inner) % C; bias may be null.
void bias_chain(float* y, const float* bias, int64_t C, int64_t inner, const PwChain& c, int64_t n,
                cudaStream_t s);

struct Resize2d {
  int outer, ih, iw, oh, ow;
  float scale_h, scale_w;  // out / in, for the coordinate transform
  // The resized length align_corners divides by: in * scale when the model gave scales (ONNX
  // uses the unrounded length), else the output size.
  float len_h, len_w;
  ResizeMode mode;
  ResizeCoordinateTransform transform;
  ResizeSelector selector;
  ResizeRounding rounding;
};
void resize2d(const Resize2d& r, const float* x, float* y, cudaStream_t s);

// y[i] = x[base + sum(coord_k(i) * src_strides[k])], coord over out_dims: transpose, slice,
// broadcast, crop. es: element size 1, 2, 4 or 8.
void strided_copy(const void* x, int64_t base, Shape src_strides, void* y, Shape out_dims,
                  int es, cudaStream_t s);
// Slice with tandem::SliceMode (wrap, clamp, fill, reflect) over in_dims.
void slice_mode(const void* x, Shape in_dims, Shape start, Shape step, void* y, Shape out_dims,
                SliceMode mode, float fill, int dt, int es, cudaStream_t s);

// Softmax over the middle axis of [outer, axis, inner].
void softmax(const float* x, float* y, int64_t outer, int64_t axis, int64_t inner,
             cudaStream_t s);

// y[o, k, j] = data[o, idx[k], j] (negative indices wrap); idx int32 or int64.
void gather(const void* data, const void* idx, bool idx64, void* y, int64_t outer,
            int64_t axis_len, int64_t nidx, int64_t inner, int es, cudaStream_t s);

void cast(int from, int to, const void* x, void* y, int64_t n, cudaStream_t s);

// Normalization over rows of length L (x viewed as [rows, L]); scale/bias broadcast to x's
// dims via strides (null: 1 / 0). stats: scratch of 2 * rows floats.
void normalization(const float* x, float* y, int64_t rows, int64_t L, float eps,
                   const float* scl, Shape ss, const float* bias, Shape bs, Shape x_dims,
                   float* stats, cudaStream_t s);

// LRN across channels of NCHW.
void lrn(const float* x, float* y, int64_t n, int64_t c, int64_t hw, int window, float alpha,
         float beta, float k, cudaStream_t s);

// Numerics emulation: y = fp16(x) and, for activations, y = clamp(rint(x / scale), -128, 127) *
// scale (weights are quantized on the host to [-127, 127]).
void round_fp16(const float* x, float* y, int64_t n, cudaStream_t s);
void fake_quant(const float* x, float* y, int64_t n, float scale, cudaStream_t s);
// Weights per output channel: channel c = (i / inner) % channels, scale max|w| / 127, [-127, 127].
void fake_quant_channels(const float* x, float* y, int64_t n, int64_t channels, int64_t inner,
                         cudaStream_t s);

// ---- real FP16 (kernels_fp16.cu): half storage (void* = __half*), FP32 arithmetic, one rounding
// to nearest-even per stored value; 4-d half values are channels-last (NHWC).
// y = x converted between float/half and NCHW/NHWC; n elements of [n / (c * hw), c, hw]
// (non-4-d values: c = hw = 1 and both layouts linear).
void convert(const void* x, bool x_half, bool x_nhwc, void* y, bool y_half, bool y_nhwc, int64_t n, int64_t c,
             int64_t hw, cudaStream_t s);
void pointwise_chain_h(const PwChain& c, const void* x, void* y, int64_t n, cudaStream_t s);
// In place: y = chain(y + bias[c]); c = (i / inner) % C (NHWC: inner 1); bias (float) may be null.
void bias_chain_h(void* y, const float* bias, int64_t C, int64_t inner, const PwChain& c, int64_t n, cudaStream_t s);
// Depthwise convolution of an NHWC half value x (q.c channels, one filter each; w half [c][kh][kw])
// into y (half, NHWC): y = chain(sum + bias[c]) rounded once.
void depthwise_h(const DwConv& q, const void* x, const void* w, const float* bias, const PwChain& c, void* y,
                 cudaStream_t s);
// y (half) = chain(acc + bias[c]) from a convolution's FP32 accumulator acc: one rounding.
void bias_chain_f2h(const float* acc, void* y, const float* bias, int64_t C, int64_t inner, const PwChain& c, int64_t n,
                    cudaStream_t s);
// As binary() on half operands (sa/sb: element strides in out's physical coordinates). The
// path: dense (4 halves per thread when n % 4 == 0), one-value operand, per-(image, channel)
// operand of an NHWC output (SE scaling), or general strided indexing.
enum class BinaryHalfPath { kDenseVec, kDense, kScalarVec, kScalarVecSwapped, kScalar, kChannelRight, kChannelLeft, kGeneral };
BinaryHalfPath binary_h_path(ElementWiseOp op, Shape sa, Shape sb, Shape dims);
void binary_h(ElementWiseOp op, bool prelu, const void* a, Shape sa, const void* b, Shape sb, void* out, Shape dims,
              cudaStream_t s);
// Pooling over NHWC: p.nc holds the batch, c the channels.
void pooling2d_nhwc_h(const Pool2d& p, int64_t c, const void* x, void* y, cudaStream_t s);
// Reduce over H and W of an NHWC tensor into [batch, c].
// How many segments of the H*W pixels spatial_reduce_h splits the reduction into: one when the
// (image, 32-channel tile) blocks alone fill the GPU; more for a few large maps (batch 1:
// efficientnet_b0's squeeze-excitation pools of 112 x 112 x 32 ran on one block).
int64_t spatial_reduce_h_segments(int64_t batch, int64_t hw, int64_t c);
// partial: batch * segments * c floats of scratch when segments > 1 (each segment's FP32 partial,
// then summed in segment order: deterministic), else unused.
void spatial_reduce_h(ReduceOp op, const void* x, void* y, int64_t batch, int64_t hw, int64_t c, int64_t segments,
                      float* partial, cudaStream_t s);

// ---- real INT8 (kernels_int8.cu): int8 codes of float values on an INT8 grid (clamp(rne(x /
// scale), -128, 127), the emulation's integers), int32 accumulation, float results.
// x float NCHW [batch, c, hw] -> q int8 NHWC [batch, hw, c].
void quantize_nhwc_i8(const float* x, int8_t* q, int64_t batch, int64_t c, int64_t hw, float scale, cudaStream_t s);
// The same with cp > c channels per position (cp a multiple of 4), zeros after the c real ones:
// the padded codes of a narrow input (a stem's RGB image) for INT8 convolutions needing C % 4 == 0.
void quantize_nhwc_pad_i8(const float* x, int8_t* q, int64_t batch, int64_t c, int64_t cp, int64_t hw, float scale,
                          cudaStream_t s);
// im2col over NHWC int8: col [n * oh * ow, kc_pad], column j = (r * kw + s) * c + channel (KRSC
// weights' order), zeros for padding and from kh * kw * c to kc_pad (a multiple of 16).
struct Im2col {
  int n, h, w, c, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, kc_pad;
};
void im2col_i8(const Im2col& p, const int8_t* x, int8_t* col, cudaStream_t s);
// The epilogue of an INT8 GEMM: acc int32 [batch * hw, ld] -> y float NCHW [batch, k, hw],
// y = chain(acc * alpha[k] + bias[k]) (alpha = input scale x weight scale of channel k; bias
// may be null; c.n_ops 0: no chain).
void int8_epilogue_nchw(const int32_t* acc, int64_t ld, int64_t batch, int64_t k, int64_t hw, const float* alpha,
                        const float* bias, const PwChain& c, float* y, cudaStream_t s);
// The same with the output requantized: codes y [rows, k] (NHWC) = clamp(rne(v / y_scale),
// -128, 127), v = chain(acc * alpha[k] + bias[k]) (an int8-stored value, LowerPolicy::int8_native);
// yh not null: the grid values q * y_scale as half instead (ExecValue::half_of_int8).
void int8_epilogue_codes(const int32_t* acc, int64_t ld, int64_t rows, int64_t k, const float* alpha,
                         const float* bias, const PwChain& c, float y_scale, int8_t* y, void* yh, cudaStream_t s);
// A direct INT8 convolution (any groups), one thread per output: x int8 codes NHWC, w int8
// [k, c / groups, kh, kw], int32 sums, the epilogue above; writes float NCHW y, or codes NHWC
// yq on the grid of y_scale when yq is not null, or that grid's values as half NHWC yh.
struct ConvI8 {
  int n, c, h, w, k, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups;
};
void conv_direct_i8(const ConvI8& p, const int8_t* x, const int8_t* w, const float* alpha, const float* bias,
                    const PwChain& c, float* y, int8_t* yq, void* yh, float y_scale, cudaStream_t s);
// The same convolution for narrow inputs (a stem: c % 4 == 0, k % 64 == 0, groups 1), tiled:
// a block computes 8 x 16 output pixels x 64 channels of one image from its input patch and the
// filter in shared memory, dp4a over 4 channels at a time, int32 sums; the epilogue of
// int8_epilogue_codes, element for element. w: int32 words [kh][kw][c/4][k] (4 codes each, the
// channels of a word in order). Writes codes yq, or (yq null) the grid's values as half yh.
// False: the shared memory it needs is over 48 KiB (nothing launched).
// join (not null; yh then unused, the convolution's half never written): the residual join
// after it in the same pass, add_act_codes_h's arithmetic on the half value q * y_scale the
// convolution would have written and z (element for element): y = half(act(half(a + z))) and,
// q not null, the codes of y on the grid of q_scale (all NHWC like the output).
struct TiledJoin {
  const void* z = nullptr;
  void* y = nullptr;
  int8_t* q = nullptr;
  float q_scale = 0.f;
  PwChain act{};
};
size_t conv_tiled_i8_smem(const ConvI8& p);  // its shared memory (bytes)
bool conv_tiled_i8_join_supported();  // the fused join needs tensor cores of compute capability >= 8.0
bool conv_tiled_i8(const ConvI8& p, const int8_t* x, const int32_t* w, const float* alpha, const float* bias,
                   const PwChain& c, int8_t* yq, void* yh, float y_scale, cudaStream_t s,
                   const TiledJoin* join = nullptr);
// tandem's implicit-GEMM INT8 convolution (kernels_int8_igemm.cu): groups 1, c % 64 == 0,
// k % 64 == 0, NHWC codes x, w int8 [k][kh * kw * c] (KRSC codes), int32 sums on the INT8 tensor
// cores (sm_80+: supported() is false elsewhere, and where the sm_80 code was not compiled),
// a block of 128 output pixels x 128 (or 64) channels, the epilogue of int8_epilogue_codes
// element for element; writes codes yq, or (yq null) the grid's values as half yh, or with join
// the residual join after it as conv_tiled_i8 does (its outputs only). False: nothing launched.
bool conv_igemm_i8_supported(const ConvI8& p);
bool conv_igemm_i8(const ConvI8& p, const int8_t* x, const int8_t* w, const float* alpha, const float* bias,
                   const PwChain& c, int8_t* yq, void* yh, float y_scale, cudaStream_t s,
                   const TiledJoin* join = nullptr);
// int8 codes x [pixels, c] -> the same integers as half y [pixels, ch] (ch % 8 == 0, ch >= c,
// zeros in channels c..ch-1; exact: |q| <= 128 is a half value), for the FP16 tensor-core
// convolution over codes (FusedConvSpec::half_sums).
void codes_to_half_i8(const int8_t* x, int64_t pixels, int64_t c, int64_t ch, void* y, cudaStream_t s);
// Codes q of n values x (float, or half when `half`) in the same layout, on the grid of scale.
void quantize_codes_i8(const void* x, bool half, int8_t* q, int64_t n, float scale, cudaStream_t s);
// An activation (chain c) over n int8 codes x (values q * x_scale), same layout in and out; fp16:
// a native FP16 layer's rounding of its input and output to half. Writes codes yq on the grid of
// y_scale, or (yq null) half yh.
void activation_codes_i8(const int8_t* x, float x_scale, bool fp16, const PwChain& c, int8_t* yq, float y_scale,
                         void* yh, int64_t n, cudaStream_t s);
// The join at the end of a residual block of an INT8 plan, in one pass over n half values in
// one layout: y = half(act(half(a + z))) (act: c, or none when c.n_ops is 0) and, q not null,
// the codes of y on the grid of q_scale; the arithmetic of the native FP16 sum, the FP16
// activation step and the quantize step it replaces, element by element. y may be a or z itself.
void add_act_codes_h(const void* a, const void* z, const PwChain& c, void* y, int8_t* q, float q_scale, int64_t n,
                     cudaStream_t s);
// Max pooling (NHWC, geometry p with p.nc = the batch) of an FP16 activation over int8 codes x,
// written as the codes of the pooled half value on the grid of y_scale: the output of the three
// steps activation_codes_i8 (fp16) -> pooling2d_nhwc_h -> quantize_codes_i8, exactly, for a
// non-decreasing activation c (ReLU: the window's largest code gives the pooled value).
void maxpool_act_codes_i8(const Pool2d& p, int64_t c, const int8_t* x, float x_scale, const PwChain& act, int8_t* y,
                          float y_scale, cudaStream_t s);

}  // namespace tandem::cuda
