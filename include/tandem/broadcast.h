// Numpy broadcasting of dims, and how an operand broadcast to an output is read: one helper for
// constant folding, shape inference and the backends' kernels.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tandem/types.h"

namespace tandem {

using Strides = std::vector<int64_t>;

// Numpy broadcasting (ranks aligned right, a missing or size-1 dim takes the other's size);
// nullopt when two sizes differ and neither is 1.
std::optional<Dims> broadcast_dims(const Dims& a, const Dims& b);

// Row-major strides of a dense tensor of dims d (in elements).
Strides dense_strides(const Dims& d);

// Strides (in elements) of a dense tensor of dims `in` read as if broadcast to `out`: ranks
// aligned right, a size-1 dim of `in` under a larger dim of `out` gets stride 0. out.size() >=
// in.size(); the result has out.size() entries.
Strides broadcast_strides(const Dims& in, const Dims& out);

// For every element of `out` (row-major), the index of the element of `in` it reads.
std::vector<int64_t> broadcast_source_index(const Dims& in, const Dims& out);

}  // namespace tandem
