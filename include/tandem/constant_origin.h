// Constant-origin analysis: is a tensor a build-time constant, and whose Weights hold its values.
// TensorRT's ONNX parser reaches a constant through views (the broadcast reshapes it inserts,
// Identity), and every consumer that folds constants into weights (the DLA rules, range tying,
// the planner's constant hosts, the backends) asks the same question: asked here, once.
#pragma once

#include <optional>

#include "tandem/network.h"

namespace tandem {

struct ConstantOrigin {
  LayerId constant = -1;   // the Constant layer the values come from
  WeightsId weights = -1;  // its weights
  // A Shuffle on the way transposes: the tensor holds the weights' values in another order (a
  // reshape alone keeps the row-major order, so element i is weights element i).
  bool transposed = false;
};

// The origin of t when t is produced by a Constant layer, directly or through Shuffle and
// Identity layers only; nullopt otherwise (a network input, any other producer, a bad id).
std::optional<ConstantOrigin> constant_origin(const Network& net, TensorId t);

// constant_origin(net, t).has_value().
bool is_constant_tensor(const Network& net, TensorId t);

// Whether layer l is a Constant, or a Shuffle/Identity view of a constant tensor.
bool is_constant_view_layer(const Network& net, LayerId l);

}  // namespace tandem
