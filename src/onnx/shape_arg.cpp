#include <charconv>
#include <fmt/format.h>

#include "tandem/onnx.h"

namespace tandem {

std::pair<std::string, Dims> parse_shape_arg(std::string_view arg) {
  auto fail = [&](std::string_view why) {
    return Error(fmt::format("--shape '{}': {} (expected name:DIMS, e.g. x:1x3x640x640)", arg, why));
  };
  const auto colon = arg.rfind(':');
  if (colon == std::string_view::npos) throw fail("no ':' between the input name and its dims");
  std::string name(arg.substr(0, colon));
  if (name.empty()) throw fail("empty input name");
  std::string_view rest = arg.substr(colon + 1);
  if (rest.empty()) throw fail("no dims");
  Dims dims;
  __int128 vol = 1;
  while (true) {
    const auto sep = rest.find_first_of("x,");
    std::string_view tok = rest.substr(0, sep);
    if (tok.empty()) throw fail("empty dim");
    int64_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec == std::errc::result_out_of_range) throw fail(fmt::format("dim '{}' is too large", tok));
    if (ec != std::errc() || p != tok.data() + tok.size())
      throw fail(fmt::format("dim '{}' is not an integer", tok));
    if (v < 0) throw fail(fmt::format("dim {} is negative", v));  // 0: an empty tensor
    if (v > (int64_t{1} << 31)) throw fail(fmt::format("dim {} is too large", v));
    vol *= v;
    if (vol > (__int128{1} << 40)) throw fail("the volume is too large");
    dims.push_back(v);
    if (dims.size() > 8) throw fail("more than 8 dims");
    if (sep == std::string_view::npos) break;
    rest = rest.substr(sep + 1);
  }
  return {std::move(name), std::move(dims)};
}

std::pair<std::string, std::vector<int64_t>> parse_input_value_arg(std::string_view arg) {
  auto fail = [&](std::string_view why) {
    return Error(fmt::format("--input-value '{}': {} (expected name:V1,V2,..., e.g. shape:1,-1)", arg, why));
  };
  const auto colon = arg.rfind(':');
  if (colon == std::string_view::npos) throw fail("no ':' between the input name and its values");
  std::string name(arg.substr(0, colon));
  if (name.empty()) throw fail("empty input name");
  std::string_view rest = arg.substr(colon + 1);
  if (rest.empty()) throw fail("no values");
  std::vector<int64_t> values;
  while (true) {
    const auto sep = rest.find(',');
    std::string_view tok = rest.substr(0, sep);
    if (tok.empty()) throw fail("empty value");
    int64_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec == std::errc::result_out_of_range) throw fail(fmt::format("value '{}' does not fit in int64", tok));
    if (ec != std::errc() || p != tok.data() + tok.size()) throw fail(fmt::format("value '{}' is not an integer", tok));
    values.push_back(v);
    // A shape tensor's volume is small in TensorRT too: a bound keeps a typo from allocating.
    if (values.size() > 4096) throw fail("more than 4096 values");
    if (sep == std::string_view::npos) break;
    rest = rest.substr(sep + 1);
  }
  return {std::move(name), std::move(values)};
}

}  // namespace tandem
