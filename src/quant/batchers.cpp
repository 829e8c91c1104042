// Batchers: synthetic (seeded), images from a folder (stb_image), .npy files.
#include <stb/stb_image.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "tandem/npy.h"
#include "tandem/numerics.h"
#include "tandem/quant.h"

#include <fmt/format.h>

namespace fs = std::filesystem;

namespace tandem {

std::vector<InputSpec> input_specs(const Network& net) {
  std::vector<InputSpec> v;
  for (TensorId t : net.inputs)
    if (!net.model.input_values.count(net.tensors[t].name))  // fixed values: the backends feed them
      v.push_back({net.tensors[t].name, net.tensors[t].dims, net.tensors[t].type});
  return v;
}

bool parse_resize_method(std::string_view s, ResizeMethod* out) {
  if (s == "letterbox") *out = ResizeMethod::kLetterbox;
  else if (s == "linear") *out = ResizeMethod::kLinear;
  else return false;
  return true;
}

std::string_view to_string(LastBatch b) {
  switch (b) {
    case LastBatch::kKeep: return "keep";
    case LastBatch::kPad: return "pad";
    case LastBatch::kDrop: return "drop";
  }
  return "?";
}

bool parse_last_batch(std::string_view s, LastBatch* out) {
  if (s == "keep") *out = LastBatch::kKeep;
  else if (s == "pad") *out = LastBatch::kPad;
  else if (s == "drop") *out = LastBatch::kDrop;
  else return false;
  return true;
}

namespace {

// 64 megapixels: far above any calibration image, far below what a hostile header can claim.
constexpr int64_t kMaxImagePixels = 64'000'000;
// The file itself: 64 megapixels as an uncompressed RGBA PNG is 256 MiB; stb takes an int length.
constexpr int64_t kMaxImageFileBytes = int64_t(512) << 20;

// Stores float v as element i of a buffer of type t.
void store(uint8_t* base, DataType t, int64_t i, float v) {
  switch (t) {
    case DataType::kFloat: reinterpret_cast<float*>(base)[i] = v; break;
    case DataType::kHalf: reinterpret_cast<uint16_t*>(base)[i] = float_to_half(v); break;
    case DataType::kInt8: reinterpret_cast<int8_t*>(base)[i] = int8_t(std::clamp(std::nearbyint(v), -128.f, 127.f)); break;
    case DataType::kUInt8: reinterpret_cast<uint8_t*>(base)[i] = uint8_t(std::clamp(std::nearbyint(v), 0.f, 255.f)); break;
    case DataType::kInt32: reinterpret_cast<int32_t*>(base)[i] = int32_t(std::clamp(double(std::nearbyint(v)), -2147483648.0, 2147483647.0)); break;
    case DataType::kInt64: reinterpret_cast<int64_t*>(base)[i] = int64_t(std::clamp(double(std::nearbyint(v)), -9.2e18, 9.2e18)); break;
    case DataType::kBool: base[i] = v != 0.f; break;
    case DataType::kBFloat16: reinterpret_cast<uint16_t*>(base)[i] = float_to_bfloat16(v); break;
  }
}

Dims with_batch(Dims d, int64_t b) {
  if (d.empty()) return {b};
  d[0] = b;
  return d;
}

int64_t sample_volume(const Dims& d) {
  int64_t v = 1;
  for (size_t i = 1; i < d.size(); ++i) v *= d[i];
  return v;
}

// ---- synthetic ---------------------------------------------------------------------------
class SyntheticBatcher : public Batcher {
 public:
  SyntheticBatcher(std::vector<InputSpec> in, int bs, int nb, float lo, float hi, uint64_t seed)
      : inputs_(std::move(in)), bs_(bs), nb_(nb), lo_(lo), hi_(hi), seed_(seed) {
    if (bs_ < 1) throw Error("synthetic batcher: batch size must be >= 1, got " + std::to_string(bs_));
    if (nb_ < 1) throw Error("synthetic batcher: number of batches must be >= 1, got " + std::to_string(nb_));
    if (!(hi_ >= lo_)) throw Error("synthetic batcher: empty range [" + std::to_string(lo_) + ", " + std::to_string(hi_) + "]");
  }
  int batch_size() const override { return bs_; }
  int num_batches() const override { return nb_; }
  void reset() override { cur_ = 0; }
  bool next(TensorMap* out) override {
    if (cur_ >= nb_) return false;
    out->clear();
    for (size_t k = 0; k < inputs_.size(); ++k) {
      const InputSpec& s = inputs_[k];
      // One generator per (batch, input): the data does not depend on how far others got.
      std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + uint64_t(cur_) * 1315423911ull + k);
      std::uniform_real_distribution<float> dist(lo_, hi_);
      HostTensor t = HostTensor::zeros(s.name, s.type, with_batch(s.dims, bs_));
      for (int64_t i = 0; i < t.count(); ++i) store(t.data.data(), s.type, i, dist(rng));
      (*out)[s.name] = std::move(t);
    }
    ++cur_;
    return true;
  }

 private:
  std::vector<InputSpec> inputs_;
  int bs_, nb_;
  float lo_, hi_;
  uint64_t seed_;
  int cur_ = 0;
};

// ---- images -----------------------------------------------------------------------------
std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A calibration image file, read once (its signature, header and pixels are then decoded from
// memory: one open per image); an unreadable or oversized file is an error naming it.
std::vector<unsigned char> read_image_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw Error(path + ": cannot read image: " + std::strerror(errno));
  const std::streamoff size = f.tellg();
  if (size < 0) throw Error(path + ": cannot read image: not a regular file");
  if (size > kMaxImageFileBytes)
    throw Error(fmt::format("{}: {} bytes is over the limit of {} MiB for a calibration image file", path,
                            int64_t(size), kMaxImageFileBytes >> 20));
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (!f.read(reinterpret_cast<char*>(bytes.data()), size))
    throw Error(path + ": cannot read image: " + std::strerror(errno));
  return bytes;
}

// Whether bytes hold PNG or JPEG data (their signature: 89 'PNG' 0D 0A 1A 0A, or FF D8 FF). stb
// picks its decoder from the content, so without this check a calibration "image" of any name
// reaches stb's other readers too (PNM, BMP, GIF, PSD, TGA, HDR, PIC): Debian's stb (git
// 2022-09-08) decodes a 16-bit PNM's samples little-endian and reads past its buffer converting
// its channels (fuzz_image, fuzz/regressions/image).
bool png_or_jpeg(const std::vector<unsigned char>& head) {
  static constexpr unsigned char kPng[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  const bool png = head.size() >= 8 && std::memcmp(head.data(), kPng, 8) == 0;
  const bool jpeg = head.size() >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff;
  return png || jpeg;
}

// A PNG's chunks (length, type, data, CRC from byte 8 on) each within the file: stb grows its
// buffer for the image data to a chunk's declared length before reading it, so one corrupt
// length (fuzz: 2 GiB from a 4 KiB file) would allocate that much. Stops at IEND; data after it
// is ignored, as stb ignores it. Returns the reason, or "" for a file whose chunks fit.
std::string png_chunks_problem(const std::vector<unsigned char>& file) {
  size_t at = 8;
  while (at + 12 <= file.size()) {
    const uint32_t length = uint32_t(file[at]) << 24 | uint32_t(file[at + 1]) << 16 | uint32_t(file[at + 2]) << 8 |
                            uint32_t(file[at + 3]);
    const std::string type(reinterpret_cast<const char*>(&file[at + 4]), 4);
    if (length > file.size() - at - 12)
      return fmt::format("PNG chunk '{}' at byte {} declares {} bytes, past the end of the file", type, at, length);
    if (type == "IEND") return "";
    at += 12 + size_t(length);
  }
  return at == file.size() ? "PNG ends without an IEND chunk" : fmt::format("PNG chunk header cut off at byte {}", at);
}

// Bilinear resize of an interleaved 8-bit image (half-pixel centres, as cv2.INTER_LINEAR).
std::vector<float> resize_bilinear(const uint8_t* src, int sw, int sh, int c, int dw, int dh) {
  std::vector<float> dst(size_t(dw) * dh * c);
  const double fx = double(sw) / dw, fy = double(sh) / dh;
  for (int y = 0; y < dh; ++y) {
    double sy = (y + 0.5) * fy - 0.5;
    sy = std::max(sy, 0.0);
    int y0 = std::min(int(sy), sh - 1), y1 = std::min(y0 + 1, sh - 1);
    double wy = sy - y0;
    for (int x = 0; x < dw; ++x) {
      double sx = (x + 0.5) * fx - 0.5;
      sx = std::max(sx, 0.0);
      int x0 = std::min(int(sx), sw - 1), x1 = std::min(x0 + 1, sw - 1);
      double wx = sx - x0;
      for (int k = 0; k < c; ++k) {
        double a = src[(size_t(y0) * sw + x0) * c + k], b = src[(size_t(y0) * sw + x1) * c + k];
        double d = src[(size_t(y1) * sw + x0) * c + k], e = src[(size_t(y1) * sw + x1) * c + k];
        double v = (a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy;
        dst[(size_t(y) * dw + x) * c + k] = float(v);
      }
    }
  }
  return dst;
}

class ImageBatcher : public Batcher {
 public:
  ImageBatcher(const ImageBatcherOptions& o, const std::vector<InputSpec>& inputs, int bs)
      : o_(o), bs_(bs) {
    if (bs_ < 1) throw Error("image batcher: batch size must be >= 1, got " + std::to_string(bs_));
    if (inputs.empty()) throw Error("image batcher: the model has no input");
    const InputSpec* in = nullptr;
    if (o_.input.empty()) {
      if (inputs.size() != 1)
        throw Error("image batcher: the model has " + std::to_string(inputs.size()) +
                    " inputs; name the one the images feed");
      in = &inputs[0];
    } else {
      for (auto& s : inputs)
        if (s.name == o_.input) in = &s;
      if (!in) throw Error("image batcher: the model has no input named '" + o_.input + "'");
    }
    spec_ = *in;
    if (spec_.dims.size() != 4)
      throw Error("image batcher: input '" + spec_.name + "' has shape " + dims_to_string(spec_.dims) +
                  ", images need a 4-D input");
    int64_t c = o_.nchw ? spec_.dims[1] : spec_.dims[3];
    int64_t h = o_.nchw ? spec_.dims[2] : spec_.dims[1];
    int64_t w = o_.nchw ? spec_.dims[3] : spec_.dims[2];
    if (o_.height == 0) o_.height = int(h);
    if (o_.width == 0) o_.width = int(w);
    if (o_.channels != 1 && o_.channels != 3) throw Error("image batcher: channels must be 1 or 3");
    if (c != o_.channels || h != o_.height || w != o_.width)
      throw Error("image batcher: input '" + spec_.name + "' has shape " + dims_to_string(spec_.dims) +
                  (o_.nchw ? " (NCHW)" : " (NHWC)") + ", images give " + std::to_string(o_.channels) +
                  " channels of " + std::to_string(o_.height) + "x" + std::to_string(o_.width));
    if (!o_.mean.empty() && int(o_.mean.size()) != o_.channels && o_.mean.size() != 1)
      throw Error("image batcher: mean needs 1 or " + std::to_string(o_.channels) + " values");
    if (!o_.std.empty() && int(o_.std.size()) != o_.channels && o_.std.size() != 1)
      throw Error("image batcher: std needs 1 or " + std::to_string(o_.channels) + " values");
    for (float s : o_.std)
      if (s == 0.f) throw Error("image batcher: std must not be 0");
    spec_.type = o_.type;

    std::error_code ec;
    if (!fs::is_directory(o_.dir, ec)) throw Error(o_.dir + ": calibration folder does not exist or is not a folder");
    for (auto& e : fs::directory_iterator(o_.dir, ec)) {
      if (!e.is_regular_file()) continue;
      std::string ext = lower(e.path().extension().string());
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files_.push_back(e.path().string());
    }
    if (ec) throw Error(o_.dir + ": cannot list folder: " + ec.message());
    std::sort(files_.begin(), files_.end());
    if (o_.max_images > 0 && int(files_.size()) > o_.max_images) files_.resize(o_.max_images);
    if (files_.empty()) throw Error(o_.dir + ": no usable image (.jpg, .jpeg, .png) in the calibration folder");
    int n = int(files_.size());
    nb_ = o_.last == LastBatch::kDrop ? n / bs_ : (n + bs_ - 1) / bs_;
    if (nb_ == 0)
      throw Error(o_.dir + ": " + std::to_string(n) + " images make no full batch of " +
                  std::to_string(bs_) + " (use --last-batch keep or pad)");
  }
  int batch_size() const override { return bs_; }
  int num_batches() const override { return nb_; }
  void reset() override { cur_ = 0; }
  const std::vector<std::string>& files() const { return files_; }

  bool next(TensorMap* out) override {
    if (cur_ >= nb_) return false;
    int first = cur_ * bs_;
    int avail = std::min(bs_, int(files_.size()) - first);
    int b = o_.last == LastBatch::kKeep ? avail : bs_;
    HostTensor t = HostTensor::zeros(spec_.name, spec_.type, with_batch(spec_.dims, b));
    const int64_t per = sample_volume(t.dims);
    int threads = o_.threads > 0 ? o_.threads : int(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::max(1, std::min(threads, avail));
    std::atomic<int> next_idx{0};
    std::mutex err_mu;
    std::string err;
    auto work = [&] {
      for (;;) {
        int j = next_idx.fetch_add(1);
        if (j >= avail) return;
        try {
          decode_into(files_[first + j], t.data.data(), j * per);
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lk(err_mu);
          if (err.empty()) err = e.what();
        }
      }
    };
    std::vector<std::thread> pool;
    for (int k = 1; k < threads; ++k) pool.emplace_back(work);
    work();
    for (auto& th : pool) th.join();
    if (!err.empty()) throw Error(err);
    // Pad: repeat the last image.
    size_t sample_bytes = size_t(per) * element_size(spec_.type);
    for (int j = avail; j < b; ++j)
      std::memcpy(t.data.data() + j * sample_bytes, t.data.data() + (avail - 1) * sample_bytes, sample_bytes);
    out->clear();
    (*out)[spec_.name] = std::move(t);
    ++cur_;
    return true;
  }

 private:
  void decode_into(const std::string& path, uint8_t* base, int64_t offset) const {
    int w = 0, h = 0, c0 = 0;
    const int C = o_.channels;
    const std::vector<unsigned char> file = read_image_file(path);
    if (!png_or_jpeg(file)) throw Error(path + ": cannot decode image: not PNG or JPEG data");
    const int n = int(file.size());  // < kMaxImageFileBytes < 2^31
    if (file[0] == 0x89)  // PNG (png_or_jpeg)
      if (const std::string why = png_chunks_problem(file); !why.empty()) throw Error(path + ": cannot decode image: " + why);
    // A few header bytes can declare a huge image: check the size before stb allocates it.
    if (stbi_info_from_memory(file.data(), n, &w, &h, &c0) && int64_t(w) * h > kMaxImagePixels)
      throw Error(fmt::format("{}: {}x{} pixels is over the limit of {} megapixels for a calibration image", path, w,
                              h, kMaxImagePixels / 1000000));
    uint8_t* px = stbi_load_from_memory(file.data(), n, &w, &h, &c0, C);
    if (!px) {
      const char* why = stbi_failure_reason();
      throw Error(path + ": cannot decode image: " + (why ? why : "unknown error"));
    }
    std::unique_ptr<uint8_t, void (*)(void*)> guard(px, stbi_image_free);
    // A decoded image of 0 columns or rows (stb's PNM reader gave one for "P5;N", fuzz): nothing to resize.
    if (w <= 0 || h <= 0) throw Error(fmt::format("{}: cannot decode image: {}x{} pixels", path, w, h));
    const int H = o_.height, W = o_.width;
    std::vector<float> img(size_t(H) * W * C, 114.f);
    if (o_.resize == ResizeMethod::kLinear) {
      img = resize_bilinear(px, w, h, C, W, H);
    } else {
      double r = std::min(double(W) / w, double(H) / h);
      int nw = std::max(1, int(std::lround(w * r))), nh = std::max(1, int(std::lround(h * r)));
      nw = std::min(nw, W);
      nh = std::min(nh, H);
      std::vector<float> small = resize_bilinear(px, w, h, C, nw, nh);
      int ox = (W - nw) / 2, oy = (H - nh) / 2;
      for (int y = 0; y < nh; ++y)
        std::memcpy(&img[(size_t(y + oy) * W + ox) * C], &small[size_t(y) * nw * C], sizeof(float) * nw * C);
    }
    const float k = (o_.hi - o_.lo) / 255.f;
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        for (int c = 0; c < C; ++c) {
          int src_c = (o_.bgr && C == 3) ? 2 - c : c;
          float v = img[(size_t(y) * W + x) * C + src_c] * k + o_.lo;
          if (!o_.mean.empty()) v -= o_.mean[o_.mean.size() == 1 ? 0 : c];
          if (!o_.std.empty()) v /= o_.std[o_.std.size() == 1 ? 0 : c];
          int64_t idx = o_.nchw ? (int64_t(c) * H + y) * W + x : (int64_t(y) * W + x) * C + c;
          store(base, spec_.type, offset + idx, v);
        }
  }

  ImageBatcherOptions o_;
  InputSpec spec_;
  int bs_, nb_ = 0, cur_ = 0;
  std::vector<std::string> files_;
};

// ---- npy ---------------------------------------------------------------------------------
class NpyBatcher : public Batcher {
 public:
  NpyBatcher(const std::vector<std::pair<std::string, std::string>>& files,
             const std::vector<InputSpec>& inputs, int bs, LastBatch last)
      : bs_(bs), last_(last) {
    if (bs_ < 1) throw Error("npy batcher: batch size must be >= 1, got " + std::to_string(bs_));
    for (auto& [name, path] : files) {
      const InputSpec* spec = nullptr;
      for (auto& s : inputs)
        if (s.name == name) spec = &s;
      if (!spec) {
        std::string names;
        for (auto& s : inputs) names += (names.empty() ? "" : ", ") + s.name;
        throw Error(path + ": the model has no input named '" + name + "' (inputs: " + names + ")");
      }
      HostTensor t = read_npy(path);
      if (t.type != spec->type)
        throw Error(path + ": dtype " + std::string(to_string(t.type)) + " does not match input '" + name +
                    "' (" + std::string(to_string(spec->type)) + ")");
      bool ok = t.dims.size() == spec->dims.size() && !t.dims.empty() && t.dims[0] >= 1;
      for (size_t i = 1; ok && i < t.dims.size(); ++i) ok = t.dims[i] == spec->dims[i];
      if (!ok) {
        Dims want = spec->dims;
        throw Error(path + ": shape " + dims_to_string(t.dims) + " does not match input '" + name +
                    "' (expected Mx" + dims_to_string(Dims(want.begin() + 1, want.end())) + ")");
      }
      auto& d = data_[name];
      if (d.dims.empty()) {
        d = std::move(t);
        d.name = name;
      } else {
        d.dims[0] += t.dims[0];
        d.data.insert(d.data.end(), t.data.begin(), t.data.end());
      }
    }
    for (auto& s : inputs) {
      if (!data_.count(s.name)) throw Error("npy batcher: no .npy file for input '" + s.name + "'");
      int64_t m = data_[s.name].dims[0];
      if (samples_ < 0) samples_ = m;
      else if (m != samples_)
        throw Error("npy batcher: input '" + s.name + "' has " + std::to_string(m) +
                    " samples, another input has " + std::to_string(samples_));
    }
    nb_ = int(last_ == LastBatch::kDrop ? samples_ / bs_ : (samples_ + bs_ - 1) / bs_);
    if (nb_ == 0)
      throw Error("npy batcher: " + std::to_string(samples_) + " samples make no full batch of " + std::to_string(bs_));
  }
  int batch_size() const override { return bs_; }
  int num_batches() const override { return nb_; }
  void reset() override { cur_ = 0; }
  bool next(TensorMap* out) override {
    if (cur_ >= nb_) return false;
    out->clear();
    int64_t first = int64_t(cur_) * bs_;
    int64_t avail = std::min<int64_t>(bs_, samples_ - first);
    int64_t b = last_ == LastBatch::kKeep ? avail : bs_;
    for (auto& [name, src] : data_) {
      HostTensor t = HostTensor::zeros(name, src.type, with_batch(src.dims, b));
      size_t sb = size_t(sample_volume(src.dims)) * element_size(src.type);
      std::memcpy(t.data.data(), src.data.data() + first * sb, avail * sb);
      for (int64_t j = avail; j < b; ++j) std::memcpy(t.data.data() + j * sb, src.data.data() + (first + avail - 1) * sb, sb);
      (*out)[name] = std::move(t);
    }
    ++cur_;
    return true;
  }

 private:
  std::map<std::string, HostTensor> data_;
  int bs_, nb_ = 0, cur_ = 0;
  int64_t samples_ = -1;
  LastBatch last_;
};

class LimitBatcher : public Batcher {
 public:
  LimitBatcher(std::unique_ptr<Batcher> in, int n) : in_(std::move(in)), n_(std::min(n, in_->num_batches())) {}
  int batch_size() const override { return in_->batch_size(); }
  int num_batches() const override { return n_; }
  void reset() override { in_->reset(); cur_ = 0; }
  bool next(TensorMap* out) override {
    if (cur_ >= n_ || !in_->next(out)) return false;
    ++cur_;
    return true;
  }

 private:
  std::unique_ptr<Batcher> in_;
  int n_, cur_ = 0;
};

}  // namespace

std::unique_ptr<Batcher> limit_batches(std::unique_ptr<Batcher> inner, int n) {
  if (n < 1) throw Error("number of batches must be >= 1, got " + std::to_string(n));
  return std::make_unique<LimitBatcher>(std::move(inner), n);
}

std::unique_ptr<Batcher> make_synthetic_batcher(std::vector<InputSpec> inputs, int batch_size,
                                                int num_batches, float lo, float hi, uint64_t seed) {
  return std::make_unique<SyntheticBatcher>(std::move(inputs), batch_size, num_batches, lo, hi, seed);
}

std::unique_ptr<Batcher> make_image_batcher(const ImageBatcherOptions& opt,
                                            const std::vector<InputSpec>& inputs, int batch_size) {
  return std::make_unique<ImageBatcher>(opt, inputs, batch_size);
}

std::unique_ptr<Batcher> make_npy_batcher(const std::vector<std::pair<std::string, std::string>>& files,
                                          const std::vector<InputSpec>& inputs, int batch_size,
                                          LastBatch last) {
  return std::make_unique<NpyBatcher>(files, inputs, batch_size, last);
}

std::vector<TensorMap> split_batch(const TensorMap& batch, const std::vector<InputSpec>& inputs) {
  std::vector<TensorMap> out;
  if (inputs.empty()) return out;
  int64_t model_b = inputs[0].dims.empty() ? 1 : inputs[0].dims[0];
  int64_t have = -1;
  for (auto& s : inputs) {
    auto it = batch.find(s.name);
    if (it == batch.end()) throw Error("batch has no tensor for input '" + s.name + "'");
    int64_t b = it->second.dims.empty() ? 1 : it->second.dims[0];
    if (have < 0) have = b;
    else if (have != b) throw Error("batch tensors disagree on the batch size ('" + s.name + "')");
  }
  if (have == model_b) return {batch};
  for (int64_t first = 0; first < have; first += model_b) {
    TensorMap piece;
    for (auto& s : inputs) {
      const HostTensor& src = batch.at(s.name);
      HostTensor t = HostTensor::zeros(s.name, src.type, with_batch(src.dims, model_b));
      size_t sb = size_t(sample_volume(src.dims)) * element_size(src.type);
      for (int64_t j = 0; j < model_b; ++j) {
        int64_t k = std::min(first + j, have - 1);
        std::memcpy(t.data.data() + j * sb, src.data.data() + k * sb, sb);
      }
      piece[s.name] = std::move(t);
    }
    out.push_back(std::move(piece));
  }
  return out;
}

// ---- progress ----------------------------------------------------------------------------
ProgressBar::ProgressBar(std::string label, int total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled && ::isatty(2)),
      start_(std::chrono::steady_clock::now()) {
  if (enabled_) step(0);
}
ProgressBar::~ProgressBar() { done(); }
void ProgressBar::step(int n) {
  count_ += n;
  if (!enabled_) return;
  const int width = 30;
  int filled = total_ > 0 ? int(int64_t(width) * std::min(count_, total_) / total_) : 0;
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r%s [%s] %d/%d %.1f s", label_.c_str(), bar.c_str(), count_, total_, s);
  std::fflush(stderr);
}
void ProgressBar::done() {
  if (enabled_ && !finished_) std::fprintf(stderr, "\n");
  finished_ = true;
}

}  // namespace tandem
