#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <limits>

#include "internal.h"
#include "tandem/numerics.h"
#include "tandem/onnx.h"

namespace tandem::onnx_detail {

namespace fs = std::filesystem;

double Const::f(int64_t k) const {
  const uint8_t* p = ptr + k * element_size(type);
  switch (type) {
    case DataType::kFloat: { float v; std::memcpy(&v, p, 4); return v; }
    case DataType::kHalf: { uint16_t v; std::memcpy(&v, p, 2); return half_to_float(v); }
    case DataType::kInt8: return static_cast<int8_t>(*p);
    case DataType::kUInt8: return *p;
    case DataType::kInt32: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case DataType::kInt64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case DataType::kBool: return *p ? 1.0 : 0.0;
    case DataType::kBFloat16: { uint16_t v; std::memcpy(&v, p, 2); return bfloat16_to_float(v); }
  }
  return 0;
}

static int64_t sat_i64(double v) {
  if (std::isnan(v)) return 0;
  if (v >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

int64_t Const::i(int64_t k) const {
  const uint8_t* p = ptr + k * element_size(type);
  switch (type) {
    case DataType::kInt64: { int64_t v; std::memcpy(&v, p, 8); return v; }
    case DataType::kInt32: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case DataType::kFloat:
    case DataType::kHalf:
    case DataType::kBFloat16:
    case DataType::kInt8:
    case DataType::kUInt8:
    case DataType::kBool: return sat_i64(f(k));
  }
  return 0;
}

void Const::set_f(int64_t k, double v) {
  uint8_t* p = owned.data() + k * element_size(type);
  switch (type) {
    case DataType::kFloat: { float x = static_cast<float>(v); std::memcpy(p, &x, 4); break; }
    case DataType::kHalf: { uint16_t x = float_to_half(static_cast<float>(v)); std::memcpy(p, &x, 2); break; }
    case DataType::kBFloat16: { uint16_t x = float_to_bfloat16(static_cast<float>(v)); std::memcpy(p, &x, 2); break; }
    case DataType::kInt8: *p = static_cast<uint8_t>(static_cast<int8_t>(sat_i64(v))); break;
    case DataType::kUInt8: *p = static_cast<uint8_t>(sat_i64(v)); break;
    case DataType::kInt32: { int32_t x = static_cast<int32_t>(sat_i64(v)); std::memcpy(p, &x, 4); break; }
    case DataType::kInt64: { int64_t x = sat_i64(v); std::memcpy(p, &x, 8); break; }
    case DataType::kBool: *p = v != 0 ? 1 : 0; break;
  }
}

void Const::set_i(int64_t k, int64_t v) {
  uint8_t* p = owned.data() + k * element_size(type);
  switch (type) {
    case DataType::kInt64: std::memcpy(p, &v, 8); break;
    case DataType::kInt32: { int32_t x = static_cast<int32_t>(v); std::memcpy(p, &x, 4); break; }
    case DataType::kBool: *p = v != 0 ? 1 : 0; break;
    case DataType::kInt8: *p = static_cast<uint8_t>(static_cast<int8_t>(v)); break;
    case DataType::kUInt8: *p = static_cast<uint8_t>(v); break;
    case DataType::kFloat:
    case DataType::kHalf:
    case DataType::kBFloat16: set_f(k, static_cast<double>(v)); break;
  }
}

int64_t checked_volume(const Dims& d, const std::string& what) {
  __int128 v = 1;
  for (int64_t x : d) {
    if (x < 0) throw Error(fmt::format("{}: negative dim in {}", what, dims_to_string(d)));
    v *= x;
    if (v > (__int128{1} << 40)) throw Error(fmt::format("{}: dims {} are too large", what, dims_to_string(d)));
  }
  return static_cast<int64_t>(v);
}

ConstPtr make_const(std::string name, DataType type, Dims dims) {
  auto c = std::make_shared<Const>();
  const int64_t n = checked_volume(dims, name);
  if (n > (int64_t{1} << 31)) throw Error(fmt::format("constant '{}': {} elements are too many to compute at import", name, n));
  c->name = std::move(name);
  c->type = type;
  c->dims = std::move(dims);
  c->owned.assign(static_cast<size_t>(n) * element_size(type), 0);
  c->ptr = c->owned.data();
  c->nbytes = c->owned.size();
  return c;
}

bool onnx_to_data_type(int t, DataType* out) {
  using TP = onnx::TensorProto;
  switch (t) {
    case TP::FLOAT: *out = DataType::kFloat; return true;
    case TP::FLOAT16: *out = DataType::kHalf; return true;
    case TP::BFLOAT16: *out = DataType::kBFloat16; return true;
    case TP::INT8: *out = DataType::kInt8; return true;
    case TP::UINT8: *out = DataType::kUInt8; return true;
    case TP::INT32: *out = DataType::kInt32; return true;
    case TP::INT64: *out = DataType::kInt64; return true;
    case TP::BOOL: *out = DataType::kBool; return true;
    default: return false;
  }
}

std::string onnx_type_name(int t) {
  using TP = onnx::TensorProto;
  if (TP::DataType_IsValid(t)) {
    std::string s = TP::DataType_Name(static_cast<TP::DataType>(t));
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }
  return fmt::format("type {}", t);
}

namespace {
// Element size of the ONNX type in raw_data; 0 if unsupported.
size_t onnx_raw_size(int t) {
  using TP = onnx::TensorProto;
  switch (t) {
    case TP::FLOAT: case TP::INT32: case TP::UINT32: return 4;
    case TP::UINT8: case TP::INT8: case TP::BOOL: return 1;
    case TP::UINT16: case TP::INT16: case TP::FLOAT16: case TP::BFLOAT16: return 2;
    case TP::INT64: case TP::DOUBLE: case TP::UINT64: return 8;
    default: return 0;
  }
}

// The type tandem stores for an ONNX type (conversions for the ones it lacks).
bool storage_type(int t, DataType* out) {
  using TP = onnx::TensorProto;
  if (onnx_to_data_type(t, out)) return true;
  switch (t) {
    case TP::DOUBLE: *out = DataType::kFloat; return true;
    case TP::INT16: case TP::UINT16: *out = DataType::kInt32; return true;
    case TP::UINT32: case TP::UINT64: *out = DataType::kInt64; return true;
    default: return false;
  }
}

// Reads `length` bytes at `offset` of an external data file, inside model_dir only.
std::string read_external(const onnx::TensorProto& t, const std::string& model_dir, const std::string& where,
                          size_t expected) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    try {
      if (kv.key() == "location") location = kv.value();
      else if (kv.key() == "offset") offset = std::stoll(kv.value());
      else if (kv.key() == "length") length = std::stoll(kv.value());
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: external data {} '{}' is not a number", where, kv.key(), kv.value()));
    }
  }
  if (location.empty()) throw Error(fmt::format("{}: external data without a location", where));
  const fs::path loc(location);
  bool escapes = loc.is_absolute() || location.find('\\') != std::string::npos;
  for (const auto& part : loc)
    if (part == "..") escapes = true;
  if (escapes)
    throw Error(fmt::format("{}: external data location '{}' is outside the model's folder (absolute or with ..); "
                            "refusing to read it", where, location));
  if (model_dir.empty()) throw Error(fmt::format("{}: external data is not allowed here", where));
  const fs::path file = fs::path(model_dir) / loc;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open external data file '{}'", where, file.string()));
  in.seekg(0, std::ios::end);
  const int64_t size = static_cast<int64_t>(in.tellg());
  if (length < 0) length = static_cast<int64_t>(expected);
  if (offset < 0 || offset > size || length > size - offset)
    throw Error(fmt::format("{}: external data offset {} length {} exceed '{}' ({} bytes)", where, offset, length,
                            file.string(), size));
  if (static_cast<size_t>(length) != expected)
    throw Error(fmt::format("{}: external data has {} bytes, the dims need {}", where, length, expected));
  std::string buf(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(buf.data(), length);
  if (!in) throw Error(fmt::format("{}: cannot read external data file '{}'", where, file.string()));
  return buf;
}

// The typed field (float_data, int32_data, ...) that holds a tensor of ONNX type `t` when it
// has no raw_data, and how many values it has.
struct TypedValues {
  int64_t count;
  const char* field;
};
TypedValues typed_values(const onnx::TensorProto& p, int t) {
  using TP = onnx::TensorProto;
  switch (t) {
    case TP::FLOAT: return {p.float_data_size(), "float_data"};
    case TP::DOUBLE: return {p.double_data_size(), "double_data"};
    case TP::INT64: return {p.int64_data_size(), "int64_data"};
    case TP::UINT32: case TP::UINT64: return {p.uint64_data_size(), "uint64_data"};
    default: return {p.int32_data_size(), "int32_data"};  // FLOAT16, BFLOAT16 and the small integers
  }
}
}  // namespace

ConstPtr tensor_to_const(const onnx::TensorProto& t, const std::string& model_dir, const std::string& where) {
  using TP = onnx::TensorProto;
  const int ot = t.data_type();
  DataType st;
  if (!storage_type(ot, &st))
    throw Error(fmt::format("{}: data type {} is not supported", where, onnx_type_name(ot)));
  Dims dims(t.dims().begin(), t.dims().end());
  const int64_t n = checked_volume(dims, where);
  const size_t raw_es = onnx_raw_size(ot);
  auto c = std::make_shared<Const>();
  c->name = t.name();
  c->type = st;
  c->dims = std::move(dims);
  const std::string* raw = nullptr;
  std::string ext;
  if (t.data_location() == TP::EXTERNAL) {
    ext = read_external(t, model_dir, where, static_cast<size_t>(n) * raw_es);
    raw = &ext;
  } else if (t.has_raw_data()) {
    raw = &t.raw_data();
    if (raw->size() != static_cast<size_t>(n) * raw_es)
      throw Error(fmt::format("{}: raw_data has {} bytes, dims {} of {} need {}", where, raw->size(),
                              dims_to_string(c->dims), onnx_type_name(ot), static_cast<size_t>(n) * raw_es));
  } else {
    // The dims alone may ask for terabytes: compare them with the values the file really
    // carries before allocating anything, so a hostile file costs no more than its own size.
    const TypedValues tv = typed_values(t, ot);
    if (tv.count != n) {
      if (tv.count == 0)
        throw Error(fmt::format("{}: dims {} of {} need {} bytes, the tensor carries no data (no raw_data, {} or "
                                "external data)", where, dims_to_string(c->dims), onnx_type_name(ot),
                                static_cast<size_t>(n) * raw_es, tv.field));
      throw Error(fmt::format("{}: {} has {} values, dims {} need {}", where, tv.field, tv.count,
                              dims_to_string(c->dims), n));
    }
  }
  auto alloc = [&] {
    c->owned.assign(static_cast<size_t>(n) * element_size(st), 0);
    c->ptr = c->owned.data();
    c->nbytes = c->owned.size();
  };
  if (raw) {
    const auto* rp = reinterpret_cast<const uint8_t*>(raw->data());
    if (raw_es == element_size(st) && ot != TP::UINT32 && ot != TP::INT16 && ot != TP::UINT16) {
      if (raw == &ext) {
        c->owned.assign(rp, rp + raw->size());
        c->ptr = c->owned.data();
      } else {
        c->ptr = rp;  // zero copy: a view into the parsed model
      }
      c->nbytes = raw->size();
      return c;
    }
    alloc();
    for (int64_t k = 0; k < n; ++k) {
      const uint8_t* p = rp + k * raw_es;
      switch (ot) {
        case TP::DOUBLE: { double v; std::memcpy(&v, p, 8); c->set_f(k, v); break; }
        case TP::INT16: { int16_t v; std::memcpy(&v, p, 2); c->set_i(k, v); break; }
        case TP::UINT16: { uint16_t v; std::memcpy(&v, p, 2); c->set_i(k, v); break; }
        case TP::UINT32: { uint32_t v; std::memcpy(&v, p, 4); c->set_i(k, v); break; }
        case TP::UINT64: { uint64_t v; std::memcpy(&v, p, 8); c->set_i(k, static_cast<int64_t>(v)); break; }
        default: break;
      }
    }
    return c;
  }
  alloc();
  switch (ot) {
    case TP::FLOAT:
      if (n) std::memcpy(c->owned.data(), t.float_data().data(), static_cast<size_t>(n) * 4);
      break;
    case TP::DOUBLE:
      for (int64_t k = 0; k < n; ++k) c->set_f(k, t.double_data(static_cast<int>(k)));
      break;
    case TP::INT64:
      if (n) std::memcpy(c->owned.data(), t.int64_data().data(), static_cast<size_t>(n) * 8);
      break;
    case TP::UINT32: case TP::UINT64:
      for (int64_t k = 0; k < n; ++k) c->set_i(k, static_cast<int64_t>(t.uint64_data(static_cast<int>(k))));
      break;
    case TP::FLOAT16:
    case TP::BFLOAT16:  // both: the 16 bits in the low half of an int32_data value
      for (int64_t k = 0; k < n; ++k) {
        uint16_t h = static_cast<uint16_t>(t.int32_data(static_cast<int>(k)));
        std::memcpy(c->owned.data() + 2 * k, &h, 2);
      }
      break;
    default:  // INT32, INT16, INT8, UINT16, UINT8, BOOL
      for (int64_t k = 0; k < n; ++k) c->set_i(k, t.int32_data(static_cast<int>(k)));
      break;
  }
  return c;
}

}  // namespace tandem::onnx_detail

namespace tandem {

HostTensor read_tensor_proto(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open", path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::TensorProto t;
  if (!t.ParseFromString(bytes)) throw Error(fmt::format("{}: not a serialized ONNX TensorProto", path));
  const std::string dir = std::filesystem::path(path).parent_path().string();
  auto c = onnx_detail::tensor_to_const(t, dir.empty() ? "." : dir, path);
  HostTensor h;
  h.name = t.name();
  h.type = c->type;
  h.dims = c->dims;
  h.data.assign(c->ptr, c->ptr + c->nbytes);
  return h;
}

}  // namespace tandem
