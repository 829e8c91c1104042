#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "tandem/quant.h"

using namespace tandem;

static std::string tmp_path(const std::string& name) {
  return ::testing::TempDir() + "tandem_quant_" + name;
}

TEST(CalibCache, TensorRTSampleLines) {
  // cuDLA-samples YOLOv5 cache (source S14 in docs/dla-rules-impl.md), written by TensorRT 8.6.
  auto c = parse_calibration_cache(
      "TRT-8600-EntropyCalibration2\nimages: 3c00f9f4\n/model.0/act/Mul_output_0: 3e6c9314\n", "sample.cache");
  EXPECT_EQ(c.trt_version, 8600);
  EXPECT_EQ(c.algorithm, "EntropyCalibration2");
  ASSERT_EQ(c.scales.size(), 2u);
  EXPECT_EQ(c.scales[0].first, "images");
  EXPECT_NEAR(c.scales[0].second, 0.0078721, 1e-7);
  EXPECT_NEAR(c.scales[0].second * 127, 0.99976, 1e-4);  // range of an input in [0, 1]
  EXPECT_EQ(c.scales[1].first, "/model.0/act/Mul_output_0");
  EXPECT_NEAR(c.scales[1].second, 0.23103, 1e-5);
  EXPECT_NEAR(c.scales[1].second * 127, 29.34, 0.01);
  // And the writer gives back exactly the same text.
  EXPECT_EQ(format_calibration_cache(c),
            "TRT-8600-EntropyCalibration2\nimages: 3c00f9f4\n/model.0/act/Mul_output_0: 3e6c9314\n");
}

TEST(CalibCache, NamesWithColonsSplitAtLastColon) {
  auto c = parse_calibration_cache("TRT-100300-MinMaxCalibration\r\ninput_tensor:0: 3f800000\r\n", "x");
  EXPECT_EQ(c.trt_version, 100300);
  EXPECT_EQ(c.algorithm, "MinMaxCalibration");
  ASSERT_EQ(c.scales.size(), 1u);
  EXPECT_EQ(c.scales[0].first, "input_tensor:0");
  EXPECT_EQ(c.scales[0].second, 1.0f);
}

TEST(CalibCache, ShortHexAsQdqTranslatorWrites) {
  // NVIDIA's qdq-translator does not zero-pad; 3c00f9f4 has 8 digits anyway, 1 digit is valid.
  auto c = parse_calibration_cache("TRT-8600-EntropyCalibration2\nt: 3f8\nz: 0\n", "x");
  EXPECT_EQ(c.scales[0].second, std::bit_cast<float>(uint32_t(0x3f8)));
  // Scale 0 cannot quantize anything (and made `compare` fail later): read as the smallest scale
  // calibrate writes, and counted so the CLI can say so.
  EXPECT_EQ(c.scales[1].second, kMinCalibrationScale);
  EXPECT_EQ(c.zero_scales, 1);
}

TEST(CalibCache, WriteReadRoundTrip) {
  CalibrationCache c;
  c.trt_version = 8602;
  c.algorithm = "EntropyCalibration2";
  c.scales = {{"x", 1.f / 127}, {"a:b:c", 0.123456f}, {"/m/Conv_output_0", 3.5e-5f}, {"z", kMinCalibrationScale}};
  std::string p = tmp_path("rt.cache");
  write_calibration_cache(p, c);
  auto r = read_calibration_cache(p);
  EXPECT_EQ(r.trt_version, 8602);
  EXPECT_EQ(r.algorithm, c.algorithm);
  ASSERT_EQ(r.scales.size(), c.scales.size());
  for (size_t i = 0; i < c.scales.size(); ++i) {
    EXPECT_EQ(r.scales[i].first, c.scales[i].first);
    EXPECT_EQ(r.scales[i].second, c.scales[i].second);  // bit exact
  }
  EXPECT_EQ(scale_to_hex(1.f), "3f800000");
  std::remove(p.c_str());
}

TEST(CalibCache, CorruptLineNamesFileAndLine) {
  std::string p = tmp_path("bad.cache");
  {
    std::ofstream f(p);
    f << "TRT-8600-EntropyCalibration2\nimages: 3c00f9f4\n/model.0/conv: zz00f9f4\n";
  }
  try {
    read_calibration_cache(p);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(p + ":3:"), std::string::npos) << m;
    EXPECT_NE(m.find("/model.0/conv"), std::string::npos) << m;
    EXPECT_EQ(e.exit_code(), 2);
  }
  EXPECT_THROW(parse_calibration_cache("images: 3c00f9f4\n", "nohdr"), Error);
  EXPECT_THROW(parse_calibration_cache("TRT-8600-EntropyCalibration2\nno colon here\n", "x"), Error);
  EXPECT_THROW(parse_calibration_cache("TRT-8600-EntropyCalibration2\nt: 123456789\n", "x"), Error);
  EXPECT_THROW(parse_calibration_cache("", "empty"), Error);
  EXPECT_THROW(read_calibration_cache(tmp_path("missing.cache")), Error);
  std::remove(p.c_str());
}
