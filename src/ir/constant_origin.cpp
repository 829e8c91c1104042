#include "tandem/constant_origin.h"

namespace tandem {

namespace {

bool transposes(const std::vector<int>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != int(i)) return true;
  return false;
}

}  // namespace

std::optional<ConstantOrigin> constant_origin(const Network& net, TensorId t) {
  ConstantOrigin o;
  // Producers come before consumers (topological order), so each step moves to an earlier layer;
  // the bound only guards a network that was never verified.
  for (size_t steps = 0; steps <= net.layers.size(); ++steps) {
    if (t < 0 || t >= static_cast<TensorId>(net.tensors.size())) return std::nullopt;
    const LayerId p = net.tensors[size_t(t)].producer;
    if (p < 0 || p >= static_cast<LayerId>(net.layers.size())) return std::nullopt;
    const Layer& l = net.layers[size_t(p)];
    switch (l.kind) {
      case LayerKind::kConstant:
        o.constant = p;
        o.weights = l.as<ConstantParams>().weights;
        return o;
      case LayerKind::kShuffle: {
        const ShuffleParams& s = l.as<ShuffleParams>();
        if (transposes(s.first_transpose) || transposes(s.second_transpose)) o.transposed = true;
        break;
      }
      case LayerKind::kIdentity:
        break;
      case LayerKind::kConvolution: case LayerKind::kDeconvolution: case LayerKind::kPooling:
      case LayerKind::kActivation: case LayerKind::kElementWise: case LayerKind::kScale:
      case LayerKind::kConcatenation: case LayerKind::kResize: case LayerKind::kSlice:
      case LayerKind::kSoftMax: case LayerKind::kReduce: case LayerKind::kMatrixMultiply:
      case LayerKind::kUnary: case LayerKind::kParametricReLU: case LayerKind::kLRN:
      case LayerKind::kGather: case LayerKind::kCast: case LayerKind::kNormalization:
      case LayerKind::kSelect: case LayerKind::kScatter: case LayerKind::kTopK:
      case LayerKind::kEinsum: case LayerKind::kGridSample: case LayerKind::kRoiAlign:
      case LayerKind::kNonZero: case LayerKind::kNMS:
        return std::nullopt;
    }
    if (l.inputs.size() != 1) return std::nullopt;
    t = l.inputs[0];
  }
  return std::nullopt;
}

bool is_constant_tensor(const Network& net, TensorId t) { return constant_origin(net, t).has_value(); }

bool is_constant_view_layer(const Network& net, LayerId id) {
  const Layer& l = net.layers[size_t(id)];
  if (l.kind == LayerKind::kConstant) return true;
  if ((l.kind != LayerKind::kShuffle && l.kind != LayerKind::kIdentity) || l.inputs.size() != 1) return false;
  return is_constant_tensor(net, l.inputs[0]);
}

}  // namespace tandem
