// Static shape and type inference over the IR: what each layer kind outputs, given its inputs
// (TensorRT semantics). Part of tandem_ir: the importer, hooks and tests call it.
#pragma once

#include <utility>
#include <vector>

#include "tandem/network.h"

namespace tandem {

// Recomputes every tensor's dims and type from the layers' parameters, in order (what the
// importer does as it goes; hooks that edit layers may call it). Throws Error naming the layer.
void infer_shapes(Network& net);
// Dims and types of one layer's outputs, given its inputs' (used by infer_shapes).
std::vector<std::pair<Dims, DataType>> infer_layer_outputs(const Network& net, const Layer& layer);

}  // namespace tandem
