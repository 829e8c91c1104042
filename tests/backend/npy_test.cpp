#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tandem/npy.h"

using namespace tandem;
namespace fs = std::filesystem;

namespace {
std::string tmp_dir() {
  fs::path p = fs::temp_directory_path() / ("tandem_npy_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p.string();
}
void write_raw(const std::string& path, const std::string& header, const std::string& data,
               char major = 1) {
  std::string h = header;
  size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string out = "\x93NUMPY";
  out += major;
  out += '\0';
  out += char(h.size() & 0xff);
  out += char(h.size() >> 8);
  out += h + data;
  std::ofstream(path, std::ios::binary) << out;
}
std::string error_of(const std::string& path) {
  try {
    read_npy(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Npy, RoundTripsEveryDtype) {
  std::string dir = tmp_dir();
  for (DataType t : {DataType::kFloat, DataType::kHalf, DataType::kInt8, DataType::kUInt8,
                     DataType::kInt32, DataType::kInt64, DataType::kBool}) {
    HostTensor a = HostTensor::zeros("a", t, {2, 3, 1});
    for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = uint8_t(t == DataType::kBool ? i % 2 : i * 7);
    std::string p = dir + "/a_" + std::string(to_string(t)) + ".npy";
    write_npy(p, a);
    HostTensor b = read_npy(p);
    EXPECT_EQ(b.type, t);
    EXPECT_EQ(b.dims, (Dims{2, 3, 1}));
    EXPECT_EQ(b.data, a.data);
    EXPECT_EQ(b.name, "a_" + std::string(to_string(t)));
  }
  fs::remove_all(dir);
}

TEST(Npy, ReadsNumpyWrittenHeaderAndScalars) {
  std::string dir = tmp_dir();
  float v[3] = {1.5f, -2.f, 3.25f};
  write_raw(dir + "/v.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
            std::string(reinterpret_cast<char*>(v), sizeof v));
  HostTensor t = read_npy(dir + "/v.npy");
  ASSERT_EQ(t.dims, Dims{3});
  EXPECT_EQ(t.f32()[2], 3.25f);
  write_raw(dir + "/s.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            std::string(reinterpret_cast<char*>(v), 4));
  HostTensor s = read_npy(dir + "/s.npy");
  EXPECT_TRUE(s.dims.empty());
  EXPECT_EQ(s.count(), 1);
  // Scalar and 1-d round trip through the writer as well.
  write_npy(dir + "/s2.npy", s);
  EXPECT_TRUE(read_npy(dir + "/s2.npy").dims.empty());
  fs::remove_all(dir);
}

TEST(Npy, ClearErrorsNameTheFile) {
  std::string dir = tmp_dir();
  std::ofstream(dir + "/bad.npy") << "hello world, not numpy";
  EXPECT_NE(error_of(dir + "/bad.npy").find("bad.npy: not a .npy file (bad magic)"), std::string::npos);

  write_raw(dir + "/f8.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
            std::string(8, '\0'));
  EXPECT_NE(error_of(dir + "/f8.npy").find("f8.npy: unsupported .npy dtype '<f8'"), std::string::npos);

  write_raw(dir + "/be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
            std::string(4, '\0'));
  EXPECT_NE(error_of(dir + "/be.npy").find("unsupported .npy dtype '>f4'"), std::string::npos);

  write_raw(dir + "/fo.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
            std::string(16, '\0'));
  EXPECT_NE(error_of(dir + "/fo.npy").find("fo.npy: Fortran-order"), std::string::npos);

  write_raw(dir + "/tr.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
            std::string(12, '\0'));
  EXPECT_NE(error_of(dir + "/tr.npy").find("tr.npy: truncated .npy data"), std::string::npos);

  EXPECT_NE(error_of(dir + "/missing.npy").find("missing.npy: cannot open"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Npy, WriteIsAtomicAndReportsUnwritablePath) {
  std::string dir = tmp_dir();
  HostTensor a = HostTensor::zeros("a", DataType::kFloat, {4});
  try {
    write_npy(dir + "/no/such/dir/a.npy", a);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/dir/a.npy: cannot write"), std::string::npos);
  }
  write_npy(dir + "/a.npy", a);
  size_t n = 0;
  for (auto& e : fs::directory_iterator(dir)) n += e.path().filename() == "a.npy" ? 1 : 100;
  EXPECT_EQ(n, 1u);  // no temp file left behind
  fs::remove_all(dir);
}
