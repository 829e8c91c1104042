// RandomUniformLike. onnx-tensorrt imports it as an IFillLayer kRANDOM_UNIFORM with alpha = low,
// beta = high, the output type from `dtype` (FLOAT or FLOAT16 only: "Unsupported data type"
// otherwise) or the input's, and `seed` ignored ("TensorRT currently ignores the seed field";
// onnxOpImporters.cpp randomHelper, https://github.com/onnx/onnx-tensorrt, commit 96e7811).
//
// tandem draws the values at import, deterministically, and the layer is a Constant of them: the
// same values every run, which is what a generator with a fixed seed gives run after run. The
// generator (random_uniform_values, internal.h) is documented in docs/onnx-import.md.
#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "importer.h"
#include "tandem_onnx_pb/onnx.pb.h"

namespace tandem::onnx_detail {

namespace {

// SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", 2014): one
// 64-bit state, advanced by the golden-ratio increment, then mixed.
uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

using Outs = std::vector<TensorId>;

Outs op_random_uniform_like(Importer& I) {
  const Value& x = I.in(0);
  if (!x.present()) I.fail("input is missing");
  const Dims dims = x.t >= 0 ? I.dims(x.t) : x.c->dims;
  DataType type = x.t >= 0 ? I.dtype(x.t) : x.c->type;
  if (I.has_attr("dtype")) {
    const int64_t d = I.attr_i("dtype", onnx::TensorProto::FLOAT);
    if (d == onnx::TensorProto::FLOAT) type = DataType::kFloat;
    else if (d == onnx::TensorProto::FLOAT16) type = DataType::kHalf;
    else I.fail(fmt::format("dtype {} is not supported (TensorRT's parser: FLOAT or FLOAT16, \"Unsupported data type\")",
                            onnx_type_name(static_cast<int>(d))));
  }
  if (type != DataType::kFloat && type != DataType::kHalf)
    I.fail(fmt::format("output type {} is not supported (fp32 or fp16)", to_string(type)));
  const float low = I.attr_f("low", 0.f), high = I.attr_f("high", 1.f);
  if (!(low < high) || !std::isfinite(low) || !std::isfinite(high))
    I.fail(fmt::format("low {} and high {} do not make a finite range", low, high));
  const bool seeded = I.has_attr("seed");
  const std::vector<float> v = random_uniform_values(volume(dims), low, high, seeded ? I.attr_f("seed", 0.f) : 0.f, seeded);
  auto c = make_const("", type, dims);
  for (int64_t k = 0; k < c->count(); ++k) c->set_f(k, v[size_t(k)]);
  return {I.const_tensor(c)};
}

}  // namespace

std::vector<float> random_uniform_values(int64_t count, float low, float high, float seed, bool seeded) {
  uint32_t seed_bits = 0;
  std::memcpy(&seed_bits, &seed, 4);
  uint64_t state = seeded ? 0x5eed000000000000ull ^ seed_bits : 0x7a6e64656d000000ull;  // fixed default
  std::vector<float> v(size_t(std::max<int64_t>(count, 0)));
  const float below_high = std::nextafter(high, low);
  for (float& x : v) {
    const float u = float(splitmix64(&state) >> 40) * 0x1p-24f;  // 24 random bits: [0, 1) exactly
    x = std::min(low + (high - low) * u, below_high);             // rounding may reach high: keep [low, high)
  }
  return v;
}

void register_random_ops(std::unordered_map<std::string, OpFn>& m) {
  m.emplace("RandomUniformLike", op_random_uniform_like);
}

}  // namespace tandem::onnx_detail
