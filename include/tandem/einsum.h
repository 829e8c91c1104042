// Einsum equations as IEinsumLayer takes them (explicit mode: "ij,jk->ik"; lowercase letters,
// no ellipsis, one term per input): parsed once for shape inference, the kernels and the importer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tandem {

struct EinsumTerms {
  std::vector<std::string> inputs;  // one subscript string per input
  std::string output;
};

// Splits an explicit equation; false with *why set when it is not one.
inline bool parse_einsum(std::string_view eq, EinsumTerms* out, std::string* why) {
  std::string s;
  for (char c : eq)
    if (c != ' ') s += c;
  const size_t arrow = s.find("->");
  if (arrow == std::string::npos) {
    *why = "equation has no '->' (implicit mode is expanded at import)";
    return false;
  }
  EinsumTerms t;
  t.output = s.substr(arrow + 2);
  std::string lhs = s.substr(0, arrow);
  size_t start = 0;
  while (true) {
    const size_t comma = lhs.find(',', start);
    t.inputs.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  auto letters_only = [](const std::string& term) {
    for (char c : term)
      if (c < 'a' || c > 'z') return false;
    return true;
  };
  for (const auto& term : t.inputs)
    if (!letters_only(term)) {
      *why = "subscript '" + term + "' is not lowercase letters";
      return false;
    }
  if (!letters_only(t.output)) {
    *why = "output subscript '" + t.output + "' is not lowercase letters";
    return false;
  }
  for (size_t i = 0; i < t.output.size(); ++i) {
    if (t.output.find(t.output[i], i + 1) != std::string::npos) {
      *why = std::string("output label '") + t.output[i] + "' repeats";
      return false;
    }
    bool found = false;
    for (const auto& term : t.inputs) found |= term.find(t.output[i]) != std::string::npos;
    if (!found) {
      *why = std::string("output label '") + t.output[i] + "' is on no input";
      return false;
    }
  }
  *out = std::move(t);
  return true;
}

}  // namespace tandem
