#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tandem/network.h"

using namespace tandem;

namespace {
Network two_layer() {
  Network n;
  TensorId x = n.add_tensor({"x", DataType::kFloat, {1, 3, 8, 8}});
  n.tensors[x].is_input = true;
  n.inputs.push_back(x);
  TensorId y = n.add_tensor({"y", DataType::kFloat, {1, 3, 8, 8}});
  TensorId z = n.add_tensor({"z", DataType::kFloat, {1, 3, 8, 8}});
  n.add_layer({"relu", LayerKind::kActivation, {x}, {y}, ActivationParams{}});
  n.add_layer({"sig", LayerKind::kActivation, {y}, {z}, ActivationParams{ActivationType::kSigmoid}});
  n.tensors[z].is_output = true;
  n.outputs.push_back(z);
  return n;
}
}  // namespace

TEST(Network, VerifyAcceptsWellFormed) {
  Network n = two_layer();
  EXPECT_NO_THROW(n.verify());
  EXPECT_EQ(n.find_layer("sig"), 1);
  EXPECT_EQ(n.consumers()[1], std::vector<LayerId>{1});
}

TEST(Network, VerifyRejectsUseBeforeProduce) {
  Network n = two_layer();
  std::swap(n.layers[0], n.layers[1]);
  n.tensors[1].producer = 1;
  n.tensors[2].producer = 0;
  EXPECT_THROW(n.verify(), Error);
}

TEST(Network, VerifyRejectsWrongParams) {
  Network n = two_layer();
  n.layers[0].params = PoolingParams{};
  try {
    n.verify();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("relu"), std::string::npos);
  }
}

TEST(Network, VerifyRejectsDynamicDims) {
  Network n = two_layer();
  n.tensors[2].dims = {1, -1, 8, 8};
  EXPECT_THROW(n.verify(), Error);
}

TEST(Types, Tables) {
  EXPECT_EQ(element_size(DataType::kHalf), 2u);
  EXPECT_EQ(to_string(LayerKind::kSoftMax), "SoftMax");
  EXPECT_EQ(layer_kind_info(LayerKind::kConvolution).trt_type, "CONVOLUTION");
  DataType t;
  EXPECT_TRUE(parse_data_type("float16", &t));
  EXPECT_EQ(t, DataType::kHalf);
  EXPECT_EQ(dims_to_string({1, 3, 640, 640}), "1x3x640x640");
}

// A view reads the owner's bytes in place; every mutation copies first (copy on write), and a
// copy of the Weights shares the view until it is written.
TEST(WeightBytes, ViewsCopyOnWrite) {
  auto owner = std::make_shared<std::vector<uint8_t>>(std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8});
  Weights w;
  w.type = DataType::kFloat;
  w.dims = {2};
  w.bytes = WeightBytes::view(owner->data(), owner->size(), owner);
  const Weights& cw = w;
  EXPECT_TRUE(w.bytes.is_view());
  EXPECT_EQ(cw.bytes.data(), owner->data());
  EXPECT_EQ(cw.f32(), reinterpret_cast<const float*>(owner->data()));
  Weights copy = w;
  EXPECT_TRUE(copy.bytes.is_view());
  EXPECT_EQ(copy.bytes, w.bytes);
  w.f32()[0] = 1.5f;  // non-const access: owned bytes now, the owner untouched
  EXPECT_FALSE(w.bytes.is_view());
  EXPECT_NE(w.bytes.data(), owner->data());
  EXPECT_EQ((*owner)[0], 1);
  EXPECT_EQ(w.at(0), 1.5);
  EXPECT_EQ(std::memcmp(w.bytes.data() + 4, owner->data() + 4, 4), 0);
  EXPECT_FALSE(copy.bytes == w.bytes);
  copy.bytes.assign(copy.bytes.begin() + 4, copy.bytes.end());  // a range inside the view itself
  EXPECT_FALSE(copy.bytes.is_view());
  EXPECT_EQ(copy.bytes.to_vector(), std::vector<uint8_t>({5, 6, 7, 8}));
  copy.bytes.resize(2);
  EXPECT_EQ(copy.bytes.size(), 2u);
}

// A deferred view makes its bytes on the first read, once, whatever the number of copies and
// threads reading; its size is known before; writing copies them first (copy on write).
TEST(WeightBytes, DeferredBytesAreMadeOnceOnFirstRead) {
  struct Source final : DeferredBytes {
    mutable std::atomic<int> made{0};
    mutable std::once_flag once;
    mutable std::vector<uint8_t> bytes;
    const uint8_t* data() const override {
      std::call_once(once, [this] {
        ++made;
        bytes = {9, 8, 7, 6, 5, 4, 3, 2};
      });
      return bytes.data();
    }
  };
  auto src = std::make_shared<Source>();
  Weights w;
  w.type = DataType::kFloat;
  w.dims = {1};
  w.bytes = WeightBytes::deferred(src, 4, 4);
  EXPECT_TRUE(w.bytes.is_view());
  EXPECT_EQ(w.bytes.size(), 4u);
  EXPECT_EQ(src->made.load(), 0) << "made before anyone read it";
  const Weights copy = w;
  std::vector<std::thread> readers;
  std::vector<const uint8_t*> seen(4);
  for (int i = 0; i < 4; ++i) readers.emplace_back([&, i] { seen[size_t(i)] = copy.bytes.data(); });
  for (auto& t : readers) t.join();
  EXPECT_EQ(src->made.load(), 1);
  for (const uint8_t* p : seen) EXPECT_EQ(p, src->bytes.data() + 4);
  EXPECT_EQ(copy.bytes.to_vector(), std::vector<uint8_t>({5, 4, 3, 2}));
  w.bytes.data()[0] = 1;  // non-const access: owned now, the source untouched
  EXPECT_FALSE(w.bytes.is_view());
  EXPECT_EQ(w.bytes.to_vector(), std::vector<uint8_t>({1, 4, 3, 2}));
  EXPECT_EQ(src->bytes[4], 5);
  EXPECT_EQ(src->made.load(), 1);
}
