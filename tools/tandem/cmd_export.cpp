// tandem export trtexec | dot (| others registered through export_command.h).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.h"
#include "export_command.h"
#include "plan_cli.h"

namespace tandem::cli {
std::vector<ExportCommand>& export_registry() {
  static std::vector<ExportCommand> r;
  return r;
}
}  // namespace tandem::cli

namespace {
using namespace tandem;
namespace fs = std::filesystem;

// Errors name the user's file (not the temporary one) with the OS reason.
void write_atomic(const std::string& path, const std::string& data, bool executable = false) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    errno = 0;
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write " + path + ": " + cli::os_reason(errno ? errno : EIO));
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
    f.flush();
    if (!f) {
      const int err = errno ? errno : EIO;
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error("cannot write " + path + ": " + cli::os_reason(err));
    }
  }
  std::error_code ec;
  if (executable)
    fs::permissions(tmp, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add, ec);
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    throw Error("cannot write " + path + ": " + why);
  }
}

// --json: the tandem/export/v1 summary (docs/json.md) shared by the exports.
nlohmann::ordered_json export_summary(const char* format, const std::string& model, const std::string& output,
                                      const Plan& plan) {
  int dla = 0;
  for (const auto& l : plan.layers) dla += l.device == Device::kDLA;
  nlohmann::ordered_json j;
  j["schema"] = "tandem/export/v1";  // key names shared by every tandem JSON document (docs/json.md)
  j["format"] = format;
  j["model"] = model;
  j["output"] = output.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(output);
  j["dla_layers"] = dla;
  j["gpu_layers"] = int(plan.layers.size()) - dla;
  j["total_layers"] = plan.layers.size();
  return j;
}

void print_json(const nlohmann::ordered_json& j) {
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

// ---- trtexec ---------------------------------------------------------------------------------
struct TrtexecArgs {
  cli::PlanArgs p;
  TrtexecOptions t;
  std::string trt_version, mem_pool, workspace;
  std::string output;
  bool json = false;
};

int run_trtexec(TrtexecArgs a) {
  const PlanOptions po = cli::plan_options_from(a.p);
  if (a.trt_version.empty()) a.t.trt_version = 0;
  else if (a.trt_version == "8.5") a.t.trt_version = 8500;
  else if (a.trt_version == "8.6") a.t.trt_version = 8600;
  else if (a.trt_version == "10") a.t.trt_version = 10000;
  else throw Error("--trt-version: '" + a.trt_version + "' is not 8.5, 8.6 or 10");
  if (!a.mem_pool.empty()) {
    const std::vector<std::string> pools = {"workspace", "dlaSRAM", "dlaLocalDRAM", "dlaGlobalDRAM"};
    auto mib = [&](const char* pool) { return cli::mem_pool_mib(a.mem_pool, pool, pools); };
    if (double v = mib("dlaSRAM"); v > 0) a.t.dla_sram_mib = decltype(a.t.dla_sram_mib)(v);
    if (double v = mib("dlaLocalDRAM"); v > 0) a.t.dla_local_dram_mib = decltype(a.t.dla_local_dram_mib)(v);
    if (double v = mib("dlaGlobalDRAM"); v > 0) a.t.dla_global_dram_mib = decltype(a.t.dla_global_dram_mib)(v);
  }
  const double pool_mib = a.mem_pool.empty() ? -1
      : cli::mem_pool_mib(a.mem_pool, "workspace", {"workspace", "dlaSRAM", "dlaLocalDRAM", "dlaGlobalDRAM"});
  a.t.workspace_mib = decltype(a.t.workspace_mib)(cli::workspace_gib(a.workspace, pool_mib) * 1024.0);
  const Network net = cli::load_plan_network(a.p);
  const Plan plan = make_plan(net, po);
  cli::print_plan_warnings(net, plan);
  a.t.onnx = a.p.model;
  a.t.explicit_shapes = !a.p.shapes.empty();
  std::string cmd = trtexec_command(net, plan, a.t);
  int dla = 0;
  for (const auto& l : plan.layers) dla += l.device == Device::kDLA;
  if (dla == 0)  // the script itself says so too: it still passes --useDLACore
    cmd = "# warning: the plan has no DLA layer: every layer is pinned to the GPU although the command passes "
          "--useDLACore (see the plan's warning)\n" + cmd;
  if (!a.output.empty()) write_atomic(a.output, "#!/bin/sh\n" + cmd, true);
  if (a.json) {
    nlohmann::ordered_json j = export_summary("trtexec", a.p.model, a.output, plan);
    j["command"] = cmd;
    print_json(j);
  } else if (a.output.empty()) {
    std::fwrite(cmd.data(), 1, cmd.size(), stdout);
  }
  return 0;
}

// ---- dot -------------------------------------------------------------------------------------
struct DotArgs {
  cli::PlanArgs p;
  std::string output;
  std::string view = "layers";  // layers | regions (--collapse)
  bool collapse = false, json = false;
};

bool on_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string s(path);
  size_t b = 0;
  while (b <= s.size()) {
    size_t e = s.find(':', b);
    if (e == std::string::npos) e = s.size();
    const fs::path p = fs::path(s.substr(b, e - b)) / exe;
    if (::access(p.c_str(), X_OK) == 0) return true;
    b = e + 1;
  }
  return false;
}

int run_dot(const DotArgs& a) {
  const std::string ext = fs::path(a.output).extension().string();
  if (ext != ".dot" && ext != ".gv" && ext != ".svg" && ext != ".png")
    throw Error("-o '" + a.output + "': the file must end in .dot, .svg or .png");
  if (ext != ".dot" && ext != ".gv" && !on_path("dot"))
    throw Error("-o '" + a.output + "': Graphviz 'dot' not found on PATH (install graphviz, or write a .dot file)");
  const PlanOptions po = cli::plan_options_from(a.p);
  const Network net = cli::load_plan_network(a.p);
  const Plan plan = make_plan(net, po);
  if (a.view != "layers" && a.view != "regions") throw Error("--view: '" + a.view + "' is not layers | regions");
  const bool regions = a.collapse || a.view == "regions";
  const std::string title = fs::path(a.p.model).filename().string();
  const std::string text = regions ? plan_dot_regions(net, plan, title) : plan_dot(net, plan, title);
  // --json: the summary once the file is written (a failed write prints only the error).
  auto summary = [&] {
    if (!a.json) return 0;
    nlohmann::ordered_json j = export_summary("dot", a.p.model, a.output, plan);
    j["view"] = regions ? "regions" : "layers";
    j["boxes"] = regions ? plan_groups(plan).groups.size() : plan.layers.size();
    print_json(j);
    return 0;
  };
  if (ext == ".dot" || ext == ".gv") {
    write_atomic(a.output, text);
    return summary();
  }
  const std::string pid = std::to_string(::getpid());
  const std::string src = a.output + ".tmp." + pid + ".dot";
  const std::string dst = a.output + ".tmp." + pid + ext;
  write_atomic(src, text);
  const std::string cmd = "dot -T" + ext.substr(1) + " '" + src + "' -o '" + dst + "'";
  const int rc = std::system(cmd.c_str());
  std::error_code ec;
  fs::remove(src, ec);
  if (rc != 0) {
    fs::remove(dst, ec);
    throw Error("Graphviz 'dot' failed (" + std::to_string(rc) + ") rendering '" + a.output + "'", 1);
  }
  fs::rename(dst, a.output, ec);
  if (ec) throw Error("cannot write " + a.output + ": " + ec.message());
  return summary();
}

tandem::cli::RegisterExport reg_trtexec("trtexec", [](CLI::App& exp) {
  auto* sub = exp.add_subcommand("trtexec", "The trtexec command line that builds this plan with TensorRT on a Jetson");
  auto a = std::make_shared<TrtexecArgs>();
  cli::add_plan_args(sub, a->p);
  cli::add_calib_cache_option(sub, a->t.calib, "INT8 calibration cache (trtexec --calib)");
  sub->add_option("--save-engine,--saveEngine", a->t.save_engine, "engine file (--saveEngine; default <model>.engine)");
  sub->add_option("--trt-version", a->trt_version, "trtexec version: 8.5 | 8.6 | 10 (default: the target's)");
  cli::add_workspace_option(sub, a->workspace);  // emitted as --memPoolSize=workspace:N in MiB
  sub->add_option("--memPoolSize,--mem-pool-size", a->mem_pool,
                  "trtexec spelling: workspace:N,dlaSRAM:N,dlaLocalDRAM:N,dlaGlobalDRAM:N (MiB, or suffix K/M/G)");
  sub->add_option("--dla-sram", a->t.dla_sram_mib, "DLA managed SRAM pool in MiB");
  sub->add_option("--dla-local-dram", a->t.dla_local_dram_mib, "DLA local DRAM pool in MiB");
  sub->add_option("--dla-global-dram", a->t.dla_global_dram_mib, "DLA global DRAM pool in MiB");
  sub->add_option("--timing-cache", a->t.timing_cache, "timing cache file (--timingCacheFile)");
  sub->add_option("--input-io-formats", a->t.input_io_formats, "trtexec --inputIOFormats spec, e.g. int8:dla_hwc4");
  sub->add_option("--output-io-formats", a->t.output_io_formats, "trtexec --outputIOFormats spec, e.g. fp16:chw16");
  sub->add_flag("--direct-io", a->t.direct_io, "--directIO");
  sub->add_option("--export-layer-info,--exportLayerInfo", a->t.export_layer_info,
                  "--exportLayerInfo file for `tandem verify-layers` (default <engine stem>.layers.json; '-': none)");
  sub->add_option("--profiling-verbosity", a->t.profiling_verbosity, "--profilingVerbosity: layer_names_only | detailed | none (default detailed)")
      ->check(CLI::IsMember({"layer_names_only", "detailed", "none"}));
  sub->add_option("--tiling-optimization-level", a->t.tiling_optimization_level,
                  "--tilingOptimizationLevel 0..3 (TensorRT 10.8+; noted, not emitted, for DLA-era trtexec)")
      ->check(CLI::Range(0, 3));
  sub->add_option("--tiling-l2-cache-limit", a->t.tiling_l2_cache_limit, "--l2LimitForTiling in bytes (TensorRT 10.8+)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("-o,--output", a->output, "write a shell script here instead of stdout");
  sub->add_flag("--json", a->json, "a JSON summary on stdout, the command in it (docs/json.md)");
  return std::function<int()>([a] { return run_trtexec(*a); });
});

tandem::cli::RegisterExport reg_dot("dot", [](CLI::App& exp) {
  auto* sub = exp.add_subcommand("dot", "Graphviz picture of the plan: devices, DLA regions, crossings");
  auto a = std::make_shared<DotArgs>();
  cli::add_plan_args(sub, a->p);
  sub->add_option("-o,--output", a->output, "out.dot | out.svg | out.png")->required();
  sub->add_option("--view", a->view, "layers: one box per layer | regions: one box per DLA region and GPU span")
      ->capture_default_str();
  sub->add_flag("--collapse", a->collapse, "the same as --view regions");
  sub->add_flag("--json", a->json, "a JSON summary on stdout (docs/json.md)");
  return std::function<int()>([a] { return run_dot(*a); });
});

// Order 60: before any command that extends `export` through app.get_subcommand("export").
tandem::cli::RegisterCommand reg(60, "export", [](CLI::App& app) {
  auto* exp = app.add_subcommand("export", "Export the plan: trtexec command line, Graphviz picture, ...");
  exp->require_subcommand(1);
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (auto& e : tandem::cli::export_registry()) {
    auto before = exp->get_subcommands({}).size();
    auto run = e.setup(*exp);
    auto subs = exp->get_subcommands({});
    runners.emplace_back(subs.size() > before ? subs.back() : nullptr, std::move(run));
  }
  return std::function<int()>([runners] {
    for (const auto& [sub, run] : runners)
      if (sub && sub->parsed()) return run();
    return 0;  // an export attached by another file ran from its own CLI11 callback
  });
});

}  // namespace
