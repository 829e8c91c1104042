#include <gtest/gtest.h>

#include <cstring>

#include "engine/internal.h"
#include "test_util.h"
#include "tandem/engine.h"

using namespace tandem;

namespace {

void expect_same_network(const Network& a, const Network& b, const std::vector<WeightsId>& q) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].dims, b.tensors[i].dims);
    EXPECT_EQ(a.tensors[i].producer, b.tensors[i].producer);
    EXPECT_EQ(a.tensors[i].is_output, b.tensors[i].is_output);
  }
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    EXPECT_EQ(a.layers[i].name, b.layers[i].name);
    EXPECT_EQ(a.layers[i].kind, b.layers[i].kind);
    EXPECT_EQ(a.layers[i].inputs, b.layers[i].inputs);
    EXPECT_EQ(a.layers[i].params.index(), b.layers[i].params.index());
  }
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i) {
    bool quant = std::find(q.begin(), q.end(), WeightsId(i)) != q.end();
    if (!quant) {
      EXPECT_EQ(a.weights[i].bytes, b.weights[i].bytes) << a.weights[i].name;
    } else {
      // Dequantized: within half a quantization step per channel.
      const auto& w = a.weights[i];
      auto qw = engine_detail::quantize_per_channel(w);
      int64_t per = w.count() / w.dims[0];
      for (int64_t j = 0; j < w.count(); ++j)
        EXPECT_NEAR(w.f32()[j], b.weights[i].f32()[j], qw.scales[j / per] * 0.5001f);
    }
  }
}

}  // namespace

TEST(EngineFormat, RoundTrip) {
  EngineContents e = test::small_contents();
  auto bytes = serialize_engine(e);
  EngineContents d = deserialize_engine(bytes.data(), bytes.size(), "mem");
  expect_same_network(e.network, d.network, e.int8_weights);
  EXPECT_EQ(d.plan.layers.size(), e.plan.layers.size());
  EXPECT_EQ(d.plan.layers[0].device, Device::kDLA);
  EXPECT_EQ(d.plan.layers[0].precision, Precision::kINT8);
  EXPECT_EQ(d.plan.regions.size(), 1u);
  EXPECT_EQ(d.plan.crossings.size(), 1u);
  EXPECT_EQ(d.scales, e.scales);
  EXPECT_EQ(d.output_formats[0].type, DataType::kHalf);
  EXPECT_EQ(d.output_formats[0].layout, TensorLayout::kNHWC);
  EXPECT_EQ(d.tactics[0].name, "cpu.threads=2");
  EXPECT_EQ(d.meta.model_sha256, e.meta.model_sha256);
  EXPECT_EQ(d.meta.fusions, e.meta.fusions);
  EXPECT_EQ(d.int8_weights, e.int8_weights);
  // Serializing the loaded contents again is stable (quantization is idempotent).
  auto bytes2 = serialize_engine(d);
  EngineContents d2 = deserialize_engine(bytes2.data(), bytes2.size(), "mem2");
  EXPECT_EQ(d2.network.weights[0].bytes, d.network.weights[0].bytes);
}

TEST(EngineFormat, EveryParamsAlternativeRoundTrips) {
  // One layer-params value of each alternative, with non-default fields.
  std::vector<LayerParams> ps;
  ps.emplace_back(NoParams{});
  ConvolutionParams c; c.kernel = {3, 3}; c.groups = 2; c.out_maps = 4; c.kernel_weights = 1; ps.emplace_back(c);
  PoolingParams p; p.type = PoolingType::kAverage; p.window = {2, 2}; p.padding_mode = PaddingMode::kExplicitRoundUp; ps.emplace_back(p);
  ps.emplace_back(ActivationParams{ActivationType::kClip, 0.5f, 6.f});
  ps.emplace_back(ElementWiseParams{ElementWiseOp::kDiv});
  ScaleParams s; s.mode = ScaleMode::kElementwise; s.power = 3; s.channel_axis = 2; ps.emplace_back(s);
  ps.emplace_back(ConcatenationParams{3});
  ResizeParams r; r.mode = ResizeMode::kCubic; r.scales = {1, 1, 2, 2}; r.cubic_coeff = -0.5f; ps.emplace_back(r);
  ShuffleParams sh; sh.first_transpose = {0, 2, 1}; sh.reshape = Dims{1, 6}; ps.emplace_back(sh);
  SliceParams sl; sl.start = {0, 1}; sl.size = {1, 2}; sl.stride = {1, 1}; sl.mode = SliceMode::kFill; sl.fill_value = 3; ps.emplace_back(sl);
  ps.emplace_back(SoftMaxParams{1u << 2});
  ps.emplace_back(ReduceParams{ReduceOp::kMax, 6u, false});
  ps.emplace_back(MatrixMultiplyParams{MatrixOp::kTranspose, MatrixOp::kNone});
  ps.emplace_back(UnaryParams{UnaryOp::kRound});
  ps.emplace_back(ConstantParams{2});
  ps.emplace_back(LRNParams{3, 1e-3f, 0.5f, 2.f});
  ps.emplace_back(GatherParams{2});
  ps.emplace_back(CastParams{DataType::kHalf});
  ps.emplace_back(NormalizationParams{4u, 1e-3f, 2});
  ASSERT_EQ(ps.size(), std::variant_size_v<LayerParams>);
  for (size_t i = 0; i < ps.size(); ++i) ASSERT_EQ(ps[i].index(), i);
  Network net = test::small_network();
  for (size_t i = 0; i < ps.size(); ++i) {
    net.layers[2].params = ps[i];
    auto bytes = engine_detail::serialize_network(net);
    Network d = engine_detail::deserialize_network(bytes);
    EXPECT_EQ(d.layers[2].params.index(), i);
    EXPECT_EQ(engine_detail::serialize_network(d), bytes) << "alternative " << i;
  }
  // In a whole engine, params that do not match the layer kind are rejected by verify(), with the
  // section named.
  EngineContents e = test::small_contents();
  e.network.layers[2].params = ps[5];
  auto bytes = serialize_engine(e);
  try {
    deserialize_engine(bytes.data(), bytes.size(), "mem");
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("section NETW"), std::string::npos) << err.what();
  }
}

TEST(EngineFormat, WeightsAre64ByteAligned) {
  EngineContents e = test::small_contents();
  auto bytes = serialize_engine(e);
  // Find the WGHT section entry in the table (header 64 bytes, entries 32 bytes).
  uint32_t n;
  std::memcpy(&n, bytes.data() + 32, 4);
  bool found = false;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* ent = bytes.data() + 64 + 32 * i;
    uint64_t off;
    std::memcpy(&off, ent + 8, 8);
    EXPECT_EQ(off % 64, 0u);
    if (std::memcmp(ent, "WGHT", 4) == 0) {
      found = true;
      uint64_t blob;
      std::memcpy(&blob, bytes.data() + off, 8);
      EXPECT_EQ((off + blob) % 64, 0u);
    }
  }
  EXPECT_TRUE(found);
}

TEST(EngineFormat, TruncationFailsCleanly) {
  auto bytes = serialize_engine(test::small_contents());
  for (size_t cut : {size_t(0), size_t(7), size_t(63), size_t(64), size_t(100), bytes.size() / 3, bytes.size() / 2,
                     bytes.size() - 65, bytes.size() - 1}) {
    try {
      deserialize_engine(bytes.data(), cut, "cut.engine");
      FAIL() << "no error at " << cut;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.engine"), std::string::npos) << e.what();
    }
  }
}

TEST(EngineFormat, FlippedByteInEverySectionIsReported) {
  auto bytes = serialize_engine(test::small_contents());
  uint32_t n;
  std::memcpy(&n, bytes.data() + 32, 4);
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* ent = bytes.data() + 64 + 32 * i;
    std::string id(reinterpret_cast<const char*>(ent), 4);
    uint64_t off, size;
    std::memcpy(&off, ent + 8, 8);
    std::memcpy(&size, ent + 16, 8);
    for (uint64_t at : {off, off + size / 2, off + size - 1}) {
      auto b = bytes;
      b[at] ^= 0x5a;
      try {
        deserialize_engine(b.data(), b.size(), "flip.engine");
        FAIL() << "no error for " << id;
      } catch (const Error& e) {
        std::string m = e.what();
        EXPECT_NE(m.find("flip.engine"), std::string::npos) << m;
        EXPECT_NE(m.find("section " + id), std::string::npos) << m;
      }
    }
  }
  // Header and section table bytes too.
  for (size_t at : {size_t(9), size_t(20), size_t(40), size_t(70), size_t(64 + 32 * n - 1)}) {
    auto b = bytes;
    b[at] ^= 0x01;
    EXPECT_THROW(deserialize_engine(b.data(), b.size(), "hdr.engine"), Error) << at;
  }
}

TEST(EngineFormat, WrongVersionSaysSo) {
  auto bytes = serialize_engine(test::small_contents());
  uint32_t v = kEngineFormatVersion + 1;
  std::memcpy(bytes.data() + 8, &v, 4);
  // Recompute the header checksum so only the version is wrong.
  uint64_t h = fnv1a64(bytes.data(), 56);
  std::memcpy(bytes.data() + 56, &h, 8);
  try {
    deserialize_engine(bytes.data(), bytes.size(), "v.engine");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("format version"), std::string::npos) << e.what();
  }
}

TEST(EngineFormat, BadMagic) {
  std::vector<uint8_t> junk(200, 'x');
  EXPECT_THROW(deserialize_engine(junk.data(), junk.size(), "junk"), Error);
}

TEST(EngineFormat, RandomCorruptionNeverCrashes) {
  auto bytes = serialize_engine(test::small_contents());
  std::mt19937 rng(7);
  for (int iter = 0; iter < 300; ++iter) {
    auto b = bytes;
    int flips = 1 + int(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = uint8_t(rng());
    try {
      deserialize_engine(b.data(), b.size(), "fuzz");
    } catch (const Error&) {
    }
  }
}

TEST(EngineFormat, Sha256KnownAnswers) {
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_hex(m.data(), m.size()), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string a(1000000, 'a');
  EXPECT_EQ(sha256_hex(a.data(), a.size()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(EngineFormat, HalfConversion) {
  for (float f : {0.f, 1.f, -2.5f, 65504.f, 1e-5f, 6.1e-5f, 3.14159f})
    EXPECT_NEAR(engine_detail::half_to_float(engine_detail::float_to_half(f)), f, std::fabs(f) * 1e-3 + 1e-7);
  EXPECT_EQ(engine_detail::float_to_half(1.f), 0x3c00);
  EXPECT_EQ(engine_detail::float_to_half(65520.f), 0x7c00);  // rounds to inf
}

namespace {
// Rewrites every checksum so a corrupted payload passes them: only the bounds checks stand
// between hostile content and the loader.
void reseal(std::vector<uint8_t>& b) {
  uint32_t n;
  std::memcpy(&n, b.data() + 32, 4);
  if (n > 64 || 64 + size_t(n) * 32 > b.size()) return;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t* ent = b.data() + 64 + 32 * i;
    uint64_t off, size;
    std::memcpy(&off, ent + 8, 8);
    std::memcpy(&size, ent + 16, 8);
    if (off > b.size() || size > b.size() - off) continue;
    uint64_t h = fnv1a64(b.data() + off, size);
    std::memcpy(ent + 24, &h, 8);
  }
  uint64_t t = fnv1a64(b.data() + 64, size_t(n) * 32);
  std::memcpy(b.data() + 48, &t, 8);
  uint64_t h = fnv1a64(b.data(), 56);
  std::memcpy(b.data() + 56, &h, 8);
}
}  // namespace

TEST(EngineFormat, HostileContentWithValidChecksumsNeverCrashes) {
  auto bytes = serialize_engine(test::small_contents());
  std::mt19937 rng(11);
  int errors = 0, loaded = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    auto b = bytes;
    int flips = 1 + int(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      size_t at = 64 + rng() % (b.size() - 64);
      // Bias towards length and id fields: large values, -1, small values.
      switch (rng() % 4) {
        case 0: b[at] = 0xff; break;
        case 1: b[at] = 0x7f; break;
        case 2: b[at] = uint8_t(rng()); break;
        default: b[at] ^= uint8_t(1u << (rng() % 8)); break;
      }
    }
    reseal(b);
    try {
      deserialize_engine(b.data(), b.size(), "hostile");
      ++loaded;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_EQ(errors + loaded, 2000);
}
