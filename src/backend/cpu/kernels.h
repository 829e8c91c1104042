// Internal to the CPU backend: one kernel per layer, built once at compile time.
// A kernel is a closure over everything it precomputed (shapes, strides, oneDNN primitives,
// weights); at run time it only sees the buffers of its inputs and outputs.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chain_fused.h"
#include "tandem/lower.h"
#include "tandem/network.h"

namespace tandem::cpu {

using Kernel = std::function<void(const std::vector<void*>& in, const std::vector<void*>& out)>;

// What a convolution may absorb as oneDNN post-ops, in order: activations, hard-swish, and
// (FP32 steps only: kernels_int8.cpp's requantization takes activations and hard-swish) kScalar,
// v = op(v, scalar) as a binary post-op over a one-element tensor (Sum, Prod, Sub, Div: one IEEE
// operation each, the same value as the layer's).
struct PostOp {
  enum Kind { kActivation, kHardSwish, kScalar } kind = kActivation;
  ActivationParams act;
  ElementWiseOp op = ElementWiseOp::kSum;  // kScalar
  float scalar = 0.f;                      // kScalar
};
// Whether p can follow `chain` as oneDNN post-ops of one primitive, computing exactly what the
// layers compute one after the other.
bool dnnl_can_append_post_op(const std::vector<PostOp>& chain, const PostOp& p);

// One link of a point-wise chain (lowering's kPointwiseChain, or a convolution's epilogue from
// chain_input_at on): the running value v, the chain's input x0.
// kRoundFp16 / kRoundInt8: an emulated step's output rounding (lowering's in-place kRound step
// that follows it) as the chain's last link: v = round_to_fp16(v), fake_quant_int8(v, scalar).
// kCaptureInput: x0 = v (a convolution's second chain starts there: ExecStep::chain_input_at
// after element-wise links); a chain with one reads no x0 before it.
struct ChainLink {
  enum Kind {
    kActivation, kScalarRight, kScalarLeft, kChainInputRight, kChainInputLeft, kRoundFp16, kRoundInt8, kCaptureInput,
    kGridLookup
  } kind = kActivation;
  ActivationParams act;                        // kActivation
  ElementWiseOp op = ElementWiseOp::kSum;      // the others: v = op(v, s), op(s, v), op(v, x0), op(x0, v)
  float scalar = 0.f;                          // kScalar*; kRoundInt8: the scale
  // kActivation right after a rounding link (prepare_chain): the activation of every value on
  // that grid, looked up instead of computed. kRoundFp16 before it: indexed by the half bits
  // (65,536 entries; table_scale 0); kRoundInt8: by the code q + 128 of v = q * table_scale (and -0).
  // kGridLookup (prepare_chain): a rounding link and every link after it, as one lookup: the
  // links' result for every value of the rounding's grid, indexed as above (table_scale 0: the
  // FP16 grid; > 0: the INT8 grid of that scale, the code computed as the rounding computes it).
  // `replaced` holds those links: an INT8 block holding a NaN runs them instead.
  const float* table = nullptr;
  float table_scale = 0.f;
  std::shared_ptr<const std::vector<ChainLink>> replaced;
};
// Gives a costly activation (sigmoid, tanh, ELU, GELU, ...) that reads values a rounding link
// put on the FP16 or an INT8 grid its table: the same function of the same inputs, so the same
// bits, at a lookup's cost (det's DLA INT8 sigmoid over 640 x 640 values: the exponential was
// most of its step).
// A rounding link followed by links that read nothing from before it (no chain input captured
// earlier), over at least kGridLookupMinValues values: that rounding and its followers become one
// kGridLookup, a function of the grid's 65,536 (FP16) or 257 (INT8) values computed once per
// process by the same links (the same bits), looked up per element. n: the values the chain runs over.
constexpr int64_t kGridLookupMinValues = 16384;  // FP16 tables (65,536 values) only; INT8 always
void prepare_chain(std::vector<ChainLink>& links, int64_t n);
// The scale of the INT8 grid a prepared chain's values end on (its last link an INT8 rounding, or
// a kGridLookup of links ending so); 0: none.
float chain_final_int8_scale(const std::vector<ChainLink>& links);
// y = chain(x) over n floats (x == y allowed), each link rounding to float as its layer does.
void apply_chain(const std::vector<ChainLink>& links, const float* x, float* y, int64_t n);
// q = the codes of chain(x) on the INT8 grid the chain ends on (inv_scale: 1 / its scale), block by
// block: the values apply_chain writes, never stored as floats.
void apply_chain_codes(const std::vector<ChainLink>& links, const float* x, int8_t* q, int64_t n, float inv_scale);
// The grid the values a chain reads lie on, where its producer's last roundings put them: a
// per-tensor INT8 rounding (scale), possibly followed by an FP16 one. int8_scale 0: none known.
struct InputGrid {
  float int8_scale = 0.f;
  bool then_fp16 = false;
};
// With an INT8 input grid, a chain holding a costly activation that no table already serves is a
// function of the 257 values the grid has (every code and -0): computed once for those, looked up
// per element (a block holding a NaN computes).
Kernel make_chain_kernel(std::vector<ChainLink> links, int64_t n, InputGrid grid = {});

// Scratch shared by every convolution of one executor (they run one at a time): blocked copies
// of the source and destination when oneDNN picks a blocked layout (nChw16c, ...).
struct ConvScratch {
  std::vector<float> src, dst;
};

// Codes between real INT8 (de)convolutions. make_conv_int8_kernel says what its kernel can do;
// the executor, once every step is built, sets `write` on a convolution whose output every reader
// takes with `read` (docs/cpu-backend.md "Codes between INT8 convolutions"). The writer then
// stores the codes of its chain's last INT8 rounding (int8, channels-last) instead of their float
// values, and a reader sums them as they are instead of quantizing floats first: the same codes
// (codes_s8 of the same grid values, in the writer instead of the reader), a quarter of the bytes.
struct Int8CodesIo {
  bool can_read = false;   // the sums read int8 channels-last codes (the VNNI path)
  bool can_write = false;  // the chain ends in an INT8 rounding onto a channels-last output
  float read_scale = 0.f;  // the input's grid
  float write_scale = 0.f; // the last rounding's grid
  bool read = false, write = false;  // set by the executor
};

// How many values executors have stored as codes between INT8 convolutions (tests).
uint64_t int8_codes_values_linked();

// Convolution/Deconvolution with explicit (possibly folded or quantized) weights.
struct ConvSpec {
  std::shared_ptr<ConvScratch> scratch;
  const Layer* layer = nullptr;
  Dims in_dims, out_dims;
  std::vector<float> kernel;  // layout as in ConvolutionParams
  std::vector<float> bias;    // empty: none
  std::vector<PostOp> post_ops;
  std::vector<ChainLink> chain;  // after the post-ops, in place on the output
  // Links of point-wise steps the convolution's step runs after its own chain, from its output
  // (out[0]) into out[1] in the same pass where the kernel allows (the executor's conv_tail).
  std::vector<ChainLink> tail;
  // The buffers' layouts: 0 plain (NCHW), kNhwcBlock channels-last, 8 / 16 nChw8c / nChw16c
  // (4-d, channels a multiple of it).
  int src_block = 0, dst_block = 0;
  // Real INT8 (kernels_int8.cpp; empty codes: emulated): the weights' per-output-channel codes
  // (layout of `kernel`), the input's grid scale, alpha[k] = in_scale * s_w[k] * folded Scale
  // factor; `bias` then holds the bias on the int32 grid with the Scale folded in.
  std::vector<int8_t> kernel_codes;
  std::vector<float> alpha;
  float in_scale = 0.f;
  std::shared_ptr<Int8CodesIo> codes_io;  // real INT8: filled by make_conv_int8_kernel
};
constexpr int kNhwcBlock = 1;  // the "block" code of channels-last (NHWC)
// y[i] = round_to_fp16(y[i]) for n floats, bit for bit: F16C when the CPU has it and allow_simd
// (false: the scalar loop, for tests), else scalar.
void round_fp16(float* y, int64_t n, bool allow_simd = true);
// y[i] = fake_quant_int8(y[i], scale) for n floats, bit for bit: AVX when the CPU has it and
// allow_simd, else scalar.
void fake_quant_int8_array(float* y, int64_t n, float scale, bool allow_simd = true);
// Whether ONEDNN_MAX_CPU_ISA caps oneDNN below AVX-512 (AVX2, AVX, SSE41): tandem's own kernels
// that pick AVX-512 at run time take the same cap, so ctest's runs "as on a CPU without AVX-512"
// cover their AVX2 paths too (GCC's target_clones pick by the CPU alone).
bool isa_capped_below_avx512();
// The widest vectors tandem's own intrinsics kernels may use here: AVX-512F or AVX2, each with
// F16C (and AVX-512 not capped by ONEDNN_MAX_CPU_ISA), else none.
enum class CpuVectors : uint8_t { kAvx512, kAvx2, kNone };
CpuVectors cpu_vectors();
// Chain links and activations as ops of a fused run (chain_fused.h): false where one has no fused
// form (tables, costly activations, element-wise ops other than + * - / max min); links_to_fused
// appends to ops. run_fused runs one with the CPU's vectors (cpu_vectors() must not be kNone).
bool activation_to_fused(const ActivationParams& a, fused::Op& op);
bool links_to_fused(const std::vector<ChainLink>& links, std::vector<fused::Op>& ops);
void run_fused(const fused::Run& r);
// The same on one block, on the calling thread (no OpenMP region): a chain's rounding link.
void round_fp16_block(float* y, int64_t n);
void fake_quant_int8_block(float* y, int64_t n, float scale);
// y[i] = table[bits of x[i] rounded to half] for n floats (x == y allowed): F16C + AVX-512 or AVX2
// gathers where the CPU has them, else scalar; the same values.
void lookup_fp16_table(const float* table, const float* x, float* y, int64_t n);
// y[i] = table[index of fake_quant_int8(x[i], scale)'s code] (x == y allowed) (code + 128; 256 for -0), over n
// floats; false, nothing written, where one of them is a NaN. AVX-512 or scalar, the same values.
bool lookup_int8_grid(const float* table, float scale, const float* x, float* y, int64_t n);
// y[i] = table[code of x[i]] for values x[i] = fl(q * scale) on an INT8 grid (perhaps then rounded
// to half where half keeps the grid's points apart): code + 128, 256 for -0; false, nothing
// written, where one is a NaN. AVX-512 / AVX2 gathers or scalar, the same values.
bool lookup_grid_codes(const float* table, float scale, const float* x, float* y, int64_t n);
// q[i] = the int8 code of fake_quant_int8(x[i], scale) (of round_to_fp16(x[i]) first where
// fp16_first): a chain's last roundings and the codes of their result in one pass, the same codes
// as those links and codes_s8 (a NaN: -128). AVX-512 / AVX2 or scalar.
void round_to_codes(const float* x, int8_t* q, int64_t n, float scale, bool fp16_first);
// The roundings a prepared chain ends with when it writes codes: an INT8 rounding (scale), perhaps
// after an FP16 one; `links` of them (0: the chain does not end so).
struct CodesTail {
  size_t links = 0;
  float scale = 0.f;
  bool fp16_first = false;
};
CodesTail codes_tail(const std::vector<ChainLink>& links);

// oneDNN's preferred convolution layout on this CPU as a block code (kNhwcBlock, 8 or 16), 0 when
// it prefers plain: the layout the executor keeps convolution chains in.
int dnnl_conv_block();
// Which values of a lowered graph the executor keeps in that layout (1 per value): those every
// step touching them computes in it (convolutions, point-wise chains, same-shape element-wise
// layers); 4-d float, not network inputs or outputs, constants or views; blocked ones need
// channels % block == 0. All zero for block 0.
std::vector<char> plan_layouts(const Network& net, const ExecGraph& g, int block);

// Which build of an ISA-cloned kernel runs: the best the CPU has, or a lower one (tests compare
// them bit for bit).
enum class SimdLevel : uint8_t { kBest, kAvx2, kBaseline };
// SoftMax over the middle axis of [outer, n, inner] floats (kernels_softmax.cpp: the same bits
// at every level).
void softmax_float(const float* x, float* y, int64_t outer, int64_t n, int64_t inner, SimdLevel level);
Kernel make_softmax(const Network& net, const Layer& l);

Kernel make_conv_kernel(const ConvSpec& s);  // oneDNN

// How INT8 convolutions and deconvolutions compute (kernels_int8.cpp): oneDNN s8 -> s32 where
// oneDNN's ISA has VNNI, integer-valued FP32 sums elsewhere, or the FP32 emulation;
// TANDEM_CPU_INT8=vnni|fp32|emulate forces one (tests compare them bit for bit).
enum class Int8ConvPath : uint8_t { kVnni, kFp32, kEmulate };
Int8ConvPath int8_conv_path();
// Whether every integer sum of a convolution with these weight codes ([out_channels][inner]) and
// input codes in [-128, 127] is exact in FP32 (<= 2^24): where a layer runs real INT8 at all.
bool int8_conv_exact(const std::vector<int8_t>& codes, int64_t out_channels);
// The same for a deconvolution's codes ([in_channels][out_channels / groups][taps]): output
// channel k's sums take the codes of channel k % (K/g) over its group's input channels.
bool int8_deconv_exact(const std::vector<int8_t>& codes, int64_t in_channels, int64_t out_channels, int64_t groups);
// A 2-D convolution or deconvolution (4-d NCHW tensors) on codes: s.kernel_codes (the layout of
// s.kernel), s.alpha, s.in_scale set.
Kernel make_conv_int8_kernel(const ConvSpec& s, Int8ConvPath path);
// q = clamp(rne(x * inv_scale), -128, 127) (a NaN gives -128): the codes of values on an INT8
// grid, as every real INT8 kernel makes them; kBest: AVX-512 where the CPU has it, else the
// plain loop (the same codes; tests compare them).
void int8_codes(const float* x, int8_t* q, int64_t n, float inv_scale, SimdLevel level = SimdLevel::kBest);
// How many real INT8 kernels so far run a pointwise convolution in blocks of pixels (tests).
uint64_t int8_tiled_kernels_built();
// How many run a convolution with a window in blocks of output rows (tests).
uint64_t int8_row_tiled_kernels_built();
Kernel make_matmul_kernel(const Network& net, const Layer& l);  // oneDNN
// oneDNN eltwise over n floats; an empty Kernel when oneDNN has no exact equivalent.
Kernel make_eltwise_kernel(const ActivationParams& a, int64_t n);
// Plain loops for every kind (the reference; oneDNN runs Convolution, Deconvolution and
// MatrixMultiply by default). Weights come from `weights` (possibly rounded copies).
Kernel make_ref_kernel(const Network& net, const Layer& l, const std::vector<Weights>& weights);
// The plain kernel of a float ElementWise, Concatenation or nearest Resize with its output's
// in-place roundings (kRoundFp16 / kRoundInt8 links) applied to each block right after it is
// written, in L1: one pass over memory instead of the kernel's and a rounding pass's, the same
// bits (the roundings are per element). An empty Kernel for any other layer.
Kernel make_ref_kernel_rounding(const Network& net, const Layer& l, const std::vector<ChainLink>& rounds);

// A channels-last per-channel Scale (channel axis last, no power) with its output's roundings as
// one fused pass (chain_fused.h); an empty Kernel for any other Scale or where the CPU has no
// vectors. weights: the Scale's own (an FP16 Scale's rounded to half).
Kernel make_scale_rounding(const Network& net, const Layer& l, const std::vector<Weights>& weights,
                           const std::vector<ChainLink>& rounds);

// Element access whatever the type (the slow, general path for non-float tensors).
double load_as_double(const void* p, DataType t, int64_t i);
void store_from_double(void* p, DataType t, int64_t i, double v);
float apply_activation(const ActivationParams& a, float x);

void set_threads(int n);

}  // namespace tandem::cpu
