// `tandem run`'s inputs and outputs, shared by its two paths: ONNX models (cmd_run.cpp) and
// engine files (cmd_bench.cpp, beside the engine runtime). One generator for --random-input, so
// that the same --seed gives the same data to a model and to every engine built from it.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tandem/host_tensor.h"

namespace tandem::cli {

// Expected input: name, dims, type (from a Network or an engine).
struct InputSpec {
  std::string name;
  DataType type;
  Dims dims;
};

// Seeded random data: floats uniform in [-1, 1), integers in [0, 10), bools 0/1. One rng
// (std::mt19937_64 seeded with --seed) is drawn from input after input, in the model's order,
// skipping inputs given as files.
HostTensor random_run_tensor(const InputSpec& s, std::mt19937_64& rng);

// Writes every tensor as DIR/<sanitized name>.npy, all or none (temporary names, then renames).
std::vector<std::string> write_run_outputs(const TensorMap& outputs, const std::string& dir);

// What `tandem run` wrote: one line per output, or with --json the tandem/run/v1 document
// (docs/json.md). `summary` and `note` (engines only) may be empty.
void print_run_report(const std::string& model, const std::string& backend, const TensorMap& out,
                      const std::vector<std::string>& paths, const std::string& summary, const std::string& note,
                      bool json);

}  // namespace tandem::cli
