// can_run_on_dla chunking: trtutils' edge cases.
#include <gtest/gtest.h>

#include "net_builder.h"

namespace tandem {
namespace {

using testing::NetBuilder;

// d = DLA layer (ReLU), g = GPU layer (Gather), in a chain.
Network chain(const std::string& pattern) {
  NetBuilder b;
  TensorId x = b.input("x", {1, 8, 4, 4});
  int i = 0;
  for (char c : pattern) {
    std::string n(1, c);
    n += std::to_string(i++);
    x = c == 'd' ? b.relu(x, n) : b.layer(LayerKind::kUnary, n, {x}, {1, 8, 4, 4}, UnaryParams{UnaryOp::kExp});
  }
  return b.net;
}

struct C { int start, end; size_t n; bool dla; };
void expect_chunks(const DlaReport& r, std::vector<C> want) {
  ASSERT_EQ(r.chunks.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r.chunks[i].start, want[i].start) << i;
    EXPECT_EQ(r.chunks[i].end, want[i].end) << i;
    EXPECT_EQ(r.chunks[i].layers.size(), want[i].n) << i;
    EXPECT_EQ(r.chunks[i].on_dla, want[i].dla) << i;
  }
}

TEST(DlaChunks, ZeroLayers) {
  Network n;
  DlaReport r = can_run_on_dla(n);
  EXPECT_TRUE(r.full_dla);
  expect_chunks(r, {{0, -1, 0, false}});
  EXPECT_EQ(r.dla_chunk_count(), 0);
}
TEST(DlaChunks, ZeroLayersJson) {
  Network n;
  std::string j = dla_report_json(n, can_run_on_dla(n), "empty.onnx");
  EXPECT_NE(j.find("\"full_dla\": true"), std::string::npos) << j;
  EXPECT_NE(j.find("\"start\": 0,\n      \"end\": -1,\n      \"size\": 0,\n      \"device\": \"GPU\""), std::string::npos) << j;
}
TEST(DlaChunks, LeadingDlaLayerNoEmptyChunk) {
  DlaReport r = can_run_on_dla(chain("dgg"));
  EXPECT_FALSE(r.full_dla);
  expect_chunks(r, {{0, 0, 1, true}, {1, 2, 2, false}});
}
TEST(DlaChunks, Alternating) {
  DlaReport r = can_run_on_dla(chain("dgdgd"));
  expect_chunks(r, {{0, 0, 1, true}, {1, 1, 1, false}, {2, 2, 1, true}, {3, 3, 1, false}, {4, 4, 1, true}});
  EXPECT_EQ(r.dla_chunk_count(), 3);
  EXPECT_EQ(r.dla_layer_count(), 3);
}
TEST(DlaChunks, AllGpu) {
  DlaReport r = can_run_on_dla(chain("ggg"));
  EXPECT_FALSE(r.full_dla);
  expect_chunks(r, {{0, 2, 3, false}});
}
TEST(DlaChunks, AllDla) {
  DlaReport r = can_run_on_dla(chain("ddd"));
  EXPECT_TRUE(r.full_dla);
  expect_chunks(r, {{0, 2, 3, true}});
  EXPECT_EQ(r.chunks[0].layers, (std::vector<LayerId>{0, 1, 2}));
}
TEST(DlaChunks, LeadingGpu) {
  DlaReport r = can_run_on_dla(chain("gddg"));
  expect_chunks(r, {{0, 0, 1, false}, {1, 2, 2, true}, {3, 3, 1, false}});
}
TEST(DlaChunks, PrecisionChangesVerdict) {
  // A Slice is DLA in FP16 only: the INT8 check puts it on the GPU.
  NetBuilder b;
  TensorId x = b.relu(b.input("x", {1, 8, 4, 4}), "r0");
  SliceParams p;
  p.start = {0, 0, 0, 0};
  p.size = {1, 4, 4, 4};
  p.stride = {1, 1, 1, 1};
  x = b.layer(LayerKind::kSlice, "s1", {x}, p.size, p);
  b.relu(x, "r2");
  DlaOptions o;
  EXPECT_EQ(can_run_on_dla(b.net, o).chunks.size(), 3u);
  o.precision = DlaPrecision::kFp16;
  EXPECT_EQ(can_run_on_dla(b.net, o).chunks.size(), 1u);
}
TEST(DlaChunks, VerboseLogsAndNoMutation) {
  Network n = chain("dg");
  const Network copy = n;
  DlaOptions o;
  o.verbose_layers = true;
  o.verbose_chunks = true;
  ::testing::internal::CaptureStderr();
  can_run_on_dla(n, o);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Layer 0: d0, ACTIVATION"), std::string::npos) << err;
  EXPECT_NE(err.find("\tDLA: True"), std::string::npos) << err;
  EXPECT_NE(err.find("\tDLA: False (g1: unary EXP"), std::string::npos) << err;
  EXPECT_NE(err.find("Found 2 Chunks of Layers"), std::string::npos) << err;
  EXPECT_NE(err.find("\tChunk 1: [1 - 1], 1 layers, GPU"), std::string::npos) << err;
  EXPECT_EQ(n.layers.size(), copy.layers.size());
}
TEST(DlaChunks, ReportText) {
  Network n = chain("ddg");
  DlaReport r = can_run_on_dla(n);
  std::string t = dla_report_text(n, r, "m.onnx");
  EXPECT_EQ(t.rfind("Fully DLA Compatible: False, Layers: 2 / 3 (66.67 % Compatible)\n", 0), 0u) << t;
  EXPECT_NE(t.find("DLA loadables needed: 1 (limit 16 per core: within limit)"), std::string::npos);
  std::string j = dla_report_json(n, r, "m.onnx");
  EXPECT_NE(j.find("\"full_dla\": false"), std::string::npos) << j;
}

}  // namespace
}  // namespace tandem
