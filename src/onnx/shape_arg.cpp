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
    if (v <= 0) throw fail(fmt::format("dim {} is not positive", v));
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

}  // namespace tandem
