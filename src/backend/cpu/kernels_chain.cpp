// Point-wise chains: several point-wise layers (activations; element-wise ops of the running value
// with a scalar or with the chain's input) in one pass over memory. Each link computes exactly
// what its layer's own kernel computes (ops::activation / ops::elementwise in float, one rounding
// per link), so a chain changes no value, only the number of passes over large tensors.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "kernels.h"
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

void activation_block(const ActivationParams& a, float* v, int64_t n) {
  const float al = a.alpha, be = a.beta;
  auto map = [&](auto f) {
    for (int64_t i = 0; i < n; ++i) v[i] = f(v[i]);
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

void link_block(const ChainLink& k, float* v, float* x0, int64_t n) {
  switch (k.kind) {
    case ChainLink::kActivation:
      if (k.fp16_table) return lookup_fp16_table(k.fp16_table, v, n);
      activation_block(k.act, v, n);
      return;
    case ChainLink::kScalarRight:
      elementwise_block(k.op, [&](auto f) { for (int64_t i = 0; i < n; ++i) v[i] = f(v[i], k.scalar); });
      return;
    case ChainLink::kScalarLeft:
      elementwise_block(k.op, [&](auto f) { for (int64_t i = 0; i < n; ++i) v[i] = f(k.scalar, v[i]); });
      return;
    case ChainLink::kChainInputRight:
      elementwise_block(k.op, [&](auto f) { for (int64_t i = 0; i < n; ++i) v[i] = f(v[i], x0[i]); });
      return;
    case ChainLink::kChainInputLeft:
      elementwise_block(k.op, [&](auto f) { for (int64_t i = 0; i < n; ++i) v[i] = f(x0[i], v[i]); });
      return;
    // The rounding functions dispatch on the CPU themselves (F16C / AVX or scalar, the same bits:
    // fp16_round.cpp), whichever clone of chain_block calls them.
    case ChainLink::kRoundFp16:
      round_fp16_block(v, n);
      return;
    case ChainLink::kRoundInt8:
      fake_quant_int8_block(v, n, k.scalar);
      return;
    case ChainLink::kCaptureInput:
      std::memcpy(x0, v, size_t(n) * sizeof(float));
      return;
  }
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
void chain_block(const ChainLink* links, size_t n_links, float* v, float* x0, int64_t m) {
  for (size_t k = 0; k < n_links; ++k) link_block(links[k], v, x0, m);
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

// One table per distinct activation (type, alpha, beta), built once and kept for the process:
// table[h] = apply_activation(a, half_to_float(h)), exactly what activation_block computes.
const float* fp16_table(const ActivationParams& a) {
  static std::mutex mutex;
  static std::map<std::tuple<int, uint32_t, uint32_t>, std::unique_ptr<std::vector<float>>> tables;
  uint32_t al = 0, be = 0;
  std::memcpy(&al, &a.alpha, sizeof al);
  std::memcpy(&be, &a.beta, sizeof be);
  std::lock_guard<std::mutex> lock(mutex);
  auto& t = tables[{int(a.type), al, be}];
  if (!t) {
    t = std::make_unique<std::vector<float>>(size_t(65536));
    for (uint32_t h = 0; h < 65536; ++h) (*t)[h] = apply_activation(a, half_to_float(uint16_t(h)));
  }
  return t->data();
}

}  // namespace

void prepare_chain(std::vector<ChainLink>& links) {
  for (size_t k = 1; k < links.size(); ++k)
    if (links[k].kind == ChainLink::kActivation && links[k - 1].kind == ChainLink::kRoundFp16 && costly(links[k].act.type))
      links[k].fp16_table = fp16_table(links[k].act);
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
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (int64_t b = 0; b < blocks; ++b) {
    alignas(64) float x0[kBlock];
    const int64_t at = b * kBlock, m = std::min(kBlock, n - at);
    float* v = y + at;
    if (needs_x0) std::memcpy(x0, x + at, size_t(m) * sizeof(float));
    if (v != x + at) std::memcpy(v, x + at, size_t(m) * sizeof(float));
    chain_block(links.data(), links.size(), v, x0, m);
  }
}

Kernel make_chain_kernel(std::vector<ChainLink> links, int64_t n) {
  prepare_chain(links);
  return [links = std::move(links), n](const std::vector<void*>& in, const std::vector<void*>& out) {
    apply_chain(links, static_cast<const float*>(in[0]), static_cast<float*>(out[0]), n);
  };
}

}  // namespace tandem::cpu
