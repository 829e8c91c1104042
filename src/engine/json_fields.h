// Reading integer fields of JSON documents that files supply (timing caches, engine metadata).
// Internal to src/engine.
#pragma once
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "tandem/types.h"

namespace tandem::engine_detail {

// j[key] as T, where it is a JSON integer that T holds. nlohmann's get<T>() converts a float or an
// out-of-range integer unchecked (1e30 to int is undefined behaviour), so a hostile file could
// reach that; here it is one error naming `where` and the key.
template <class T>
T json_integer(const nlohmann::json& j, const char* key, const std::string& where) {
  const nlohmann::json& v = j.at(key);
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (std::in_range<T>(u)) return T(u);
  } else if (v.is_number_integer()) {
    const int64_t s = v.get<int64_t>();
    if (std::in_range<T>(s)) return T(s);
  }
  throw Error(fmt::format("{}: '{}' is {}, not an integer from {} to {}", where, key,
                          v.is_number() ? v.dump() : std::string(v.type_name()), std::numeric_limits<T>::min(),
                          std::numeric_limits<T>::max()));
}

}  // namespace tandem::engine_detail
