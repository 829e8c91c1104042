// The image batcher's decode (stb) and resize: one file in a folder, a small model input.
#include <cstdint>
#include <filesystem>

#include "fuzz_util.h"
#include "tandem/quant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const std::string dir = tandem::fuzz::scratch_dir() + "/images";
  std::filesystem::create_directories(dir);
  const char* ext = (data[0] & 1) ? "a.png" : "a.jpg";
  std::filesystem::remove(dir + "/a.png");
  std::filesystem::remove(dir + "/a.jpg");
  tandem::fuzz::write_scratch(std::string("images/") + ext, data + 1, size - 1);
  try {
    tandem::ImageBatcherOptions o;
    o.dir = dir;
    o.resize = (data[0] & 2) ? tandem::ResizeMethod::kLinear : tandem::ResizeMethod::kLetterbox;
    o.bgr = data[0] & 4;
    o.channels = (data[0] & 8) ? 1 : 3;
    o.threads = 1;
    std::vector<tandem::InputSpec> specs = {{"x", {1, o.channels, 16, 24}, tandem::DataType::kFloat}};
    auto b = tandem::make_image_batcher(o, specs, 1);
    tandem::TensorMap m;
    while (b->next(&m)) {
    }
  } catch (const tandem::Error&) {
  }
  return 0;
}
