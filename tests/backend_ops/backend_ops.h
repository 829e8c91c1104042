// The cross-backend op test (in the spirit of ggml's test-backend-ops): every case of op_cases.h,
// in FP32 and, for layers with float outputs, with the layer in FP16 and INT8 numerics
// (ExecOptions::numerics), run on a backend and compared with the CPU reference
// (ExecOptions::reference_kernels: plain loops, no oneDNN, no fusion) under the same numerics.
//
// Tolerances, per element, with M = max(1, max |reference|) over the output tensor:
//   FP32  2e-5 * M: the backends accumulate in other orders (oneDNN blocks, cuDNN tiles) and use
//         their own exp/log/tanh approximations; FP32's epsilon is 1.2e-7, and 2e-5 leaves room
//         for ~100-term sums of values up to M while catching any wrong index, pad or parameter
//         (those err by O(M)).
//   FP16  2e-5 * M + 2^-10 * |reference|: the layer's output is rounded to FP16, so an FP32
//         difference across a rounding boundary becomes one FP16 step (2^-10 relative at most).
//   INT8  2e-5 * M + 1.01 * output scale: the output is quantized to its scale, so an FP32
//         difference across a rounding boundary becomes one quantization step.
//   Integer and boolean outputs: exact.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "op_cases.h"
#include "tandem/numerics.h"
#include "tandem/runtime.h"

namespace tandem::ops_test {

struct BackendUnderTest {
  std::string name;
  std::function<std::unique_ptr<Executor>(const Network&, const ExecOptions&)> make;
  // Reviewed exceptions: a run whose "Kind label precision" starts with the prefix may differ,
  // for the reason given (a layer the backend refuses to build). A prefix that matches no
  // differing run fails the test (remove it).
  std::vector<std::pair<std::string, std::string>> known_differences;
};

inline double value_at(const HostTensor& t, int64_t i) {
  switch (t.type) {
    case DataType::kFloat: return t.f32()[i];
    case DataType::kHalf: {
      uint16_t h;
      std::memcpy(&h, t.data.data() + 2 * i, 2);
      const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
      const double s = (h & 0x8000u) ? -1 : 1;
      if (exp == 0) return s * std::ldexp(double(mant), -24);
      if (exp == 31) return mant ? NAN : s * INFINITY;
      return s * std::ldexp(double(mant | 0x400), int(exp) - 25);
    }
    case DataType::kInt8: return reinterpret_cast<const int8_t*>(t.data.data())[i];
    case DataType::kUInt8: return t.data[size_t(i)];
    case DataType::kInt32: return reinterpret_cast<const int32_t*>(t.data.data())[i];
    case DataType::kInt64: return double(reinterpret_cast<const int64_t*>(t.data.data())[i]);
    case DataType::kBool: return t.data[size_t(i)] != 0;
    case DataType::kBFloat16: {
      uint16_t b;
      std::memcpy(&b, t.data.data() + 2 * i, 2);
      return bfloat16_to_float(b);
    }
  }
  return 0;
}

inline HostTensor make_input(const Tensor& t, const InputRange& r, uint32_t seed) {
  HostTensor h = HostTensor::zeros(t.name, t.type, t.dims);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(r.lo, r.hi);
  for (int64_t i = 0; i < h.count(); ++i) {
    double v = u(rng);
    if (r.away_from_zero) v = (rng() & 1 ? 1 : -1) * std::uniform_real_distribution<double>(0.5, r.hi)(rng);
    switch (t.type) {
      case DataType::kFloat: h.f32()[i] = float(v); break;
      case DataType::kHalf: break;  // no case feeds FP16 inputs (zeros)
      case DataType::kInt8: reinterpret_cast<int8_t*>(h.data.data())[i] = int8_t(std::lround(v)); break;
      case DataType::kUInt8: h.data[size_t(i)] = uint8_t(std::lround(v)); break;
      case DataType::kInt32: reinterpret_cast<int32_t*>(h.data.data())[i] = int32_t(std::lround(v)); break;
      case DataType::kInt64: reinterpret_cast<int64_t*>(h.data.data())[i] = std::llround(v); break;
      case DataType::kBool: h.data[size_t(i)] = rng() & 1; break;
      case DataType::kBFloat16: {
        const uint16_t b = float_to_bfloat16(float(v));
        std::memcpy(h.data.data() + 2 * i, &b, 2);
        break;
      }
    }
  }
  return h;
}

inline TensorMap make_inputs(const OpCase& c) {
  TensorMap in;
  uint32_t seed = uint32_t(std::hash<std::string>{}(c.label));
  for (TensorId id : c.net.inputs) {
    const Tensor& t = c.net.tensors[size_t(id)];
    in[t.name] = make_input(t, c.ranges.at(t.name), seed++);
  }
  return in;
}

inline bool float_outputs(const OpCase& c) {
  for (TensorId t : c.net.layers[size_t(c.op_layer)].outputs)
    if (c.net.tensors[size_t(t)].type != DataType::kFloat) return false;
  return true;
}

// The op layer in `p`; INT8 scales (max |x| / 127) of its float tensors from an FP32 run.
inline Numerics numerics_for(const OpCase& c, Precision p, const TensorMap& fp32_tensors) {
  Numerics n;
  if (p == Precision::kFP32) return n;
  n.layer_precision.assign(c.net.layers.size(), Precision::kUnset);
  n.layer_precision[size_t(c.op_layer)] = p;
  if (p != Precision::kINT8) return n;
  const Layer& l = c.net.layers[size_t(c.op_layer)];
  for (const auto* list : {&l.inputs, &l.outputs})
    for (TensorId id : *list) {
      const Tensor& t = c.net.tensors[size_t(id)];
      if (t.type != DataType::kFloat) continue;
      const HostTensor& h = fp32_tensors.at(t.name);
      double m = 0;
      for (int64_t i = 0; i < h.count(); ++i)  // -inf: a max-pooling window wholly in the padding
        if (std::isfinite(h.f32()[i])) m = std::max(m, std::fabs(double(h.f32()[i])));
      n.tensor_scales[t.name] = m > 0 ? float(m / 127) : 1.f;
    }
  return n;
}

struct Comparison {
  bool ok = true;
  double max_err = 0;  // max |got - want| / M over the outputs
  std::string why;
};

inline Comparison compare_outputs(const OpCase& c, const TensorMap& got, const TensorMap& want, Precision p,
                                  const Numerics& n) {
  Comparison r;
  for (TensorId id : c.net.outputs) {
    const std::string& name = c.net.tensors[size_t(id)].name;
    auto g = got.find(name);
    const HostTensor& w = want.at(name);
    if (g == got.end()) return {false, 0, "output '" + name + "' missing"};
    if (g->second.dims != w.dims || g->second.type != w.type)
      return {false, 0, "output '" + name + "' is " + std::string(to_string(g->second.type)) + " " +
                            dims_to_string(g->second.dims) + ", the reference " + std::string(to_string(w.type)) + " " +
                            dims_to_string(w.dims)};
    const bool exact = w.type != DataType::kFloat && w.type != DataType::kHalf;
    double m = 1;
    for (int64_t i = 0; i < w.count(); ++i)
      if (std::isfinite(value_at(w, i))) m = std::max(m, std::fabs(value_at(w, i)));
    const double step = p == Precision::kINT8 && n.tensor_scales.count(name) ? 1.01 * n.tensor_scales.at(name) : 0;
    for (int64_t i = 0; i < w.count(); ++i) {
      const double a = value_at(g->second, i), b = value_at(w, i);
      if ((std::isnan(a) && std::isnan(b)) || (std::isinf(b) && a == b)) continue;
      const double tol = exact ? 0 : 2e-5 * m + (p == Precision::kFP16 ? std::ldexp(std::fabs(b), -10) : 0) + step;
      const double err = std::fabs(a - b);
      if (std::isfinite(err)) r.max_err = std::max(r.max_err, err / m);
      if (!(err <= tol)) {
        char buf[200];
        std::snprintf(buf, sizeof buf, "output '%s' element %lld: got %.8g, reference %.8g (tolerance %.3g)",
                      name.c_str(), static_cast<long long>(i), a, b, tol);
        return {false, r.max_err, buf};
      }
    }
  }
  return r;
}

struct KindSummary {
  int cases = 0, runs = 0;
  std::map<std::string, double> max_err;  // precision -> max normalized error
  std::vector<std::string> failures;
  std::map<std::string, int> known;  // prefix -> differing runs it excused
};

inline const std::pair<std::string, std::string>* known_difference(const BackendUnderTest& b, const std::string& where) {
  for (const auto& k : b.known_differences)
    if (where.rfind(k.first, 0) == 0) return &k;
  return nullptr;
}

inline std::unique_ptr<Executor> reference_executor(const Network& net, const Numerics& n, bool keep_all) {
  ExecOptions o;
  o.numerics = n;
  o.reference_kernels = true;
  return make_cpu_executor(net, o, keep_all);
}

// Runs every case of `kind` on `backend` in each precision and compares with the reference.
inline KindSummary run_kind(LayerKind kind, const BackendUnderTest& backend) {
  KindSummary s;
  for (const OpCase& c : cases_for(kind)) {
    ++s.cases;
    const TensorMap in = make_inputs(c);
    const std::string id = std::string(to_string(kind)) + " " + c.label;
    TensorMap fp32_all;
    try {
      auto ref = reference_executor(c.net, {}, true);
      ref->run(in);
      fp32_all = ref->all_tensors();
    } catch (const Error& e) {
      s.failures.push_back(id + ": the CPU reference failed: " + e.what());
      continue;
    }
    std::vector<Precision> precisions = {Precision::kFP32};
    if (float_outputs(c)) precisions.insert(precisions.end(), {Precision::kFP16, Precision::kINT8});
    for (Precision p : precisions) {
      const std::string where = id + " " + std::string(to_string(p));
      const Numerics n = numerics_for(c, p, fp32_all);
      ExecOptions opt;
      opt.numerics = n;
      Comparison cmp;
      try {
        const TensorMap want = reference_executor(c.net, n, false)->run(in);
        const TensorMap got = backend.make(c.net, opt)->run(in);
        cmp = compare_outputs(c, got, want, p, n);
      } catch (const Error& e) {
        cmp = {false, 0, std::string("error: ") + e.what()};
      }
      ++s.runs;
      double& m = s.max_err[std::string(to_string(p))];
      m = std::max(m, cmp.max_err);
      if (cmp.ok) continue;
      if (const auto* k = known_difference(backend, where)) ++s.known[k->first];
      else s.failures.push_back(where + ": " + cmp.why);
    }
  }
  return s;
}

inline void check_kind(LayerKind kind, const BackendUnderTest& backend) {
  const KindSummary s = run_kind(kind, backend);
  std::string errs;
  for (const auto& [p, e] : s.max_err) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " %s %.2e", p.c_str(), e);
    errs += buf;
  }
  int known = 0;
  for (const auto& [prefix, n] : s.known) known += n;
  std::printf("backend-ops %-5s %-15s %4d cases %5d runs  max |err|/M:%s%s\n", backend.name.c_str(),
              std::string(to_string(kind)).c_str(), s.cases, s.runs, errs.c_str(),
              known ? ("  (" + std::to_string(known) + " known differences)").c_str() : "");
  std::string list;
  for (const std::string& f : s.failures) list += "\n  " + f;
  for (const auto& [prefix, why] : backend.known_differences)
    if (prefix.rfind(std::string(to_string(kind)) + " ", 0) == 0 && !s.known.count(prefix))
      list += "\n  known difference '" + prefix + "' (" + why + ") matches no differing run: remove it";
  EXPECT_GT(s.cases, 0) << to_string(kind) << " has no case in tests/backend_ops/op_cases.h";
  EXPECT_TRUE(list.empty()) << s.failures.size() << " of " << s.runs << " runs of " << to_string(kind)
                                  << " on " << backend.name << " differ from the CPU reference:" << list;
}

// gtest parameter: every LayerKind, by its table index.
inline std::string kind_param_name(const ::testing::TestParamInfo<int>& info) {
  return std::string(to_string(LayerKind(info.param)));
}

}  // namespace tandem::ops_test
