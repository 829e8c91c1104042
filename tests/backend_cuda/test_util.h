// Small helpers for the CUDA backend tests: build tiny networks by hand, run them, compare.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tandem/cuda.h"
#include "tandem/network.h"
#include "tandem/runtime.h"

namespace tandem::test {

#define SKIP_WITHOUT_CUDA()                                           \
  do {                                                                \
    std::string why_;                                                 \
    if (!::tandem::cuda_available(&why_)) GTEST_SKIP() << why_ << ": skipped"; \
  } while (0)

struct NetBuilder {
  Network n;
  TensorId input(const std::string& name, Dims d, DataType t = DataType::kFloat) {
    TensorId id = n.add_tensor({name, t, std::move(d)});
    n.tensors[id].is_input = true;
    n.inputs.push_back(id);
    return id;
  }
  TensorId tensor(const std::string& name, Dims d, DataType t = DataType::kFloat) {
    return n.add_tensor({name, t, std::move(d)});
  }
  WeightsId weights(const std::string& name, Dims d, const std::vector<float>& v) {
    Weights w;
    w.name = name;
    w.type = DataType::kFloat;
    w.dims = std::move(d);
    w.bytes.resize(v.size() * 4);
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return n.add_weights(std::move(w));
  }
  template <class T>
  WeightsId weights_t(const std::string& name, DataType t, Dims d, const std::vector<T>& v) {
    Weights w;
    w.name = name;
    w.type = t;
    w.dims = std::move(d);
    w.bytes.resize(v.size() * sizeof(T));
    std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return n.add_weights(std::move(w));
  }
  // A Constant layer producing a tensor from weights.
  TensorId constant(const std::string& name, DataType t, Dims d, WeightsId w) {
    TensorId id = tensor(name, d, t);
    layer(name + "_const", LayerKind::kConstant, {}, {id}, ConstantParams{w});
    return id;
  }
  LayerId layer(const std::string& name, LayerKind k, std::vector<TensorId> in,
                std::vector<TensorId> out, LayerParams p = NoParams{}) {
    Layer l;
    l.name = name;
    l.kind = k;
    l.inputs = std::move(in);
    l.outputs = std::move(out);
    l.params = std::move(p);
    return n.add_layer(std::move(l));
  }
  void output(TensorId t) {
    n.tensors[t].is_output = true;
    n.outputs.push_back(t);
  }
};

inline HostTensor host(const std::string& name, Dims d, const std::vector<float>& v) {
  HostTensor h;
  h.name = name;
  h.type = DataType::kFloat;
  h.dims = std::move(d);
  h.data.resize(v.size() * 4);
  std::memcpy(h.data.data(), v.data(), h.data.size());
  return h;
}
template <class T>
inline HostTensor host_t(const std::string& name, DataType t, Dims d, const std::vector<T>& v) {
  HostTensor h;
  h.name = name;
  h.type = t;
  h.dims = std::move(d);
  h.data.resize(v.size() * sizeof(T));
  std::memcpy(h.data.data(), v.data(), h.data.size());
  return h;
}
template <class T = float>
inline std::vector<T> values(const HostTensor& h) {
  std::vector<T> v(h.data.size() / sizeof(T));
  std::memcpy(v.data(), h.data.data(), h.data.size());
  return v;
}
inline void expect_near(const std::vector<float>& got, const std::vector<float>& want,
                        float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * std::max(1.f, std::fabs(want[i]))) << "at " << i;
}

// Runs a one-output network on the GPU and returns the output's values.
inline std::vector<float> run1(const Network& n, const TensorMap& in, const ExecOptions& o = {}) {
  auto ex = make_cuda_executor(n, o);
  TensorMap out = ex->run(in);
  return values(out.at(n.tensors[n.outputs[0]].name));
}

// How far a is from b: max |a - b| / max |b| and the cosine (NaN in a fails the test).
struct Agreement {
  double max_rel = 0;
  double cosine = 0;
};
inline Agreement agree(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double dot = 0, na = 0, nb = 0, maxd = 0, maxb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    EXPECT_FALSE(std::isnan(a[i])) << "NaN at " << i;
    dot += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
    maxd = std::max(maxd, double(std::fabs(a[i] - b[i])));
    maxb = std::max(maxb, double(std::fabs(b[i])));
  }
  return {maxd / std::max(maxb, 1e-30), dot / std::sqrt(std::max(na * nb, 1e-300))};
}

// n values drawn uniformly from [lo, hi) by a seeded generator: the same inputs on every run.
inline std::vector<float> random_values(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

}  // namespace tandem::test
