// TensorRT calibration cache (text): "TRT-<version>-<Algorithm>" then "<name>: <hex>" lines.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tandem/quant.h"

namespace tandem {

std::map<std::string, float> CalibrationCache::scale_map() const {
  std::map<std::string, float> m;
  for (auto& [n, s] : scales) m[n] = s;
  return m;
}

std::string scale_to_hex(float scale) {
  uint32_t bits;
  std::memcpy(&bits, &scale, 4);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", bits);
  return buf;
}

namespace {
std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
}  // namespace

CalibrationCache parse_calibration_cache(std::string_view text, const std::string& source) {
  CalibrationCache c;
  c.scales.clear();
  auto fail = [&](int line, const std::string& what) -> void {
    throw Error(source + ":" + std::to_string(line) + ": " + what);
  };
  size_t pos = 0;
  int line_no = 0;
  bool header = false;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view raw = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    std::string line = trim(raw);
    if (line.empty()) continue;
    if (!header) {
      // TRT-<digits>-<Algorithm>
      if (line.rfind("TRT-", 0) != 0) fail(line_no, "not a TensorRT calibration cache: expected 'TRT-<version>-<Algorithm>', got '" + line + "'");
      size_t dash = line.find('-', 4);
      if (dash == std::string::npos || dash == 4) fail(line_no, "malformed cache header '" + line + "'");
      std::string ver = line.substr(4, dash - 4);
      for (char ch : ver)
        if (ch < '0' || ch > '9') fail(line_no, "malformed version in cache header '" + line + "'");
      if (ver.size() > 9) fail(line_no, "version in cache header '" + line + "' is too large");
      c.trt_version = std::stoi(ver);
      c.algorithm = line.substr(dash + 1);
      if (c.algorithm.empty()) fail(line_no, "missing algorithm in cache header '" + line + "'");
      header = true;
      continue;
    }
    size_t colon = line.find_last_of(':');
    if (colon == std::string::npos || colon == 0)
      fail(line_no, "expected '<tensor name>: <8 hex digits>', got '" + line + "'");
    std::string name = line.substr(0, colon);
    std::string hex = trim(std::string_view(line).substr(colon + 1));
    if (hex.empty() || hex.size() > 8)
      fail(line_no, "expected 1 to 8 hex digits after the last ':' for tensor '" + name + "', got '" + hex + "'");
    for (char ch : hex)
      if (!is_hex(ch)) fail(line_no, "bad hex digit in scale of tensor '" + name + "': '" + hex + "'");
    uint32_t bits = static_cast<uint32_t>(std::stoul(hex, nullptr, 16));
    float scale;
    std::memcpy(&scale, &bits, 4);
    if (!std::isfinite(scale) || scale < 0.f)  // NaN, negative or infinite
      fail(line_no, "scale of tensor '" + name + "' is not a finite non-negative float (" + hex + ")");
    if (scale == 0.f) {  // (qdq-translator writes "0"): unusable as is, so the smallest valid scale
      scale = kMinCalibrationScale;
      ++c.zero_scales;
    }
    c.scales.emplace_back(name, scale);
  }
  if (!header) throw Error(source + ": empty calibration cache (no 'TRT-<version>-<Algorithm>' header)");
  return c;
}

CalibrationCache read_calibration_cache(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot read calibration cache: " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_calibration_cache(ss.str(), path);
}

std::string format_calibration_cache(const CalibrationCache& c) {
  std::string out = "TRT-" + std::to_string(c.trt_version) + "-" + c.algorithm + "\n";
  for (auto& [n, s] : c.scales) out += n + ": " + scale_to_hex(s) + "\n";
  return out;
}

void write_calibration_cache(const std::string& path, const CalibrationCache& c) {
  std::string text = format_calibration_cache(c);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  if (!fp) throw Error(path + ": cannot write calibration cache: " + std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), fp) == text.size();
  ok = (std::fclose(fp) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write calibration cache: " + why);
  }
}

}  // namespace tandem
