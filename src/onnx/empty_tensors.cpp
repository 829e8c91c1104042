// Empty tensors (a 0 extent): TensorRT builds them (NvInfer.h, "Empty tensors": dims with a 0),
// e.g. a Slice whose start lies past the end, or a graph input fixed to [0, 5]. An empty tensor has
// no values, so there is nothing to compute into it: every layer whose outputs are all empty becomes
// an empty Constant, a Concatenation drops its empty inputs, and the layers left with no reader fold
// away. What remains is the invariant Network::verify() checks and the executors rely on: an empty
// tensor is a network input, a network output or a Constant's output, and no layer reads it.
// A layer that would compute values from an empty tensor (a reduction, a MatMul over a 0 inner
// dim) is one import error naming its node: tandem has no kernels for that.
#include <fmt/format.h>

#include <unordered_set>

#include "importer.h"

namespace tandem::onnx_detail {

namespace {

bool is_empty(const Network& net, TensorId t) { return volume(net.tensors[size_t(t)].dims) == 0; }

std::string where(const std::string& path, const Layer& l) {
  if (l.onnx_node.empty()) return fmt::format("{}: layer '{}' ({})", path, l.name, to_string(l.kind));
  return fmt::format("{}: node '{}' ({})", path, l.onnx_node, l.onnx_op);
}

// Marks the layers to fold (outputs all empty), drops Concatenation's empty inputs, and refuses a
// layer that reads an empty tensor or writes a mix of empty and non-empty outputs. `dropped`
// receives the producers of the inputs a Concatenation no longer reads.
std::vector<char> mark_empty_layers(Network& net, const std::string& path, std::vector<LayerId>* dropped) {
  std::vector<char> fold(net.layers.size(), 0);
  for (size_t li = 0; li < net.layers.size(); ++li) {
    Layer& l = net.layers[li];
    if (l.kind == LayerKind::kConstant) continue;
    size_t empty_outputs = 0;
    for (TensorId t : l.outputs) empty_outputs += is_empty(net, t);
    if (empty_outputs == l.outputs.size()) {
      fold[li] = 1;
      continue;
    }
    if (empty_outputs > 0)
      throw Error(fmt::format("{}: some outputs are empty and some are not: tandem folds a layer only when all "
                              "its outputs are empty", where(path, l)));
    if (l.kind == LayerKind::kConcatenation) {  // an empty input adds nothing to the concatenation
      std::vector<TensorId> kept;
      for (TensorId t : l.inputs)
        if (is_empty(net, t)) dropped->push_back(net.tensors[size_t(t)].producer);
        else kept.push_back(t);
      l.inputs = std::move(kept);
    }
    for (TensorId t : l.inputs)
      if (is_empty(net, t))
        throw Error(fmt::format("{}: reads the empty tensor '{}' (dims {}) and writes '{}' (dims {}): tandem computes "
                                "nothing from an empty tensor (layers whose outputs are all empty fold to empty "
                                "constants; Concat drops empty inputs)",
                                where(path, l), net.tensors[size_t(t)].name, dims_to_string(net.tensors[size_t(t)].dims),
                                net.tensors[size_t(l.outputs[0])].name,
                                dims_to_string(net.tensors[size_t(l.outputs[0])].dims)));
  }
  return fold;
}

// The folded layers' replacements: one empty Constant per output, in the layer's place.
std::vector<Layer> with_empty_constants(Network& net, const std::vector<char>& fold) {
  std::unordered_set<std::string> names;
  for (const Layer& l : net.layers) names.insert(l.name);
  std::vector<Layer> out;
  for (size_t li = 0; li < net.layers.size(); ++li) {
    Layer& l = net.layers[li];
    if (!fold[li]) {
      out.push_back(std::move(l));
      continue;
    }
    for (size_t k = 0; k < l.outputs.size(); ++k) {
      const Tensor& t = net.tensors[size_t(l.outputs[k])];
      Weights w;
      w.name = t.name;  // tensor names are unique
      w.type = t.type;
      w.dims = t.dims;
      Layer c;
      c.name = l.name;
      for (size_t n = 1; k > 0 && !names.insert(c.name).second; ++n) c.name = fmt::format("{}_{}", l.name, n);
      c.kind = LayerKind::kConstant;
      c.params = ConstantParams{net.add_weights(std::move(w))};
      c.outputs = {l.outputs[k]};
      c.onnx_node = l.onnx_node;
      c.onnx_op = l.onnx_op;
      out.push_back(std::move(c));
    }
  }
  return out;
}

// Rebuilds `net` keeping only the layers in `keep`, and only the tensors they write plus the
// network inputs (ids renumbered; an unused input stays an input, as in TensorRT).
void compact(Network& net, std::vector<Layer> layers, const std::vector<char>& keep) {
  std::vector<TensorId> remap(net.tensors.size(), -1);
  std::vector<Tensor> tensors;
  auto take = [&](TensorId t) {
    if (remap[size_t(t)] < 0) {
      remap[size_t(t)] = TensorId(tensors.size());
      tensors.push_back(std::move(net.tensors[size_t(t)]));
    }
    return remap[size_t(t)];
  };
  for (TensorId& t : net.inputs) t = take(t);
  std::vector<Layer> kept;
  for (size_t li = 0; li < layers.size(); ++li) {
    if (!keep[li]) continue;
    Layer& l = layers[li];
    for (TensorId& t : l.outputs) {
      t = take(t);
      tensors[size_t(t)].producer = LayerId(kept.size());
    }
    kept.push_back(std::move(l));
  }
  for (Layer& l : kept)
    for (TensorId& t : l.inputs) t = remap[size_t(t)];
  for (TensorId& t : net.outputs) t = remap[size_t(t)];
  net.tensors = std::move(tensors);
  net.layers = std::move(kept);
}

}  // namespace

void fold_empty_tensors(Network& net, const std::string& path) {
  bool any = false;
  for (size_t t = 0; t < net.tensors.size() && !any; ++t) any = is_empty(net, TensorId(t));
  if (!any) return;
  std::vector<LayerId> dropped;
  const std::vector<char> fold = mark_empty_layers(net, path, &dropped);
  // The layers that only fed what folded or was dropped may now have no reader: they go too.
  // Other layers without readers stay as imported (this pass removes only what it orphaned).
  std::vector<char> orphan_candidate(net.layers.size(), 0);
  for (LayerId p : dropped)
    if (p >= 0) orphan_candidate[size_t(p)] = 1;
  for (size_t li = net.layers.size(); li-- > 0;) {
    if (!fold[li] && !orphan_candidate[li]) continue;
    orphan_candidate[li] = 1;
    for (TensorId t : net.layers[li].inputs)
      if (net.tensors[size_t(t)].producer >= 0) orphan_candidate[size_t(net.tensors[size_t(t)].producer)] = 1;
  }
  // The candidate each new layer comes from: a folded layer's Constants are at its place.
  std::vector<char> candidate;
  for (size_t li = 0; li < net.layers.size(); ++li)
    candidate.insert(candidate.end(), fold[li] ? net.layers[li].outputs.size() : 1, orphan_candidate[li]);
  std::vector<Layer> layers = with_empty_constants(net, fold);
  std::vector<char> read(net.tensors.size(), 0), keep(layers.size(), 0);
  for (TensorId t : net.outputs) read[size_t(t)] = 1;
  for (size_t li = layers.size(); li-- > 0;) {
    bool live = !candidate[li];
    for (TensorId t : layers[li].outputs) live |= read[size_t(t)] != 0;
    if (!live) continue;
    keep[li] = 1;
    for (TensorId t : layers[li].inputs) read[size_t(t)] = 1;
  }
  compact(net, std::move(layers), keep);
}

}  // namespace tandem::onnx_detail
