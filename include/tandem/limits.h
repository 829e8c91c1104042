// Resource limits: how much memory a model or an engine may make tandem allocate. A file that
// claims more than the cap is refused with one line before anything large is allocated.
#pragma once

#include <cstdint>
#include <string>

#include "tandem/network.h"

namespace tandem {

struct MemoryEstimate {
  uint64_t peak_activation_bytes = 0;  // live activations at the worst layer (arena upper bound)
  uint64_t weight_bytes = 0;
  std::string largest_tensor;          // the largest single activation
  uint64_t largest_bytes = 0;
};
// Walks the layers in order; an activation lives from its producer to its last consumer (graph
// outputs to the end), as the executors' arena plans do.
MemoryEstimate estimate_memory(const Network& net);

// TANDEM_MEMORY_CAP ("8GiB", "512MiB", or bytes) when set; else the smaller of three quarters of
// the machine's memory and max(4 GiB, 1024 x the size of the file the network came from).
// Throws Error naming TANDEM_MEMORY_CAP when it is set but malformed.
uint64_t memory_cap(uint64_t source_bytes);

// Throws Error "<source>: its tensors need N MiB ... over the memory cap of C MiB ..." when the
// estimate exceeds the cap.
void check_memory_cap(const Network& net, const std::string& source, uint64_t cap);

}  // namespace tandem
