#include <gtest/gtest.h>

#include <cstring>
#include <sstream>
#include <type_traits>

#include "engine/internal.h"
#include "test_util.h"
#include "tandem/engine.h"

using namespace tandem;

namespace {

// Every field of a params alternative, printed: two params print the same only when every field
// agrees (a field the engine format neither writes nor reads shows as a difference).
std::string dims_str(const Dims& d) { return dims_to_string(d); }
template <class T>
std::string list_str(const std::vector<T>& v) {
  std::ostringstream o;
  for (const T& x : v) o << x << ',';
  return o.str();
}
std::string describe(const LayerParams& params) {
  std::ostringstream o;
  o << "alt " << params.index() << ": ";
  std::visit(
      [&](const auto& p) {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, NoParams>) {
        } else if constexpr (std::is_same_v<P, ConvolutionParams>) {
          o << dims_str(p.kernel) << dims_str(p.stride) << dims_str(p.pre_padding) << dims_str(p.post_padding)
            << dims_str(p.dilation) << ' ' << p.groups << ' ' << p.out_maps << ' ' << p.kernel_weights << ' '
            << p.bias_weights;
        } else if constexpr (std::is_same_v<P, PoolingParams>) {
          o << int(p.type) << dims_str(p.window) << dims_str(p.stride) << dims_str(p.pre_padding)
            << dims_str(p.post_padding) << ' ' << p.average_count_excludes_padding << ' ' << int(p.padding_mode);
        } else if constexpr (std::is_same_v<P, ActivationParams>) {
          o << int(p.type) << ' ' << p.alpha << ' ' << p.beta;
        } else if constexpr (std::is_same_v<P, ElementWiseParams>) {
          o << int(p.op);
        } else if constexpr (std::is_same_v<P, ScaleParams>) {
          o << int(p.mode) << ' ' << p.shift << ' ' << p.scale << ' ' << p.power << ' ' << p.channel_axis;
        } else if constexpr (std::is_same_v<P, ConcatenationParams>) {
          o << p.axis;
        } else if constexpr (std::is_same_v<P, ResizeParams>) {
          o << int(p.mode) << ' ' << int(p.transform) << ' ' << int(p.selector) << ' ' << int(p.rounding) << ' '
            << list_str(p.scales) << dims_str(p.output_dims) << ' ' << p.cubic_coeff;
        } else if constexpr (std::is_same_v<P, ShuffleParams>) {
          o << list_str(p.first_transpose) << ' ' << (p.reshape ? dims_str(*p.reshape) : "none") << ' '
            << list_str(p.second_transpose);
        } else if constexpr (std::is_same_v<P, SliceParams>) {
          o << dims_str(p.start) << dims_str(p.size) << dims_str(p.stride) << ' ' << int(p.mode) << ' ' << p.fill_value;
        } else if constexpr (std::is_same_v<P, SoftMaxParams>) {
          o << p.axes;
        } else if constexpr (std::is_same_v<P, ReduceParams>) {
          o << int(p.op) << ' ' << p.axes << ' ' << p.keep_dims;
        } else if constexpr (std::is_same_v<P, MatrixMultiplyParams>) {
          o << int(p.op0) << ' ' << int(p.op1);
        } else if constexpr (std::is_same_v<P, UnaryParams>) {
          o << int(p.op);
        } else if constexpr (std::is_same_v<P, ConstantParams>) {
          o << p.weights;
        } else if constexpr (std::is_same_v<P, LRNParams>) {
          o << p.window << ' ' << p.alpha << ' ' << p.beta << ' ' << p.k;
        } else if constexpr (std::is_same_v<P, GatherParams>) {
          o << p.axis << ' ' << int(p.mode) << ' ' << p.nb_elementwise_dims;
        } else if constexpr (std::is_same_v<P, ScatterParams>) {
          o << int(p.mode) << ' ' << p.axis << ' ' << int(p.reduction);
        } else if constexpr (std::is_same_v<P, TopKParams>) {
          o << int(p.op) << ' ' << p.k << ' ' << p.axes;
        } else if constexpr (std::is_same_v<P, EinsumParams>) {
          o << p.equation;
        } else if constexpr (std::is_same_v<P, GridSampleParams>) {
          o << int(p.interpolation) << ' ' << p.align_corners << ' ' << int(p.sample_mode);
        } else if constexpr (std::is_same_v<P, RoiAlignParams>) {
          o << p.max_mode << ' ' << p.half_pixel << ' ' << p.out_h << ' ' << p.out_w << ' ' << p.sampling_ratio << ' '
            << p.spatial_scale;
        } else if constexpr (std::is_same_v<P, NMSParams>) {
          o << p.center_sizes;
        } else if constexpr (std::is_same_v<P, CastParams>) {
          o << int(p.to);
        } else if constexpr (std::is_same_v<P, NormalizationParams>) {
          o << p.axes << ' ' << p.epsilon << ' ' << p.groups;
        } else {
          static_assert(sizeof(P) == 0, "describe(): print every field of the new params alternative");
        }
      },
      params);
  return o.str();
}

// Every field of the network, compared with the original (weights: bytes, or within half a
// quantization step for the INT8-stored ones listed in q).
void expect_same_network(const Network& a, const Network& b, const std::vector<WeightsId>& q) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].type, b.tensors[i].type) << a.tensors[i].name;
    EXPECT_EQ(a.tensors[i].dims, b.tensors[i].dims) << a.tensors[i].name;
    EXPECT_EQ(a.tensors[i].producer, b.tensors[i].producer) << a.tensors[i].name;
    EXPECT_EQ(a.tensors[i].is_input, b.tensors[i].is_input) << a.tensors[i].name;
    EXPECT_EQ(a.tensors[i].is_output, b.tensors[i].is_output) << a.tensors[i].name;
  }
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    EXPECT_EQ(a.layers[i].name, b.layers[i].name);
    EXPECT_EQ(a.layers[i].kind, b.layers[i].kind) << a.layers[i].name;
    EXPECT_EQ(a.layers[i].inputs, b.layers[i].inputs) << a.layers[i].name;
    EXPECT_EQ(a.layers[i].outputs, b.layers[i].outputs) << a.layers[i].name;
    EXPECT_EQ(describe(a.layers[i].params), describe(b.layers[i].params)) << a.layers[i].name;
    EXPECT_EQ(a.layers[i].onnx_node, b.layers[i].onnx_node) << a.layers[i].name;
    EXPECT_EQ(a.layers[i].onnx_op, b.layers[i].onnx_op) << a.layers[i].name;
  }
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.outputs, b.outputs);
  EXPECT_EQ(a.model.ir_version, b.model.ir_version);
  EXPECT_EQ(a.model.opsets, b.model.opsets);
  EXPECT_EQ(a.model.producer_name, b.model.producer_name);
  EXPECT_EQ(a.model.producer_version, b.model.producer_version);
  EXPECT_EQ(a.model.path, b.model.path);
  EXPECT_EQ(a.model.folded_nodes, b.model.folded_nodes);
  // model.qdq_scales is build input only (the builder turns it into EngineContents::scales, the
  // SCAL section); the engine does not store it.
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i) {
    EXPECT_EQ(a.weights[i].name, b.weights[i].name);
    EXPECT_EQ(a.weights[i].type, b.weights[i].type) << a.weights[i].name;
    EXPECT_EQ(a.weights[i].dims, b.weights[i].dims) << a.weights[i].name;
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

// Every field of the plan (the DLA report it was made from is not stored: the engine records the
// decisions, not the analysis).
void expect_same_plan(const Plan& a, const Plan& b) {
  EXPECT_EQ(a.plan_case, b.plan_case);
  EXPECT_EQ(a.gpu_fallback, b.gpu_fallback);
  EXPECT_EQ(a.default_device, b.default_device);
  EXPECT_EQ(a.dla_core, b.dla_core);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.check_precision, b.check_precision);
  EXPECT_EQ(a.strategy, b.strategy);
  EXPECT_EQ(a.fp16, b.fp16);
  EXPECT_EQ(a.int8, b.int8);
  EXPECT_EQ(a.fp8, b.fp8);
  EXPECT_EQ(a.optimization_level, b.optimization_level);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    EXPECT_EQ(a.layers[i].device, b.layers[i].device) << "layer " << i;
    EXPECT_EQ(a.layers[i].precision, b.layers[i].precision) << "layer " << i;
    EXPECT_EQ(a.layers[i].region, b.layers[i].region) << "layer " << i;
    EXPECT_EQ(a.layers[i].reason, b.layers[i].reason) << "layer " << i;
  }
  ASSERT_EQ(a.regions.size(), b.regions.size());
  for (size_t i = 0; i < a.regions.size(); ++i) {
    EXPECT_EQ(a.regions[i].layers, b.regions[i].layers) << "region " << i;
    EXPECT_EQ(a.regions[i].start, b.regions[i].start) << "region " << i;
    EXPECT_EQ(a.regions[i].end, b.regions[i].end) << "region " << i;
    EXPECT_EQ(a.regions[i].on_dla, b.regions[i].on_dla) << "region " << i;
    EXPECT_EQ(a.regions[i].reason, b.regions[i].reason) << "region " << i;
  }
  ASSERT_EQ(a.crossings.size(), b.crossings.size());
  for (size_t i = 0; i < a.crossings.size(); ++i) {
    EXPECT_EQ(a.crossings[i].tensor, b.crossings[i].tensor) << "crossing " << i;
    EXPECT_EQ(a.crossings[i].from, b.crossings[i].from) << "crossing " << i;
    EXPECT_EQ(a.crossings[i].to, b.crossings[i].to) << "crossing " << i;
    EXPECT_EQ(a.crossings[i].bytes, b.crossings[i].bytes) << "crossing " << i;
  }
  EXPECT_EQ(a.warnings, b.warnings);
}

void expect_same_formats(const std::vector<TensorFormat>& a, const std::vector<TensorFormat>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].type, b[i].type) << a[i].name;
    EXPECT_EQ(a[i].layout, b[i].layout) << a[i].name;
  }
}

void expect_same_contents(const EngineContents& a, const EngineContents& b) {
  expect_same_network(a.network, b.network, a.int8_weights);
  expect_same_plan(a.plan, b.plan);
  EXPECT_EQ(a.scales, b.scales);
  expect_same_formats(a.input_formats, b.input_formats);
  expect_same_formats(a.output_formats, b.output_formats);
  ASSERT_EQ(a.tactics.size(), b.tactics.size());
  for (size_t i = 0; i < a.tactics.size(); ++i) {
    EXPECT_EQ(a.tactics[i].signature, b.tactics[i].signature);
    EXPECT_EQ(a.tactics[i].name, b.tactics[i].name);
    EXPECT_EQ(a.tactics[i].time_ms, b.tactics[i].time_ms);
  }
  EXPECT_EQ(a.int8_weights, b.int8_weights);
  EXPECT_EQ(a.meta.tool_version, b.meta.tool_version);
  EXPECT_EQ(a.meta.format_version, b.meta.format_version);
  EXPECT_EQ(a.meta.model_path, b.meta.model_path);
  EXPECT_EQ(a.meta.model_sha256, b.meta.model_sha256);
  EXPECT_EQ(a.meta.target, b.meta.target);
  EXPECT_EQ(a.meta.backend, b.meta.backend);
  EXPECT_EQ(a.meta.options_json, b.meta.options_json);
  EXPECT_EQ(a.meta.created_utc, b.meta.created_utc);
  EXPECT_EQ(a.meta.fusions, b.meta.fusions);
  EXPECT_EQ(a.meta.tactics_device_key, b.meta.tactics_device_key);
}

// small_contents() with every field that has a default set to something else, so that a field
// the format forgets cannot pass by holding its default on both sides.
EngineContents contents_without_defaults() {
  EngineContents e = test::small_contents();
  e.network.model.ir_version = 8;
  e.network.model.opsets = {{"", 13}, {"com.microsoft", 1}};
  e.network.model.producer_name = "pytorch";
  e.network.model.producer_version = "2.1";
  e.network.model.path = "/models/small.onnx";
  e.network.model.folded_nodes = {"Shape_3", "Gather_4"};
  e.network.layers[0].onnx_node = "Conv_0";
  e.plan.plan_case = Plan::Case::kMixed;
  e.plan.gpu_fallback = false;
  e.plan.default_device = Device::kDLA;
  e.plan.dla_core = 1;
  e.plan.target = DlaTarget::kXavier;
  e.plan.check_precision = DlaPrecision::kFp16;
  e.plan.strategy = Strategy::kGraph;
  e.plan.fp16 = false;
  e.plan.int8 = true;
  e.plan.fp8 = true;
  e.plan.optimization_level = 5;
  e.plan.layers[1] = LayerPlacement{Device::kDLA, Precision::kFP16, 1, "dla region 1"};
  e.plan.regions.push_back(Region{{1}, 1, 1, false, "demoted: too small"});
  e.plan.crossings.push_back(Crossing{e.network.find_tensor("bn_out"), Device::kGPU, Device::kDLA, 1024});
  e.input_formats = {TensorFormat{"x", DataType::kHalf, TensorLayout::kNHWC}};
  e.tactics.push_back(Tactic{"layer:conv", "cpu.threads=1", 0.25});
  e.meta.tactics_device_key = "cpu:test:2cores:onednn-3.0.0";
  e.meta.created_utc = "2026-11-30T12:34:56Z";
  return e;
}

}  // namespace

TEST(EngineFormat, RoundTrip) {
  for (const EngineContents& e : {test::small_contents(), contents_without_defaults()}) {
    auto bytes = serialize_engine(e);
    EngineContents d = deserialize_engine(bytes.data(), bytes.size(), "mem");
    expect_same_contents(e, d);
    // Serializing the loaded contents again is stable (quantization is idempotent).
    auto bytes2 = serialize_engine(d);
    EngineContents d2 = deserialize_engine(bytes2.data(), bytes2.size(), "mem2");
    EXPECT_EQ(d2.network.weights[0].bytes, d.network.weights[0].bytes);
  }
}

TEST(EngineFormat, EveryParamsAlternativeRoundTrips) {
  // One layer-params value of each alternative, with non-default fields.
  std::vector<LayerParams> ps;
  ps.emplace_back(NoParams{});
  ConvolutionParams c; c.kernel = {3, 3}; c.stride = {2, 1}; c.pre_padding = {1, 0}; c.post_padding = {0, 2};
  c.dilation = {1, 2}; c.groups = 2; c.out_maps = 4; c.kernel_weights = 1; c.bias_weights = 2; ps.emplace_back(c);
  PoolingParams p; p.type = PoolingType::kAverage; p.window = {2, 3}; p.stride = {2, 1}; p.pre_padding = {1, 0};
  p.post_padding = {0, 1}; p.average_count_excludes_padding = false; p.padding_mode = PaddingMode::kExplicitRoundUp;
  ps.emplace_back(p);
  ps.emplace_back(ActivationParams{ActivationType::kClip, 0.5f, 6.f});
  ps.emplace_back(ElementWiseParams{ElementWiseOp::kDiv});
  ScaleParams s; s.mode = ScaleMode::kElementwise; s.shift = 1; s.scale = 2; s.power = 3; s.channel_axis = 2; ps.emplace_back(s);
  ps.emplace_back(ConcatenationParams{3});
  ResizeParams r; r.mode = ResizeMode::kCubic; r.transform = ResizeCoordinateTransform::kHalfPixel;
  r.selector = ResizeSelector::kUpper; r.rounding = ResizeRounding::kCeil; r.scales = {1, 1, 2, 2};
  r.output_dims = {1, 3, 16, 16}; r.cubic_coeff = -0.5f; ps.emplace_back(r);
  ShuffleParams sh; sh.first_transpose = {0, 2, 1}; sh.reshape = Dims{1, 6}; sh.second_transpose = {1, 0}; ps.emplace_back(sh);
  SliceParams sl; sl.start = {0, 1}; sl.size = {1, 2}; sl.stride = {1, 2}; sl.mode = SliceMode::kFill; sl.fill_value = 3; ps.emplace_back(sl);
  ps.emplace_back(SoftMaxParams{1u << 2});
  ps.emplace_back(ReduceParams{ReduceOp::kMax, 6u, false});
  ps.emplace_back(MatrixMultiplyParams{MatrixOp::kTranspose, MatrixOp::kTranspose});
  ps.emplace_back(UnaryParams{UnaryOp::kRound});
  ps.emplace_back(ConstantParams{2});
  ps.emplace_back(LRNParams{3, 1e-3f, 0.5f, 2.f});
  ps.emplace_back(GatherParams{2, GatherMode::kND, 1});
  ps.emplace_back(CastParams{DataType::kHalf});
  ps.emplace_back(NormalizationParams{4u, 1e-3f, 2});
  ps.emplace_back(ScatterParams{ScatterMode::kElement, 2, ScatterReduction::kMul});
  ps.emplace_back(TopKParams{TopKOp::kMin, 3, 1u << 2});
  ps.emplace_back(EinsumParams{"bij,bjk->bik"});
  ps.emplace_back(GridSampleParams{ResizeMode::kCubic, true, SliceMode::kReflect});
  ps.emplace_back(RoiAlignParams{true, false, 3, 5, 2, 0.25f});
  ps.emplace_back(NMSParams{true});
  ASSERT_EQ(ps.size(), std::variant_size_v<LayerParams>);
  for (size_t i = 0; i < ps.size(); ++i) ASSERT_EQ(ps[i].index(), i);
  Network net = test::small_network();
  for (size_t i = 0; i < ps.size(); ++i) {
    net.layers[2].params = ps[i];
    auto bytes = engine_detail::serialize_network(net);
    Network d = engine_detail::deserialize_network(bytes);
    EXPECT_EQ(d.layers[2].params.index(), i);
    EXPECT_EQ(describe(d.layers[2].params), describe(ps[i])) << "alternative " << i;
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

// Which bytes a checksum covers: the header (its checksum at 56 covers [0, 56), the table's at 48
// is inside it), the section table, and every section's payload. The 64-byte alignment padding
// between sections is covered by none.
std::vector<bool> checksummed_bytes(const std::vector<uint8_t>& bytes) {
  std::vector<bool> covered(bytes.size(), false);
  uint32_t n;
  std::memcpy(&n, bytes.data() + 32, 4);
  for (size_t i = 0; i < 64 + size_t(n) * 32; ++i) covered[i] = true;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t off, size;
    std::memcpy(&off, bytes.data() + 64 + 32 * i + 8, 8);
    std::memcpy(&size, bytes.data() + 64 + 32 * i + 16, 8);
    for (uint64_t at = off; at < off + size; ++at) covered[at] = true;
  }
  return covered;
}

// Random damage: a change to any checksummed byte is rejected with an Error naming the file (one
// byte changed always changes FNV-1a, and several collide with probability 2^-64); damage only
// in the padding loads.
TEST(EngineFormat, RandomCorruptionNeverCrashes) {
  auto bytes = serialize_engine(test::small_contents());
  const std::vector<bool> covered = checksummed_bytes(bytes);
  size_t padding = 0;
  for (bool c : covered) padding += !c;
  EXPECT_GT(padding, 0u) << "the test expects alignment padding between sections";
  std::mt19937 rng(7);
  int rejected = 0, padding_only = 0;
  for (int iter = 0; iter < 300; ++iter) {
    auto b = bytes;
    int flips = 1 + int(rng() % 4);
    bool in_checksummed = false;
    for (int f = 0; f < flips; ++f) {
      size_t at = rng() % b.size();
      if (iter % 3 == 0) {  // every third: padding bytes only, when the draw finds one
        for (size_t k = 0; k < b.size() && covered[at]; ++k) at = (at + 1) % b.size();
      }
      const uint8_t v = uint8_t(b[at] ^ (1 + rng() % 255));  // always a change
      b[at] = v;
      in_checksummed |= covered[at];
    }
    try {
      deserialize_engine(b.data(), b.size(), "fuzz.engine");
      EXPECT_FALSE(in_checksummed) << "iteration " << iter << ": damage inside a checksummed range loaded";
      ++padding_only;
    } catch (const Error& e) {
      EXPECT_TRUE(in_checksummed) << "iteration " << iter << ": damage in padding only was rejected: " << e.what();
      EXPECT_NE(std::string(e.what()).find("fuzz.engine"), std::string::npos) << e.what();
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 150);
  EXPECT_GT(padding_only, 50);
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
    uint64_t h = section_checksum(b.data() + off, size);
    std::memcpy(ent + 24, &h, 8);
  }
  uint64_t t = section_checksum(b.data() + 64, size_t(n) * 32);
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
