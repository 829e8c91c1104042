// tandem plan: device and precision per layer (seed or graph strategy), regions, boundary traffic.
#include <cstdio>
#include <memory>

#include "command.h"
#include "plan_cli.h"

namespace {
using namespace tandem;

struct PlanCmdArgs {
  cli::PlanArgs p;
  bool json = false;
};

int run(const PlanCmdArgs& a) {
  const PlanOptions po = cli::plan_options_from(a.p);  // bad options fail before the import
  const Network net = cli::load_plan_network(a.p);
  const Plan plan = make_plan(net, po);
  cli::print_plan_warnings(net, plan);
  const std::string out = a.json ? plan_report_json(net, plan, a.p.model) : plan_report_text(net, plan, a.p.model);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

tandem::cli::RegisterCommand reg(30, "plan", [](CLI::App& app) {
  auto* sub = app.add_subcommand("plan", "Assign each layer a device (GPU/DLA) and precision");
  auto a = std::make_shared<PlanCmdArgs>();
  cli::add_plan_args(sub, a->p);
  sub->add_flag("--json", a->json, "one JSON document on stdout (docs/json.md)");
  return std::function<int()>([a] { return run(*a); });
});

}  // namespace
