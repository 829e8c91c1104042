// What each operation of the IR computes, once, for every backend: the CPU reference kernels,
// the CUDA kernels and import-time constant folding call these functions, so a kind's arithmetic
// cannot drift between them. Header-only, C++17, no std::string: nvcc compiles it for the device.
//
// Each function is a switch over a real tandem enum without `default`: -Werror=switch (C++) and
// the static_asserts on the enum counts below (nvcc too) break the build when a new enumerator
// has no case. T is float (kernels) or double (folding); constants are written as T(...) so that
// float code computes exactly what it computed before this header existed.
#pragma once

#include <cmath>

#include "tandem/network.h"

#if defined(__CUDACC__)
#define TANDEM_HD __host__ __device__
#else
#define TANDEM_HD
#endif

namespace tandem::ops {

static_assert(kActivationTypeCount == 14, "op_semantics.h: give the new ActivationType a case in activation()");
static_assert(kElementWiseOpCount == 14, "op_semantics.h: give the new ElementWiseOp a case in elementwise()");
static_assert(kUnaryOpCount == 23, "op_semantics.h: give the new UnaryOp a case in unary()");
static_assert(kReduceOpCount == 5, "op_semantics.h: give the new ReduceOp a case in the reduce_* functions");
static_assert(kPoolingTypeCount == 2, "op_semantics.h: give the new PoolingType a case in the pool_* functions");

// The counts above name the last enumerator too (a count edited without the enum, or the
// reverse, stops here).
static_assert(int(ActivationType::kScaledTanh) + 1 == kActivationTypeCount);
static_assert(int(ElementWiseOp::kLess) + 1 == kElementWiseOpCount);
static_assert(int(UnaryOp::kRound) + 1 == kUnaryOpCount);
static_assert(int(ReduceOp::kAvg) + 1 == kReduceOpCount);
static_assert(int(PoolingType::kAverage) + 1 == kPoolingTypeCount);

// std::max / std::min exactly (NaN handling included: the first argument wins a tie or NaN
// comparison), usable on the device.
template <class T> TANDEM_HD inline T max_of(T a, T b) { return (a < b) ? b : a; }
template <class T> TANDEM_HD inline T min_of(T a, T b) { return (b < a) ? b : a; }

// ActivationParams: alpha and beta as in network.h (leaky slope, clip bounds, ...).
template <class T>
TANDEM_HD inline T activation(ActivationType type, T x, T alpha, T beta) {
  using std::exp; using std::tanh; using std::log1p; using std::fabs; using std::erf;
  switch (type) {
    case ActivationType::kRelu: return x > T(0) ? x : T(0);
    case ActivationType::kSigmoid: return T(1) / (T(1) + exp(-x));
    case ActivationType::kTanh: return tanh(x);
    case ActivationType::kLeakyRelu: return x >= T(0) ? x : alpha * x;
    case ActivationType::kClip: return min_of(max_of(x, alpha), beta);
    case ActivationType::kHardSigmoid: return max_of(T(0), min_of(T(1), alpha * x + beta));
    case ActivationType::kElu: return x >= T(0) ? x : alpha * (exp(x) - T(1));
    case ActivationType::kSelu: return x > T(0) ? beta * x : beta * alpha * (exp(x) - T(1));
    case ActivationType::kSoftplus: return alpha * log1p(exp(beta * x));
    case ActivationType::kSoftsign: return x / (T(1) + fabs(x));
    case ActivationType::kGeluErf: return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752)));
    case ActivationType::kGeluTanh:
      return T(0.5) * x * (T(1) + tanh(T(0.7978845608028654) * (x + T(0.044715) * x * x * x)));
    case ActivationType::kThresholdedRelu: return x > alpha ? x : T(0);
    case ActivationType::kScaledTanh: return alpha * tanh(beta * x);
  }
  return x;
}

// Floating-point semantics (float or double operands). Integer tensors differ only in kDiv,
// which truncates: see elementwise_integral_div. Comparisons and logic give 1 or 0.
template <class T>
TANDEM_HD inline T elementwise(ElementWiseOp op, T a, T b) {
  using std::pow; using std::floor;
  switch (op) {
    case ElementWiseOp::kSum: return a + b;
    case ElementWiseOp::kProd: return a * b;
    case ElementWiseOp::kMax: return max_of(a, b);
    case ElementWiseOp::kMin: return min_of(a, b);
    case ElementWiseOp::kSub: return a - b;
    case ElementWiseOp::kDiv: return a / b;
    case ElementWiseOp::kPow: return pow(a, b);
    case ElementWiseOp::kFloorDiv: return floor(a / b);
    case ElementWiseOp::kAnd: return T((a != T(0)) && (b != T(0)));
    case ElementWiseOp::kOr: return T((a != T(0)) || (b != T(0)));
    case ElementWiseOp::kXor: return T((a != T(0)) != (b != T(0)));
    case ElementWiseOp::kEqual: return T(a == b);
    case ElementWiseOp::kGreater: return T(a > b);
    case ElementWiseOp::kLess: return T(a < b);
  }
  return a;
}

// kDiv of two integer tensors (values carried in a floating type): rounds toward zero.
template <class T>
TANDEM_HD inline T elementwise_integral_div(T a, T b) {
  using std::trunc;
  return trunc(a / b);
}

template <class T>
TANDEM_HD inline T unary(UnaryOp op, T x) {
  using std::exp; using std::log; using std::sqrt; using std::fabs; using std::sin; using std::cos;
  using std::tan; using std::sinh; using std::cosh; using std::asin; using std::acos; using std::atan;
  using std::asinh; using std::acosh; using std::atanh; using std::ceil; using std::floor;
  using std::erf; using std::nearbyint;
  switch (op) {
    case UnaryOp::kExp: return exp(x);
    case UnaryOp::kLog: return log(x);
    case UnaryOp::kSqrt: return sqrt(x);
    case UnaryOp::kRecip: return T(1) / x;
    case UnaryOp::kAbs: return fabs(x);
    case UnaryOp::kNeg: return -x;
    case UnaryOp::kSin: return sin(x);
    case UnaryOp::kCos: return cos(x);
    case UnaryOp::kTan: return tan(x);
    case UnaryOp::kSinh: return sinh(x);
    case UnaryOp::kCosh: return cosh(x);
    case UnaryOp::kAsin: return asin(x);
    case UnaryOp::kAcos: return acos(x);
    case UnaryOp::kAtan: return atan(x);
    case UnaryOp::kAsinh: return asinh(x);
    case UnaryOp::kAcosh: return acosh(x);
    case UnaryOp::kAtanh: return atanh(x);
    case UnaryOp::kCeil: return ceil(x);
    case UnaryOp::kFloor: return floor(x);
    case UnaryOp::kErf: return erf(x);
    case UnaryOp::kNot: return x == T(0) ? T(1) : T(0);
    case UnaryOp::kSign: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::kRound: return nearbyint(x);  // half to even (the default rounding mode)
  }
  return x;
}

// Reduce: acc = reduce_identity; acc = reduce_combine(acc, x) per element; reduce_finish.
template <class T>
TANDEM_HD inline T reduce_identity(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: case ReduceOp::kAvg: return T(0);
    case ReduceOp::kProd: return T(1);
    case ReduceOp::kMax: return -T(INFINITY);
    case ReduceOp::kMin: return T(INFINITY);
  }
  return T(0);
}
template <class T>
TANDEM_HD inline T reduce_combine(ReduceOp op, T acc, T x) {
  switch (op) {
    case ReduceOp::kSum: case ReduceOp::kAvg: return acc + x;
    case ReduceOp::kProd: return acc * x;
    case ReduceOp::kMax: return max_of(acc, x);
    case ReduceOp::kMin: return min_of(acc, x);
  }
  return acc;
}
// count: how many elements were combined (kAvg divides by it).
template <class T>
TANDEM_HD inline T reduce_finish(ReduceOp op, T acc, long long count) {
  switch (op) {
    case ReduceOp::kAvg: return acc / T(count);
    case ReduceOp::kSum: case ReduceOp::kProd: case ReduceOp::kMax: case ReduceOp::kMin: return acc;
  }
  return acc;
}

// Pooling over a window: the same three steps. Average divides by the count the padding rule
// gives (PoolingParams::average_count_excludes_padding), which the caller computes.
template <class T>
TANDEM_HD inline T pool_identity(PoolingType type) {
  switch (type) {
    case PoolingType::kMax: return -T(INFINITY);
    case PoolingType::kAverage: return T(0);
  }
  return T(0);
}
template <class T>
TANDEM_HD inline T pool_combine(PoolingType type, T acc, T x) {
  switch (type) {
    case PoolingType::kMax: return max_of(acc, x);
    case PoolingType::kAverage: return acc + x;
  }
  return acc;
}
template <class T>
TANDEM_HD inline T pool_finish(PoolingType type, T acc, long long count) {
  switch (type) {
    case PoolingType::kMax: return acc;
    case PoolingType::kAverage: return acc / T(count);
  }
  return acc;
}

}  // namespace tandem::ops
