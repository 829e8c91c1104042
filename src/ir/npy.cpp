#include "tandem/npy.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace tandem {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

// Value of `key` in the header dict, as the raw text up to the next ',' (or ')' for shape).
std::string header_value(const std::string& h, const std::string& key, const std::string& path) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) k = h.find("\"" + key + "\"");
  if (k == std::string::npos) fail(path, "malformed .npy header: no '" + key + "'");
  size_t colon = h.find(':', k);
  if (colon == std::string::npos) fail(path, "malformed .npy header near '" + key + "'");
  size_t b = h.find_first_not_of(" ", colon + 1);
  if (b == std::string::npos) fail(path, "malformed .npy header near '" + key + "'");
  size_t e;
  if (h[b] == '(') {
    e = h.find(')', b);
    if (e == std::string::npos) fail(path, "malformed .npy header: unterminated shape");
    return h.substr(b, e - b + 1);
  }
  if (h[b] == '\'' || h[b] == '"') {
    e = h.find(h[b], b + 1);
    if (e == std::string::npos) fail(path, "malformed .npy header: unterminated string");
    return h.substr(b + 1, e - b - 1);
  }
  e = h.find_first_of(",}", b);
  if (e == std::string::npos) fail(path, "malformed .npy header near '" + key + "'");
  std::string v = h.substr(b, e - b);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

Dims parse_shape(const std::string& s, const std::string& path) {
  Dims d;
  size_t i = 1;  // after '('
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    if (i >= s.size() || s[i] == ')') break;
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i) fail(path, "malformed .npy shape " + s);
    // At most 2^40 elements in all (as everywhere in tandem), checked before multiplying.
    if (j - i > 13) fail(path, ".npy shape " + s + " is too large");
    const int64_t dim = std::stoll(s.substr(i, j - i));
    int64_t vol = 1;
    for (int64_t x : d) vol *= x;
    if (dim > 0 && vol > (int64_t{1} << 40) / dim) fail(path, ".npy shape " + s + " is too large");
    d.push_back(dim);
    i = j;
    while (i < s.size() && s[i] == 'L') ++i;  // Python 2 longs
  }
  return d;
}

}  // namespace

std::string npy_descr(DataType t) {
  switch (t) {
    case DataType::kFloat: return "<f4";
    case DataType::kHalf: return "<f2";
    case DataType::kInt8: return "|i1";
    case DataType::kUInt8: return "|u1";
    case DataType::kInt32: return "<i4";
    case DataType::kInt64: return "<i8";
    case DataType::kBool: return "|b1";
    // numpy has no bfloat16: 2 raw bytes, as numpy saves ml_dtypes.bfloat16 (load, then
    // .view(ml_dtypes.bfloat16)); read_npy takes it back as bf16.
    case DataType::kBFloat16: return "<V2";
  }
  return "";
}

bool parse_npy_descr(const std::string& descr, DataType* out) {
  struct D { const char* s; DataType t; };
  static const D kDescrs[] = {
      {"<f4", DataType::kFloat}, {"<f2", DataType::kHalf},  {"|i1", DataType::kInt8},
      {"i1", DataType::kInt8},   {"<i1", DataType::kInt8},  {"|u1", DataType::kUInt8},
      {"u1", DataType::kUInt8},  {"<u1", DataType::kUInt8}, {"<i4", DataType::kInt32},
      {"<i8", DataType::kInt64}, {"|b1", DataType::kBool},  {"b1", DataType::kBool},
      {"<b1", DataType::kBool},  {"?", DataType::kBool},    {"|?", DataType::kBool},
      {"<V2", DataType::kBFloat16}, {"|V2", DataType::kBFloat16},
  };
  for (const auto& d : kDescrs) {
    if (descr == d.s) {
      *out = d.t;
      return true;
    }
  }
  return false;
}

HostTensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open .npy file");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  static const char kMagic[] = "\x93NUMPY";
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    fail(path, "not a .npy file (bad magic)");
  int major = static_cast<uint8_t>(bytes[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(path, "truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    fail(path, "unsupported .npy format version " + std::to_string(major));
  }
  if (bytes.size() < header_start + header_len) fail(path, "truncated .npy header");
  std::string h = bytes.substr(header_start, header_len);

  std::string descr = header_value(h, "descr", path);
  DataType type;
  if (!parse_npy_descr(descr, &type))
    fail(path, "unsupported .npy dtype '" + descr + "' (want <f4, <f2, i1, u1, <i4, <i8, b1 or V2 for bf16)");
  if (header_value(h, "fortran_order", path) != "False")
    fail(path, "Fortran-order .npy arrays are not supported (save with C order)");
  Dims dims = parse_shape(header_value(h, "shape", path), path);

  HostTensor t;
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".npy") == 0) base.resize(base.size() - 4);
  t.name = base;
  t.type = type;
  t.dims = dims;
  size_t need = static_cast<size_t>(volume(dims)) * element_size(type);
  size_t have = bytes.size() - header_start - header_len;
  if (have < need)
    fail(path, "truncated .npy data: " + std::to_string(have) + " bytes for shape " +
                   dims_to_string(dims) + " " + descr + " (need " + std::to_string(need) + ")");
  t.data.assign(bytes.begin() + header_start + header_len,
                bytes.begin() + header_start + header_len + need);
  return t;
}

void write_npy(const std::string& path, const HostTensor& t) {
  if (t.data.size() != static_cast<size_t>(volume(t.dims)) * element_size(t.type))
    fail(path, "tensor '" + t.name + "' has " + std::to_string(t.data.size()) +
                   " bytes, shape " + dims_to_string(t.dims) + " needs more or fewer");
  std::string shape = "(";
  for (size_t i = 0; i < t.dims.size(); ++i) {
    shape += std::to_string(t.dims[i]);
    shape += (t.dims.size() == 1 || i + 1 < t.dims.size()) ? "," : "";
    if (i + 1 < t.dims.size()) shape += " ";
  }
  shape += ")";
  std::string h = "{'descr': '" + npy_descr(t.type) + "', 'fortran_order': False, 'shape': " +
                  shape + ", }";
  size_t total = 10 + h.size() + 1;
  size_t pad = (64 - total % 64) % 64;
  h.append(pad, ' ');
  h += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>((h.size() >> 8) & 0xff);
  out += h;

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  if (!fp) fail(path, std::string("cannot write: ") + std::strerror(errno));
  bool ok = std::fwrite(out.data(), 1, out.size(), fp) == out.size() &&
            (t.data.empty() || std::fwrite(t.data.data(), 1, t.data.size(), fp) == t.data.size());
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    fail(path, "write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    std::remove(tmp.c_str());
    fail(path, std::string("cannot rename into place: ") + std::strerror(e));
  }
}

}  // namespace tandem
