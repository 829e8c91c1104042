#include <gtest/gtest.h>

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
