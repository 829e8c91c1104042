// Helpers shared inside src/engine (not public API).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tandem/engine.h"
#include "tandem/network.h"
#include "tandem/numerics.h"

namespace tandem::engine_detail {

struct QuantizedWeights {
  std::vector<int8_t> q;
  std::vector<float> scales;  // one per output channel (axis 0)
};
// Symmetric per-output-channel INT8: scale = max|w| / 127, q = round-half-even(w / scale) in
// [-127, 127]; an all-zero channel gets scale 1 and q = 0 (tandem/numerics.h).
QuantizedWeights quantize_per_channel(const Weights& w);
// out[0, w.count()) = q * scale (fp32) for weights of w's dims (w itself is not touched).
void dequantize_per_channel(const int8_t* q, const std::vector<float>& scales, const Weights& w, float* out);

std::vector<uint8_t> read_file_bytes(const std::string& path);

// A section whose checksum a load leaves for later (Engine::load: the weights, checked once when
// first needed, so that loading maps the file without reading all of it).
struct DeferredChecksum {
  const uint8_t* data = nullptr;
  size_t size = 0;
  uint64_t expected = 0;
  std::string where;  // "<file>: section WGHT"
};
// deserialize_engine, but the WGHT section's checksum is not computed: `weights` gets what
// check_deferred needs to compute it later (the bytes must stay mapped until then).
EngineContents deserialize_engine_deferring_weights(const uint8_t* data, size_t size, const std::string& name,
                                                    std::shared_ptr<const void> keep_alive, DeferredChecksum& weights);
// Throws the loader's Error ("<file>: section WGHT: checksum mismatch (corrupt file)") on a mismatch.
void check_deferred(const DeferredChecksum& c);
// A file mapped read-only (mmap): loading an engine parses the page cache's bytes in place
// instead of zero-filling a buffer and copying the file into it.
// Zeroed anonymous memory whose pages are all faulted in by one mmap call (MAP_POPULATE): where
// a page fault is costly (virtual machines), touching fresh heap pages one by one costs more than
// the work that fills them (an INT8 engine's dequantized weights at load).
class PopulatedBlock {
 public:
  explicit PopulatedBlock(size_t size);
  ~PopulatedBlock();
  PopulatedBlock(const PopulatedBlock&) = delete;
  PopulatedBlock& operator=(const PopulatedBlock&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};
// temp "<path>.tmp.<pid>.<n>" + fsync + rename; creates parent folders.
void write_file_atomic(const std::string& path, const void* data, size_t n);

// An exclusive advisory lock (flock) on a file, released by the destructor.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// The NETW section alone (no verify()), for tests.
std::vector<uint8_t> serialize_network(const Network& net);
Network deserialize_network(const std::vector<uint8_t>& bytes);

using tandem::float_to_half;  // tandem/numerics.h
using tandem::half_to_float;

}  // namespace tandem::engine_detail
