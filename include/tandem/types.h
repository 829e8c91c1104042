// Core value types shared by every stage: data types, dims, errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tandem {

// One enum and one table (data_type_info) per concept: the single source of truth.
// kBFloat16 is last so that the values engine files store for the older types stay the same.
enum class DataType : uint8_t { kFloat, kHalf, kInt8, kUInt8, kInt32, kInt64, kBool, kBFloat16 };
inline constexpr int kDataTypeCount = 8;

struct DataTypeInfo {
  std::string_view name;      // "fp32", as trtexec spells it
  std::string_view trt_name;  // "FLOAT", as TensorRT's DataType spells it
  size_t size;                // bytes per element
};
const DataTypeInfo& data_type_info(DataType t);
inline std::string_view to_string(DataType t) { return data_type_info(t).name; }
inline size_t element_size(DataType t) { return data_type_info(t).size; }
// Parses "fp32" / "float32" / "fp16" / "bf16" / "bfloat16" / "int8" / "uint8" / "int32" / "int64" / "bool".
bool parse_data_type(std::string_view s, DataType* out);

// Where a layer runs, and at which precision: shared by the planner, the engine and the backends.
enum class Device : uint8_t { kGPU, kDLA };
// kUnset: no precision constraint (the seed leaves Constant, Shuffle and "tile" layers unset).
enum class Precision : uint8_t { kUnset, kFP32, kFP16, kINT8, kFP8 };
std::string_view to_string(Device d);     // "GPU" | "DLA"
std::string_view to_string(Precision p);  // "unset" | "fp32" | "fp16" | "int8" | "fp8"
bool parse_device(std::string_view s, Device* out);        // gpu | dla (any case)
bool parse_precision(std::string_view s, Precision* out);  // fp32 | fp16 | int8 | fp8

using Dims = std::vector<int64_t>;
int64_t volume(const Dims& d);
std::string dims_to_string(const Dims& d, char sep = 'x');  // "1x3x640x640", "scalar" when empty

// Every error carries its location (file, node, option) in the message.
// The CLI prints what() on one line and exits with exit_code().
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, int exit_code = 2)
      : std::runtime_error(msg), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

}  // namespace tandem
