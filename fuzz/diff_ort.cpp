// Differential testing against ONNX Runtime on random valid graphs (onnx_gen.h).
//   tandem_diff_ort gen N SEED DIR   writes DIR/gNNNNNN.onnx and DIR/gNNNNNN.x.npy (seeded input)
//   (node tools/peer/ort_batch.js DIR writes DIR/gNNNNNN.ort/<output>.npy)
//   tandem_diff_ort check DIR        runs each model on the CPU backend and compares every output
// Prints one line per disagreement and a summary; exit 1 when any model disagrees or fails.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "onnx_gen.h"
#include "tandem/npy.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"

namespace fs = std::filesystem;
using namespace tandem;

namespace {

std::string sanitize(const std::string& name) {  // as ort_batch.js names its files
  std::string s = name;
  for (auto& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') c = '_';
  return s;
}

int gen(int n, uint32_t seed, const std::string& dir) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    std::mt19937 rng(seed * 1000003u + uint32_t(i));
    auto pick = [&rng](uint32_t k) { return uint32_t(rng() % k); };
    fuzz::GeneratedModel m = fuzz::generate_model(pick, 12);
    std::string stem = fmt::format("{}/g{:06d}", dir, i);
    FILE* f = std::fopen((stem + ".onnx").c_str(), "wb");
    if (!f || std::fwrite(m.bytes.data(), 1, m.bytes.size(), f) != m.bytes.size()) {
      std::fprintf(stderr, "tandem_diff_ort: cannot write %s.onnx\n", stem.c_str());
      return 2;
    }
    std::fclose(f);
    HostTensor x = HostTensor::zeros("x", DataType::kFloat, m.input_dims);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (int64_t k = 0; k < x.count(); ++k) x.f32()[k] = u(rng);
    write_npy(stem + ".x.npy", x);
  }
  return 0;
}

struct Verdict {
  bool ok = true;
  std::string why;
};

// |a - b| <= atol + rtol * |b| per element; NaN must match NaN.
Verdict compare(const HostTensor& a, const HostTensor& b, float atol, float rtol) {
  if (a.dims != b.dims) return {false, fmt::format("shape {} vs ORT {}", dims_to_string(a.dims), dims_to_string(b.dims))};
  for (int64_t i = 0; i < a.count(); ++i) {
    float x = a.f32()[i], y = b.f32()[i];
    if (std::isnan(x) || std::isnan(y)) {
      if (std::isnan(x) != std::isnan(y)) return {false, fmt::format("element {}: {} vs ORT {}", i, x, y)};
      continue;
    }
    if (std::fabs(x - y) > atol + rtol * std::fabs(y))
      return {false, fmt::format("element {}: {} vs ORT {} (|diff| {:.3g})", i, x, y, std::fabs(x - y))};
  }
  return {};
}

int check(const std::string& dir) {
  std::vector<fs::path> models;
  for (const auto& de : fs::directory_iterator(dir))
    if (de.path().extension() == ".onnx") models.push_back(de.path());
  std::sort(models.begin(), models.end());
  int agree = 0, disagree = 0;
  for (const auto& p : models) {
    std::string stem = (p.parent_path() / p.stem()).string();
    try {
      Network net = import_onnx(p.string());
      HostTensor x = read_npy(stem + ".x.npy");
      x.name = "x";
      auto against_ort = [&](bool fuse) {
        ExecOptions eo;
        eo.fuse = fuse;
        auto out = make_cpu_executor(net, eo)->run({{"x", x}});
        Verdict v;
        for (const auto& [name, t] : out) {
          HostTensor ref = read_npy(stem + ".ort/" + sanitize(name) + ".npy");
          v = compare(t, ref, 1e-4f, 1e-3f);
          if (!v.ok) {
            v.why = "output '" + name + "': " + v.why;
            break;
          }
        }
        return v;
      };
      Verdict v = against_ort(true);
      // Say whether the fused path alone is at fault (the unfused reference path agrees).
      if (!v.ok) v.why += against_ort(false).ok ? " [unfused agrees]" : " [unfused disagrees too]";
      if (v.ok) {
        ++agree;
      } else {
        ++disagree;
        std::printf("DISAGREE %s: %s\n", p.filename().c_str(), v.why.c_str());
      }
    } catch (const Error& e) {
      ++disagree;
      std::printf("FAIL %s: %s\n", p.filename().c_str(), e.what());
    }
  }
  std::printf("graphs: %zu, agree: %d, disagree or fail: %d\n", models.size(), agree, disagree);
  return disagree == 0 && !models.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "gen" && argc == 5) return gen(std::atoi(argv[2]), uint32_t(std::strtoul(argv[3], nullptr, 10)), argv[4]);
  if (mode == "check" && argc == 3) return check(argv[2]);
  std::fprintf(stderr, "usage: tandem_diff_ort gen N SEED DIR | check DIR\n");
  return 2;
}
