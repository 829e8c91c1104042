// Exports of a plan: the trtexec command line that builds it with real TensorRT (flag syntax:
// trtexec's samples/common/sampleOptions.cpp, source S7 in docs/dla-rules-impl.md) and a Graphviz
// picture.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "tandem/plan.h"

namespace tandem {

namespace {

bool shell_safe(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
           c == ':' || c == '+' || c == '-' || c == '=' || c == ',' || c == '@';
  });
}

std::string shell_quote(const std::string& s) {
  if (shell_safe(s)) return s;
  std::string r = "'";
  for (char c : s) {
    if (c == '\'') r += "'\\''";
    else r += c;
  }
  return r + "'";
}

std::string mib(double v) {
  if (v == std::floor(v)) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

std::string_view trt_precision(Precision p) {
  switch (p) {
    case Precision::kFP32: return "fp32";
    case Precision::kFP16: return "fp16";
    case Precision::kINT8: return "int8";
    case Precision::kFP8: return "fp8";
    case Precision::kUnset: return "";
  }
  return "";
}

std::string dot_escape(std::string_view s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r;
}

}  // namespace

std::string trtexec_layer_name(const std::string& name) {
  // Inside trtexec's spec the name ends at the last ':' (so ':' is fine); commas cannot be
  // expressed. The shell sees the name single-quoted when it has anything special.
  bool safe = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
           c == ':' || c == '-' || c == '+';
  });
  if (safe) return name;
  std::string r = "'";
  for (char c : name) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

namespace {
// trtexec's --shapes value: every network input with its dims. A shape-value input (fixed at
// import, --input-value) is a shape tensor to TensorRT: trtexec reads its --shapes entry as the
// tensor's values (setShapeValues with min = opt = max), so the values go there, and --shapes is
// needed even where the user gave no --shape.
std::string shapes_spec(const Network& net, std::vector<std::string>& notes) {
  std::string spec;
  for (TensorId t : net.inputs) {
    if (!spec.empty()) spec += ",";
    const std::string& n = net.tensors[t].name;
    const auto values = net.model.input_values.find(n);
    const bool is_values = values != net.model.input_values.end();
    spec += (n.find(':') != std::string::npos ? "'" + n + "'" : n) + ":" +
            (is_values ? fmt::format("{}", fmt::join(values->second, "x")) : dims_to_string(net.tensors[t].dims));
    if (is_values)
      notes.push_back(fmt::format("'{}' is a shape tensor: its --shapes entry gives its values ({}), "
                                  "fixed at import with --input-value",
                                  n, fmt::join(values->second, ",")));
  }
  return spec;
}
}  // namespace

std::string trtexec_command(const Network& net, const Plan& plan, const TrtexecOptions& opt) {
  const DlaTargetInfo& T = dla_target_info(plan.target);
  const int ver = opt.trt_version > 0 ? opt.trt_version : (T.trt_version / 100) * 100;
  const bool v86 = ver >= 8600;
  const bool v10 = ver >= 10000;
  std::vector<std::string> notes;
  std::vector<std::string> args;
  args.push_back("trtexec");
  args.push_back("--onnx=" + shell_quote(opt.onnx));
  std::string engine = opt.save_engine;
  if (engine.empty()) {
    engine = opt.onnx;
    const auto slash = engine.find_last_of('/');
    if (slash != std::string::npos) engine = engine.substr(slash + 1);
    const auto dot = engine.rfind(".onnx");
    if (dot != std::string::npos) engine = engine.substr(0, dot);
    engine += ".engine";
  }
  args.push_back("--saveEngine=" + shell_quote(engine));
  const std::string vname = v10 ? "10" : (v86 ? "8.6" : "8.5");
  notes.push_back(fmt::format("plan: strategy {}, case {}, target {}, trtexec {}",
                              to_string(plan.strategy), to_string(plan.plan_case), T.name, vname));
  if (v10)
    notes.push_back("TensorRT 10.7 was the last 10.x release with DLA; implicit INT8 (--int8 with "
                    "--calib) is deprecated from 10.1");
  if (plan.plan_case != Plan::Case::kNoDla) args.push_back(fmt::format("--useDLACore={}", plan.dla_core));
  if (plan.plan_case != Plan::Case::kNoDla && plan.gpu_fallback) args.push_back("--allowGPUFallback");
  if (plan.plan_case == Plan::Case::kFullDla && (opt.input_io_formats.empty() || opt.output_io_formats.empty()))
    notes.push_back("full DLA without --allowGPUFallback: trtexec sets kDIRECT_IO, so give DLA-native "
                    "I/O formats (--input-io-formats int8:dla_linear / fp16:chw16 ..., "
                    "--output-io-formats ...) or the build fails on I/O reformats (NVIDIA/TensorRT#3438)");
  if (plan.int8) args.push_back("--int8");
  if (plan.fp16) args.push_back("--fp16");
  if (plan.fp8) {
    if (!v86)
      notes.push_back("--fp8 omitted: trtexec 8.5 has no --fp8 (8.6+)");
    else if (plan.int8)
      notes.push_back("--fp8 omitted: trtexec refuses fp8 together with int8, and the DLA layers "
                      "need INT8");
    else
      args.push_back("--fp8");
  }
  if (!opt.calib.empty()) args.push_back("--calib=" + shell_quote(opt.calib));
  else if (plan.int8)
    notes.push_back("no --calib: trtexec sets dummy INT8 ranges (performance only, not accuracy)");
  if (opt.explicit_shapes || !net.model.input_values.empty()) args.push_back("--shapes=" + shell_quote(shapes_spec(net, notes)));
  if (!opt.input_io_formats.empty()) args.push_back("--inputIOFormats=" + shell_quote(opt.input_io_formats));
  if (!opt.output_io_formats.empty()) args.push_back("--outputIOFormats=" + shell_quote(opt.output_io_formats));
  std::string pools = "workspace:" + mib(opt.workspace_mib);
  if (opt.dla_sram_mib > 0) pools += ",dlaSRAM:" + mib(opt.dla_sram_mib);
  if (opt.dla_local_dram_mib > 0) pools += ",dlaLocalDRAM:" + mib(opt.dla_local_dram_mib);
  if (opt.dla_global_dram_mib > 0) pools += ",dlaGlobalDRAM:" + mib(opt.dla_global_dram_mib);
  args.push_back("--memPoolSize=" + pools);
  notes.push_back(v10 ? "sizes in MiB; --workspace was removed in 10.0"
                      : "sizes in MiB; --memPoolSize replaces the deprecated --workspace");
  if (!opt.timing_cache.empty()) args.push_back("--timingCacheFile=" + shell_quote(opt.timing_cache));
  if (v86)
    args.push_back(fmt::format("--builderOptimizationLevel={}", plan.optimization_level));
  else
    notes.push_back(fmt::format("trtexec 8.5 has no --builderOptimizationLevel (8.6+): level {} "
                                "not applied",
                                plan.optimization_level));
  // Detailed layer information by default: `tandem verify-layers` reads each layer's name, type
  // and output format from the --exportLayerInfo file (trtexec 8.4+).
  const std::string verbosity = opt.profiling_verbosity.empty() ? "detailed" : opt.profiling_verbosity;
  args.push_back("--profilingVerbosity=" + verbosity);
  if (opt.export_layer_info != "-") {
    std::string info = opt.export_layer_info;
    if (info.empty()) {
      const auto dot = engine.rfind(".engine");
      info = (dot != std::string::npos && dot + 7 == engine.size() ? engine.substr(0, dot) : engine) + ".layers.json";
    }
    args.push_back("--exportLayerInfo=" + shell_quote(info));
    notes.push_back("then on this machine: tandem verify-layers PLAN.json " + info +
                    " (PLAN.json: tandem plan --json with the same options)");
    if (verbosity != "detailed")
      notes.push_back("--profilingVerbosity=" + verbosity + ": the layer information has no output formats, "
                      "so verify-layers checks devices only");
  }
  if (opt.tiling_optimization_level >= 0 || opt.tiling_l2_cache_limit >= 0) {
    // Tiling arrived in TensorRT 10.8 (release notes, "Tiling Optimization"); every trtexec this
    // export targets (8.5, 8.6, 10.x with DLA) predates it.
    notes.push_back(fmt::format("tiling options omitted: trtexec {} has no --tilingOptimizationLevel / "
                                "--l2LimitForTiling (TensorRT 10.8+)", vname));
  }
  if (opt.direct_io) {
    args.push_back("--directIO");
    if (v10) notes.push_back("--directIO is deprecated in TensorRT 10.7");
  }
  // Per-layer precisions and devices.
  std::string precs, devs;
  bool comma_names = false;
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const auto& p = plan.layers[i];
    const std::string& name = net.layers[i].name;
    if (name.find(',') != std::string::npos) {
      comma_names = true;
      continue;
    }
    // Full DLA: the seed sets no per-layer precision (INT8 + FP16 flags only); only overrides,
    // i.e. precisions other than the DLA check's, are written.
    const Precision full_default = plan.check_precision == DlaPrecision::kInt8 ? Precision::kINT8 : Precision::kFP16;
    const bool implied = plan.plan_case == Plan::Case::kFullDla &&
                         (p.precision == full_default || p.precision == Precision::kUnset);
    const auto pr = implied ? std::string_view() : trt_precision(p.precision);
    const std::string quoted = trtexec_layer_name(name);
    if (!pr.empty()) {
      if (!precs.empty()) precs.push_back(',');
      precs.append(quoted).append(":").append(pr);
    }
    if (plan.plan_case == Plan::Case::kMixed) {
      if (!devs.empty()) devs.push_back(',');
      devs.append(quoted).append(":").append(to_string(p.device));
    }
  }
  if (comma_names)
    notes.push_back("layer names with ',' cannot be written in trtexec's per-layer specs; skipped");
  if (!precs.empty()) {
    args.push_back("--precisionConstraints=prefer");
    args.push_back("--layerPrecisions=" + precs);
  }
  if (!devs.empty()) {
    if (v86)
      args.push_back("--layerDeviceTypes=" + devs);
    else
      notes.push_back("trtexec 8.5 (JetPack 5) has no --layerDeviceTypes (8.6+): it cannot pin the "
                      "GPU layers of this plan; with --useDLACore every DLA-capable layer goes to "
                      "the DLA (build with the TensorRT API, or patch trtexec as cuDLA-samples does)");
  }
  std::string out;
  for (const auto& n : notes) out += "# note: " + n + "\n";
  for (size_t i = 0; i < args.size(); ++i) {
    out += args[i];
    out += i + 1 < args.size() ? " \\\n  " : "\n";
  }
  return out;
}

std::string plan_dot(const Network& net, const Plan& plan, const std::string& title) {
  std::string o;
  o += fmt::format("digraph \"{}\" {{\n", dot_escape(title));
  o += "  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n";
  o += "  edge [fontname=\"Helvetica\", fontsize=8];\n";
  o += fmt::format("  label=\"{} | strategy {} | case {} | green: DLA, blue: GPU\";\n  labelloc=t;\n",
                   dot_escape(title), to_string(plan.strategy), to_string(plan.plan_case));
  auto node = [&](size_t i) {
    const auto& p = plan.layers[i];
    const Layer& l = net.layers[i];
    return fmt::format("    L{} [label=\"{}\\n{} {}\", fillcolor=\"{}\"];\n", i, dot_escape(l.name),
                       layer_kind_info(l.kind).trt_type, to_string(p.precision),
                       p.device == Device::kDLA ? "#9be564" : "#9ecae1");
  };
  std::vector<char> placed(plan.layers.size(), 0);
  for (size_t r = 0; r < plan.regions.size(); ++r) {
    const Region& g = plan.regions[r];
    if (!g.on_dla) continue;
    o += fmt::format("  subgraph cluster_r{} {{\n    label=\"DLA region {} ({} layers)\";\n"
                     "    style=dashed; color=\"#2d7d00\";\n",
                     r, r, g.layers.size());
    for (LayerId l : g.layers)
      if (l >= 0 && l < static_cast<LayerId>(placed.size()) && !placed[l] &&
          plan.layers[l].device == Device::kDLA) {
        o += node(static_cast<size_t>(l));
        placed[l] = 1;
      }
    o += "  }\n";
  }
  for (size_t i = 0; i < plan.layers.size(); ++i)
    if (!placed[i]) o += "  " + node(i).substr(2);
  for (TensorId t : net.inputs)
    o += fmt::format("  T{} [shape=ellipse, style=filled, fillcolor=\"#eeeeee\", label=\"{}\\n{}\"];\n", t,
                     dot_escape(net.tensors[t].name), dims_to_string(net.tensors[t].dims));
  std::map<TensorId, int64_t> cross;
  for (const auto& c : plan.crossings) cross[c.tensor] = c.bytes;
  const auto consumers = net.consumers();
  for (TensorId t = 0; t < static_cast<TensorId>(net.tensors.size()); ++t) {
    const Tensor& ten = net.tensors[t];
    const std::string from = ten.producer >= 0 ? fmt::format("L{}", ten.producer) : fmt::format("T{}", t);
    if (ten.producer < 0 && !ten.is_input) continue;
    for (LayerId c : consumers[t]) {
      const Device fd = ten.producer >= 0 ? plan.layers[ten.producer].device : Device::kGPU;
      if (fd != plan.layers[c].device && cross.count(t))
        o += fmt::format("  {} -> L{} [color=red, penwidth=2, label=\"{} B\"];\n", from, c, cross[t]);
      else
        o += fmt::format("  {} -> L{};\n", from, c);
    }
  }
  for (TensorId t : net.outputs) {
    const Tensor& ten = net.tensors[t];
    o += fmt::format("  O{} [shape=ellipse, style=filled, fillcolor=\"#eeeeee\", label=\"{}\\n{}\"];\n", t,
                     dot_escape(ten.name), dims_to_string(ten.dims));
    if (ten.producer >= 0) o += fmt::format("  L{} -> O{};\n", ten.producer, t);
  }
  o += "}\n";
  return o;
}

PlanGroups plan_groups(const Plan& plan) {
  PlanGroups g;
  g.group_of.assign(plan.layers.size(), -1);
  std::map<int, int> region_group;  // plan region -> group
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const LayerPlacement& p = plan.layers[i];
    int id = -1;
    if (p.device == Device::kDLA && p.region >= 0) {
      if (auto it = region_group.find(p.region); it != region_group.end()) id = it->second;
    } else if (i > 0) {
      // A span continues while the previous layer has the same device and no region.
      const LayerPlacement& q = plan.layers[i - 1];
      if (q.device == p.device && (q.device == Device::kGPU || q.region < 0)) id = g.group_of[i - 1];
    }
    if (id < 0) {
      id = static_cast<int>(g.groups.size());
      g.groups.push_back({p.device, p.device == Device::kDLA ? p.region : -1, {}});
      if (p.device == Device::kDLA && p.region >= 0) region_group[p.region] = id;
    }
    g.groups[id].layers.push_back(static_cast<LayerId>(i));
    g.group_of[i] = id;
  }
  return g;
}

namespace {

// "name [1x16x320x320]", one line per tensor on the edge (every boundary tensor is shown).
std::string edge_label(const Network& net, const std::vector<TensorId>& tensors) {
  std::string label;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const Tensor& t = net.tensors[tensors[k]];
    label += fmt::format("{}{} [{}]", k ? "\\n" : "", dot_escape(t.name), dims_to_string(t.dims));
  }
  return label;
}

std::string group_box(const Network& net, const Plan& plan, const PlanGroups::Group& grp, size_t id) {
  int int8 = 0, fp16 = 0;
  for (LayerId l : grp.layers) {
    int8 += plan.layers[l].precision == Precision::kINT8;
    fp16 += plan.layers[l].precision == Precision::kFP16;
  }
  const std::string& first = net.layers[grp.layers.front()].name;
  const std::string& last = net.layers[grp.layers.back()].name;
  const std::string head = grp.device == Device::kDLA
                               ? (grp.region >= 0 ? fmt::format("DLA region {}", grp.region) : std::string("DLA layers"))
                               : fmt::format("GPU layers {}-{}", grp.layers.front(), grp.layers.back());
  return fmt::format("  G{} [label=\"{}\\n{} layers ({} INT8, {} FP16)\\n{}{}\", fillcolor=\"{}\"];\n", id, head,
                     grp.layers.size(), int8, fp16, dot_escape(first),
                     grp.layers.size() > 1 ? " ... " + dot_escape(last) : std::string(),
                     grp.device == Device::kDLA ? "#9be564" : "#9ecae1");
}

}  // namespace

std::string plan_dot_regions(const Network& net, const Plan& plan, const std::string& title) {
  const PlanGroups g = plan_groups(plan);
  std::string o;
  o += fmt::format("digraph \"{}\" {{\n", dot_escape(title));
  o += "  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n";
  o += "  edge [fontname=\"Helvetica\", fontsize=8];\n";
  o += fmt::format("  label=\"{} | strategy {} | case {} | {} boxes: one per DLA region (green) and GPU span (blue)\";\n"
                   "  labelloc=t;\n",
                   dot_escape(title), to_string(plan.strategy), to_string(plan.plan_case), g.groups.size());
  for (size_t i = 0; i < g.groups.size(); ++i) o += group_box(net, plan, g.groups[i], i);
  // Edges between boxes, one per (from, to) pair, in first-seen order: "I<t>" for a network input.
  std::vector<std::pair<std::string, std::string>> order;
  std::map<std::pair<std::string, std::string>, std::vector<TensorId>> edges;
  const auto consumers = net.consumers();
  for (TensorId t = 0; t < static_cast<TensorId>(net.tensors.size()); ++t) {
    const Tensor& ten = net.tensors[t];
    if (ten.producer < 0 && !ten.is_input) continue;
    const std::string from = ten.producer >= 0 ? fmt::format("G{}", g.group_of[ten.producer]) : fmt::format("I{}", t);
    std::vector<std::string> tos;
    for (LayerId c : consumers[t]) tos.push_back(fmt::format("G{}", g.group_of[c]));
    for (TensorId out : net.outputs)
      if (out == t) tos.push_back(fmt::format("O{}", t));
    for (const auto& to : tos) {
      if (to == from) continue;
      auto key = std::make_pair(from, to);
      auto& list = edges[key];
      if (list.empty()) order.push_back(key);
      if (std::find(list.begin(), list.end(), t) == list.end()) list.push_back(t);
    }
  }
  for (TensorId t : net.inputs)
    o += fmt::format("  I{} [shape=ellipse, style=filled, fillcolor=\"#eeeeee\", label=\"{}\\n{}\"];\n", t,
                     dot_escape(net.tensors[t].name), dims_to_string(net.tensors[t].dims));
  for (TensorId t : net.outputs)
    o += fmt::format("  O{} [shape=ellipse, style=filled, fillcolor=\"#eeeeee\", label=\"{}\\n{}\"];\n", t,
                     dot_escape(net.tensors[t].name), dims_to_string(net.tensors[t].dims));
  auto device_of = [&](const std::string& node) {  // network inputs and outputs count as GPU
    return node[0] == 'G' ? g.groups[std::stoul(node.substr(1))].device : Device::kGPU;
  };
  for (const auto& key : order) {
    const bool crossing = device_of(key.first) != device_of(key.second);
    o += fmt::format("  {} -> {} [label=\"{}\"{}];\n", key.first, key.second, edge_label(net, edges[key]),
                     crossing ? ", color=red, penwidth=2" : "");
  }
  o += "}\n";
  return o;
}

}  // namespace tandem
