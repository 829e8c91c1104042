#include "tandem/types.h"

#include <array>
#include <cctype>

namespace tandem {

namespace {
// Indexed by DataType. Keep in the enum's order.
constexpr std::array<DataTypeInfo, kDataTypeCount> kDataTypes = {{
    {"fp32", "FLOAT", 4},
    {"fp16", "HALF", 2},
    {"int8", "INT8", 1},
    {"uint8", "UINT8", 1},
    {"int32", "INT32", 4},
    {"int64", "INT64", 8},
    {"bool", "BOOL", 1},
    {"bf16", "BF16", 2},  // TensorRT's DataType::kBF16 (NvInfer.h); trtexec spells it bf16
}};
}  // namespace

const DataTypeInfo& data_type_info(DataType t) { return kDataTypes[static_cast<size_t>(t)]; }

bool parse_data_type(std::string_view s, DataType* out) {
  struct Alias { std::string_view name; DataType type; };
  static constexpr Alias kAliases[] = {
      {"fp32", DataType::kFloat}, {"float32", DataType::kFloat}, {"float", DataType::kFloat},
      {"fp16", DataType::kHalf},  {"float16", DataType::kHalf},  {"half", DataType::kHalf},
      {"int8", DataType::kInt8},  {"uint8", DataType::kUInt8},   {"int32", DataType::kInt32},
      {"int64", DataType::kInt64}, {"bool", DataType::kBool},
      {"bf16", DataType::kBFloat16}, {"bfloat16", DataType::kBFloat16},
  };
  for (const auto& a : kAliases) {
    if (a.name == s) {
      *out = a.type;
      return true;
    }
  }
  return false;
}

int64_t volume(const Dims& d) {
  int64_t v = 1;
  for (int64_t x : d) v *= x;
  return v;
}

std::string dims_to_string(const Dims& d, char sep) {
  if (d.empty()) return "scalar";
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += sep;
    s += std::to_string(d[i]);
  }
  return s;
}

namespace {
std::string ascii_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}
}  // namespace

std::string_view to_string(Device d) {
  switch (d) {
    case Device::kGPU: return "GPU";
    case Device::kDLA: return "DLA";
  }
  return "?";
}
std::string_view to_string(Precision p) {
  switch (p) {
    case Precision::kUnset: return "unset";
    case Precision::kFP32: return "fp32";
    case Precision::kFP16: return "fp16";
    case Precision::kINT8: return "int8";
    case Precision::kFP8: return "fp8";
  }
  return "?";
}

bool parse_device(std::string_view s, Device* out) {
  const std::string l = ascii_lower(s);
  if (l == "gpu") *out = Device::kGPU;
  else if (l == "dla") *out = Device::kDLA;
  else return false;
  return true;
}
bool parse_precision(std::string_view s, Precision* out) {
  const std::string l = ascii_lower(s);
  if (l == "fp32") *out = Precision::kFP32;
  else if (l == "fp16") *out = Precision::kFP16;
  else if (l == "int8") *out = Precision::kINT8;
  else if (l == "fp8") *out = Precision::kFP8;
  else return false;
  return true;
}

}  // namespace tandem
