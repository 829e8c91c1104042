// make_plan: the seed strategy (trtutils build_dla_engine, section c.3) and the graph strategy
// (connected, cycle-free DLA regions over tensor edges). Pure: no CUDA, no protobuf.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <numeric>
#include <set>

#include "tandem/constant_origin.h"
#include "tandem/plan.h"

namespace tandem {

// ---- Small enums ------------------------------------------------------------------------------
std::string_view to_string(Strategy s) {
  switch (s) {
    case Strategy::kSeed: return "seed";
    case Strategy::kGraph: return "graph";
  }
  return "?";
}
std::string_view to_string(Plan::Case c) {
  switch (c) {
    case Plan::Case::kFullDla: return "full-dla";
    case Plan::Case::kNoDla: return "no-dla";
    case Plan::Case::kMixed: return "mixed";
  }
  return "?";
}

namespace {
std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}
}  // namespace

bool parse_strategy(std::string_view s, Strategy* out) {
  if (s == "seed") *out = Strategy::kSeed;
  else if (s == "graph") *out = Strategy::kGraph;
  else return false;
  return true;
}

int64_t Plan::crossing_bytes() const {
  int64_t n = 0;
  for (const auto& c : crossings) n += c.bytes;
  return n;
}
int Plan::dla_region_count() const {
  int n = 0;
  for (const auto& r : regions) n += r.on_dla ? 1 : 0;
  return n;
}

namespace {

// The seed's GPU precision rule: FP16, except Constant and Shuffle layers and layers whose name
// contains "tile" (any case), which stay unset.
Precision gpu_precision(const Layer& l) {
  if (l.kind == LayerKind::kConstant || l.kind == LayerKind::kShuffle) return Precision::kUnset;
  if (lower(l.name).find("tile") != std::string::npos) return Precision::kUnset;
  return Precision::kFP16;
}

Precision dla_precision(const PlanOptions& opt) {
  return opt.dla.precision == DlaPrecision::kInt8 ? Precision::kINT8 : Precision::kFP16;
}

void validate(const Network& net, const PlanOptions& opt) {
  const DlaTargetInfo& T = dla_target_info(opt.dla.target);
  if (opt.dla_core < 0)
    throw Error(fmt::format("--dla-core {} must be >= 0", opt.dla_core));
  if (opt.dla_core >= T.cores)
    throw Error(fmt::format("--dla-core {} must be < {} (DLA cores on {})", opt.dla_core, T.cores,
                            T.name));
  if (opt.optimization_level < 0 || opt.optimization_level > 5)
    throw Error(fmt::format("--optimization-level {} must be in 0..5", opt.optimization_level));
  for (const auto& [name, d] : opt.layer_device)
    if (net.find_layer(name) < 0)
      throw Error(fmt::format("--layer-device: no layer named '{}' in the network", name));
  for (const auto& [name, p] : opt.layer_precision)
    if (net.find_layer(name) < 0)
      throw Error(fmt::format("--layer-precision: no layer named '{}' in the network", name));
}

// ---- Seed strategy ------------------------------------------------------------------------------
void plan_seed(const Network& net, const PlanOptions& opt, Plan& plan) {
  const DlaReport& rep = plan.report;
  const int n = static_cast<int>(net.layers.size());
  plan.layers.assign(n, {});
  // Case 1: every layer DLA-capable: whole network on DLA, INT8 (+FP16), no GPU fallback.
  if (rep.full_dla) {
    plan.plan_case = Plan::Case::kFullDla;
    plan.default_device = Device::kDLA;
    plan.gpu_fallback = false;
    if (n > 0) {
      Region r;
      r.start = 0;
      r.end = n - 1;
      r.layers.resize(n);
      std::iota(r.layers.begin(), r.layers.end(), 0);
      r.reason = "full DLA: every layer can run on DLA";
      plan.regions.push_back(std::move(r));
    }
    for (int i = 0; i < n; ++i)
      plan.layers[i] = {Device::kDLA, dla_precision(opt), 0, "full DLA network (INT8 + FP16 allowed)"};
    return;
  }
  std::vector<int> dla_chunks;
  for (int i = 0; i < static_cast<int>(rep.chunks.size()); ++i)
    if (rep.chunks[i].on_dla) dla_chunks.push_back(i);
  // Case 2: no DLA-capable chunk: GPU engine, INT8 and FP16 allowed, and a warning.
  if (dla_chunks.empty()) {
    plan.plan_case = Plan::Case::kNoDla;
    plan.default_device = Device::kGPU;
    plan.gpu_fallback = false;
    plan.warnings.push_back("No DLA-compatible layers found. Building GPU-only engine.");
    for (int i = 0; i < n; ++i)
      plan.layers[i] = {Device::kGPU, Precision::kUnset, -1, rep.layers[i].reason};
    return;
  }
  // Case 3: mixed. Largest chunks first, ties in network order (stable sort).
  plan.plan_case = Plan::Case::kMixed;
  plan.default_device = Device::kDLA;
  plan.gpu_fallback = true;
  std::stable_sort(dla_chunks.begin(), dla_chunks.end(), [&](int a, int b) {
    return rep.chunks[a].layers.size() > rep.chunks[b].layers.size();
  });
  for (int i = 0; i < n; ++i)
    plan.layers[i] = {Device::kGPU, gpu_precision(net.layers[i]), -1, rep.layers[i].reason};
  int matched = 0;
  bool stopped = false;
  for (int ci : dla_chunks) {
    const Chunk& c = rep.chunks[ci];
    Region r;
    r.layers = c.layers;
    r.start = c.start;
    r.end = c.end;
    r.on_dla = false;
    // As the seed: the max_chunks check comes before the min_layers skip.
    if (stopped || (matched >= opt.max_chunks && opt.max_chunks > 0)) {
      stopped = true;
      r.reason = fmt::format("not taken: max_chunks {} reached", opt.max_chunks);
    } else if (static_cast<int>(c.layers.size()) < opt.min_layers) {
      r.reason = fmt::format("skipped: {} layers < min_layers {}", c.layers.size(), opt.min_layers);
    } else {
      r.on_dla = true;
      r.reason = fmt::format("taken: chunk {} [{} - {}], {} layers", ci, c.start, c.end, c.layers.size());
      ++matched;
    }
    const int idx = static_cast<int>(plan.regions.size());
    for (int l = c.start; l <= c.end; ++l) {
      if (r.on_dla)
        plan.layers[l] = {Device::kDLA, dla_precision(opt), idx,
                          fmt::format("DLA chunk [{} - {}]", c.start, c.end)};
      else
        plan.layers[l].reason = fmt::format("DLA-capable, chunk [{} - {}] {}", c.start, c.end, r.reason);
    }
    plan.regions.push_back(std::move(r));
  }
  if (matched == 0) {
    size_t largest = 0;
    for (int ci : dla_chunks) largest = std::max(largest, rep.chunks[ci].layers.size());
    // trtutils builds this as a mixed engine whose every layer is pinned to the GPU; say so.
    plan.warnings.push_back(fmt::format(
        "no DLA chunk kept: min_layers={} excluded all {} DLA-capable chunks (largest has {} layers); "
        "every layer runs on the GPU (try --strategy graph or a smaller --min-layers)",
        opt.min_layers, dla_chunks.size(), largest));
  }
}

// ---- Graph strategy -------------------------------------------------------------------------------
struct Bitset {
  std::vector<uint64_t> w;
  explicit Bitset(size_t n = 0) : w((n + 63) / 64, 0) {}
  void set(size_t i) { w[i >> 6] |= 1ull << (i & 63); }
  bool test(size_t i) const { return (w[i >> 6] >> (i & 63)) & 1ull; }
  void operator|=(const Bitset& o) {
    for (size_t i = 0; i < w.size(); ++i) w[i] |= o.w[i];
  }
  template <class F>
  void each(F f) const {
    for (size_t i = 0; i < w.size(); ++i)
      for (uint64_t b = w[i]; b; b &= b - 1) f(i * 64 + static_cast<size_t>(__builtin_ctzll(b)));
  }
};

bool absorbs_constants(LayerKind k) {
  return k == LayerKind::kElementWise || k == LayerKind::kScale || k == LayerKind::kParametricReLU ||
         k == LayerKind::kMatrixMultiply;
}
bool is_mac(LayerKind k) {
  return k == LayerKind::kConvolution || k == LayerKind::kDeconvolution ||
         k == LayerKind::kMatrixMultiply;
}

// Constants folded into DLA consumers: a Constant (+ Shuffle/Identity chain) whose every consumer
// is the chain or a DLA-candidate ElementWise/Scale/PReLU/MatrixMultiply joins that consumer's
// region. Returns, per layer, the consumer whose region it joins (-1: none).
std::vector<int> constant_hosts(const Network& net, const std::vector<char>& cand) {
  const int n = static_cast<int>(net.layers.size());
  const auto consumers = net.consumers();
  std::vector<char> const_like(n, 0);
  for (int i = 0; i < n; ++i) {
    const_like[i] = is_constant_view_layer(net, i);
  }
  std::vector<int> host(n, -1);
  for (int i = n - 1; i >= 0; --i) {
    if (!const_like[i]) continue;
    const Layer& l = net.layers[i];
    bool ok = !l.outputs.empty();
    int h = -1;
    for (TensorId t : l.outputs) {
      if (net.tensors[t].is_output) ok = false;
      for (LayerId c : consumers[t]) {
        if (const_like[c] && host[c] >= 0) {
          if (h < 0) h = host[c];
        } else if (!const_like[c] && cand[c] && absorbs_constants(net.layers[c].kind)) {
          if (h < 0) h = c;
        } else {
          ok = false;
        }
      }
    }
    if (ok && h >= 0) host[i] = h;
  }
  return host;
}

// Region formation in topological order: a DLA candidate joins the regions of its DLA producers
// when that creates no cycle through a non-member (checked at region level, union-find over
// raw region ids, each root with the regions it depends on through non-members).
class RegionFormer {
 public:
  RegionFormer(const Network& net, const std::vector<char>& cand, const std::vector<int>& host)
      : net_(net), cand_(cand), host_(host), n_(static_cast<int>(net.layers.size())) {
    int max_regions = 0;
    for (int i = 0; i < n_; ++i) max_regions += (cand[i] && host[i] < 0) ? 1 : 0;
    R_ = static_cast<size_t>(std::max(max_regions, 1));
    region_of_.assign(n_, -1);
    reach_.assign(n_, Bitset(R_));
    for (int v = 0; v < n_; ++v) add(v);
  }
  int find(int x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  // The region (root id) of layer v, -1 when it is in none.
  int region(int v) { return region_of_[v] < 0 ? -1 : find(region_of_[v]); }
  size_t ids() const { return parent_.size(); }

 private:
  // Expands through each root's deps until nothing changes; returns the set of roots.
  Bitset closure(const Bitset& d) {
    std::vector<char> seen(R_, 0);
    std::vector<int> stack;
    d.each([&](size_t x) { stack.push_back(find(static_cast<int>(x))); });
    Bitset roots(R_);
    while (!stack.empty()) {
      int r = stack.back();
      stack.pop_back();
      if (seen[r]) continue;
      seen[r] = 1;
      roots.set(r);
      deps_[r].each([&](size_t x) {
        int y = find(static_cast<int>(x));
        if (!seen[y]) stack.push_back(y);
      });
    }
    return roots;
  }
  // Outside dependencies of {v} + M, as roots (transitively closed).
  Bitset outside(const std::vector<int>& producers, const std::vector<int>& M) {
    Bitset d(R_);
    for (int u : producers) {
      if (region_of_[u] >= 0 && std::find(M.begin(), M.end(), find(region_of_[u])) != M.end()) continue;
      d |= reach_[u];
    }
    for (int r : M) d |= deps_[r];
    return closure(d);
  }
  static bool valid(const std::vector<int>& M, const Bitset& roots) {
    for (int r : M)
      if (roots.test(r)) return false;
    return true;
  }
  void add(int v) {
    const Layer& l = net_.layers[v];
    std::vector<int> producers;
    for (TensorId t : l.inputs)
      if (net_.tensors[t].producer >= 0) producers.push_back(net_.tensors[t].producer);
    if (!cand_[v] || host_[v] >= 0) {
      for (int u : producers) reach_[v] |= reach_[u];
      return;
    }
    std::vector<int> preds;
    for (int u : producers)
      if (region_of_[u] >= 0) {
        int r = find(region_of_[u]);
        if (std::find(preds.begin(), preds.end(), r) == preds.end()) preds.push_back(r);
      }
    std::vector<int> M = preds;
    Bitset roots = outside(producers, M);
    if (!valid(M, roots)) {  // join the largest producer regions that keep it acyclic
      std::stable_sort(preds.begin(), preds.end(), [&](int a, int b) { return size_[a] > size_[b]; });
      M.clear();
      for (int p : preds) {
        std::vector<int> trial = M;
        trial.push_back(p);
        if (valid(trial, outside(producers, trial))) M = std::move(trial);
      }
      roots = outside(producers, M);
    }
    int root;
    if (M.empty()) {
      root = static_cast<int>(parent_.size());
      parent_.push_back(root);
      deps_.emplace_back(R_);
      size_.push_back(0);
    } else {
      root = M[0];
      for (size_t k = 1; k < M.size(); ++k) {
        parent_[M[k]] = root;
        size_[root] += size_[M[k]];
      }
    }
    Bitset d(R_);
    roots.each([&](size_t x) { d.set(x); });
    deps_[root] = d;
    size_[root] += 1;
    region_of_[v] = root;
    reach_[v] = d;
    reach_[v].set(root);
  }

  const Network& net_;
  const std::vector<char>& cand_;
  const std::vector<int>& host_;
  const int n_;
  size_t R_ = 1;
  std::vector<int> parent_, size_, region_of_;
  std::vector<Bitset> deps_, reach_;
};

// Regions with their members in network order (folded constants attached to their host);
// *owner: each layer's region index, -1 when none.
std::vector<Region> collect_regions(const Network& net, const std::vector<int>& host, RegionFormer& former,
                                    std::vector<int>* owner) {
  const int n = static_cast<int>(net.layers.size());
  std::vector<int> root_index(former.ids(), -1);
  std::vector<Region> regions;
  owner->assign(n, -1);
  for (int v = 0; v < n; ++v) {
    const int r = former.region(host[v] >= 0 ? host[v] : v);
    if (r < 0) continue;
    if (root_index[r] < 0) {
      root_index[r] = static_cast<int>(regions.size());
      regions.emplace_back();
    }
    regions[root_index[r]].layers.push_back(v);
    (*owner)[v] = root_index[r];
  }
  for (auto& g : regions) {
    g.start = *std::min_element(g.layers.begin(), g.layers.end());
    g.end = *std::max_element(g.layers.begin(), g.layers.end());
  }
  return regions;
}

// Demotions: no MAC layer, under min_layers, past the loadable cap (the largest kept). Returns the
// regions in report order (kept first, largest first) and, in *new_index, where each went.
std::vector<Region> keep_regions(const Network& net, const PlanOptions& opt, std::vector<Region> regions,
                                 std::vector<int>* new_index) {
  const DlaTargetInfo& T = dla_target_info(opt.dla.target);
  std::vector<int> order(regions.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return regions[a].layers.size() > regions[b].layers.size();
  });
  const int cap = opt.max_regions > 0 ? std::min(opt.max_regions, T.max_loadables_per_core)
                                      : T.max_loadables_per_core;
  int kept = 0;
  for (int gi : order) {
    Region& g = regions[gi];
    const bool mac = std::any_of(g.layers.begin(), g.layers.end(),
                                 [&](LayerId l) { return is_mac(net.layers[l].kind); });
    g.on_dla = false;
    if (!mac)
      g.reason = "demoted: no multiply-accumulate layer (Convolution, Deconvolution, MatrixMultiply)";
    else if (static_cast<int>(g.layers.size()) < opt.min_layers)
      g.reason = fmt::format("demoted: {} layers < min_layers {}", g.layers.size(), opt.min_layers);
    else if (kept >= cap)
      g.reason = fmt::format("demoted: past the cap of {} DLA loadables per core", cap);
    else {
      g.on_dla = true;
      g.reason = fmt::format("kept: {} layers", g.layers.size());
      ++kept;
    }
  }
  std::vector<Region> sorted;
  new_index->assign(regions.size(), -1);
  for (int pass = 0; pass < 2; ++pass)
    for (int gi : order)
      if (regions[gi].on_dla == (pass == 0)) {
        (*new_index)[gi] = static_cast<int>(sorted.size());
        sorted.push_back(regions[gi]);
      }
  return sorted;
}

// The plan's case from its placements (full DLA, no DLA, mixed) and what each case implies.
void set_graph_plan_case(Plan& plan) {
  const int n = static_cast<int>(plan.layers.size());
  int dla = 0;
  for (const auto& p : plan.layers) dla += p.device == Device::kDLA ? 1 : 0;
  if (dla == n) {
    plan.plan_case = Plan::Case::kFullDla;
    plan.default_device = Device::kDLA;
    plan.gpu_fallback = false;
  } else if (dla == 0) {
    plan.plan_case = Plan::Case::kNoDla;
    plan.default_device = Device::kGPU;
    plan.gpu_fallback = false;
    plan.warnings.push_back("No DLA region kept. Building GPU-only engine.");
    // As the seed's no-DLA case (trtutils' build_engine with fp16 and int8 and no per-layer
    // precision): the builder chooses every layer's precision.
    for (auto& p : plan.layers) p.precision = Precision::kUnset;
  } else {
    plan.plan_case = Plan::Case::kMixed;
    plan.default_device = Device::kDLA;
    plan.gpu_fallback = true;
  }
}

void plan_graph(const Network& net, const PlanOptions& opt, Plan& plan) {
  const DlaReport& rep = plan.report;
  const int n = static_cast<int>(net.layers.size());
  std::vector<char> cand(n);
  for (int i = 0; i < n; ++i) cand[i] = rep.layers[i].ok;
  for (const auto& [name, d] : opt.layer_device)
    if (d == Device::kGPU) cand[net.find_layer(name)] = 0;

  const std::vector<int> host = constant_hosts(net, cand);
  RegionFormer former(net, cand, host);
  std::vector<int> owner, new_index;
  std::vector<Region> sorted = keep_regions(net, opt, collect_regions(net, host, former, &owner), &new_index);

  plan.layers.assign(n, {});
  for (int v = 0; v < n; ++v) {
    const Layer& l = net.layers[v];
    LayerPlacement& p = plan.layers[v];
    const int gi = owner[v] >= 0 ? new_index[owner[v]] : -1;
    if (gi >= 0 && sorted[gi].on_dla) {
      p.device = Device::kDLA;
      p.region = gi;
      // Folded constants (and their broadcast Shuffles) become weights: no precision constraint.
      p.precision = (l.kind == LayerKind::kConstant || host[v] >= 0) ? Precision::kUnset : dla_precision(opt);
      p.reason = host[v] >= 0 ? fmt::format("folded into {} (DLA region {})", net.layers[host[v]].name, gi)
                              : fmt::format("DLA region {}", gi);
    } else {
      p.device = Device::kGPU;
      p.precision = gpu_precision(l);
      if (gi >= 0)
        p.reason = fmt::format("DLA-capable, region {} {}", gi, sorted[gi].reason);
      else if (!rep.layers[v].ok)
        p.reason = rep.layers[v].reason;
      else
        p.reason = "forced to GPU by --layer-device";
    }
  }
  plan.regions = std::move(sorted);
  set_graph_plan_case(plan);
}

int64_t bytes_per(Precision p, DataType t) {
  switch (p) {
    case Precision::kINT8:
    case Precision::kFP8: return 1;
    case Precision::kFP16: return 2;
    case Precision::kFP32: return 4;
    case Precision::kUnset: return static_cast<int64_t>(element_size(t));
  }
  return 4;
}

void compute_crossings(const Network& net, Plan& plan) {
  const auto consumers = net.consumers();
  for (TensorId t = 0; t < static_cast<TensorId>(net.tensors.size()); ++t) {
    const Tensor& ten = net.tensors[t];
    const Device from = ten.producer >= 0 ? plan.layers[ten.producer].device : Device::kGPU;
    const Precision prec = ten.producer >= 0 ? plan.layers[ten.producer].precision : Precision::kUnset;
    bool to_other = false;
    for (LayerId c : consumers[t])
      if (plan.layers[c].device != from) to_other = true;
    if (!to_other) continue;
    const Device to = from == Device::kGPU ? Device::kDLA : Device::kGPU;
    plan.crossings.push_back({t, from, to, volume(ten.dims) * bytes_per(prec, ten.type)});
  }
}

void apply_overrides(const Network& net, const PlanOptions& opt, Plan& plan) {
  bool changed = false;
  for (const auto& [name, d] : opt.layer_device) {
    const LayerId l = net.find_layer(name);
    LayerPlacement& p = plan.layers[l];
    if (p.device == d) continue;
    if (d == Device::kDLA && !plan.report.layers[l].ok) {
      plan.warnings.push_back(fmt::format("--layer-device {}:dla ignored: {}", name,
                                          plan.report.layers[l].reason));
      continue;
    }
    changed = true;
    if (p.region >= 0) {
      auto& v = plan.regions[p.region].layers;
      v.erase(std::remove(v.begin(), v.end(), l), v.end());
    }
    p.device = d;
    p.region = -1;
    p.precision = d == Device::kDLA ? dla_precision(opt) : gpu_precision(net.layers[l]);
    p.reason = fmt::format("forced to {} by --layer-device", to_string(d));
  }
  for (const auto& [name, pr] : opt.layer_precision) {
    const LayerId l = net.find_layer(name);
    plan.layers[l].precision = pr;
    plan.layers[l].reason += fmt::format(" (precision {} by --layer-precision)", to_string(pr));
  }
  if (!changed) return;
  int dla = 0;
  for (const auto& p : plan.layers) dla += p.device == Device::kDLA ? 1 : 0;
  if (dla > 0 && dla < static_cast<int>(plan.layers.size())) {
    plan.plan_case = Plan::Case::kMixed;
    plan.default_device = Device::kDLA;
    plan.gpu_fallback = true;
  } else if (dla == 0) {
    plan.plan_case = Plan::Case::kNoDla;
    plan.default_device = Device::kGPU;
    plan.gpu_fallback = false;
  }
}

// Explicit quantization (a Q/DQ model: net.model.qdq_scales): the model, not a calibrator,
// says what is INT8. A tensor is quantized when it has a Q/DQ scale, is a constant (weights get
// max |w| / 127) or a reshape of either. INT8 layers are grouped through the inside of a block
// TensorRT fuses (Conv/Deconv/Scale -> Scale/Activation, the only reader); a group runs INT8 when
// every other float tensor it reads or writes is quantized, else FP16 (on the DLA), as TensorRT
// builds a layer the model does not quantize.
std::vector<char> quantized_tensors(const Network& net) {
  std::vector<char> q(net.tensors.size(), 0);
  for (size_t t = 0; t < net.tensors.size(); ++t) {
    const LayerId p = net.tensors[t].producer;
    q[t] = net.model.qdq_scales.count(net.tensors[t].name) || (p >= 0 && net.layers[p].kind == LayerKind::kConstant);
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (const Layer& L : net.layers)
      if ((L.kind == LayerKind::kShuffle || L.kind == LayerKind::kIdentity) && !L.inputs.empty() && !L.outputs.empty() &&
          q[L.inputs[0]] != q[L.outputs[0]]) {
        q[L.inputs[0]] = q[L.outputs[0]] = 1;
        changed = true;
      }
  }
  return q;
}

void apply_model_quantization(const Network& net, Plan& plan) {
  if (net.model.qdq_scales.empty()) return;
  const int n = static_cast<int>(net.layers.size());
  const std::vector<char> q = quantized_tensors(net);
  const auto consumers = net.consumers();
  auto int8 = [&](LayerId l) { return l >= 0 && plan.layers[l].precision == Precision::kINT8; };
  auto interior = [&](TensorId t) {
    const Tensor& T = net.tensors[t];
    if (q[t] || T.is_output || consumers[t].size() != 1 || !int8(T.producer) || !int8(consumers[t][0])) return false;
    const LayerKind a = net.layers[T.producer].kind, b = net.layers[consumers[t][0]].kind;
    return (a == LayerKind::kConvolution || a == LayerKind::kDeconvolution || a == LayerKind::kScale ||
            a == LayerKind::kActivation) && (b == LayerKind::kScale || b == LayerKind::kActivation);
  };
  std::vector<int> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  };
  std::vector<char> bad(n, 0);  // a layer touching an unquantized float tensor outside a fused block
  for (TensorId t = 0; t < static_cast<TensorId>(net.tensors.size()); ++t) {
    if (net.tensors[t].type != DataType::kFloat) continue;
    if (interior(t)) {
      parent[find(consumers[t][0])] = find(net.tensors[t].producer);
      continue;
    }
    if (q[t]) continue;
    if (int8(net.tensors[t].producer)) bad[net.tensors[t].producer] = 1;
    for (LayerId c : consumers[t])
      if (int8(c)) bad[c] = 1;
  }
  std::vector<char> group_bad(n, 0);
  for (int l = 0; l < n; ++l)
    if (bad[l]) group_bad[find(l)] = 1;
  for (int l = 0; l < n; ++l)
    if (int8(l) && group_bad[find(l)]) {
      plan.layers[l].precision = Precision::kFP16;
      plan.layers[l].reason += " (FP16: not quantized in the Q/DQ model)";
    }
}

}  // namespace

Plan make_plan(const Network& net, const PlanOptions& opt) {
  validate(net, opt);
  Plan plan;
  plan.strategy = opt.strategy;
  plan.target = opt.dla.target;
  plan.check_precision = opt.dla.precision;
  plan.dla_core = opt.dla_core;
  plan.optimization_level = opt.optimization_level;  // honoured in all three cases
  plan.fp16 = true;
  plan.int8 = true;
  plan.fp8 = opt.fp8;
  plan.report = can_run_on_dla(net, opt.dla);
  switch (opt.strategy) {
    case Strategy::kSeed: plan_seed(net, opt, plan); break;
    case Strategy::kGraph: plan_graph(net, opt, plan); break;
  }
  apply_model_quantization(net, plan);
  apply_overrides(net, opt, plan);
  compute_crossings(net, plan);
  return plan;
}

}  // namespace tandem
