// The text caches tandem reads: a TensorRT calibration cache and the timing cache. Which one is
// chosen by the first byte, so one corpus covers both.
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "tandem/engine.h"
#include "tandem/quant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool timing = data[0] & 1;
  try {
    if (timing) {
      std::string path = tandem::fuzz::write_scratch("timing.cache", data + 1, size - 1);
      auto tc = tandem::TimingCache::read(path, "cpu:fuzz", true);
      (void)tc.entries.size();
    } else {
      std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
      auto c = tandem::parse_calibration_cache(text, "fuzz.cache");
      (void)tandem::format_calibration_cache(c);
      (void)c.scale_map();
    }
  } catch (const tandem::Error&) {
  }
  return 0;
}
