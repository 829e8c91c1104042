// Engine (immutable) and ExecutionContext (one per thread).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "engine/internal.h"
#include "tandem/engine.h"
#include "tandem/backend.h"
#include "tandem/quant.h"

namespace tandem {

std::string_view to_string(TensorLayout l) {
  switch (l) {
    case TensorLayout::kNCHW: return "nchw";
    case TensorLayout::kNHWC: return "nhwc";
  }
  return "?";
}
bool parse_tensor_layout(std::string_view s, TensorLayout* out) {
  std::string l(s);
  for (auto& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (l == "nchw" || l == "linear" || l == "chw") { *out = TensorLayout::kNCHW; return true; }
  if (l == "nhwc" || l == "hwc") { *out = TensorLayout::kNHWC; return true; }
  return false;
}

TensorFormat parse_tensor_format(const std::string& spec) {
  // NAME:TYPE[:LAYOUT], parsed from the right so that NAME may itself contain ':'.
  TensorFormat f;
  auto p2 = spec.rfind(':');
  if (p2 == std::string::npos || p2 == 0)
    throw Error(fmt::format("tensor format '{}': expected NAME:TYPE[:LAYOUT] (e.g. x:fp16:nhwc)", spec));
  std::string last = spec.substr(p2 + 1);
  std::string rest = spec.substr(0, p2);
  TensorLayout layout;
  auto p1 = rest.rfind(':');
  if (parse_tensor_layout(last, &layout) && p1 != std::string::npos && p1 > 0) {
    f.layout = layout;
    last = rest.substr(p1 + 1);
    rest = rest.substr(0, p1);
  }
  f.name = rest;
  if (!parse_data_type(last, &f.type) ||
      !(f.type == DataType::kFloat || f.type == DataType::kHalf || f.type == DataType::kInt8 || f.type == DataType::kUInt8))
    throw Error(fmt::format("tensor format '{}': type '{}' is not one of fp32, fp16, int8, uint8", spec, last));
  return f;
}

namespace {
Dims nhwc_dims(const Dims& d) { return {d[0], d[2], d[3], d[1]}; }

// 4-D permute: NCHW <-> NHWC, element size es.
void permute4(const uint8_t* src, uint8_t* dst, const Dims& src_dims, bool to_nhwc, size_t es) {
  if (to_nhwc) {
    const int64_t N = src_dims[0], C = src_dims[1], H = src_dims[2], W = src_dims[3];
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            std::memcpy(dst + (((n * H + h) * W + w) * C + c) * es, src + (((n * C + c) * H + h) * W + w) * es, es);
  } else {
    const int64_t N = src_dims[0], H = src_dims[1], W = src_dims[2], C = src_dims[3];
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = 0; c < C; ++c)
            std::memcpy(dst + (((n * C + c) * H + h) * W + w) * es, src + (((n * H + h) * W + w) * C + c) * es, es);
  }
}
}  // namespace

HostTensor to_network_format(const HostTensor& in, const TensorFormat& f, float scale) {
  if (in.type != f.type)
    throw Error(fmt::format("input '{}': the engine takes {} ({}), got {}", f.name, to_string(f.type), to_string(f.layout), to_string(in.type)));
  HostTensor t = in;
  if (f.layout == TensorLayout::kNHWC) {
    if (in.dims.size() != 4) throw Error(fmt::format("input '{}': NHWC needs 4 dims, got {}", f.name, dims_to_string(in.dims)));
    t.dims = {in.dims[0], in.dims[3], in.dims[1], in.dims[2]};
    permute4(in.data.data(), t.data.data(), in.dims, false, element_size(in.type));
  }
  if (f.type == DataType::kFloat) return t;
  HostTensor o = HostTensor::zeros(t.name, DataType::kFloat, t.dims);
  float* dst = o.f32();
  const int64_t n = t.count();
  switch (f.type) {
    case DataType::kHalf: {
      const auto* s = reinterpret_cast<const uint16_t*>(t.data.data());
      for (int64_t i = 0; i < n; ++i) dst[i] = engine_detail::half_to_float(s[i]);
      break;
    }
    case DataType::kInt8: {
      const auto* s = reinterpret_cast<const int8_t*>(t.data.data());
      for (int64_t i = 0; i < n; ++i) dst[i] = float(s[i]) * scale;
      break;
    }
    case DataType::kUInt8: {
      const auto* s = t.data.data();
      for (int64_t i = 0; i < n; ++i) dst[i] = float(s[i]);
      break;
    }
    case DataType::kFloat:
    case DataType::kInt32:
    case DataType::kInt64:
    case DataType::kBool:
    case DataType::kBFloat16:
      throw Error(fmt::format("input '{}': unsupported IO type {}", f.name, to_string(f.type)));
  }
  return o;
}

HostTensor from_network_format(const HostTensor& out, const TensorFormat& f, float scale) {
  HostTensor t;
  if (f.type == DataType::kFloat || out.type != DataType::kFloat) {
    t = out;
  } else {
    t = HostTensor::zeros(out.name, f.type, out.dims);
    const float* s = out.f32();
    const int64_t n = out.count();
    switch (f.type) {
      case DataType::kHalf: {
        auto* d = reinterpret_cast<uint16_t*>(t.data.data());
        for (int64_t i = 0; i < n; ++i) d[i] = engine_detail::float_to_half(s[i]);
        break;
      }
      case DataType::kInt8: {
        auto* d = reinterpret_cast<int8_t*>(t.data.data());
        for (int64_t i = 0; i < n; ++i) d[i] = quantize_int8(s[i], scale);  // TensorRT's [-128, 127]
        break;
      }
      case DataType::kUInt8: {
        auto* d = t.data.data();
        for (int64_t i = 0; i < n; ++i) {
          float v = std::nearbyint(s[i]);
          d[i] = uint8_t(std::min(255.f, std::max(0.f, std::isnan(v) ? 0.f : v)));
        }
        break;
      }
      case DataType::kFloat:
      case DataType::kInt32:
      case DataType::kInt64:
      case DataType::kBool:
      case DataType::kBFloat16:
        throw Error(fmt::format("output '{}': unsupported IO type {}", f.name, to_string(f.type)));
    }
  }
  if (f.layout == TensorLayout::kNHWC && t.dims.size() == 4) {
    HostTensor p = HostTensor::zeros(t.name, t.type, nhwc_dims(t.dims));
    permute4(t.data.data(), p.data.data(), t.dims, true, element_size(t.type));
    return p;
  }
  return t;
}

std::shared_ptr<const Engine> Engine::from_contents(EngineContents c, std::string name) {
  auto e = std::make_shared<Engine>();
  e->c_ = std::move(c);
  e->name_ = std::move(name);
  return e;
}

struct Engine::WeightsCheck {
  engine_detail::DeferredChecksum checksum;
  std::shared_ptr<const void> mapping;  // the checked bytes stay mapped until checked
  std::once_flag once;
  std::string error;
};

std::shared_ptr<const Engine> Engine::load(const std::string& path) {
  // The weights stay in the mapping (views, no copy): it lives as long as they do.
  auto file = std::make_shared<const engine_detail::MappedFile>(path);
  auto check = std::make_shared<WeightsCheck>();
  check->mapping = file;
  auto e = std::make_shared<Engine>();
  e->c_ = engine_detail::deserialize_engine_deferring_weights(file->data(), file->size(), path, file, check->checksum);
  e->name_ = path;
  e->weights_check_ = std::move(check);
  return e;
}

void Engine::check_weights() const {
  if (!weights_check_) return;
  WeightsCheck& c = *weights_check_;
  std::call_once(c.once, [&c] {
    try {
      engine_detail::check_deferred(c.checksum);
    } catch (const Error& err) {
      c.error = err.what();
    }
    c.mapping.reset();
  });
  if (!c.error.empty()) throw Error(c.error);
}

int Engine::dla_layer_count() const {
  int n = 0;
  for (const auto& l : c_.plan.layers) n += l.device == Device::kDLA;
  return n;
}

Numerics Engine::numerics() const {
  Numerics n;
  n.layer_precision.reserve(c_.plan.layers.size());
  for (const auto& l : c_.plan.layers) n.layer_precision.push_back(l.precision);
  n.tensor_scales = c_.scales;
  // What make_numerics derived at build time follows from the network and the precisions: the
  // inside of fused INT8 Conv + BN (+ activation) blocks stays FP32, constant MatMul weights are
  // quantized per output channel (docs/quantization.md, "TensorRT fidelity").
  for (std::string& t : fused_int8_tensors(c_.network, n.layer_precision)) n.unquantized.insert(std::move(t));
  n.per_channel_axis = per_channel_weights(c_.network, n.layer_precision);
  return n;
}

std::string Engine::emulation_note() const { return emulation_note("cpu"); }

std::string Engine::emulation_note(const std::string& backend_name) const {
  int dla = dla_layer_count();
  if (!dla) return "";
  int i8 = 0, f16 = 0;
  for (const auto& l : c_.plan.layers)
    if (l.device == Device::kDLA) {
      i8 += l.precision == Precision::kINT8;
      f16 += l.precision == Precision::kFP16;
    }
  return fmt::format(
      "note: no DLA is attached: the {} DLA layers of this engine ({} INT8, {} FP16, DLA core {}) ran "
      "with DLA numerics (INT8/FP16 emulation) on the host {} backend",
      dla, i8, f16, c_.plan.dla_core, backend_name == "cuda" ? "CUDA" : "CPU");
}

std::unique_ptr<ExecutionContext> Engine::create_context(int threads, const std::string& backend) const {
  return std::make_unique<ExecutionContext>(shared_from_this(), threads, backend);
}

namespace {
int tuned_threads(const Engine& e) {
  for (const auto& t : e.contents().tactics) {
    if (t.signature.rfind("network:", 0) == 0 && t.name.rfind("cpu.threads=", 0) == 0) {
      try {
        return std::stoi(t.name.substr(12));
      } catch (...) {
        return 0;
      }
    }
  }
  return 0;
}
}  // namespace

ExecutionContext::ExecutionContext(std::shared_ptr<const Engine> engine, int threads, const std::string& backend)
    : engine_(std::move(engine)) {
  engine_->check_weights();  // before anything reads them
  ExecOptions o;
  o.threads = threads > 0 ? threads : tuned_threads(*engine_);
  o.numerics = engine_->numerics();
  const std::vector<std::string> names = backend_names();
  if (std::find(names.begin(), names.end(), backend) == names.end())
    throw Error(fmt::format("--backend '{}': expected cpu or cuda", backend));
  const Backend& b = find_backend(backend);
  // The CUDA plugin is loaded here, and only here: one line when it, a library or the GPU is missing.
  Availability a = b.availability();
  if (!a.ok) throw Error(fmt::format("{}: --backend {}: {}", engine_->name(), backend, a.reason));
  exec_ = b.compile(engine_->network(), o);
}

std::string ExecutionContext::backend_name() const { return exec_->backend_name(); }
RunSplit ExecutionContext::last_run_split() const { return exec_->last_run_split(); }
std::vector<StepTime> ExecutionContext::profile(int iters) { return exec_->profile(iters); }

TensorMap ExecutionContext::run(const TensorMap& inputs) {
  const auto& c = engine_->contents();
  const Network& net = c.network;
  auto scale_of = [&](const std::string& name) {
    auto it = c.scales.find(name);
    return it == c.scales.end() ? 0.f : it->second;
  };
  TensorMap in;
  for (size_t i = 0; i < net.inputs.size(); ++i) {
    const TensorFormat& f = c.input_formats[i];
    auto it = inputs.find(f.name);
    if (it == inputs.end() && net.model.input_values.count(f.name)) continue;  // the backend feeds its fixed values
    if (it == inputs.end()) throw Error(fmt::format("{}: input '{}' missing", engine_->name(), f.name));
    // fp32, or the network input's own type (an int32/int64 index or shape-value input): as is.
    const DataType own = net.tensors[net.inputs[i]].type;
    if ((f.type == DataType::kFloat || f.type == own) && f.layout == TensorLayout::kNCHW) {
      in.emplace(f.name, it->second);
    } else {
      in.emplace(f.name, to_network_format(it->second, f, scale_of(f.name)));
    }
  }
  TensorMap out = exec_->run(in);
  TensorMap res;
  for (size_t i = 0; i < net.outputs.size(); ++i) {
    const TensorFormat& f = c.output_formats[i];
    auto it = out.find(f.name);
    if (it == out.end()) throw Error(fmt::format("{}: the executor did not return output '{}'", engine_->name(), f.name));
    if (f.type == DataType::kFloat && f.layout == TensorLayout::kNCHW)
      res.emplace(f.name, std::move(it->second));
    else
      res.emplace(f.name, from_network_format(it->second, f, scale_of(f.name)));
  }
  return res;
}

}  // namespace tandem
