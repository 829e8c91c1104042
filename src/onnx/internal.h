// Internal to src/onnx: protobuf-facing helpers shared by the importer and read_tensor_proto.
#pragma once

#include <cstring>
#include <memory>
#include <string>

#include "tandem/network.h"
#include "tandem_onnx_pb/onnx.pb.h"

namespace tandem::onnx_detail {

// A value known at import time (initializer, Constant node, folded result).
// Either a view into the parsed model (no copy) or owned bytes. Never copied: use ConstPtr.
struct Const {
  std::string name;
  DataType type = DataType::kFloat;
  Dims dims;
  const uint8_t* ptr = nullptr;
  size_t nbytes = 0;
  std::vector<uint8_t> owned;

  Const() = default;
  Const(const Const&) = delete;
  Const& operator=(const Const&) = delete;

  int64_t count() const { return volume(dims); }
  double f(int64_t i) const;   // element i as double
  int64_t i(int64_t k) const;  // element k as int64 (floats truncated, saturated)
  void set_f(int64_t i, double v);
  void set_i(int64_t k, int64_t v);
};
using ConstPtr = std::shared_ptr<Const>;

// Zeroed owned constant; throws Error if the volume is hostile.
ConstPtr make_const(std::string name, DataType type, Dims dims);
// RandomUniformLike's values (ops_random.cpp): `count` floats in [low, high) from SplitMix64 seeded
// by the bits of `seed` (a fixed default state when not seeded), 24 random bits each.
std::vector<float> random_uniform_values(int64_t count, float low, float high, float seed, bool seeded);
// Volume with overflow and sanity checks (at most 2^40 elements); `what` names it in errors.
int64_t checked_volume(const Dims& d, const std::string& what);

// ONNX TensorProto.DataType -> DataType; false if tandem has no such type.
bool onnx_to_data_type(int onnx_type, DataType* out);
std::string onnx_type_name(int onnx_type);

// TensorProto -> Const. model_dir: folder of the model for external data ("" = none allowed).
// `where` prefixes error messages (file and initializer/node).
ConstPtr tensor_to_const(const onnx::TensorProto& t, const std::string& model_dir, const std::string& where);

}  // namespace tandem::onnx_detail
