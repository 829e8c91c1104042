// tandem inspect model.onnx [--shape name:DIMS]... [--json]: model facts and one row per layer.
// tandem inspect model.engine [--json]: the engine's header and one row per engine layer
// (inspect_engine.cpp), chosen by the file's magic, not its name.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "command.h"
#include "options.h"
#include "inspect.h"
#include "tandem/onnx.h"

namespace {

using nlohmann::json;
using namespace tandem;

json tensor_json(const Network& net, TensorId t) {
  const Tensor& x = net.tensors[t];
  return json{{"name", x.name}, {"shape", x.dims}, {"type", std::string(to_string(x.type))}};
}

std::string tensor_text(const Network& net, TensorId t) {
  const Tensor& x = net.tensors[t];
  return fmt::format("{} [{} {}]", x.name, dims_to_string(x.dims), to_string(x.type));
}

std::string dims_csv(const Dims& d) { return dims_to_string(d, ','); }

std::string weights_text(const Network& net, WeightsId w) {
  if (w < 0) return "none";
  return fmt::format("{}[{}]", net.weights[w].name, dims_to_string(net.weights[w].dims));
}

std::string axes_text(uint32_t m) {
  std::string s;
  for (int i = 0; i < 32; ++i)
    if (m & (1u << i)) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

}  // namespace

namespace tandem::cli {
std::string layer_params_text(const Network& net, const Layer& l) {
  return std::visit(
      [&](const auto& p) -> std::string {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, ConvolutionParams>)
          return fmt::format("k={} s={} pre={} post={} d={} g={} maps={} w={} b={}", dims_to_string(p.kernel),
                             dims_to_string(p.stride), dims_csv(p.pre_padding), dims_csv(p.post_padding),
                             dims_to_string(p.dilation), p.groups, p.out_maps, weights_text(net, p.kernel_weights),
                             weights_text(net, p.bias_weights));
        else if constexpr (std::is_same_v<P, PoolingParams>)
          return fmt::format("{} k={} s={} pre={} post={} {}{}", to_string(p.type), dims_to_string(p.window),
                             dims_to_string(p.stride), dims_csv(p.pre_padding), dims_csv(p.post_padding),
                             p.padding_mode == PaddingMode::kExplicitRoundUp ? "round_up" : "round_down",
                             p.type == PoolingType::kAverage ? (p.average_count_excludes_padding ? " excl_pad" : " incl_pad") : "");
        else if constexpr (std::is_same_v<P, ActivationParams>)
          return fmt::format("{} alpha={} beta={}", to_string(p.type), p.alpha, p.beta);
        else if constexpr (std::is_same_v<P, ElementWiseParams>) return std::string(to_string(p.op));
        else if constexpr (std::is_same_v<P, ScaleParams>)
          return fmt::format("{} axis={} scale={} shift={}", to_string(p.mode), p.channel_axis, weights_text(net, p.scale),
                             weights_text(net, p.shift));
        else if constexpr (std::is_same_v<P, ConcatenationParams>) return fmt::format("axis={}", p.axis);
        else if constexpr (std::is_same_v<P, ResizeParams>)
          return fmt::format("{} {} {} {} {}", to_string(p.mode), to_string(p.transform), to_string(p.selector),
                             to_string(p.rounding),
                             p.output_dims.empty() ? fmt::format("scales={}", fmt::join(p.scales, ","))
                                                   : fmt::format("sizes={}", dims_csv(p.output_dims)));
        else if constexpr (std::is_same_v<P, ShuffleParams>)
          return fmt::format("first={} reshape={} second={}", fmt::join(p.first_transpose, ","),
                             p.reshape ? dims_to_string(*p.reshape) : "-", fmt::join(p.second_transpose, ","));
        else if constexpr (std::is_same_v<P, SliceParams>)
          return fmt::format("start={} size={} stride={} {}", dims_csv(p.start), dims_csv(p.size), dims_csv(p.stride),
                             to_string(p.mode));
        else if constexpr (std::is_same_v<P, SoftMaxParams>) return fmt::format("axes={}", axes_text(p.axes));
        else if constexpr (std::is_same_v<P, ReduceParams>)
          return fmt::format("{} axes={} keep={}", to_string(p.op), axes_text(p.axes), p.keep_dims);
        else if constexpr (std::is_same_v<P, MatrixMultiplyParams>)
          return fmt::format("op0={} op1={}", p.op0 == MatrixOp::kTranspose ? "T" : "N", p.op1 == MatrixOp::kTranspose ? "T" : "N");
        else if constexpr (std::is_same_v<P, UnaryParams>) return std::string(to_string(p.op));
        else if constexpr (std::is_same_v<P, ConstantParams>) return weights_text(net, p.weights);
        else if constexpr (std::is_same_v<P, LRNParams>)
          return fmt::format("window={} alpha={} beta={} k={}", p.window, p.alpha, p.beta, p.k);
        else if constexpr (std::is_same_v<P, GatherParams>) {
          if (p.mode == GatherMode::kND) return fmt::format("mode=ND batch_dims={}", p.nb_elementwise_dims);
          if (p.mode == GatherMode::kElement) return fmt::format("mode=ELEMENT axis={}", p.axis);
          return fmt::format("axis={}", p.axis);
        }
        else if constexpr (std::is_same_v<P, ScatterParams>)
          return fmt::format("mode={} axis={} reduction={}", to_string(p.mode), p.axis, to_string(p.reduction));
        else if constexpr (std::is_same_v<P, TopKParams>)
          return fmt::format("{} k={} axes={}", to_string(p.op), p.k, axes_text(p.axes));
        else if constexpr (std::is_same_v<P, EinsumParams>) return p.equation;
        else if constexpr (std::is_same_v<P, GridSampleParams>)
          return fmt::format("{} align_corners={} sample={}", to_string(p.interpolation), p.align_corners ? 1 : 0,
                             to_string(p.sample_mode));
        else if constexpr (std::is_same_v<P, RoiAlignParams>)
          return fmt::format("{} {}x{} sampling={} scale={}{}", p.max_mode ? "max" : "avg", p.out_h, p.out_w,
                             p.sampling_ratio, p.spatial_scale, p.half_pixel ? " half_pixel" : "");
        else if constexpr (std::is_same_v<P, CastParams>) return fmt::format("to={}", to_string(p.to));
        else if constexpr (std::is_same_v<P, NormalizationParams>)
          return fmt::format("axes={} eps={} groups={}", axes_text(p.axes), p.epsilon, p.groups);
        else return "";
      },
      l.params);
}
}  // namespace tandem::cli

namespace {

json to_json(const Network& net) {
  const auto& m = net.model;
  json j;
  j["schema"] = "tandem/inspect-model/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["model"] = {{"path", m.path}, {"ir_version", m.ir_version}, {"producer_name", m.producer_name},
                {"producer_version", m.producer_version}};
  j["model"]["opsets"] = json::array();
  for (const auto& [d, v] : m.opsets) j["model"]["opsets"].push_back({{"domain", d}, {"version", v}});
  j["inputs"] = json::array();
  for (TensorId t : net.inputs) j["inputs"].push_back(tensor_json(net, t));
  j["outputs"] = json::array();
  for (TensorId t : net.outputs) j["outputs"].push_back(tensor_json(net, t));
  j["folded_nodes"] = m.folded_nodes;
  j["layers"] = json::array();
  std::map<std::string, int> by_kind;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    json lj{{"index", i}, {"name", l.name}, {"kind", std::string(to_string(l.kind))}, {"onnx_node", l.onnx_node},
            {"onnx_op", l.onnx_op}, {"params", tandem::cli::layer_params_text(net, l)}};
    lj["inputs"] = json::array();
    for (TensorId t : l.inputs) lj["inputs"].push_back(tensor_json(net, t));
    lj["outputs"] = json::array();
    for (TensorId t : l.outputs) lj["outputs"].push_back(tensor_json(net, t));
    j["layers"].push_back(std::move(lj));
    ++by_kind[std::string(to_string(l.kind))];
  }
  j["summary"] = {{"layers", net.layers.size()}, {"tensors", net.tensors.size()}, {"weights", net.weights.size()},
                  {"layers_by_kind", by_kind}};
  return j;
}

void print_text(const Network& net) {
  const auto& m = net.model;
  std::string opsets;
  for (const auto& [d, v] : m.opsets) opsets += fmt::format("{}{}:{}", opsets.empty() ? "" : ", ", d.empty() ? "ai.onnx" : d, v);
  fmt::print("model     {}\n", m.path);
  fmt::print("ir        {}\nopsets    {}\nproducer  {} {}\n", m.ir_version, opsets, m.producer_name, m.producer_version);
  for (TensorId t : net.inputs) fmt::print("input     {}\n", tensor_text(net, t));
  for (TensorId t : net.outputs) fmt::print("output    {}\n", tensor_text(net, t));
  {
    const size_t shown = std::min<size_t>(m.folded_nodes.size(), 30);
    std::vector<std::string> names(m.folded_nodes.begin(), m.folded_nodes.begin() + shown);
    fmt::print("folded    {} node(s){}{}{}\n", m.folded_nodes.size(), names.empty() ? "" : ": ", fmt::join(names, ", "),
               shown < m.folded_nodes.size() ? fmt::format(", ... ({} more; --json lists all)", m.folded_nodes.size() - shown) : "");
  }
  std::map<std::string, int> by_kind;
  for (const auto& l : net.layers) ++by_kind[std::string(to_string(l.kind))];
  std::string kinds;
  for (const auto& [k, n] : by_kind) kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", n, k);
  fmt::print("layers    {} ({})\n\n", net.layers.size(), kinds);
  fmt::print("{:>4}  {:<40} {:<15} {:<60} {:<50} {}\n", "#", "name", "kind", "inputs", "outputs", "onnx node (op)");
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& l = net.layers[i];
    std::vector<std::string> ins, outs;
    for (TensorId t : l.inputs) ins.push_back(tensor_text(net, t));
    for (TensorId t : l.outputs) outs.push_back(tensor_text(net, t));
    const std::string in_s = fmt::format("{}", fmt::join(ins, ", ")), out_s = fmt::format("{}", fmt::join(outs, ", "));
    fmt::print("{:>4}  {:<40} {:<15} {:<60} {:<50} {}\n", i, l.name, to_string(l.kind), in_s.empty() ? "-" : in_s,
               out_s, l.onnx_node.empty() ? "-" : fmt::format("{} ({})", l.onnx_node, l.onnx_op));
  }
}

tandem::cli::RegisterCommand reg(10, "inspect", [](CLI::App& app) {
  auto* sub = app.add_subcommand(
      "inspect", "Show an ONNX model's layers (TensorRT-style), or an engine's header and per-layer info");
  auto path = std::make_shared<std::string>();
  auto shapes = std::make_shared<std::vector<std::string>>();
  auto as_json = std::make_shared<bool>(false);
  sub->add_option("model", *path, "model.onnx or model.engine")->required();
  tandem::cli::add_shape_option(sub, *shapes)->description("fix an input shape: NAME:1x3x640x640 (repeatable, or comma-separated; ONNX models only)");
  sub->add_flag("--json", *as_json, "one JSON document on stdout (docs/json.md)");
  return std::function<int()>([=] {
    // The magic decides, not the name; a damaged magic on an .engine file still goes to the
    // engine loader so that the user hears "not a tandem engine" rather than an ONNX complaint.
    const bool engine_name = std::filesystem::path(*path).extension() == ".engine";
    if (tandem::cli::has_engine_magic(*path) || engine_name) {
      if (!shapes->empty())
        throw Error(fmt::format("--shape {}: {} is an engine; its shapes were fixed when it was built", shapes->front(), *path));
      tandem::cli::inspect_engine(*path, *as_json);
      return 0;
    }
    ImportOptions opt;
    for (const auto& s : *shapes) opt.shapes.push_back(parse_shape_arg(s));
    Network net = import_onnx(*path, opt);
    if (*as_json) std::cout << to_json(net).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    else print_text(net);
    return 0;
  });
});

}  // namespace
