// Replays fuzz inputs through a harness without libFuzzer (the normal build, and CI): every file
// given, or every file in every folder given. Used for the committed regression inputs and the
// seed corpora, so a fixed crash stays fixed in every build.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  size_t n = 0;
  auto one = [&n](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++n;
  };
  for (int i = 1; i < argc; ++i) {
    fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& de : fs::recursive_directory_iterator(p))
        if (de.is_regular_file()) one(de.path());
    } else if (fs::exists(p)) {
      one(p);
    }
  }
  std::printf("replayed %zu inputs\n", n);
  return 0;
}
