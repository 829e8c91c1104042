// The engine file: header, section table, sections (docs/engine-format.md).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <variant>

#include "engine/binio.h"
#include "engine/internal.h"
#include "engine/json_fields.h"
#include "tandem/limits.h"
#include "tandem/engine.h"

namespace tandem {

using engine_io::Reader;
using engine_io::Writer;
using engine_detail::json_integer;

namespace {

constexpr char kMagic[8] = {'T', 'N', 'D', 'M', 'E', 'N', 'G', 'N'};
constexpr size_t kHeaderBytes = 64;
constexpr size_t kEntryBytes = 32;
constexpr size_t kAlign = 64;

constexpr uint32_t fourcc(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}
std::string fourcc_name(uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    char c = char((v >> (8 * i)) & 0xff);
    s += (c >= 32 && c < 127) ? c : '?';
  }
  return s;
}
constexpr uint32_t kMETA = fourcc("META"), kNETW = fourcc("NETW"), kWGHT = fourcc("WGHT"),
                   kPLAN = fourcc("PLAN"), kSCAL = fourcc("SCAL"), kIOFM = fourcc("IOFM"),
                   kTACT = fourcc("TACT");

// ---- Layer parameters: one put/get pair per LayerParams alternative ----------------------------
// Writing visits the variant, so a new alternative without a put() does not compile; reading
// dispatches on the stored index through a table built from the variant itself.
void put(Writer&, const NoParams&) {}
void get(Reader&, NoParams&) {}
void put(Writer& w, const ConvolutionParams& p) {
  w.dims(p.kernel); w.dims(p.stride); w.dims(p.pre_padding); w.dims(p.post_padding); w.dims(p.dilation);
  w.i64(p.groups); w.i64(p.out_maps); w.i32(p.kernel_weights); w.i32(p.bias_weights);
}
void get(Reader& r, ConvolutionParams& p) {
  p.kernel = r.dims(); p.stride = r.dims(); p.pre_padding = r.dims(); p.post_padding = r.dims();
  p.dilation = r.dims(); p.groups = r.i64(); p.out_maps = r.i64(); p.kernel_weights = r.i32();
  p.bias_weights = r.i32();
}
void put(Writer& w, const PoolingParams& p) {
  w.u8(uint8_t(p.type)); w.dims(p.window); w.dims(p.stride); w.dims(p.pre_padding);
  w.dims(p.post_padding); w.boolean(p.average_count_excludes_padding); w.u8(uint8_t(p.padding_mode));
}
void get(Reader& r, PoolingParams& p) {
  p.type = r.enumeration<PoolingType>(2, "pooling type");
  p.window = r.dims(); p.stride = r.dims(); p.pre_padding = r.dims(); p.post_padding = r.dims();
  p.average_count_excludes_padding = r.boolean();
  p.padding_mode = r.enumeration<PaddingMode>(2, "padding mode");
}
void put(Writer& w, const ActivationParams& p) { w.u8(uint8_t(p.type)); w.f32(p.alpha); w.f32(p.beta); }
void get(Reader& r, ActivationParams& p) {
  p.type = r.enumeration<ActivationType>(14, "activation type"); p.alpha = r.f32(); p.beta = r.f32();
}
void put(Writer& w, const ElementWiseParams& p) { w.u8(uint8_t(p.op)); }
void get(Reader& r, ElementWiseParams& p) { p.op = r.enumeration<ElementWiseOp>(14, "elementwise op"); }
void put(Writer& w, const ScaleParams& p) {
  w.u8(uint8_t(p.mode)); w.i32(p.shift); w.i32(p.scale); w.i32(p.power); w.i32(p.channel_axis);
}
void get(Reader& r, ScaleParams& p) {
  p.mode = r.enumeration<ScaleMode>(3, "scale mode"); p.shift = r.i32(); p.scale = r.i32();
  p.power = r.i32(); p.channel_axis = r.i32();
}
void put(Writer& w, const ConcatenationParams& p) { w.i32(p.axis); }
void get(Reader& r, ConcatenationParams& p) { p.axis = r.i32(); }
void put(Writer& w, const ResizeParams& p) {
  w.u8(uint8_t(p.mode)); w.u8(uint8_t(p.transform)); w.u8(uint8_t(p.selector)); w.u8(uint8_t(p.rounding));
  w.floats(p.scales); w.dims(p.output_dims); w.f32(p.cubic_coeff);
}
void get(Reader& r, ResizeParams& p) {
  p.mode = r.enumeration<ResizeMode>(3, "resize mode");
  p.transform = r.enumeration<ResizeCoordinateTransform>(3, "resize transform");
  p.selector = r.enumeration<ResizeSelector>(2, "resize selector");
  p.rounding = r.enumeration<ResizeRounding>(4, "resize rounding");
  p.scales = r.floats(); p.output_dims = r.dims(); p.cubic_coeff = r.f32();
}
void put(Writer& w, const ShuffleParams& p) {
  w.ints(p.first_transpose); w.boolean(p.reshape.has_value());
  if (p.reshape) w.dims(*p.reshape);
  w.ints(p.second_transpose);
}
void get(Reader& r, ShuffleParams& p) {
  p.first_transpose = r.ints();
  if (r.boolean()) p.reshape = r.dims();
  p.second_transpose = r.ints();
}
void put(Writer& w, const SliceParams& p) {
  w.dims(p.start); w.dims(p.size); w.dims(p.stride); w.u8(uint8_t(p.mode)); w.f32(p.fill_value);
}
void get(Reader& r, SliceParams& p) {
  p.start = r.dims(); p.size = r.dims(); p.stride = r.dims();
  p.mode = r.enumeration<SliceMode>(5, "slice mode"); p.fill_value = r.f32();
}
void put(Writer& w, const SoftMaxParams& p) { w.u32(p.axes); }
void get(Reader& r, SoftMaxParams& p) { p.axes = r.u32(); }
void put(Writer& w, const ReduceParams& p) { w.u8(uint8_t(p.op)); w.u32(p.axes); w.boolean(p.keep_dims); }
void get(Reader& r, ReduceParams& p) {
  p.op = r.enumeration<ReduceOp>(5, "reduce op"); p.axes = r.u32(); p.keep_dims = r.boolean();
}
void put(Writer& w, const MatrixMultiplyParams& p) { w.u8(uint8_t(p.op0)); w.u8(uint8_t(p.op1)); }
void get(Reader& r, MatrixMultiplyParams& p) {
  p.op0 = r.enumeration<MatrixOp>(2, "matrix op"); p.op1 = r.enumeration<MatrixOp>(2, "matrix op");
}
void put(Writer& w, const UnaryParams& p) { w.u8(uint8_t(p.op)); }
void get(Reader& r, UnaryParams& p) { p.op = r.enumeration<UnaryOp>(23, "unary op"); }
void put(Writer& w, const ConstantParams& p) { w.i32(p.weights); }
void get(Reader& r, ConstantParams& p) { p.weights = r.i32(); }
void put(Writer& w, const LRNParams& p) { w.i64(p.window); w.f32(p.alpha); w.f32(p.beta); w.f32(p.k); }
void get(Reader& r, LRNParams& p) { p.window = r.i64(); p.alpha = r.f32(); p.beta = r.f32(); p.k = r.f32(); }
void put(Writer& w, const GatherParams& p) { w.i32(p.axis); w.u8(uint8_t(p.mode)); w.i32(p.nb_elementwise_dims); }
void get(Reader& r, GatherParams& p) {
  p.axis = r.i32(); p.mode = r.enumeration<GatherMode>(kGatherModeCount, "gather mode");
  p.nb_elementwise_dims = r.i32();
}
void put(Writer& w, const CastParams& p) { w.u8(uint8_t(p.to)); }
void get(Reader& r, CastParams& p) { p.to = r.enumeration<DataType>(kDataTypeCount, "cast type"); }
void put(Writer& w, const NormalizationParams& p) { w.u32(p.axes); w.f32(p.epsilon); w.i64(p.groups); }
void get(Reader& r, NormalizationParams& p) { p.axes = r.u32(); p.epsilon = r.f32(); p.groups = r.i64(); }

void put(Writer& w, const ScatterParams& p) { w.u8(uint8_t(p.mode)); w.i32(p.axis); w.u8(uint8_t(p.reduction)); }
void get(Reader& r, ScatterParams& p) {
  p.mode = r.enumeration<ScatterMode>(kScatterModeCount, "scatter mode"); p.axis = r.i32();
  p.reduction = r.enumeration<ScatterReduction>(kScatterReductionCount, "scatter reduction");
}
void put(Writer& w, const TopKParams& p) { w.u8(uint8_t(p.op)); w.i64(p.k); w.u32(p.axes); }
void get(Reader& r, TopKParams& p) {
  p.op = r.enumeration<TopKOp>(2, "topk op"); p.k = r.i64(); p.axes = r.u32();
}
void put(Writer& w, const EinsumParams& p) { w.str(p.equation); }
void get(Reader& r, EinsumParams& p) { p.equation = r.str("einsum equation"); }
void put(Writer& w, const GridSampleParams& p) {
  w.u8(uint8_t(p.interpolation)); w.boolean(p.align_corners); w.u8(uint8_t(p.sample_mode));
}
void get(Reader& r, GridSampleParams& p) {
  p.interpolation = r.enumeration<ResizeMode>(3, "grid sample interpolation"); p.align_corners = r.boolean();
  p.sample_mode = r.enumeration<SliceMode>(5, "grid sample mode");
}

void put(Writer& w, const RoiAlignParams& p) {
  w.boolean(p.max_mode); w.boolean(p.half_pixel); w.i64(p.out_h); w.i64(p.out_w); w.i64(p.sampling_ratio);
  w.f32(p.spatial_scale);
}
void get(Reader& r, RoiAlignParams& p) {
  p.max_mode = r.boolean(); p.half_pixel = r.boolean(); p.out_h = r.i64(); p.out_w = r.i64();
  p.sampling_ratio = r.i64(); p.spatial_scale = r.f32();
}
void put(Writer& w, const NMSParams& p) { w.boolean(p.center_sizes); }
void get(Reader& r, NMSParams& p) { p.center_sizes = r.boolean(); }

template <size_t I>
LayerParams read_alt(Reader& r) {
  std::variant_alternative_t<I, LayerParams> p{};
  get(r, p);
  return LayerParams(std::in_place_index<I>, std::move(p));
}
template <size_t... I>
LayerParams read_params_impl(Reader& r, size_t index, std::index_sequence<I...>) {
  using Fn = LayerParams (*)(Reader&);
  static constexpr Fn kTable[] = {&read_alt<I>...};
  return kTable[index](r);
}
LayerParams read_params(Reader& r, size_t index) {
  constexpr size_t n = std::variant_size_v<LayerParams>;
  if (index >= n) r.fail(fmt::format("layer parameters: alternative {} out of range [0, {})", index, n));
  return read_params_impl(r, index, std::make_index_sequence<n>{});
}

// ---- Network ---------------------------------------------------------------------------------------
void put_network(Writer& w, const Network& net) {
  w.u32(uint32_t(net.tensors.size()));
  for (const Tensor& t : net.tensors) {
    w.str(t.name); w.u8(uint8_t(t.type)); w.dims(t.dims); w.i32(t.producer);
    w.boolean(t.is_input); w.boolean(t.is_output);
  }
  w.u32(uint32_t(net.layers.size()));
  for (const Layer& l : net.layers) {
    w.str(l.name); w.u8(uint8_t(l.kind)); w.ints(l.inputs); w.ints(l.outputs);
    w.u8(uint8_t(l.params.index()));
    std::visit([&](const auto& p) { put(w, p); }, l.params);
    w.str(l.onnx_node); w.str(l.onnx_op);
  }
  w.ints(net.inputs); w.ints(net.outputs);
  w.i64(net.model.ir_version);
  w.u32(uint32_t(net.model.opsets.size()));
  for (const auto& [d, v] : net.model.opsets) { w.str(d); w.i64(v); }
  w.str(net.model.producer_name); w.str(net.model.producer_version); w.str(net.model.path);
  w.u32(uint32_t(net.model.folded_nodes.size()));
  for (const auto& s : net.model.folded_nodes) w.str(s);
  // Shape-value inputs, last: an engine without them ends here (read back as none).
  w.u32(uint32_t(net.model.input_values.size()));
  for (const auto& [name, values] : net.model.input_values) {
    w.str(name);
    w.u32(uint32_t(values.size()));
    for (int64_t v : values) w.i64(v);
  }
}

void get_network(Reader& r, Network& net) {
  uint32_t nt = r.count(15, "tensor count");
  net.tensors.resize(nt);
  for (Tensor& t : net.tensors) {
    t.name = r.str("tensor name");
    t.type = r.enumeration<DataType>(kDataTypeCount, "tensor type");
    t.dims = r.dims("tensor dims");
    for (int64_t d : t.dims)
      if (d < 0 || d > (int64_t(1) << 31)) r.fail(fmt::format("tensor '{}': dim {} out of range", t.name, d));
    t.producer = r.i32("tensor producer");
    t.is_input = r.boolean(); t.is_output = r.boolean();
  }
  uint32_t nl = r.count(19, "layer count");
  net.layers.resize(nl);
  for (Layer& l : net.layers) {
    l.name = r.str("layer name");
    l.kind = r.enumeration<LayerKind>(kLayerKindCount, "layer kind");
    l.inputs = r.ints("layer inputs"); l.outputs = r.ints("layer outputs");
    size_t idx = r.u8("params index");
    l.params = read_params(r, idx);
    l.onnx_node = r.str(); l.onnx_op = r.str();
  }
  net.inputs = r.ints("network inputs"); net.outputs = r.ints("network outputs");
  net.model.ir_version = r.i64();
  uint32_t no = r.count(12, "opset count");
  for (uint32_t i = 0; i < no; ++i) {
    std::string d = r.str();
    int64_t v = r.i64();
    net.model.opsets.emplace_back(std::move(d), v);
  }
  net.model.producer_name = r.str(); net.model.producer_version = r.str(); net.model.path = r.str();
  uint32_t nf = r.count(4, "folded node count");
  for (uint32_t i = 0; i < nf; ++i) net.model.folded_nodes.push_back(r.str());
  const uint32_t nv = r.left() ? r.count(4, "shape-value input count") : 0;
  for (uint32_t i = 0; i < nv; ++i) {
    std::string name = r.str("shape-value input name");
    std::vector<int64_t>& values = net.model.input_values[name];
    const uint32_t n = r.count(8, "shape-value count");
    for (uint32_t k = 0; k < n; ++k) values.push_back(r.i64());
  }
  if (r.left()) r.fail(fmt::format("{} trailing bytes", r.left()));
  // Tensor producers must be in range before verify() looks at them.
  for (const Tensor& t : net.tensors)
    if (t.producer < -1 || t.producer >= int(nl)) r.fail(fmt::format("tensor '{}': producer {} out of range", t.name, t.producer));
}

// ---- Weights ----------------------------------------------------------------------------------------
// Index: count, then per weight: name, type, dims, encoding, offset, bytes, [scale offset, channels].
// Blob: 64-byte aligned payloads. Encoding 0: raw little-endian; 1: int8 per output channel (axis 0)
// with fp32 scales, dequantized on load.
void put_weights(Writer& w, const EngineContents& e) {
  const auto& ws = e.network.weights;
  std::vector<char> is_q(ws.size(), 0);
  for (WeightsId id : e.int8_weights)
    if (id >= 0 && id < WeightsId(ws.size())) is_q[id] = 1;
  Writer blob;
  struct Entry { uint8_t enc; uint64_t off, bytes, soff, channels; };
  std::vector<Entry> entries;
  for (size_t i = 0; i < ws.size(); ++i) {
    const Weights& wt = ws[i];
    blob.align(kAlign);
    Entry en{0, blob.size(), wt.bytes.size(), 0, 0};
    if (is_q[i] && wt.type == DataType::kFloat && !wt.dims.empty() && wt.dims[0] > 0) {
      auto q = engine_detail::quantize_per_channel(wt);
      en.enc = 1;
      en.bytes = q.q.size();
      blob.raw(q.q.data(), q.q.size());
      blob.align(kAlign);
      en.soff = blob.size();
      en.channels = q.scales.size();
      for (float s : q.scales) blob.f32(s);
    } else {
      blob.raw(wt.bytes.data(), wt.bytes.size());
    }
    entries.push_back(en);
  }
  Writer idx;
  idx.u32(uint32_t(ws.size()));
  for (size_t i = 0; i < ws.size(); ++i) {
    idx.str(ws[i].name); idx.u8(uint8_t(ws[i].type)); idx.dims(ws[i].dims);
    idx.u8(entries[i].enc); idx.u64(entries[i].off); idx.u64(entries[i].bytes);
    if (entries[i].enc == 1) { idx.u64(entries[i].soff); idx.u64(entries[i].channels); }
  }
  // Section = u64 blob start, index, padding, blob (blob start is 64-aligned in the section).
  w.u64(0);
  size_t at = w.size();
  w.raw(idx.buf.data(), idx.size());
  w.align(kAlign);
  uint64_t start = w.size();
  for (int i = 0; i < 8; ++i) w.buf[at - 8 + i] = uint8_t(start >> (8 * i));
  w.raw(blob.buf.data(), blob.size());
}

// An INT8-encoded weights' payload (encoding 1), checked against the blob, not yet dequantized.
struct Int8Payload {
  WeightsId id;
  const uint8_t* codes;
  const uint8_t* scales;  // f32, unaligned
  uint64_t channels;
};

// The INT8 payloads of an engine, dequantized (q * scale) into one block, whose pages one call
// faults in (fresh heap pages touched one by one cost more than the arithmetic), on the first
// read of any of them: loading maps and checks the file; the float weights are made when a
// context is first created from the engine. `file` keeps the codes alive until then.
class DequantizedInt8 final : public DeferredBytes {
 public:
  struct Item {
    size_t at;
    const int8_t* codes;
    const uint8_t* scales;  // `channels` floats in the file, read (not touched) until first read
    size_t channels;
    Weights shape;  // name, type, dims (no bytes)
  };
  DequantizedInt8(std::vector<Item> items, size_t total, std::shared_ptr<const void> file)
      : items_(std::move(items)), total_(total), file_(std::move(file)) {}
  const uint8_t* data() const override {
    std::call_once(once_, [this] {
      auto block = std::make_unique<engine_detail::PopulatedBlock>(total_);
      std::vector<float> scales;
      for (const Item& i : items_) {
        scales.resize(i.channels);
        std::memcpy(scales.data(), i.scales, i.channels * 4);
        engine_detail::dequantize_per_channel(i.codes, scales, i.shape, reinterpret_cast<float*>(block->data() + i.at));
      }
      block_ = std::move(block);
    });
    return block_->data();
  }

 private:
  std::vector<Item> items_;
  size_t total_;
  std::shared_ptr<const void> file_;
  mutable std::once_flag once_;
  mutable std::unique_ptr<engine_detail::PopulatedBlock> block_;
};

// Every INT8 payload as a view into the dequantized block (made at first read where the file
// stays mapped: keep_alive; at once otherwise, before the caller frees the bytes).
void dequantize_int8_payloads(const std::vector<Int8Payload>& payloads, std::vector<Weights>& ws,
                              const std::shared_ptr<const void>& keep_alive) {
  auto slot = [&](const Int8Payload& p) { return (size_t(ws[size_t(p.id)].count()) * 4 + kAlign - 1) / kAlign * kAlign; };
  std::vector<DequantizedInt8::Item> items;
  size_t total = 0;
  for (const Int8Payload& p : payloads) {
    const Weights& wt = ws[size_t(p.id)];
    DequantizedInt8::Item item{total, reinterpret_cast<const int8_t*>(p.codes), p.scales, p.channels, {}};
    item.shape.name = wt.name, item.shape.type = wt.type, item.shape.dims = wt.dims;
    items.push_back(std::move(item));
    total += slot(p);
  }
  if (total == 0) return;
  auto block = std::make_shared<const DequantizedInt8>(std::move(items), total, keep_alive);
  if (!keep_alive) block->data();
  size_t at = 0;
  for (const Int8Payload& p : payloads) {
    Weights& wt = ws[size_t(p.id)];
    wt.bytes = WeightBytes::deferred(block, at, size_t(wt.count()) * 4);
    at += slot(p);
  }
}

// keep_alive (the mapped file, or null): raw payloads become views into sec that it keeps valid;
// without it they are copied (bytes the caller is about to free).
void get_weights(Reader& r, EngineContents& e, const uint8_t* sec, size_t sec_size,
                 const std::shared_ptr<const void>& keep_alive) {
  uint64_t start = r.u64("blob start");
  if (start > sec_size || start % kAlign) r.fail(fmt::format("blob start {} invalid", start));
  uint32_t n = r.count(23, "weights count");
  auto& ws = e.network.weights;
  ws.resize(n);
  const uint64_t blob_size = sec_size - start;
  const uint8_t* blob = sec + start;
  std::vector<Int8Payload> int8_payloads;
  for (uint32_t i = 0; i < n; ++i) {
    Weights& wt = ws[i];
    wt.name = r.str("weights name");
    wt.type = r.enumeration<DataType>(kDataTypeCount, "weights type");
    wt.dims = r.dims("weights dims");
    int64_t count = 1;
    for (int64_t d : wt.dims) {
      if (d < 0 || d > (int64_t(1) << 32)) r.fail(fmt::format("weights '{}': dim {} out of range", wt.name, d));
      if (d && count > (int64_t(1) << 40) / d) r.fail(fmt::format("weights '{}': too many elements", wt.name));
      count *= d;
    }
    uint8_t enc = r.u8("weights encoding");
    uint64_t off = r.u64("weights offset"), bytes = r.u64("weights size");
    if (off > blob_size || bytes > blob_size - off)
      r.fail(fmt::format("weights '{}': payload [{}, +{}) outside the {}-byte blob", wt.name, off, bytes, blob_size));
    if (enc == 0) {
      if (bytes != uint64_t(count) * element_size(wt.type))
        r.fail(fmt::format("weights '{}': {} bytes for {} elements of {}", wt.name, bytes, count, to_string(wt.type)));
      const uint8_t* payload = blob + off;
      if (keep_alive && reinterpret_cast<uintptr_t>(payload) % alignof(double) == 0)
        wt.bytes = WeightBytes::view(payload, bytes, keep_alive);
      else
        wt.bytes.assign(payload, payload + bytes);
    } else if (enc == 1) {
      uint64_t soff = r.u64("scales offset"), ch = r.u64("channels");
      if (wt.type != DataType::kFloat || wt.dims.empty() || uint64_t(wt.dims[0]) != ch || bytes != uint64_t(count))
        r.fail(fmt::format("weights '{}': inconsistent int8 encoding", wt.name));
      if (soff > blob_size || ch * 4 > blob_size - soff)
        r.fail(fmt::format("weights '{}': scales outside the blob", wt.name));
      int8_payloads.push_back({WeightsId(i), blob + off, blob + soff, ch});
      e.int8_weights.push_back(WeightsId(i));
    } else {
      r.fail(fmt::format("weights '{}': unknown encoding {}", wt.name, enc));
    }
  }
  dequantize_int8_payloads(int8_payloads, ws, keep_alive);
}

// ---- Plan --------------------------------------------------------------------------------------------
void put_plan(Writer& w, const Plan& p) {
  w.u8(uint8_t(p.plan_case)); w.boolean(p.gpu_fallback); w.u8(uint8_t(p.default_device));
  w.i32(p.dla_core); w.u8(uint8_t(p.target)); w.u8(uint8_t(p.strategy));
  w.boolean(p.fp16); w.boolean(p.int8); w.boolean(p.fp8); w.i32(p.optimization_level);
  w.u8(uint8_t(p.check_precision));
  w.u32(uint32_t(p.layers.size()));
  for (const auto& l : p.layers) { w.u8(uint8_t(l.device)); w.u8(uint8_t(l.precision)); w.i32(l.region); w.str(l.reason); }
  w.u32(uint32_t(p.regions.size()));
  for (const auto& g : p.regions) { w.ints(g.layers); w.i32(g.start); w.i32(g.end); w.boolean(g.on_dla); w.str(g.reason); }
  w.u32(uint32_t(p.crossings.size()));
  for (const auto& c : p.crossings) { w.i32(c.tensor); w.u8(uint8_t(c.from)); w.u8(uint8_t(c.to)); w.i64(c.bytes); }
  w.u32(uint32_t(p.warnings.size()));
  for (const auto& s : p.warnings) w.str(s);
}

void get_plan(Reader& r, Plan& p, const Network& net) {
  p.plan_case = r.enumeration<Plan::Case>(3, "plan case"); p.gpu_fallback = r.boolean();
  p.default_device = r.enumeration<Device>(2, "default device"); p.dla_core = r.i32();
  p.target = r.enumeration<DlaTarget>(2, "target"); p.strategy = r.enumeration<Strategy>(2, "strategy");
  p.fp16 = r.boolean(); p.int8 = r.boolean(); p.fp8 = r.boolean(); p.optimization_level = r.i32();
  p.check_precision = r.enumeration<DlaPrecision>(2, "check precision");
  uint32_t nl = r.count(10, "plan layer count");
  if (nl != net.layers.size()) r.fail(fmt::format("{} layer placements for {} layers", nl, net.layers.size()));
  p.layers.resize(nl);
  for (auto& l : p.layers) {
    l.device = r.enumeration<Device>(2, "device"); l.precision = r.enumeration<Precision>(5, "precision");
    l.region = r.i32(); l.reason = r.str();
  }
  uint32_t ng = r.count(17, "region count");
  p.regions.resize(ng);
  for (auto& g : p.regions) {
    g.layers = r.ints("region layers"); g.start = r.i32(); g.end = r.i32(); g.on_dla = r.boolean(); g.reason = r.str();
    for (int id : g.layers) if (id < 0 || id >= int(nl)) r.fail(fmt::format("region layer {} out of range", id));
  }
  for (auto& l : p.layers)
    if (l.region < -1 || l.region >= int(ng)) r.fail(fmt::format("placement region {} out of range", l.region));
  uint32_t nc = r.count(14, "crossing count");
  p.crossings.resize(nc);
  for (auto& c : p.crossings) {
    c.tensor = r.i32(); c.from = r.enumeration<Device>(2, "from"); c.to = r.enumeration<Device>(2, "to"); c.bytes = r.i64();
    if (c.tensor < 0 || c.tensor >= int(net.tensors.size())) r.fail(fmt::format("crossing tensor {} out of range", c.tensor));
  }
  uint32_t nw = r.count(4, "warning count");
  for (uint32_t i = 0; i < nw; ++i) p.warnings.push_back(r.str());
  if (r.left()) r.fail(fmt::format("{} trailing bytes", r.left()));
}

void put_scales(Writer& w, const std::map<std::string, float>& s) {
  w.u32(uint32_t(s.size()));
  for (const auto& [k, v] : s) { w.str(k); w.f32(v); }
}
void get_scales(Reader& r, std::map<std::string, float>& s) {
  uint32_t n = r.count(8, "scale count");
  for (uint32_t i = 0; i < n; ++i) {
    std::string k = r.str("tensor name");
    float v = r.f32("scale");
    if (!std::isfinite(v) || v < 0) r.fail(fmt::format("tensor '{}': bad scale {}", k, v));
    s[k] = v;
  }
  if (r.left()) r.fail(fmt::format("{} trailing bytes", r.left()));
}

void put_formats(Writer& w, const std::vector<TensorFormat>& f) {
  w.u32(uint32_t(f.size()));
  for (const auto& x : f) { w.str(x.name); w.u8(uint8_t(x.type)); w.u8(uint8_t(x.layout)); }
}
std::vector<TensorFormat> get_formats(Reader& r, const Network& net, const std::vector<TensorId>& ids, const char* what) {
  uint32_t n = r.count(6, what);
  if (n != ids.size()) r.fail(fmt::format("{} {} formats for {} tensors", n, what, ids.size()));
  std::vector<TensorFormat> f(n);
  for (uint32_t i = 0; i < n; ++i) {
    f[i].name = r.str(); f[i].type = r.enumeration<DataType>(kDataTypeCount, "format type");
    f[i].layout = r.enumeration<TensorLayout>(2, "format layout");
    if (f[i].name != net.tensors[ids[i]].name)
      r.fail(fmt::format("{} format {} names '{}', the network has '{}'", what, i, f[i].name, net.tensors[ids[i]].name));
  }
  return f;
}

void put_tactics(Writer& w, const std::vector<Tactic>& t) {
  w.u32(uint32_t(t.size()));
  for (const auto& x : t) { w.str(x.signature); w.str(x.name); w.f64(x.time_ms); }
}
void get_tactics(Reader& r, std::vector<Tactic>& t) {
  uint32_t n = r.count(16, "tactic count");
  t.resize(n);
  for (auto& x : t) { x.signature = r.str(); x.name = r.str(); x.time_ms = r.f64(); }
  if (r.left()) r.fail(fmt::format("{} trailing bytes", r.left()));
}

std::string meta_json(const EngineMetadata& m) {
  nlohmann::json j;
  j["tool_version"] = m.tool_version;
  j["format_version"] = m.format_version;
  j["model_path"] = m.model_path;
  j["model_sha256"] = m.model_sha256;
  j["target"] = m.target;
  j["backend"] = m.backend;
  j["options"] = m.options_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(m.options_json);
  j["created_utc"] = m.created_utc;
  j["fusions"] = m.fusions;
  if (!m.tactics_device_key.empty()) j["tactics_device_key"] = m.tactics_device_key;
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
}
EngineMetadata parse_meta(const uint8_t* p, size_t n, const std::string& where) {
  EngineMetadata m;
  try {
    auto j = nlohmann::json::parse(p, p + n);
    m.tool_version = j.at("tool_version").get<std::string>();
    m.format_version = json_integer<uint32_t>(j, "format_version", where);
    m.model_path = j.at("model_path").get<std::string>();
    m.model_sha256 = j.at("model_sha256").get<std::string>();
    m.target = j.at("target").get<std::string>();
    m.backend = j.at("backend").get<std::string>();
    m.options_json = j.at("options").dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    m.created_utc = j.at("created_utc").get<std::string>();
    m.fusions = j.at("fusions").get<std::vector<std::string>>();
    if (j.contains("tactics_device_key")) m.tactics_device_key = j.at("tactics_device_key").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: bad metadata JSON: {}", where, e.what()));
  }
  return m;
}

struct SectionRef {
  uint32_t id;
  uint64_t offset, size, checksum;
};

struct Parsed {
  std::vector<SectionRef> sections;
  std::string tool_version;
};

// Checks the header and the section table; returns the table. Does not look inside sections.
Parsed parse_header(const uint8_t* data, size_t size, const std::string& name) {
  if (size < kHeaderBytes)
    throw Error(fmt::format("{}: not a tandem engine: {} bytes, shorter than the {}-byte header", name, size, kHeaderBytes));
  if (std::memcmp(data, kMagic, 8) != 0)
    throw Error(fmt::format("{}: not a tandem engine (bad magic)", name));
  Reader h(data, kHeaderBytes, name + ": header");
  h.seek(8);
  uint32_t version = h.u32();
  uint32_t header_bytes = h.u32();
  std::string tool(reinterpret_cast<const char*>(data + 16), strnlen(reinterpret_cast<const char*>(data + 16), 16));
  h.seek(32);
  uint32_t nsec = h.u32();
  h.u32();
  uint64_t file_size = h.u64();
  uint64_t table_sum = h.u64();
  uint64_t header_sum = h.u64();
  if (fnv1a64(data, 56) != header_sum) throw Error(fmt::format("{}: header checksum mismatch (corrupt file)", name));
  if (version != kEngineFormatVersion)
    throw Error(fmt::format("{}: engine format version {} (written by tandem {}), this tandem {} reads version {}; rebuild the engine",
                            name, version, tool, TANDEM_VERSION, kEngineFormatVersion));
  if (header_bytes != kHeaderBytes) throw Error(fmt::format("{}: header size {} unexpected", name, header_bytes));
  if (file_size != size)
    throw Error(fmt::format("{}: truncated or extended: header says {} bytes, the file has {}", name, file_size, size));
  if (nsec > 64) throw Error(fmt::format("{}: {} sections (corrupt section count)", name, nsec));
  if (kHeaderBytes + uint64_t(nsec) * kEntryBytes > size)
    throw Error(fmt::format("{}: section table truncated", name));
  if (section_checksum(data + kHeaderBytes, nsec * kEntryBytes) != table_sum)
    throw Error(fmt::format("{}: section table checksum mismatch (corrupt file)", name));
  Parsed out;
  out.tool_version = tool;
  Reader t(data + kHeaderBytes, nsec * kEntryBytes, name + ": section table");
  for (uint32_t i = 0; i < nsec; ++i) {
    SectionRef s;
    s.id = t.u32(); t.u32(); s.offset = t.u64(); s.size = t.u64(); s.checksum = t.u64();
    if (s.offset > size || s.size > size - s.offset)
      throw Error(fmt::format("{}: section {} [{}, +{}) lies outside the {}-byte file", name, fourcc_name(s.id), s.offset, s.size, size));
    out.sections.push_back(s);
  }
  return out;
}

std::string checksum_mismatch(const std::string& where) { return fmt::format("{}: checksum mismatch (corrupt file)", where); }

// The section `id`, its checksum checked unless `deferred` takes it for later.
const SectionRef& find_section(const Parsed& p, uint32_t id, const std::string& name, const uint8_t* data,
                               engine_detail::DeferredChecksum* deferred = nullptr) {
  for (const auto& s : p.sections)
    if (s.id == id) {
      const std::string where = fmt::format("{}: section {}", name, fourcc_name(id));
      if (deferred) *deferred = {data + s.offset, s.size, s.checksum, where};
      else if (section_checksum(data + s.offset, s.size) != s.checksum) throw Error(checksum_mismatch(where));
      return s;
    }
  throw Error(fmt::format("{}: section {} missing", name, fourcc_name(id)));
}

}  // namespace

std::vector<uint8_t> serialize_engine(const EngineContents& e) {
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> secs;
  {
    std::string m = meta_json(e.meta);
    secs.emplace_back(kMETA, std::vector<uint8_t>(m.begin(), m.end()));
  }
  { Writer w; put_network(w, e.network); secs.emplace_back(kNETW, std::move(w.buf)); }
  { Writer w; put_weights(w, e); secs.emplace_back(kWGHT, std::move(w.buf)); }
  { Writer w; put_plan(w, e.plan); secs.emplace_back(kPLAN, std::move(w.buf)); }
  { Writer w; put_scales(w, e.scales); secs.emplace_back(kSCAL, std::move(w.buf)); }
  { Writer w; put_formats(w, e.input_formats); put_formats(w, e.output_formats); secs.emplace_back(kIOFM, std::move(w.buf)); }
  { Writer w; put_tactics(w, e.tactics); secs.emplace_back(kTACT, std::move(w.buf)); }

  Writer out;
  out.buf.resize(kHeaderBytes + secs.size() * kEntryBytes, 0);
  std::vector<SectionRef> refs;
  for (auto& [id, bytes] : secs) {
    out.align(kAlign);
    refs.push_back({id, out.size(), bytes.size(), section_checksum(bytes.data(), bytes.size())});
    out.raw(bytes.data(), bytes.size());
  }
  Writer table;
  for (const auto& s : refs) { table.u32(s.id); table.u32(0); table.u64(s.offset); table.u64(s.size); table.u64(s.checksum); }
  std::memcpy(out.buf.data() + kHeaderBytes, table.buf.data(), table.size());
  Writer h;
  h.raw(kMagic, 8);
  h.u32(kEngineFormatVersion);
  h.u32(kHeaderBytes);
  char tool[16] = {};
  std::strncpy(tool, TANDEM_VERSION, 15);
  h.raw(tool, 16);
  h.u32(uint32_t(refs.size()));
  h.u32(0);
  h.u64(out.size());
  h.u64(section_checksum(table.buf.data(), table.size()));
  h.u64(fnv1a64(h.buf.data(), 56));
  std::memcpy(out.buf.data(), h.buf.data(), kHeaderBytes);
  return std::move(out.buf);
}

namespace {
#ifdef MADV_POPULATE_READ
constexpr int kPopulateRead = MADV_POPULATE_READ;
#else
constexpr int kPopulateRead = 22;  // Linux 5.14's value; older headers lack the name
#endif

// weights_checksum: null checks every section now; else the WGHT section's check is left to it.
EngineContents deserialize(const uint8_t* data, size_t size, const std::string& name, std::shared_ptr<const void> keep_alive,
                           engine_detail::DeferredChecksum* weights_checksum) {
  Parsed p = parse_header(data, size, name);
  EngineContents e;
  auto sec = [&](uint32_t id) -> std::pair<const uint8_t*, size_t> {
    const SectionRef& s = find_section(p, id, name, data, id == kWGHT ? weights_checksum : nullptr);
    return {data + s.offset, s.size};
  };
  auto where = [&](uint32_t id) { return fmt::format("{}: section {}", name, fourcc_name(id)); };
  {
    auto [d, n] = sec(kMETA);
    e.meta = parse_meta(d, n, where(kMETA));
  }
  {
    auto [d, n] = sec(kNETW);
    Reader r(d, n, where(kNETW));
    get_network(r, e.network);
  }
  {
    auto [d, n] = sec(kWGHT);
    Reader r(d, n, where(kWGHT));
    get_weights(r, e, d, n, keep_alive);
  }
  try {
    e.network.verify();
  } catch (const Error& err) {
    throw Error(fmt::format("{}: invalid network: {}", where(kNETW), err.what()));
  }
  {
    auto [d, n] = sec(kPLAN);
    Reader r(d, n, where(kPLAN));
    get_plan(r, e.plan, e.network);
  }
  {
    auto [d, n] = sec(kSCAL);
    Reader r(d, n, where(kSCAL));
    get_scales(r, e.scales);
  }
  {
    auto [d, n] = sec(kIOFM);
    Reader r(d, n, where(kIOFM));
    e.input_formats = get_formats(r, e.network, e.network.inputs, "input");
    e.output_formats = get_formats(r, e.network, e.network.outputs, "output");
    if (r.left()) r.fail(fmt::format("{} trailing bytes", r.left()));
  }
  {
    auto [d, n] = sec(kTACT);
    Reader r(d, n, where(kTACT));
    get_tactics(r, e.tactics);
  }
  check_memory_cap(e.network, name, memory_cap(size));
  return e;
}
}  // namespace

EngineContents deserialize_engine(const uint8_t* data, size_t size, const std::string& name,
                                  std::shared_ptr<const void> keep_alive) {
  return deserialize(data, size, name, std::move(keep_alive), nullptr);
}

EngineContents engine_detail::deserialize_engine_deferring_weights(const uint8_t* data, size_t size, const std::string& name,
                                                                   std::shared_ptr<const void> keep_alive,
                                                                   DeferredChecksum& weights) {
  return deserialize(data, size, name, std::move(keep_alive), &weights);
}

void engine_detail::check_deferred(const DeferredChecksum& c) {
  // The pages of a mapping load did not populate: one call maps them all, instead of a fault per
  // few pages (costly in virtual machines); where the kernel lacks it (before Linux 5.14) the
  // faults do the same.
  const auto page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(c.data) / page * page;
  if (c.size) ::madvise(reinterpret_cast<void*>(begin), reinterpret_cast<uintptr_t>(c.data) + c.size - begin, kPopulateRead);
  if (section_checksum(c.data, c.size) != c.expected) throw Error(checksum_mismatch(c.where));
}

std::vector<uint8_t> engine_detail::read_file_bytes(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::error_code ec;
  auto sz = std::filesystem::file_size(path, ec);
  if (ec) throw Error(fmt::format("{}: cannot stat: {}", path, ec.message()));
  std::vector<uint8_t> buf(sz);
  if (sz && std::fread(buf.data(), 1, sz, f.get()) != sz) throw Error(fmt::format("{}: short read", path));
  return buf;
}

engine_detail::MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(fmt::format("{}: cannot stat: {}", path, std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("{}: not a regular file", path));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    // No MAP_POPULATE: a load reads the header and the tables; the weights' pages are faulted in
    // (the kernel maps their neighbours with each fault) when a context first reads them.
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error(fmt::format("{}: cannot map: {}", path, std::strerror(err)));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

engine_detail::PopulatedBlock::PopulatedBlock(size_t size) : size_(size) {
  if (size_ == 0) return;
  void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw Error(fmt::format("cannot allocate {} bytes: {}", size_, std::strerror(errno)));
  data_ = static_cast<uint8_t*>(p);
}

engine_detail::PopulatedBlock::~PopulatedBlock() {
  if (data_) ::munmap(data_, size_);
}

engine_detail::MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void engine_detail::write_file_atomic(const std::string& path, const void* data, size_t n) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (p.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
  }
  static std::atomic<int> counter{0};
  std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
  {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
    if (!f) throw Error(fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
    if (n && std::fwrite(data, 1, n, f.get()) != n) {
      std::remove(tmp.c_str());
      throw Error(fmt::format("{}: write failed", tmp));
    }
    if (std::fflush(f.get()) != 0 || ::fsync(fileno(f.get())) != 0) {
      std::remove(tmp.c_str());
      throw Error(fmt::format("{}: flush failed", tmp));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error(fmt::format("{}: cannot rename into place: {}", path, err));
  }
}

std::vector<uint8_t> engine_detail::serialize_network(const Network& net) {
  Writer w;
  put_network(w, net);
  return std::move(w.buf);
}
Network engine_detail::deserialize_network(const std::vector<uint8_t>& bytes) {
  Network net;
  Reader r(bytes.data(), bytes.size(), "network");
  get_network(r, net);
  return net;
}

void write_engine_file(const std::string& path, const EngineContents& e) {
  auto bytes = serialize_engine(e);
  engine_detail::write_file_atomic(path, bytes.data(), bytes.size());
}

EngineMetadata read_engine_metadata(const std::string& path) {
  auto bytes = engine_detail::read_file_bytes(path);
  Parsed p = parse_header(bytes.data(), bytes.size(), path);
  const SectionRef& s = find_section(p, kMETA, path, bytes.data());
  return parse_meta(bytes.data() + s.offset, s.size, path + ": section META");
}

}  // namespace tandem
