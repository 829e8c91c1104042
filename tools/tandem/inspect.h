// Shared by `tandem inspect` for ONNX models (cmd_inspect.cpp) and engines (inspect_engine.cpp).
#pragma once

#include <string>

#include "tandem/network.h"

namespace tandem::cli {

// A short human description of a layer's parameters ("k=3x3 s=1x1 ...").
std::string layer_params_text(const Network& net, const Layer& l);

// True when the file starts with the engine magic (src/engine/format.cpp): inspect then reads
// it as an engine instead of an ONNX model.
bool has_engine_magic(const std::string& path);

// Prints an engine's header and one row per layer (text, or JSON as in docs/engine-format.md).
// Loads it with the engine deserializer, so a corrupt engine is one Error line.
void inspect_engine(const std::string& path, bool as_json);

}  // namespace tandem::cli
