#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>

#include "tandem/npy.h"
#include "tandem/quant.h"

using namespace tandem;
namespace fs = std::filesystem;

static const std::string kCalib = std::string(TANDEM_SOURCE_DIR) + "/tests/data/calib";

static std::string tmp_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "tandem_quant_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

static std::vector<InputSpec> cls_input() { return {{"x", {1, 3, 48, 192}, DataType::kFloat}}; }

TEST(SyntheticBatcher, DeterministicAndInRange) {
  std::vector<InputSpec> in = {{"a", {1, 3, 4, 4}, DataType::kFloat}, {"b", {1, 2}, DataType::kFloat}};
  auto b1 = make_synthetic_batcher(in, 2, 3, -1.f, 2.f, 7);
  auto b2 = make_synthetic_batcher(in, 2, 3, -1.f, 2.f, 7);
  EXPECT_EQ(b1->num_batches(), 3);
  TensorMap m1, m2;
  int n = 0;
  while (b1->next(&m1)) {
    ASSERT_TRUE(b2->next(&m2));
    ASSERT_EQ(m1.size(), 2u);  // every input, not just the first
    EXPECT_EQ(m1["a"].dims, (Dims{2, 3, 4, 4}));
    EXPECT_EQ(m1["b"].dims, (Dims{2, 2}));
    EXPECT_EQ(m1["a"].data, m2["a"].data);
    for (int64_t i = 0; i < m1["a"].count(); ++i) {
      EXPECT_GE(m1["a"].f32()[i], -1.f);
      EXPECT_LE(m1["a"].f32()[i], 2.f);
    }
    ++n;
  }
  EXPECT_EQ(n, 3);
  b1->reset();
  ASSERT_TRUE(b1->next(&m1));
  b2->reset();
  ASSERT_TRUE(b2->next(&m2));
  EXPECT_EQ(m1["a"].data, m2["a"].data);  // reset replays the same data
  auto b3 = make_synthetic_batcher(in, 2, 3, -1.f, 2.f, 8);
  b3->next(&m2);
  EXPECT_NE(m1["a"].data, m2["a"].data);
  EXPECT_THROW(make_synthetic_batcher(in, 0, 3), Error);
}

TEST(ImageBatcher, CalibFolder) {
  ImageBatcherOptions o;
  o.dir = kCalib;
  auto b = make_image_batcher(o, cls_input(), 8);
  EXPECT_EQ(b->num_batches(), 4);  // 32 images
  TensorMap m;
  ASSERT_TRUE(b->next(&m));
  const HostTensor& t = m.at("x");
  EXPECT_EQ(t.dims, (Dims{8, 3, 48, 192}));
  float lo = 1e9, hi = -1e9;
  for (int64_t i = 0; i < t.count(); ++i) { lo = std::min(lo, t.f32()[i]); hi = std::max(hi, t.f32()[i]); }
  EXPECT_GE(lo, 0.f);
  EXPECT_LE(hi, 1.f);
  EXPECT_LT(lo, 0.35f);  // dark strokes
  EXPECT_GT(hi, 0.75f);  // light paper

  // BGR swaps channel 0 and 2; NHWC puts channels last; mean/std apply per channel.
  ImageBatcherOptions o2 = o;
  o2.bgr = true;
  o2.nchw = false;
  o2.lo = -1.f; o2.hi = 1.f;
  o2.mean = {0.5f};
  o2.std = {0.5f};
  auto b2 = make_image_batcher(o2, {{"x", {1, 48, 192, 3}, DataType::kFloat}}, 8);
  TensorMap m2;
  ASSERT_TRUE(b2->next(&m2));
  const HostTensor& u = m2.at("x");
  EXPECT_EQ(u.dims, (Dims{8, 48, 192, 3}));
  // pixel (0, y=10, x=20): NCHW channel c vs NHWC channel 2-c; v2 = ((2v - 1) - 0.5) / 0.5
  for (int c = 0; c < 3; ++c) {
    float v = t.f32()[(int64_t(c) * 48 + 10) * 192 + 20];
    float w = u.f32()[(int64_t(10) * 192 + 20) * 3 + (2 - c)];
    EXPECT_NEAR(w, ((2 * v - 1) - 0.5f) / 0.5f, 1e-5);
  }

  ImageBatcherOptions o3 = o;
  o3.type = DataType::kHalf;
  o3.resize = ResizeMethod::kLinear;
  auto b3 = make_image_batcher(o3, {{"x", {1, 3, 48, 192}, DataType::kHalf}}, 8);
  TensorMap m3;
  ASSERT_TRUE(b3->next(&m3));
  EXPECT_EQ(m3.at("x").type, DataType::kHalf);
  EXPECT_EQ(m3.at("x").data.size(), size_t(8 * 3 * 48 * 192 * 2));
}

TEST(ImageBatcher, PartialLastBatchAndLetterCase) {
  std::string d = tmp_dir("partial");
  for (int i = 0; i < 10; ++i) {
    char src[64];
    std::snprintf(src, sizeof src, "/text_%02d.png", i);
    fs::copy_file(kCalib + src, d + (i == 0 ? "/UPPER.PNG" : i == 1 ? "/b.Jpg.png" : src));
  }
  std::ofstream(d + "/notes.txt") << "not an image";
  ImageBatcherOptions o;
  o.dir = d;
  o.threads = 3;
  TensorMap m;
  auto keep = make_image_batcher(o, cls_input(), 4);
  EXPECT_EQ(keep->num_batches(), 3);
  keep->next(&m); keep->next(&m); keep->next(&m);
  EXPECT_EQ(m.at("x").dims[0], 2);
  EXPECT_FALSE(keep->next(&m));
  o.last = LastBatch::kPad;
  auto pad = make_image_batcher(o, cls_input(), 4);
  EXPECT_EQ(pad->num_batches(), 3);
  pad->next(&m); pad->next(&m); pad->next(&m);
  ASSERT_EQ(m.at("x").dims[0], 4);
  size_t sb = size_t(3 * 48 * 192 * 4);
  EXPECT_EQ(std::memcmp(m.at("x").data.data() + sb, m.at("x").data.data() + 3 * sb, sb), 0);
  o.last = LastBatch::kDrop;
  EXPECT_EQ(make_image_batcher(o, cls_input(), 4)->num_batches(), 2);
}

TEST(ImageBatcher, ClearErrors) {
  std::string empty = tmp_dir("empty");
  std::ofstream(empty + "/readme.txt") << "x";
  ImageBatcherOptions o;
  o.dir = empty;
  try {
    make_image_batcher(o, cls_input(), 4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(empty), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no usable image"), std::string::npos) << e.what();
  }
  o.dir = empty + "/nope";
  EXPECT_THROW(make_image_batcher(o, cls_input(), 4), Error);

  std::string bad = tmp_dir("bad");
  fs::copy_file(kCalib + "/text_00.png", bad + "/a.png");
  std::ofstream(bad + "/b.jpg") << "this is not a jpeg";
  o.dir = bad;
  auto b = make_image_batcher(o, cls_input(), 2);
  TensorMap m;
  try {
    b->next(&m);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad + "/b.jpg"), std::string::npos) << e.what();
  }
  o.dir = kCalib;
  o.height = 64;  // asked for 64 rows, the input has 48
  EXPECT_THROW(make_image_batcher(o, cls_input(), 2), Error);
  o.height = 0;
  o.channels = 1;  // grey images for a 3-channel input
  EXPECT_THROW(make_image_batcher(o, cls_input(), 2), Error);
}

// Only PNG and JPEG data reach stb's decoders, whatever the name: a 16-bit PNM named .png (which
// Debian's stb decoded little-endian, reading past its buffer when converting its channels:
// fuzz_image, fuzz/regressions/image) and the fuzzer's truncated one are one error line naming
// the file; a 16-bit PNG of two RGB pixels (0x1234, 0x3456, 0x5678) and (0xffff, 0, 0x8000)
// decodes to 8-bit (18, 52, 86) and (255, 0, 128), gray (77 r + 150 g + 29 b) >> 8 = 45 and 91.
TEST(ImageBatcher, OnlyPngAndJpegDataAreDecoded) {
  std::string d = tmp_dir("png16");
  auto write = [&](const std::string& bytes) {
    std::ofstream(d + "/a.png", std::ios::binary | std::ios::trunc) << bytes;
  };
  const unsigned char png16[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
      0x02, 0x00, 0x00, 0x00, 0x01, 0x10, 0x02, 0x00, 0x00, 0x00, 0x2b, 0xd0, 0x34, 0x9e, 0x00, 0x00, 0x00, 0x15, 0x49,
      0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x10, 0x32, 0x31, 0x09, 0x0b, 0xab, 0xf8, 0xff, 0x9f, 0x81, 0xa1, 0x81, 0x01,
      0x00, 0x1a, 0x1c, 0x04, 0x1d, 0x4e, 0x6b, 0x51, 0x81, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42,
      0x60, 0x82};
  write(std::string(reinterpret_cast<const char*>(png16), sizeof png16));
  ImageBatcherOptions o;
  o.dir = d;
  o.resize = ResizeMethod::kLinear;  // 2x1 to 2x1: the pixels themselves
  o.lo = 0.f;
  o.hi = 255.f;
  o.threads = 1;
  TensorMap m;
  o.channels = 1;
  auto gray = make_image_batcher(o, {{"x", {1, 1, 1, 2}, DataType::kFloat}}, 1);
  ASSERT_TRUE(gray->next(&m));
  EXPECT_EQ(std::vector<float>(m.at("x").f32(), m.at("x").f32() + 2), (std::vector<float>{45.f, 91.f}));
  o.channels = 3;
  auto rgb = make_image_batcher(o, {{"x", {1, 3, 1, 2}, DataType::kFloat}}, 1);
  ASSERT_TRUE(rgb->next(&m));
  EXPECT_EQ(std::vector<float>(m.at("x").f32(), m.at("x").f32() + 6),
            (std::vector<float>{18.f, 255.f, 52.f, 0.f, 86.f, 128.f}));
  const std::string pnm16 = std::string("P6\n2 1\n65535\n") +
                            std::string("\x12\x34\x34\x56\x56\x78\xff\xff\x00\x00\x80\x00", 12);
  for (const std::string& bytes : {pnm16, std::string("P66\r66646\r6666")}) {
    write(bytes);
    o.channels = 1;
    auto b = make_image_batcher(o, {{"x", {1, 1, 16, 24}, DataType::kFloat}}, 1);
    try {
      b->next(&m);
      ADD_FAILURE() << "decoded";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), d + "/a.png: cannot decode image: not PNG or JPEG data");
    }
  }
  fs::remove_all(d);
}

TEST(NpyBatcher, ManySamplesPerFileAndErrors) {
  std::string d = tmp_dir("npy");
  HostTensor a = HostTensor::zeros("a", DataType::kFloat, {5, 3, 2});
  for (int64_t i = 0; i < a.count(); ++i) a.f32()[i] = float(i);
  write_npy(d + "/a.npy", a);
  HostTensor a2 = HostTensor::zeros("a", DataType::kFloat, {1, 3, 2});
  write_npy(d + "/a2.npy", a2);
  std::vector<InputSpec> in = {{"a", {1, 3, 2}, DataType::kFloat}};
  auto b = make_npy_batcher({{"a", d + "/a.npy"}, {"a", d + "/a2.npy"}}, in, 4);
  EXPECT_EQ(b->num_batches(), 2);  // 6 samples in batches of 4, the last kept (2)
  TensorMap m;
  ASSERT_TRUE(b->next(&m));
  EXPECT_EQ(m.at("a").dims, (Dims{4, 3, 2}));
  EXPECT_EQ(m.at("a").f32()[7], 7.f);
  ASSERT_TRUE(b->next(&m));
  EXPECT_EQ(m.at("a").dims, (Dims{2, 3, 2}));
  EXPECT_FALSE(b->next(&m));

  HostTensor wrong = HostTensor::zeros("a", DataType::kFloat, {2, 4, 2});
  write_npy(d + "/shape.npy", wrong);
  try {
    make_npy_batcher({{"a", d + "/shape.npy"}}, in, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d + "/shape.npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
  HostTensor i32 = HostTensor::zeros("a", DataType::kInt32, {2, 3, 2});
  write_npy(d + "/dtype.npy", i32);
  try {
    make_npy_batcher({{"a", d + "/dtype.npy"}}, in, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d + "/dtype.npy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dtype"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_npy_batcher({{"zz", d + "/a.npy"}}, in, 1), Error);
  EXPECT_THROW(make_npy_batcher({}, in, 1), Error);
}

TEST(SplitBatch, ToModelBatch) {
  std::vector<InputSpec> in = {{"a", {1, 2}, DataType::kFloat}};
  TensorMap m;
  m["a"] = HostTensor::zeros("a", DataType::kFloat, {3, 2});
  for (int i = 0; i < 6; ++i) m["a"].f32()[i] = float(i);
  auto parts = split_batch(m, in);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2].at("a").dims, (Dims{1, 2}));
  EXPECT_EQ(parts[2].at("a").f32()[1], 5.f);
  std::vector<InputSpec> in2 = {{"a", {2, 2}, DataType::kFloat}};
  auto p2 = split_batch(m, in2);
  ASSERT_EQ(p2.size(), 2u);
  EXPECT_EQ(p2[1].at("a").f32()[2], 4.f);  // padded by repeating the last sample
}

// A PNG chunk whose declared length runs past the end of the file: stb would grow its image-data
// buffer to that length before reading (fuzz_image: 2 GiB from a 4 KiB file). The batcher walks
// the chunks first and refuses with one line; a chunk header cut off, or no IEND, too.
TEST(ImageBatcher, PngChunkPastTheEndIsRefusedBeforeDecoding) {
  std::string d = tmp_dir("chunk");
  const std::string sig("\x89PNG\r\n\x1a\n", 8);
  const std::string ihdr = std::string("\0\0\0\x0dIHDR\0\0\0\x02\0\0\0\x01\x08\x02\0\0\0", 21) + std::string(4, '\0');
  const std::string huge_idat = std::string("\x7f\xff\xff\xf0IDAT", 8) + std::string(16, 'x');
  const std::string cut = std::string("\0\0\0\0IE", 6);
  ImageBatcherOptions o;
  o.dir = d;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {sig + ihdr + huge_idat, "PNG chunk 'IDAT' at byte 33 declares 2147483632 bytes, past the end of the file"},
      {sig + ihdr + cut, "PNG chunk header cut off at byte 33"},
      {sig + ihdr, "PNG ends without an IEND chunk"}};
  for (const auto& [bytes, why] : cases) {
    std::ofstream(d + "/a.png", std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
    auto b = make_image_batcher(o, cls_input(), 1);
    TensorMap m;
    try {
      b->next(&m);
      ADD_FAILURE() << "decoded: " << why;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), d + "/a.png: cannot decode image: " + why);
    }
  }
}

// A PNG header of a few bytes can declare 9000 x 9000 pixels; decoding it would allocate 243 MB.
// The batcher reads the size first and refuses with one line (found by fuzz_image: slow inputs).
TEST(ImageBatcher, HugeDeclaredImageIsRefusedBeforeDecoding) {
  std::string d = tmp_dir("huge");
  const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                               0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0x23, 0x28, 0, 0, 0x23, 0x28, 8, 2, 0, 0, 0,
                               0, 0, 0, 0,  // CRC (not checked by the size probe)
                               0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  std::ofstream(d + "/a.png", std::ios::binary).write(reinterpret_cast<const char*>(png), sizeof png);
  ImageBatcherOptions o;
  o.dir = d;
  auto b = make_image_batcher(o, cls_input(), 1);
  TensorMap m;
  try {
    b->next(&m);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              d + "/a.png: 9000x9000 pixels is over the limit of 64 megapixels for a calibration image");
  }
}

// ---- the progress bar: on a terminal only ------------------------------------------------
namespace {
// Runs fn with file descriptor 2 (stderr) pointing at fd, then puts stderr back.
void with_stderr_on(int fd, const std::function<void()>& fn) {
  std::fflush(stderr);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
}

// What a pseudo-terminal's master side has received so far.
std::string drain(int master) {
  ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
  std::string got;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(master, buf, sizeof buf)) > 0) got.append(buf, size_t(n));
  return got;
}
}  // namespace

TEST(ProgressBar, SilentWhenStderrIsNotATerminal) {
  const std::string path = tmp_dir("progress") + "/stderr.txt";
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  with_stderr_on(fd, [] {
    ProgressBar bar("calibrate", 4);
    bar.step();
    bar.step(3);
    bar.done();
  });
  ::close(fd);
  EXPECT_EQ(fs::file_size(path), 0u);
}

TEST(ProgressBar, DrawnInPlaceOnATerminal) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const int tty = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(tty, 0);
  with_stderr_on(tty, [] {
    ProgressBar bar("calibrate", 4);
    bar.step(2);
    bar.step(2);
    bar.done();
    ProgressBar off("compare", 4, /*enabled=*/false);  // --quiet, --json
    off.step(4);
  });
  const std::string got = drain(master);
  ::close(tty);
  ::close(master);
  EXPECT_NE(got.find("\rcalibrate [###############...............] 2/4 "), std::string::npos) << got;
  EXPECT_NE(got.find("\rcalibrate [##############################] 4/4 "), std::string::npos) << got;
  EXPECT_EQ(got.find("compare"), std::string::npos) << got;
}
