#include "engine/passes.h"

#include <fmt/format.h>

#include <cstring>
#include <algorithm>
#include <set>

#include "tandem/runtime.h"

namespace tandem::engine_detail {

namespace {

bool same_place(const Plan& plan, LayerId a, LayerId b) {
  const auto& pa = plan.layers[a];
  const auto& pb = plan.layers[b];
  return pa.device == pb.device && pa.region == pb.region;
}

// Rebuilds net and plan keeping the layers with keep[id]; tensor ids in layers go through alias.
void compact(Network& net, Plan& plan, const std::vector<char>& keep, std::vector<TensorId> alias) {
  auto resolve = [&](TensorId t) {
    while (alias[t] != t) t = alias[t];
    return t;
  };
  // Which tensors are still used.
  std::vector<char> used(net.tensors.size(), 0);
  for (TensorId t : net.inputs) used[t] = 1;
  for (TensorId t : net.outputs) used[resolve(t)] = 1;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    if (!keep[i]) continue;
    for (TensorId& t : net.layers[i].inputs) { t = resolve(t); used[t] = 1; }
    for (TensorId t : net.layers[i].outputs) used[t] = 1;
  }
  std::vector<TensorId> tmap(net.tensors.size(), -1);
  std::vector<Tensor> tensors;
  for (size_t t = 0; t < net.tensors.size(); ++t)
    if (used[t]) { tmap[t] = TensorId(tensors.size()); tensors.push_back(net.tensors[t]); }
  std::vector<LayerId> lmap(net.layers.size(), -1);
  std::vector<Layer> layers;
  std::vector<LayerPlacement> places;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    if (!keep[i]) continue;
    lmap[i] = LayerId(layers.size());
    Layer l = std::move(net.layers[i]);
    for (TensorId& t : l.inputs) t = tmap[t];
    for (TensorId& t : l.outputs) t = tmap[t];
    layers.push_back(std::move(l));
    places.push_back(plan.layers[i]);
  }
  for (Tensor& t : tensors) t.producer = t.producer >= 0 ? lmap[t.producer] : -1;
  // Weights still referenced.
  std::vector<WeightsId> wmap(net.weights.size(), -1);
  std::vector<Weights> weights;
  auto remap_w = [&](WeightsId& w) {
    if (w < 0) return;
    if (wmap[w] < 0) { wmap[w] = WeightsId(weights.size()); weights.push_back(std::move(net.weights[w])); }
    w = wmap[w];
  };
  for (Layer& l : layers) {
    if (auto* c = std::get_if<ConvolutionParams>(&l.params)) { remap_w(c->kernel_weights); remap_w(c->bias_weights); }
    else if (auto* s = std::get_if<ScaleParams>(&l.params)) { remap_w(s->shift); remap_w(s->scale); remap_w(s->power); }
    else if (auto* k = std::get_if<ConstantParams>(&l.params)) remap_w(k->weights);
  }
  std::vector<TensorId> inputs, outputs;
  for (TensorId t : net.inputs) inputs.push_back(tmap[t]);
  for (TensorId t : net.outputs) outputs.push_back(tmap[resolve(t)]);
  net.tensors = std::move(tensors);
  net.layers = std::move(layers);
  net.weights = std::move(weights);
  net.inputs = std::move(inputs);
  net.outputs = std::move(outputs);
  plan.layers = std::move(places);
  for (Region& g : plan.regions) {
    std::vector<LayerId> ls;
    for (LayerId id : g.layers)
      if (lmap[id] >= 0) ls.push_back(lmap[id]);
    g.layers = std::move(ls);
    if (!g.layers.empty()) {
      g.start = *std::min_element(g.layers.begin(), g.layers.end());
      g.end = *std::max_element(g.layers.begin(), g.layers.end());
    } else {
      g.start = 0;
      g.end = -1;
    }
  }
}

// All channels' scale/shift of a Scale layer as floats (power must be absent or all 1).
bool scale_as_affine(const Network& net, const ScaleParams& p, int64_t k, std::vector<float>* s, std::vector<float>* t) {
  if (p.mode != ScaleMode::kChannel || p.channel_axis != 1) return false;
  auto get = [&](WeightsId id, float dflt, std::vector<float>* out) {
    out->assign(size_t(k), dflt);
    if (id < 0) return true;
    const Weights& w = net.weights[id];
    if (w.type != DataType::kFloat || w.count() != k) return false;
    for (int64_t i = 0; i < k; ++i) (*out)[i] = w.f32()[i];
    return true;
  };
  std::vector<float> pw;
  if (!get(p.scale, 1.f, s) || !get(p.shift, 0.f, t) || !get(p.power, 1.f, &pw)) return false;
  for (float v : pw) if (v != 1.f) return false;
  return true;
}

}  // namespace

void recompute_crossings(const Network& net, Plan& plan) {
  plan.crossings.clear();
  auto consumers = net.consumers();
  for (TensorId t = 0; t < TensorId(net.tensors.size()); ++t) {
    LayerId p = net.tensors[t].producer;
    if (p < 0) continue;
    std::set<int> seen;
    for (LayerId c : consumers[t]) {
      const auto& from = plan.layers[p];
      const auto& to = plan.layers[c];
      if (from.device == to.device && from.region == to.region) continue;
      int key = int(to.device) * 100000 + to.region;
      if (!seen.insert(key).second) continue;
      int64_t es = from.precision == Precision::kINT8 ? 1 : from.precision == Precision::kFP16 ? 2
                 : int64_t(element_size(net.tensors[t].type));
      plan.crossings.push_back(Crossing{t, from.device, to.device, volume(net.tensors[t].dims) * es});
    }
  }
}

namespace {

// What the passes share: which layers stay, tensors that became aliases of others (dropped
// Identity), graph outputs, and consumers (kept layers only, once Identity is dropped).
struct PassState {
  std::vector<char> keep;
  std::vector<TensorId> alias;
  std::vector<char> is_output;
  std::vector<std::vector<LayerId>> consumers;
  TensorId resolve(TensorId t) const {
    while (alias[t] != t) t = alias[t];
    return t;
  }
};

// The constants a layer reads, then the layer, as a network of their own (for folding). Returns
// false when the layer cannot be folded that way.
bool constant_subnetwork(const Network& net, const Layer& l, Network* sub) {
  std::map<TensorId, TensorId> tm;
  auto sub_tensor = [&](TensorId t) {
    auto it = tm.find(t);
    if (it != tm.end()) return it->second;
    Tensor c = net.tensors[t];
    c.producer = -1; c.is_input = false; c.is_output = false;
    TensorId id = sub->add_tensor(c);
    tm[t] = id;
    return id;
  };
  for (TensorId t : l.inputs) {
    const Layer& p = net.layers[net.tensors[t].producer];
    if (tm.count(t)) continue;
    if (p.outputs.size() != 1) return false;
    TensorId st = sub_tensor(t);
    Layer c = p;
    c.inputs.clear();
    c.outputs = {st};
    WeightsId w = sub->add_weights(net.weights[p.as<ConstantParams>().weights]);
    c.params = ConstantParams{w};
    sub->add_layer(std::move(c));
  }
  Layer copy = l;
  for (TensorId& t : copy.inputs) t = tm[t];
  TensorId out = sub_tensor(l.outputs[0]);
  copy.outputs = {out};
  if (std::holds_alternative<ConvolutionParams>(copy.params) || std::holds_alternative<ScaleParams>(copy.params))
    return false;  // weights-carrying layers are not folded (rare; keeps the pass simple)
  sub->add_layer(std::move(copy));
  sub->tensors[out].is_output = true;
  sub->outputs.push_back(out);
  return true;
}

// 1. Constant folding (FP32, with the CPU backend), in order so chains fold.
void fold_constants(Network& net, PassReport& rep) {
  std::vector<char> constant(net.tensors.size(), 0);
  for (size_t i = 0; i < net.layers.size(); ++i) {
    Layer& l = net.layers[i];
    if (l.kind == LayerKind::kConstant) { for (TensorId t : l.outputs) constant[t] = 1; continue; }
    if (l.inputs.empty() || l.outputs.size() != 1) continue;
    bool all = true;
    for (TensorId t : l.inputs) all = all && constant[t];
    Network sub;
    if (!all || !constant_subnetwork(net, l, &sub)) continue;
    try {
      TensorMap res = make_cpu_executor(sub)->run({});
      const HostTensor& h = res.at(net.tensors[l.outputs[0]].name);
      if (h.dims != net.tensors[l.outputs[0]].dims || h.type != net.tensors[l.outputs[0]].type) continue;
      Weights w;
      w.name = net.tensors[l.outputs[0]].name;
      w.type = h.type;
      w.dims = h.dims;
      w.bytes = h.data;
      WeightsId wid = net.add_weights(std::move(w));
      rep.fusions.push_back(fmt::format("fold {} ({}) to a constant", l.name, to_string(l.kind)));
      l.kind = LayerKind::kConstant;
      l.inputs.clear();
      l.params = ConstantParams{wid};
      constant[l.outputs[0]] = 1;
      ++rep.folded_constants;
    } catch (const std::exception&) {
      // The backend cannot evaluate it: leave the layer as it is.
    }
  }
}

// 2. Drop Identity layers whose output is not a graph output; their readers read the input.
void drop_identities(Network& net, PassState& st, PassReport& rep) {
  const size_t nl = net.layers.size();
  for (size_t i = 0; i < nl; ++i) {
    const Layer& l = net.layers[i];
    if (l.kind != LayerKind::kIdentity || l.inputs.size() != 1 || l.outputs.size() != 1) continue;
    TensorId in = l.inputs[0], out = l.outputs[0];
    if (st.is_output[out] || net.tensors[in].type != net.tensors[out].type || net.tensors[in].dims != net.tensors[out].dims)
      continue;
    st.keep[i] = 0;
    st.alias[out] = in;
    rep.fusions.push_back(fmt::format("drop {} ({})", l.name, l.onnx_op.empty() ? "Identity" : l.onnx_op));
    ++rep.dropped;
  }
  for (size_t i = 0; i < nl; ++i)
    if (st.keep[i]) for (TensorId& t : net.layers[i].inputs) t = st.resolve(t);
  // Dropped layers still appear as consumers in a fresh map: rebuild ignoring them.
  st.consumers = net.consumers();
  for (auto& cs : st.consumers) {
    std::vector<LayerId> k;
    for (LayerId c : cs) if (st.keep[c]) k.push_back(c);
    cs = std::move(k);
  }
}

// 3. Fold a Scale into the convolution before it (same device and region only).
void fold_scales(Network& net, const Plan& plan, PassState& st, PassReport& rep) {
  for (size_t i = 0; i < net.layers.size(); ++i) {
    if (!st.keep[i]) continue;
    Layer& s = net.layers[i];
    if (s.kind != LayerKind::kScale || s.inputs.size() != 1) continue;
    TensorId x = s.inputs[0];
    LayerId ci = net.tensors[x].producer;
    if (ci < 0 || !st.keep[ci]) continue;
    Layer& c = net.layers[ci];
    if (c.kind != LayerKind::kConvolution || st.consumers[x].size() != 1 || st.is_output[x]) continue;
    if (!same_place(plan, ci, LayerId(i))) continue;  // never across a GPU/DLA boundary
    auto& cp = c.as<ConvolutionParams>();
    const Weights& kw = net.weights[cp.kernel_weights];
    int64_t k = net.tensors[x].dims.size() > 1 ? net.tensors[x].dims[1] : 0;
    if (kw.type != DataType::kFloat || kw.dims.empty() || kw.dims[0] != k) continue;
    std::vector<float> sc, sh;
    if (!scale_as_affine(net, s.as<ScaleParams>(), k, &sc, &sh)) continue;
    Weights nk = kw;
    nk.name = kw.name + "+" + s.name;
    int64_t per = nk.count() / k;
    for (int64_t o = 0; o < k; ++o)
      for (int64_t j = 0; j < per; ++j) nk.f32()[o * per + j] *= sc[o];
    Weights nb;
    nb.name = (cp.bias_weights >= 0 ? net.weights[cp.bias_weights].name : c.name + ".bias") + "+" + s.name;
    nb.type = DataType::kFloat;
    nb.dims = {k};
    nb.bytes.assign(size_t(k) * 4, 0);
    for (int64_t o = 0; o < k; ++o) {
      float b = 0.f;
      if (cp.bias_weights >= 0) b = float(net.weights[cp.bias_weights].at(o));
      nb.f32()[o] = b * sc[o] + sh[o];
    }
    cp.kernel_weights = net.add_weights(std::move(nk));
    cp.bias_weights = net.add_weights(std::move(nb));
    // The convolution now produces the Scale's output; its own output tensor goes away.
    TensorId y = s.outputs[0];
    c.outputs[0] = y;
    net.tensors[y].producer = ci;
    st.keep[i] = 0;
    rep.fusions.push_back(fmt::format("{} + {}", c.name, s.name));
    ++rep.folded_scales;
    st.consumers[x].clear();
  }
}

// Constants whose consumers were all folded or dropped.
void drop_dead_constants(const Network& net, PassState& st) {
  std::vector<int> uses(net.tensors.size(), 0);
  for (size_t i = 0; i < net.layers.size(); ++i)
    if (st.keep[i]) for (TensorId t : net.layers[i].inputs) ++uses[st.resolve(t)];
  for (TensorId t : net.outputs) ++uses[st.resolve(t)];
  for (size_t i = net.layers.size(); i-- > 0;) {
    const Layer& l = net.layers[i];
    if (!st.keep[i] || l.kind != LayerKind::kConstant) continue;
    bool dead = true;
    for (TensorId t : l.outputs) dead = dead && uses[t] == 0;
    if (dead) st.keep[i] = 0;
  }
}

// 4. Marks: an activation right after a convolution, same place and precision.
void mark_activations(const Network& net, const Plan& plan, const PassState& st, PassReport& rep) {
  for (size_t i = 0; i < net.layers.size(); ++i) {
    if (!st.keep[i] || net.layers[i].kind != LayerKind::kActivation) continue;
    TensorId x = st.resolve(net.layers[i].inputs[0]);
    LayerId p = net.tensors[x].producer;
    if (p < 0 || !st.keep[p]) continue;
    const Layer& c = net.layers[p];
    if (c.kind != LayerKind::kConvolution && c.kind != LayerKind::kDeconvolution) continue;
    if (!same_place(plan, p, LayerId(i)) || plan.layers[p].precision != plan.layers[i].precision) continue;
    rep.fusions.push_back(fmt::format("{} + {} (activation fused by the backend)", c.name, net.layers[i].name));
    ++rep.marked;
  }
}

}  // namespace

PassReport run_passes(Network& net, Plan& plan, const PassOptions& opt) {
  PassReport rep;
  if (plan.layers.size() != net.layers.size())
    throw Error(fmt::format("passes: the plan has {} placements for {} layers", plan.layers.size(), net.layers.size()));
  PassState st;
  st.keep.assign(net.layers.size(), 1);
  st.alias.resize(net.tensors.size());
  for (size_t i = 0; i < st.alias.size(); ++i) st.alias[i] = TensorId(i);
  st.is_output.assign(net.tensors.size(), 0);
  for (TensorId t : net.outputs) st.is_output[t] = 1;

  if (opt.fold_constants) fold_constants(net, rep);
  st.consumers = net.consumers();
  if (opt.drop_identity) drop_identities(net, st, rep);
  if (opt.fold_scale) fold_scales(net, plan, st, rep);
  drop_dead_constants(net, st);
  if (opt.mark_activations) mark_activations(net, plan, st, rep);
  compact(net, plan, st.keep, st.alias);
  recompute_crossings(net, plan);
  net.verify();
  return rep;
}

}  // namespace tandem::engine_detail
