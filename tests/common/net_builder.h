// Hand-built networks for the tests that assemble layers themselves: a network input and a
// Constant layer holding given bytes, the two pieces every such test needs.
#pragma once

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "tandem/network.h"

namespace tandem::test {

struct NetBuilder {
  Network n;
  TensorId input(const std::string& name, Dims d, DataType t = DataType::kFloat) {
    TensorId id = n.add_tensor({name, t, std::move(d)});
    n.tensors[id].is_input = true;
    n.inputs.push_back(id);
    return id;
  }
  TensorId tensor(const std::string& name, Dims d, DataType t = DataType::kFloat) {
    return n.add_tensor({name, t, std::move(d)});
  }
  // Float weights holding v (a layer's kernel or bias).
  WeightsId weights(const std::string& name, Dims d, const std::vector<float>& v) {
    Weights w{name, DataType::kFloat, std::move(d), {}};
    w.bytes.resize(v.size() * sizeof(float));
    if (!v.empty()) std::memcpy(w.bytes.data(), v.data(), w.bytes.size());
    return n.add_weights(std::move(w));
  }
  // A Constant layer named NAME_const whose output NAME holds volume(d) elements of type t read
  // from data.
  TensorId constant(const std::string& name, DataType t, Dims d, const void* data) {
    Weights w{name, t, d, {}};
    w.bytes.resize(size_t(volume(d)) * element_size(t));
    if (!w.bytes.empty()) std::memcpy(w.bytes.data(), data, w.bytes.size());
    const WeightsId wid = n.add_weights(std::move(w));
    const TensorId id = n.add_tensor({name, t, std::move(d)});
    Layer l;
    l.name = name + "_const";
    l.kind = LayerKind::kConstant;
    l.outputs = {id};
    l.params = ConstantParams{wid};
    n.add_layer(l);
    return id;
  }
};

}  // namespace tandem::test
