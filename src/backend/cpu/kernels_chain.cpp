// Point-wise chains: several point-wise layers (activations; element-wise ops of the running value
// with a scalar or with the chain's input) in one pass over memory. Each link computes exactly
// what its layer's own kernel computes (ops::activation / ops::elementwise in float, one rounding
// per link), so a chain changes no value, only the number of passes over large tensors.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "chain_fused.h"
#include "kernels.h"
#include "parallel.h"
#include "tandem/numerics.h"
#include "tandem/op_semantics.h"

namespace tandem::cpu {

namespace {

// Elements per block: the running value and the chain input stay in L1 while every link runs.
constexpr int64_t kBlock = 1024;

// `f` instantiated per op, so that the loop over the block vectorizes.
template <class F>
void elementwise_block(ElementWiseOp op, F&& f) {
  switch (op) {
    case ElementWiseOp::kSum: f([](float a, float b) { return ops::elementwise(ElementWiseOp::kSum, a, b); }); return;
    case ElementWiseOp::kProd: f([](float a, float b) { return ops::elementwise(ElementWiseOp::kProd, a, b); }); return;
    case ElementWiseOp::kSub: f([](float a, float b) { return ops::elementwise(ElementWiseOp::kSub, a, b); }); return;
    case ElementWiseOp::kDiv: f([](float a, float b) { return ops::elementwise(ElementWiseOp::kDiv, a, b); }); return;
    case ElementWiseOp::kMax: f([](float a, float b) { return ops::elementwise(ElementWiseOp::kMax, a, b); }); return;
    case ElementWiseOp::kMin: f([](float a, float b) { return ops::elementwise(ElementWiseOp::kMin, a, b); }); return;
    case ElementWiseOp::kPow: case ElementWiseOp::kFloorDiv: case ElementWiseOp::kAnd: case ElementWiseOp::kOr:
    case ElementWiseOp::kXor: case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
      f([op](float a, float b) { return ops::elementwise(op, a, b); });
      return;
  }
}

// v = activation(s) over n values (s == v allowed).
void activation_block(const ActivationParams& a, const float* s, float* v, int64_t n) {
  const float al = a.alpha, be = a.beta;
  auto map = [&](auto f) {
    for (int64_t i = 0; i < n; ++i) v[i] = f(s[i]);
  };
  switch (a.type) {
    case ActivationType::kRelu: map([](float x) { return ops::activation(ActivationType::kRelu, x, 0.f, 0.f); }); return;
    case ActivationType::kLeakyRelu: map([al](float x) { return ops::activation(ActivationType::kLeakyRelu, x, al, 0.f); }); return;
    case ActivationType::kClip: map([al, be](float x) { return ops::activation(ActivationType::kClip, x, al, be); }); return;
    case ActivationType::kHardSigmoid:
      map([al, be](float x) { return ops::activation(ActivationType::kHardSigmoid, x, al, be); });
      return;
    case ActivationType::kSigmoid: case ActivationType::kTanh: case ActivationType::kElu: case ActivationType::kSelu:
    case ActivationType::kSoftplus: case ActivationType::kSoftsign: case ActivationType::kGeluErf:
    case ActivationType::kGeluTanh: case ActivationType::kThresholdedRelu: case ActivationType::kScaledTanh:
      map([&a](float x) { return apply_activation(a, x); });
      return;
  }
}

// y[i] = table[code of x[i]] for values on an INT8 grid (lookup_grid_codes, fp16_round.cpp).
bool lookup_codes(const float* table, float scale, const float* x, float* y, int64_t n) {
  return lookup_grid_codes(table, scale, x, y, n);
}

// v = table[q + 128] for the values of an INT8 rounding link; a block holding a NaN (passed
// through by the rounding) computes the activation instead.
void lookup_int8_table(const ChainLink& k, const float* s, float* v, int64_t n) {
  if (!lookup_codes(k.table, k.table_scale, s, v, n)) activation_block(k.act, s, v, n);
}

// Where a block's chain input is: x0 (read by the kChainInput links), the chain's input itself or
// x0_buffer once a kCaptureInput link filled it.
struct ChainInput {
  const float* x0;
  float* x0_buffer;
};

void replaced_links_block(const std::vector<ChainLink>& links, const float* s, float* v, ChainInput& in, int64_t n);

// v = link(s) over n values: s is the block's source for the chain's first link (no copy into v
// first), v itself for the others.
void link_block(const ChainLink& k, const float* s, float* v, ChainInput& in, int64_t n) {
  const float* x0 = in.x0;
  switch (k.kind) {
    case ChainLink::kGridLookup:
      if (k.table_scale == 0.f) return lookup_fp16_table(k.table, s, v, n);
      if (!lookup_int8_grid(k.table, k.table_scale, s, v, n)) replaced_links_block(*k.replaced, s, v, in, n);
      return;
    case ChainLink::kActivation:
      if (k.table && k.table_scale > 0.f) return lookup_int8_table(k, s, v, n);
      if (k.table) return lookup_fp16_table(k.table, s, v, n);
      activation_block(k.act, s, v, n);
      return;
    case ChainLink::kScalarRight:
      elementwise_block(k.op, [&](auto f) { for (int64_t i = 0; i < n; ++i) v[i] = f(s[i], k.scalar); });
      return;
    case ChainLink::kScalarLeft:
      elementwise_block(k.op, [&](auto f) { for (int64_t i = 0; i < n; ++i) v[i] = f(k.scalar, s[i]); });
      return;
    case ChainLink::kChainInputRight:
      elementwise_block(k.op, [&](auto f) { for (int64_t i = 0; i < n; ++i) v[i] = f(s[i], x0[i]); });
      return;
    case ChainLink::kChainInputLeft:
      elementwise_block(k.op, [&](auto f) { for (int64_t i = 0; i < n; ++i) v[i] = f(x0[i], s[i]); });
      return;
    // The rounding functions round in place and dispatch on the CPU themselves (F16C / AVX or
    // scalar, the same bits: fp16_round.cpp), whichever clone of chain_block calls them.
    case ChainLink::kRoundFp16:
      if (s != v) std::memcpy(v, s, size_t(n) * sizeof(float));
      round_fp16_block(v, n);
      return;
    case ChainLink::kRoundInt8:
      if (s != v) std::memcpy(v, s, size_t(n) * sizeof(float));
      fake_quant_int8_block(v, n, k.scalar);
      return;
    case ChainLink::kCaptureInput:
      std::memcpy(in.x0_buffer, s, size_t(n) * sizeof(float));
      in.x0 = in.x0_buffer;
      if (s != v) std::memcpy(v, s, size_t(n) * sizeof(float));
      return;
  }
}

}  // namespace

bool activation_to_fused(const ActivationParams& a, fused::Op& op) {
  using fused::Unary;
  op.form = fused::Form::kUnary, op.a = a.alpha, op.b = a.beta;
  switch (a.type) {
    case ActivationType::kRelu: op.unary = Unary::kRelu; return true;
    case ActivationType::kLeakyRelu: op.unary = Unary::kLeakyRelu; return true;
    case ActivationType::kClip: op.unary = Unary::kClip; return true;
    case ActivationType::kHardSigmoid: op.unary = Unary::kHardSigmoid; return true;
    case ActivationType::kSigmoid: case ActivationType::kTanh: case ActivationType::kElu: case ActivationType::kSelu:
    case ActivationType::kSoftplus: case ActivationType::kSoftsign: case ActivationType::kGeluErf:
    case ActivationType::kGeluTanh: case ActivationType::kThresholdedRelu: case ActivationType::kScaledTanh:
      return false;
  }
  return false;
}

namespace {

// A usable INT8 grid scale: normal and finite (a subnormal scale's products lose the codes' exactness).
bool int8_grid_scale(float s) { return s >= std::numeric_limits<float>::min() && std::isfinite(s); }

// The fused form of a link (chain_fused.h); false where it has none (tables, costly activations,
// element-wise ops other than + * - / max min).
bool to_fused(const ChainLink& k, fused::Op& op) {
  using fused::Binary, fused::Form, fused::Unary;
  auto binary = [&](Form form) {
    op.form = form, op.a = k.scalar, op.b = 0.f;
    switch (k.op) {
      case ElementWiseOp::kSum: op.binary = Binary::kAdd; return true;
      case ElementWiseOp::kProd: op.binary = Binary::kMul; return true;
      case ElementWiseOp::kSub: op.binary = Binary::kSub; return true;
      case ElementWiseOp::kDiv: op.binary = Binary::kDiv; return true;
      case ElementWiseOp::kMax: op.binary = Binary::kMax; return true;
      case ElementWiseOp::kMin: op.binary = Binary::kMin; return true;
      case ElementWiseOp::kPow: case ElementWiseOp::kFloorDiv: case ElementWiseOp::kAnd: case ElementWiseOp::kOr:
      case ElementWiseOp::kXor: case ElementWiseOp::kEqual: case ElementWiseOp::kGreater: case ElementWiseOp::kLess:
        return false;
    }
    return false;
  };
  auto unary = [&](Unary u, float a = 0.f, float b = 0.f) {
    op.form = Form::kUnary, op.unary = u, op.a = a, op.b = b;
    return true;
  };
  switch (k.kind) {
    case ChainLink::kScalarRight: return binary(Form::kConstRight);
    case ChainLink::kScalarLeft: return binary(Form::kConstLeft);
    case ChainLink::kChainInputRight: return binary(Form::kInputRight);
    case ChainLink::kChainInputLeft: return binary(Form::kInputLeft);
    case ChainLink::kCaptureInput: return unary(Unary::kCapture);
    case ChainLink::kRoundFp16: return unary(Unary::kRoundFp16);
    case ChainLink::kRoundInt8: {
      // b: fl(1 / scale) where both are normal and finite (codes of the grid: chain_fused.h).
      const float r = 1.f / k.scalar;
      const bool normal = int8_grid_scale(k.scalar) && r >= std::numeric_limits<float>::min() && std::isfinite(r);
      return unary(Unary::kRoundInt8, k.scalar, normal ? r : 0.f);
    }
    case ChainLink::kGridLookup: return false;
    case ChainLink::kActivation: return !k.table && activation_to_fused(k.act, op);
  }
  return false;
}

constexpr size_t kMaxFusedLinks = 32;

// The links from links[0] on that have a fused form, two or more, run in one pass over the block
// where the CPU has AVX-512 or AVX2 with F16C (chain_fused.h); how many ran (0: none, the caller
// runs links[0] alone). s: the run's source; the chain input in `in`, updated where the run
// captures it and a later link reads it.
[[gnu::noinline]] size_t fused_run(const ChainLink* links, size_t n, const float* s, float* v, ChainInput& in, int64_t m) {
  if (cpu_vectors() == CpuVectors::kNone) return 0;
  fused::Op ops[kMaxFusedLinks];
  size_t count = 0;
  bool captures = false;
  while (count < n && count < kMaxFusedLinks && to_fused(links[count], ops[count])) {
    captures = captures || links[count].kind == ChainLink::kCaptureInput;
    ++count;
  }
  if (count < 2) return 0;
  bool read_later = false;
  for (size_t k = count; k < n; ++k)
    read_later = read_later || links[k].kind == ChainLink::kChainInputRight || links[k].kind == ChainLink::kChainInputLeft;
  float* x0_out = captures && read_later ? in.x0_buffer : nullptr;
  run_fused({ops, int(count), s, in.x0, v, x0_out, m});
  if (x0_out) in.x0 = x0_out;
  return count;
}

// One block through every link. Cloned per instruction set (AVX-512, AVX2, baseline; GCC picks at
// load time) with every call inlined, so the link loops run 16 or 8 floats wide. No FMA
// contraction (CMakeLists: -ffp-contract=off), so each link rounds as its layer's kernel does.
// Clang refuses target_clones together with flatten: there the block is compiled once, for the
// build's baseline (same results, narrower loops; clang builds here are the sanitizer builds).
#if defined(__clang__)
#define TANDEM_CHAIN_BLOCK_ATTRIBUTES
#else
#define TANDEM_CHAIN_BLOCK_ATTRIBUTES [[gnu::flatten]] __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
TANDEM_CHAIN_BLOCK_ATTRIBUTES
void chain_block(const ChainLink* links, size_t n_links, const float* s, float* v, ChainInput& in, int64_t m) {
  if (n_links == 0 && s != v) std::memcpy(v, s, size_t(m) * sizeof(float));
  for (size_t k = 0; k < n_links;) {
    const float* source = k == 0 ? s : v;
    if (const size_t ran = fused_run(links + k, n_links - k, source, v, in, m)) {
      k += ran;
      continue;
    }
    link_block(links[k], source, v, in, m);
    ++k;
  }
}

// An INT8 block holding a NaN: the links a kGridLookup replaced (outside chain_block's clones, so
// that flattening does not recurse).
[[gnu::noinline]] void replaced_links_block(const std::vector<ChainLink>& links, const float* s, float* v, ChainInput& in,
                                           int64_t n) {
  chain_block(links.data(), links.size(), s, v, in, n);
}

// Activations whose table pays: a transcendental function per element.
bool costly(ActivationType t) {
  switch (t) {
    case ActivationType::kSigmoid: case ActivationType::kTanh: case ActivationType::kElu: case ActivationType::kSelu:
    case ActivationType::kSoftplus: case ActivationType::kSoftsign: case ActivationType::kGeluErf:
    case ActivationType::kGeluTanh: case ActivationType::kScaledTanh:
      return true;
    case ActivationType::kRelu: case ActivationType::kLeakyRelu: case ActivationType::kClip:
    case ActivationType::kHardSigmoid: case ActivationType::kThresholdedRelu:
      return false;
  }
  return false;
}

uint32_t float_bits(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// One table per distinct activation (type, alpha, beta) and grid (FP16, or an INT8 scale), built
// once and kept for the process: apply_activation of every value on the grid, exactly what
// activation_block computes for it (FP16: half_to_float(h); INT8: fl(q * scale), as
// fake_quant_int8 writes it).
const float* activation_table(const ActivationParams& a, float int8_scale) {
  static std::mutex mutex;
  static std::map<std::tuple<int, uint32_t, uint32_t, uint32_t>, std::unique_ptr<std::vector<float>>> tables;
  std::lock_guard<std::mutex> lock(mutex);
  auto& t = tables[{int(a.type), float_bits(a.alpha), float_bits(a.beta), float_bits(int8_scale)}];
  if (!t) {
    if (int8_scale > 0.f) {
      t = std::make_unique<std::vector<float>>(size_t(257));
      for (int q = -128; q < 128; ++q) (*t)[size_t(q + 128)] = apply_activation(a, float(q) * int8_scale);
      (*t)[256] = apply_activation(a, -0.f);  // the rounding keeps the sign of a zero code
    } else {
      t = std::make_unique<std::vector<float>>(size_t(65536));
      for (uint32_t h = 0; h < 65536; ++h) (*t)[h] = apply_activation(a, half_to_float(uint16_t(h)));
    }
  }
  return t->data();
}

// Each costly activation right after a rounding link looks its value up (ChainLink::table).
void use_activation_tables(std::vector<ChainLink>& links) {
  for (size_t k = 1; k < links.size(); ++k) {
    ChainLink& l = links[k];
    const ChainLink& before = links[k - 1];
    if (l.kind != ChainLink::kActivation || !costly(l.act.type)) continue;
    if (before.kind == ChainLink::kRoundFp16) {
      l.table = activation_table(l.act, 0.f), l.table_scale = 0.f;
    } else if (before.kind == ChainLink::kRoundInt8 && before.scalar >= std::numeric_limits<float>::min() &&
               std::isfinite(before.scalar)) {  // (a subnormal scale's products lose the codes' exactness)
      l.table = activation_table(l.act, before.scalar), l.table_scale = before.scalar;
    }
  }
}

// The rounding at r and the links after it: a function of the rounded value alone when no link
// reads the chain input before capturing it (after r), worth a table when two or more links follow.
bool grid_lookup_pays(const std::vector<ChainLink>& links, size_t r, int64_t n) {
  const ChainLink& round = links[r];
  if (round.kind == ChainLink::kRoundFp16) {
    if (n < kGridLookupMinValues) return false;
  } else if (round.kind != ChainLink::kRoundInt8 || !int8_grid_scale(round.scalar)) {
    return false;
  }
  bool captured = false;
  int computing = 0;
  for (size_t k = r + 1; k < links.size(); ++k) {
    switch (links[k].kind) {
      case ChainLink::kCaptureInput: captured = true; break;
      case ChainLink::kChainInputRight: case ChainLink::kChainInputLeft:
        if (!captured) return false;
        ++computing;
        break;
      case ChainLink::kActivation: case ChainLink::kScalarRight: case ChainLink::kScalarLeft:
      case ChainLink::kRoundFp16: case ChainLink::kRoundInt8:
        ++computing;
        break;
      case ChainLink::kGridLookup: return false;
    }
  }
  return computing >= 2;
}

void append_bits(std::string& key, const void* p, size_t n) { key.append(static_cast<const char*>(p), n); }

// The table of a rounding (first of `links`) and its followers: every value of its grid through
// them (apply_chain, the activation tables as the chain would use them: the same bits), kept for
// the process, one per distinct links. FP16: index h holds the links of half_to_float(h), and for
// a NaN code the links of the quiet NaN round_fp16_block writes for it (the sign kept); INT8:
// index q + 128 the links of fl(q * scale), 256 those of -0.
const float* grid_table(const std::vector<ChainLink>& links) {
  std::string key;
  for (const ChainLink& l : links) {
    append_bits(key, &l.kind, sizeof l.kind), append_bits(key, &l.act.type, sizeof l.act.type);
    append_bits(key, &l.act.alpha, sizeof(float)), append_bits(key, &l.act.beta, sizeof(float));
    append_bits(key, &l.op, sizeof l.op), append_bits(key, &l.scalar, sizeof(float));
  }
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<std::vector<float>>> tables;
  std::lock_guard<std::mutex> lock(mutex);
  auto& t = tables[key];
  if (t) return t->data();
  std::vector<ChainLink> followers(links.begin() + 1, links.end());
  use_activation_tables(followers);
  if (links[0].kind == ChainLink::kRoundFp16) {
    t = std::make_unique<std::vector<float>>(size_t(65536));
    for (uint32_t h = 0; h < 65536; ++h) {
      const bool nan = (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0;
      const uint32_t quiet_nan = (h & 0x8000u ? 0x80000000u : 0u) | 0x7fc00000u;
      float f = half_to_float(uint16_t(h));
      if (nan) std::memcpy(&f, &quiet_nan, sizeof f);
      (*t)[h] = f;
    }
  } else {
    const float s = links[0].scalar;
    t = std::make_unique<std::vector<float>>(size_t(257));
    for (int q = -128; q < 128; ++q) (*t)[size_t(q + 128)] = float(q) * s;
    (*t)[256] = -0.f * s;
  }
  apply_chain(followers, t->data(), t->data(), int64_t(t->size()));
  return t->data();
}

// The first rounding whose followers grid_lookup_pays becomes a kGridLookup in their place.
void use_grid_lookup(std::vector<ChainLink>& links, int64_t n) {
  for (size_t r = 0; r < links.size(); ++r) {
    if (!grid_lookup_pays(links, r, n)) continue;
    std::vector<ChainLink> replaced(links.begin() + std::ptrdiff_t(r), links.end());
    ChainLink lookup;
    lookup.kind = ChainLink::kGridLookup;
    lookup.table = grid_table(replaced);
    lookup.table_scale = replaced[0].kind == ChainLink::kRoundInt8 ? replaced[0].scalar : 0.f;
    use_activation_tables(replaced);
    lookup.replaced = std::make_shared<const std::vector<ChainLink>>(std::move(replaced));
    links.resize(r);
    links.push_back(std::move(lookup));
    return;
  }
}

}  // namespace

bool links_to_fused(const std::vector<ChainLink>& links, std::vector<fused::Op>& ops) {
  for (const ChainLink& k : links)
    if (!to_fused(k, ops.emplace_back())) return false;
  return true;
}

void run_fused(const fused::Run& r) {
  switch (cpu_vectors()) {
    case CpuVectors::kAvx512: return fused::run_avx512(r);
    case CpuVectors::kAvx2: return fused::run_avx2(r);
    case CpuVectors::kNone: break;
  }
  std::abort();  // callers check cpu_vectors() first
}

void prepare_chain(std::vector<ChainLink>& links, int64_t n) {
  use_grid_lookup(links, n);
  use_activation_tables(links);
}

CodesTail codes_tail(const std::vector<ChainLink>& links) {
  CodesTail t;
  const size_t n = links.size();
  if (n == 0 || links[n - 1].kind != ChainLink::kRoundInt8 || !int8_grid_scale(links[n - 1].scalar)) return t;
  t.links = 1, t.scale = links[n - 1].scalar;
  if (n >= 2 && links[n - 2].kind == ChainLink::kRoundFp16) t.links = 2, t.fp16_first = true;
  return t;
}

float chain_final_int8_scale(const std::vector<ChainLink>& links) {
  if (links.empty()) return 0.f;
  const ChainLink& last = links.back().kind == ChainLink::kGridLookup ? links.back().replaced->back() : links.back();
  return last.kind == ChainLink::kRoundInt8 && int8_grid_scale(last.scalar) ? last.scalar : 0.f;
}

void apply_chain(const std::vector<ChainLink>& links, const float* x, float* y, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  // The chain's input is x unless a capture link takes it later (then no link reads it before).
  bool needs_x0 = false;
  for (const ChainLink& k : links) {
    if (k.kind == ChainLink::kCaptureInput) break;
    needs_x0 = needs_x0 || k.kind == ChainLink::kChainInputLeft || k.kind == ChainLink::kChainInputRight;
  }
  // Large tensors only: a parallel region costs more than a small chain (docs/cpu-backend.md).
  // The first link reads x and writes y; the chain input is read where it is unless the chain
  // runs in place (then it is copied before the links overwrite it).
  parallel_for(blocks, n >= 65536, [&](int64_t b) {
    alignas(64) float x0_buffer[kBlock];
    const int64_t at = b * kBlock, m = std::min(kBlock, n - at);
    float* v = y + at;
    ChainInput in{x + at, x0_buffer};
    if (needs_x0 && v == x + at) {
      std::memcpy(x0_buffer, x + at, size_t(m) * sizeof(float));
      in.x0 = x0_buffer;
    }
    chain_block(links.data(), links.size(), x + at, v, in, m);
  });
}

void apply_chain_codes(const std::vector<ChainLink>& links, const float* x, int8_t* q, int64_t n, float inv_scale) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  // The last roundings and the codes in one pass where the chain ends with them.
  const CodesTail tail = codes_tail(links);
  const size_t body = links.size() - tail.links;
  // x is never overwritten here: the chain input is read where it is.
  parallel_for(blocks, n >= 65536, [&](int64_t b) {
    alignas(64) float x0_buffer[kBlock], v[kBlock];
    const int64_t at = b * kBlock, m = std::min(kBlock, n - at);
    ChainInput in{x + at, x0_buffer};
    chain_block(links.data(), body, x + at, v, in, m);
    if (tail.links) return round_to_codes(v, q + at, m, tail.scale, tail.fp16_first);
    int8_codes(v, q + at, m, inv_scale, SimdLevel::kBest);
  });
}

namespace {

// Whether grid's codes can be read back from its values: fl(q * s), then fp16 of that, lies within
// s / 16 of q * s for |q| <= 128 (half's relative step 2^-11, or 2^-25 absolute below its normal
// range, which s >= 2^-20 keeps under s / 32), and 128 s stays finite in half.
bool codes_recoverable(const InputGrid& grid) {
  const float s = grid.int8_scale;
  if (!(s >= std::numeric_limits<float>::min()) || !std::isfinite(s)) return false;
  return !grid.then_fp16 || (s >= 0x1p-20f && 128.f * s <= 65504.f);
}

// A costly activation that computes per element (no table from the rounding link before it).
bool computes_costly_activation(const std::vector<ChainLink>& links) {
  for (const ChainLink& k : links)
    if (k.kind == ChainLink::kActivation && !k.table && costly(k.act.type)) return true;
  return false;
}

Kernel make_coded_chain_kernel(const std::vector<ChainLink>& links, int64_t n, InputGrid grid) {
  // The grid's values as the roundings wrote them, then the chain over them.
  auto table = std::make_shared<std::vector<float>>(size_t(257));
  for (int q = -128; q < 128; ++q) (*table)[size_t(q + 128)] = float(q) * grid.int8_scale;
  (*table)[256] = -0.f;
  std::vector<ChainLink> rounding(1);
  rounding[0].kind = ChainLink::kRoundInt8;
  rounding[0].scalar = grid.int8_scale;
  if (grid.then_fp16) rounding.emplace_back().kind = ChainLink::kRoundFp16;
  apply_chain(rounding, table->data(), table->data(), 257);
  apply_chain(links, table->data(), table->data(), 257);
  const float scale = grid.int8_scale;
  return [links, n, table, scale](const std::vector<void*>& in, const std::vector<void*>& out) {
    const float* x = static_cast<const float*>(in[0]);
    float* y = static_cast<float*>(out[0]);
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    parallel_for(blocks, n >= 65536, [&](int64_t b) {
      const int64_t at = b * kBlock, m = std::min(kBlock, n - at);
      if (!lookup_codes(table->data(), scale, x + at, y + at, m)) apply_chain(links, x + at, y + at, m);
    });
  };
}

}  // namespace

Kernel make_chain_kernel(std::vector<ChainLink> links, int64_t n, InputGrid grid) {
  prepare_chain(links, n);
  if (n >= 4096 && codes_recoverable(grid) && computes_costly_activation(links))
    return make_coded_chain_kernel(links, n, grid);
  return [links = std::move(links), n](const std::vector<void*>& in, const std::vector<void*>& out) {
    apply_chain(links, static_cast<const float*>(in[0]), static_cast<float*>(out[0]), n);
  };
}

}  // namespace tandem::cpu
