// .npy reading (inputs of `tandem run`, calibration data): any bytes give a tensor whose size
// matches its dims, or one tandem::Error.
#include <cstdint>
#include <cstdlib>

#include "fuzz_util.h"
#include "tandem/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = tandem::fuzz::write_scratch("x.npy", data, size);
  try {
    tandem::HostTensor t = tandem::read_npy(path);
    if (t.data.size() != size_t(t.count()) * tandem::element_size(t.type)) std::abort();
  } catch (const tandem::Error&) {
  }
  return 0;
}
