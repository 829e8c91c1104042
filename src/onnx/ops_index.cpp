// ONNX index, sorting and sampling ops imported as the TensorRT layers onnx-tensorrt's parser
// uses (onnxOpImporters.cpp): GatherElements / GatherND -> IGatherLayer kELEMENT / kND,
// ScatterElements / Scatter / ScatterND -> IScatterLayer kELEMENT / kND, TopK -> ITopKLayer,
// Einsum -> IEinsumLayer, GridSample -> IGridSampleLayer (docs/onnx-import.md).
#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <set>

#include "importer.h"
#include "tandem/einsum.h"

namespace tandem::onnx_detail {

namespace {

using Outs = std::vector<TensorId>;

TensorId index_tensor(Importer& I, size_t i) {
  const TensorId t = I.tin(i);
  if (I.dtype(t) != DataType::kInt32 && I.dtype(t) != DataType::kInt64)
    I.fail(fmt::format("indices are {}, int32 or int64 expected", to_string(I.dtype(t))));
  return t;
}

// GatherElements: out[i] = data[i with coordinate `axis` replaced by indices[i]].
Outs op_gather_elements(Importer& I) {
  const TensorId data = I.tin(0);
  const TensorId idx = index_tensor(I, 1);
  const int axis = I.axis(I.attr_i("axis", 0), I.rank(data));
  return {I.add(LayerKind::kGather, GatherParams{axis, GatherMode::kElement, 0}, {data, idx})};
}

// GatherND: batch_dims becomes the layer's number of element-wise dims (as the parser).
Outs op_gather_nd(Importer& I) {
  const TensorId data = I.tin(0);
  const TensorId idx = index_tensor(I, 1);
  const int64_t b = I.attr_i("batch_dims", 0);
  if (b < 0 || b >= static_cast<int64_t>(std::min(I.rank(data), I.rank(idx))))
    I.fail(fmt::format("batch_dims {} out of range for data rank {} and indices rank {}", b, I.rank(data), I.rank(idx)));
  return {I.add(LayerKind::kGather, GatherParams{0, GatherMode::kND, static_cast<int>(b)}, {data, idx})};
}

// ScatterElements (and the deprecated Scatter, imported the same way by the parser). A reduction
// other than "none" is what the parser hands to NVIDIA's ScatterElements plugin: the same layer
// kind here, with the reduction as a parameter.
Outs op_scatter_elements(Importer& I) {
  const TensorId data = I.tin(0);
  const TensorId idx = index_tensor(I, 1);
  const TensorId upd = I.tin(2);
  const int axis = I.axis(I.attr_i("axis", 0), I.rank(data));
  const std::string r = I.attr_s("reduction", "none");
  ScatterReduction red;
  if (r == "none") red = ScatterReduction::kNone;
  else if (r == "add") red = ScatterReduction::kAdd;
  else if (r == "mul") red = ScatterReduction::kMul;
  else if (r == "max") red = ScatterReduction::kMax;
  else if (r == "min") red = ScatterReduction::kMin;
  else I.fail(fmt::format("reduction '{}' is not supported", r));
  return {I.add(LayerKind::kScatter, ScatterParams{ScatterMode::kElement, axis, red}, {data, idx, upd})};
}

// ScatterND: the parser refuses the reduction attribute (kUNSUPPORTED_NODE_ATTR), so does tandem.
Outs op_scatter_nd(Importer& I) {
  const std::string r = I.attr_s("reduction", "none");
  if (r != "none") I.fail(fmt::format("reduction '{}' is not supported (TensorRT's parser refuses the attribute)", r));
  const TensorId data = I.tin(0);
  const TensorId idx = index_tensor(I, 1);
  const TensorId upd = I.tin(2);
  return {I.add(LayerKind::kScatter, ScatterParams{ScatterMode::kND, 0, ScatterReduction::kNone}, {data, idx, upd})};
}

// TopK: K must be a constant (tandem's shapes are static); a 1-D input runs as 2-D [n, 1] as
// the parser does; the layer's int32 indices are cast to ONNX's int64.
Outs op_topk(Importer& I) {
  TensorId x = I.tin(0);
  int64_t k = 0;
  if (I.opset_ < 10) {
    k = I.attr_i("k", -1);
  } else {
    const ConstPtr kc = I.cin(1, "K");
    if (kc->count() != 1) I.fail(fmt::format("K has {} values, one expected", kc->count()));
    k = kc->i(0);
  }
  const size_t r = I.rank(x);
  if (r == 0) I.fail("input is a scalar");
  int axis = I.axis(I.attr_i("axis", -1), r);
  if (k < 1 || k > I.dims(x)[axis]) I.fail(fmt::format("K {} outside [1, {}]", k, I.dims(x)[axis]));
  const bool largest = I.opset_ < 11 || I.attr_i("largest", 1) != 0;
  const Dims in_dims = I.dims(x);
  if (r == 1) x = I.reshape(x, {in_dims[0], 1});
  TopKParams p{largest ? TopKOp::kMax : TopKOp::kMin, k, 1u << axis};
  Outs outs = I.add_n(LayerKind::kTopK, p, {x});
  if (r == 1) {
    outs[0] = I.reshape(outs[0], {k});
    outs[1] = I.reshape(outs[1], {k});
  }
  outs[1] = I.add(LayerKind::kCast, CastParams{DataType::kInt64}, {outs[1]});
  return outs;
}

// ---- Einsum ---------------------------------------------------------------------------------------
// The equation in the form IEinsumLayer takes: ellipses replaced by unused letters (right-aligned
// across inputs, as broadcasting aligns them) and an implicit output made explicit (the
// ellipsis letters, then the labels seen once, alphabetically), as the parser's
// processEllipsisAndImplicitOutput does.
std::string explicit_einsum(Importer& I, std::string eq, const std::vector<size_t>& ranks) {
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  const size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != ranks.size()) I.fail(fmt::format("equation '{}' has {} terms for {} inputs", eq, terms.size(), ranks.size()));
  std::set<char> used(eq.begin(), eq.end());
  size_t ell = 0;  // dims the ellipsis stands for (the most of any input)
  for (size_t i = 0; i < terms.size(); ++i)
    if (terms[i].find("...") != std::string::npos) {
      const size_t named = terms[i].size() - 3;
      if (ranks[i] < named) I.fail(fmt::format("term '{}' names more dims than input {} has", terms[i], i));
      ell = std::max(ell, ranks[i] - named);
    }
  std::string ell_letters;
  for (char c = 'a'; c <= 'z' && ell_letters.size() < ell; ++c)
    if (!used.count(c)) ell_letters += c;
  if (ell_letters.size() < ell) I.fail("equation needs more than 26 labels");
  for (size_t i = 0; i < terms.size(); ++i) {
    const size_t at = terms[i].find("...");
    if (at == std::string::npos) continue;
    const size_t n = ranks[i] - (terms[i].size() - 3);
    if (n != ell) I.fail(fmt::format("input {}: ellipsis over {} dims, {} elsewhere (broadcasting is not supported)", i, n, ell));
    terms[i].replace(at, 3, ell_letters.substr(ell - n));
  }
  std::string out;
  if (arrow != std::string::npos) {
    out = eq.substr(arrow + 2);
    const size_t at = out.find("...");
    if (at != std::string::npos) out.replace(at, 3, ell_letters);
  } else {
    std::map<char, int> seen;
    for (const auto& t : terms)
      for (char c : t) ++seen[c];
    out = ell_letters;
    for (const auto& [c, n] : seen)
      if (n == 1 && ell_letters.find(c) == std::string::npos) out += c;
  }
  std::string r;
  for (size_t i = 0; i < terms.size(); ++i) r += (i ? "," : "") + terms[i];
  return r + "->" + out;
}

Outs op_einsum(Importer& I) {
  const size_t n = I.n_in();
  if (n < 1 || n > 2)
    I.fail(fmt::format("{} inputs are not supported (1 or 2: IEinsumLayer's limit; the parser's chaining of more is not)", n));
  std::vector<TensorId> ins;
  std::vector<size_t> ranks;
  for (size_t i = 0; i < n; ++i) {
    ins.push_back(I.tin(i));
    if (I.dtype(ins.back()) != DataType::kFloat && I.dtype(ins.back()) != DataType::kHalf)
      I.fail(fmt::format("input {} is {}, fp32/fp16 expected", i, to_string(I.dtype(ins.back()))));
    ranks.push_back(I.rank(ins.back()));
  }
  const std::string eq = explicit_einsum(I, I.attr_s("equation", ""), ranks);
  EinsumTerms t;
  std::string why;
  if (!parse_einsum(eq, &t, &why)) I.fail(fmt::format("equation '{}': {}", eq, why));
  return {I.add(LayerKind::kEinsum, EinsumParams{eq}, ins)};
}

// GridSample: padding_mode zeros / border / reflection -> sample mode FILL / CLAMP / REFLECT;
// mode bilinear / nearest / bicubic (opset 16 names; opset 20 linear / cubic) -> interpolation.
Outs op_grid_sample(Importer& I) {
  const TensorId x = I.tin(0);
  const TensorId grid = I.tin(1);
  if (I.rank(x) != 4) I.fail(fmt::format("input rank {} is not supported (4-D: [N, C, H, W])", I.rank(x)));
  GridSampleParams p;
  const std::string pm = I.attr_s("padding_mode", "zeros");
  if (pm == "zeros") p.sample_mode = SliceMode::kFill;
  else if (pm == "border") p.sample_mode = SliceMode::kClamp;
  else if (pm == "reflection") p.sample_mode = SliceMode::kReflect;
  else I.fail(fmt::format("padding_mode '{}' is not supported", pm));
  const std::string m = I.attr_s("mode", I.opset_ >= 20 ? "linear" : "bilinear");
  if (m == "bilinear" || m == "linear") p.interpolation = ResizeMode::kLinear;
  else if (m == "nearest") p.interpolation = ResizeMode::kNearest;
  else if (m == "bicubic" || m == "cubic") p.interpolation = ResizeMode::kCubic;
  else I.fail(fmt::format("mode '{}' is not supported", m));
  p.align_corners = I.attr_i("align_corners", 0) != 0;
  return {I.add(LayerKind::kGridSample, p, {x, grid})};
}

// ReverseSequence: the parser's IReverseSequenceLayer is, with a constant `sequence_lens`, a
// Gather ELEMENT along the time axis over a constant index map: position t of batch b reads
// t' = len[b] - 1 - t while t < len[b], else itself.
Outs op_reverse_sequence(Importer& I) {
  const TensorId x = I.tin(0);
  const ConstPtr lens = I.cin(1, "sequence_lens");
  const size_t r = I.rank(x);
  if (r < 2) I.fail(fmt::format("input rank {} is below 2", r));
  const int time = I.axis(I.attr_i("time_axis", 0), r), batch = I.axis(I.attr_i("batch_axis", 1), r);
  if (time == batch || time > 1 || batch > 1) I.fail("time_axis and batch_axis must be 0 and 1 in some order");
  const Dims d = I.dims(x);
  if (lens->count() != d[batch]) I.fail(fmt::format("sequence_lens has {} values for a batch of {}", lens->count(), d[batch]));
  auto idx = make_const("", DataType::kInt64, d);
  int64_t inner = 1;
  for (size_t i = 2; i < r; ++i) inner *= d[i];
  for (int64_t e = 0; e < idx->count(); ++e) {
    const int64_t a0 = e / (d[1] * inner), a1 = (e / inner) % d[1];
    const int64_t t = time == 0 ? a0 : a1, b = time == 0 ? a1 : a0;
    const int64_t len = lens->i(b);
    if (len < 0 || len > d[time]) I.fail(fmt::format("sequence length {} outside [0, {}]", len, d[time]));
    idx->set_i(e, t < len ? len - 1 - t : t);
  }
  return {I.add(LayerKind::kGather, GatherParams{time, GatherMode::kElement, 0}, {x, I.const_tensor(idx)})};
}

// RoiAlign: the parser hands it to NVIDIA's ROIAlign_TRT plugin (onnxOpImporters.cpp); tandem
// models that plugin layer as the RoiAlign kind. Opset 16's coordinate_transformation_mode
// (default half_pixel); opset 10 has none and behaves as output_half_pixel.
Outs op_roi_align(Importer& I) {
  const TensorId x = I.tin(0);
  const TensorId rois = I.tin(1);
  const TensorId batch = index_tensor(I, 2);
  if (I.rank(x) != 4) I.fail(fmt::format("input rank {} is not supported (4-D: [N, C, H, W])", I.rank(x)));
  RoiAlignParams p;
  const std::string mode = I.attr_s("mode", "avg");
  if (mode != "avg" && mode != "max") I.fail(fmt::format("mode '{}' is not supported", mode));
  p.max_mode = mode == "max";
  const std::string ct = I.attr_s("coordinate_transformation_mode", I.opset_ >= 16 ? "half_pixel" : "output_half_pixel");
  if (ct != "half_pixel" && ct != "output_half_pixel") I.fail(fmt::format("coordinate_transformation_mode '{}' is not supported", ct));
  p.half_pixel = ct == "half_pixel";
  p.out_h = I.attr_i("output_height", 1);
  p.out_w = I.attr_i("output_width", 1);
  p.sampling_ratio = I.attr_i("sampling_ratio", 0);
  p.spatial_scale = I.attr_f("spatial_scale", 1.f);
  return {I.add(LayerKind::kRoiAlign, p, {x, rois, batch})};
}

}  // namespace

void register_index_ops(std::unordered_map<std::string, OpFn>& m) {
  m.emplace("GatherElements", op_gather_elements);
  m.emplace("GatherND", op_gather_nd);
  m.emplace("ScatterElements", op_scatter_elements);
  m.emplace("Scatter", op_scatter_elements);
  m.emplace("ScatterND", op_scatter_nd);
  m.emplace("TopK", op_topk);
  m.emplace("Einsum", op_einsum);
  m.emplace("GridSample", op_grid_sample);
  m.emplace("ReverseSequence", op_reverse_sequence);
  m.emplace("RoiAlign", op_roi_align);
}

}  // namespace tandem::onnx_detail
