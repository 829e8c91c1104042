// ONNX's own node tests (/usr/share/libonnx-testdata/data/node/*/) run on one backend, and the
// committed table of every test's expected status (tests/conformance/expected.tsv).
//
// Every test whose ops the importer supports is imported, run on test_data_set_0 and compared with
// the expected outputs: |got - want| <= atol + rtol * |want| (per-op tolerances below), exact for
// integers and booleans, NaN matches NaN. A test is SKIPPED only for a reason outside the supported
// set, each reason of one class:
//   unsupported op X      an op the importer does not map (list: supported_onnx_ops())
//   training mode         *_training_mode tests (outputs only defined in training)
//   importer limit        a reviewed importer limit (tests/onnx/conformance_limits.inc): the
//                         test's name must be on that list; an import error of a test that is not
//                         on it FAILS, whatever its wording ("is not supported" included)
//   data type             a layer the CPU backend does not compute in that type (fp32 compute)
// Everything else that does not match FAILS.
//
// TensorRT (and so tandem) needs convolution weights, Clip bounds, pads etc. as constants; ONNX's
// tests feed them as graph inputs. When the import fails for that reason, the runner retries with
// every graph input but the first turned into an initializer holding the test's data (the values
// are the same; only their provenance changes). Such tests pass as "inputs as constants".
//
// Where that does not apply, the runner does what TensorRT's users do (trtexec --shapes): dims an
// input declares dynamic are fixed from the test's own input_N.pb (a 0 dim included: an empty
// tensor, docs/onnx-import.md "Empty tensors"), and the int32/int64 inputs the
// importer reports as needed at import (InputValuesNeeded: Range bounds, a ConstantOfShape shape,
// a Loop trip count) become shape-value inputs holding the test's values (ImportOptions::
// input_values, as an optimization profile fixes a shape tensor's values). They stay inputs, and
// the run is given the same values. Such tests pass as "shape-value inputs".
//
// Two adaptations to ONNX 1.12's test data, both for bfloat16: it stores bf16 tensors as UINT16
// tensors of the same bits (read_test_tensor reads them as bf16 where the network's tensor is
// bf16), and its bf16 CastLike tests declare `like` 3x4 but feed [1] (the model is re-declared
// with the data's dims: "input shapes from the test data"). bf16 outputs compare within one bf16
// ulp (compare_values says why).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "tandem/numerics.h"
#include "tandem/onnx.h"
#include "tandem/runtime.h"
#include "tandem_onnx_pb/onnx.pb.h"

namespace tandem::conformance {

namespace fs = std::filesystem;

inline const char* kDataDir = "/usr/share/libonnx-testdata/data/node";
inline const char* kDataMissing = " is missing: run scripts/setup.sh (libonnx-testdata)";

// The reviewed list of importer limits: test name -> the message its import fails with.
inline const std::map<std::string, std::string>& importer_limits() {
  static const std::map<std::string, std::string> m = {
#include "conformance_limits.inc"
  };
  return m;
}

struct Tolerance {
  double atol = 1e-5, rtol = 1e-4;
};
// Looser where the reference itself is computed in double with a different formula.
inline Tolerance tolerance_for(const std::vector<std::string>& ops) {
  static const std::set<std::string> loose = {
      "Pow", "Exp", "Softplus", "Selu", "Elu", "Celu", "Mish", "Gelu", "Erf", "Tan", "Cosh", "Sinh", "Acosh",
      "Asinh", "Atanh", "LRN", "Resize", "Upsample", "ReduceLogSumExp", "ReduceLogSum", "LogSoftmax", "Softmax",
      "HardSwish", "ReduceSumSquare", "ReduceL2", "ReduceL1", "GroupNormalization", "LayerNormalization",
      "InstanceNormalization", "BatchNormalization", "MeanVarianceNormalization", "ConvTranspose", "Conv",
      "MatMul", "Gemm", "Einsum",
      // test_gridsample_bicubic's and the RoiAlign tests' expected values are printed to 4 decimals.
      "GridSample", "RoiAlign"};
  for (const std::string& op : ops)
    if (loose.count(op)) return {1e-4, 1e-3};
  // The window functions' _expanded tests (Range, then Cos): ONNX 1.12's expected values were made
  // with pi = 3.1415 (onnx/backend/test/case/node/hannwindow.py, blackmanwindow.py,
  // hammingwindow.py: "2 * 3.1415"; later releases use np.pi) while the graphs' Tau is fp32 2*pi,
  // so they are up to 1e-4 apart: within ONNX's own backend-test rtol of 1e-3.
  const auto has = [&](const char* op) { return std::find(ops.begin(), ops.end(), op) != ops.end(); };
  if (has("Range") && has("Cos")) return {1e-4, 1e-3};
  return {};
}

struct Outcome {
  std::string status;  // pass, fail, skip
  std::string reason;
};

// The part of a reason that expected.tsv pins: "unsupported op X" whole, otherwise up to the
// first ':' ("importer limit", "data type", "run", "output 'y'", ...).
inline std::string reason_class(const Outcome& o) {
  if (o.reason.rfind("unsupported op", 0) == 0) return o.reason;
  if (o.status == "fail" && o.reason.rfind("output '", 0) == 0) return "output";
  return o.reason.substr(0, o.reason.find(':'));
}

inline double element_value(const HostTensor& t, int64_t i) {
  switch (t.type) {
    case DataType::kFloat: return t.f32()[i];
    case DataType::kHalf: {
      uint16_t h;
      std::memcpy(&h, t.data.data() + 2 * i, 2);
      const uint32_t sign = h & 0x8000u, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
      const double s = sign ? -1 : 1;
      if (exp == 0) return s * std::ldexp(double(mant), -24);
      if (exp == 31) return mant ? NAN : s * INFINITY;
      return s * std::ldexp(double(mant | 0x400), int(exp) - 25);
    }
    case DataType::kInt8: return reinterpret_cast<const int8_t*>(t.data.data())[i];
    case DataType::kUInt8: return t.data[i];
    case DataType::kInt32: return reinterpret_cast<const int32_t*>(t.data.data())[i];
    case DataType::kInt64: return double(reinterpret_cast<const int64_t*>(t.data.data())[i]);
    case DataType::kBool: return t.data[i] != 0;
    case DataType::kBFloat16: {
      uint16_t b;
      std::memcpy(&b, t.data.data() + 2 * i, 2);
      return bfloat16_to_float(b);
    }
  }
  return 0;
}

// Shapes must agree exactly (a scalar is not [1]); values within tol, exact for non-float types.
inline bool compare_values(const HostTensor& got, const HostTensor& want, const Tolerance& tol, std::string* why) {
  if (got.dims != want.dims) {
    *why = "shape " + dims_to_string(got.dims) + ", expected " + dims_to_string(want.dims);
    return false;
  }
  auto is_float = [](DataType t) { return t == DataType::kFloat || t == DataType::kHalf || t == DataType::kBFloat16; };
  const bool want_float = is_float(want.type), got_float = is_float(got.type);
  if (want_float != got_float) {
    *why = "type " + std::string(to_string(got.type)) + ", expected " + std::string(to_string(want.type));
    return false;
  }
  for (int64_t i = 0; i < want.count(); ++i) {
    const double a = element_value(got, i), b = element_value(want, i);
    if (std::isnan(a) && std::isnan(b)) continue;
    if (std::isinf(b) && a == b) continue;
    // bf16: within one bf16 ulp (2^-7 relative). ONNX 1.12's expected values truncate FP32 to
    // BF16 (its generator kept the top 16 bits: onnx/onnx#3876); tandem rounds to nearest even,
    // as TensorRT and ONNX Runtime do (tests/backend/bfloat16_test.cpp pins the rounding).
    const double lim = want.type == DataType::kBFloat16 ? std::ldexp(std::fabs(b), -7)
                       : want_float                     ? tol.atol + tol.rtol * std::fabs(b)
                                                        : 0.0;
    if (!(std::fabs(a - b) <= lim)) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "element %lld: got %.7g, expected %.7g", static_cast<long long>(i), a, b);
      *why = buf;
      return false;
    }
  }
  return true;
}

// Tests whose expected values come from numpy's random generator (ONNX's Bernoulli expansions,
// through RandomUniformLike): no implementation reproduces them, so the runner checks what the op
// promises instead: the output's shape and type, and every value 0 or 1. Their status is
// "property" (checked by property), never "pass".
inline bool checked_by_property(const std::string& test) { return test.rfind("test_bernoulli", 0) == 0; }
inline bool bernoulli_properties(const HostTensor& got, const HostTensor& want, std::string* why);

inline std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// A test's input_N.pb / output_N.pb for a network tensor of type `type`. ONNX 1.12's node test data
// holds bfloat16 values as UINT16 tensors of the same bits (numpy has no bfloat16): for a bf16
// tensor those bits are read as bf16.
inline HostTensor read_test_tensor(const fs::path& pb, DataType type) {
  HostTensor t = read_tensor_proto(pb.string());
  onnx::TensorProto p;
  if (type != DataType::kBFloat16 || !p.ParseFromString(read_bytes(pb)) ||
      p.data_type() != onnx::TensorProto::UINT16)
    return t;
  HostTensor b = HostTensor::zeros(t.name, DataType::kBFloat16, t.dims);
  for (int64_t i = 0; i < t.count(); ++i) {
    const uint16_t v = uint16_t(reinterpret_cast<const int32_t*>(t.data.data())[i]);  // UINT16 reads as int32
    std::memcpy(b.data.data() + 2 * i, &v, 2);
  }
  return b;
}

// Rewrites model.onnx with graph inputs 1.. turned into initializers from the test's input_N.pb.
inline std::string inputs_as_constants(const fs::path& dir, const fs::path& tmp_dir) {
  onnx::ModelProto m;
  if (!m.ParseFromString(read_bytes(dir / "model.onnx"))) return "";
  auto* g = m.mutable_graph();
  std::set<std::string> inits;
  for (const auto& t : g->initializer()) inits.insert(t.name());
  std::vector<int> real;  // graph inputs that are not initializers, in order
  for (int i = 0; i < g->input_size(); ++i)
    if (!inits.count(g->input(i).name())) real.push_back(i);
  if (real.size() < 2) return "";
  std::set<std::string> folded;
  for (size_t k = 1; k < real.size(); ++k) {
    fs::path pb = dir / "test_data_set_0" / ("input_" + std::to_string(k) + ".pb");
    if (!fs::exists(pb)) return "";
    onnx::TensorProto t;
    if (!t.ParseFromString(read_bytes(pb))) return "";
    t.set_name(g->input(real[k]).name());
    *g->add_initializer() = t;
    folded.insert(t.name());
  }
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> keep;
  for (const auto& in : g->input())
    if (!folded.count(in.name())) *keep.Add() = in;
  *g->mutable_input() = keep;
  fs::path out = tmp_dir / (dir.filename().string() + ".onnx");
  std::ofstream o(out, std::ios::binary);
  std::string s;
  m.SerializeToString(&s);
  o << s;
  return out.string();
}

// Rewrites model.onnx with every graph input declared with the dims of its input_N.pb. ONNX 1.12's
// bfloat16 CastLike tests declare `like` with the input's 3x4 and feed a [1] tensor (CastLike reads
// only its type); the rewrite changes nothing else. Such tests pass as "input shapes from the test data".
inline std::string declared_shapes_from_data(const fs::path& dir, const fs::path& tmp_dir) {
  onnx::ModelProto m;
  if (!m.ParseFromString(read_bytes(dir / "model.onnx"))) return "";
  auto* g = m.mutable_graph();
  std::set<std::string> inits;
  for (const auto& t : g->initializer()) inits.insert(t.name());
  int k = 0;
  for (int i = 0; i < g->input_size(); ++i) {
    auto* in = g->mutable_input(i);
    if (inits.count(in->name())) continue;
    onnx::TensorProto t;
    const fs::path pb = dir / "test_data_set_0" / ("input_" + std::to_string(k++) + ".pb");
    if (!fs::exists(pb) || !t.ParseFromString(read_bytes(pb)) || !in->type().has_tensor_type()) return "";
    auto* shape = in->mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->clear_dim();
    for (int64_t d : t.dims()) shape->add_dim()->set_dim_value(d);
  }
  const fs::path out = tmp_dir / (dir.filename().string() + ".shapes.onnx");
  std::ofstream o(out, std::ios::binary);
  std::string bytes;
  m.SerializeToString(&bytes);
  o << bytes;
  return out.string();
}

// True when some input_N.pb's dims differ from the network input's (static, declared) dims.
inline bool test_dims_differ(const fs::path& dir, const Network& net) {
  for (size_t i = 0; i < net.inputs.size(); ++i) {
    const fs::path pb = dir / "test_data_set_0" / ("input_" + std::to_string(i) + ".pb");
    onnx::TensorProto t;
    if (!fs::exists(pb) || !t.ParseFromString(read_bytes(pb))) continue;
    if (Dims(t.dims().begin(), t.dims().end()) != net.tensors[net.inputs[i]].dims) return true;
  }
  return false;
}

// Dims an input declares dynamic, from the test's input_N.pb (as trtexec --shapes).
inline void dims_from_test_data(const fs::path& dir, ImportOptions* opt) {
  const OnnxModelSummary s = summarize_onnx((dir / "model.onnx").string());
  for (size_t k = 0; k < s.inputs.size(); ++k) {
    const auto& [name, declared] = s.inputs[k];
    // The importer takes a declared 0 as dynamic too (ONNX's exporters write it for "unknown").
    if (std::none_of(declared.begin(), declared.end(), [](int64_t d) { return d <= 0; })) continue;
    const fs::path pb = dir / "test_data_set_0" / ("input_" + std::to_string(k) + ".pb");
    onnx::TensorProto t;
    if (!fs::exists(pb) || !t.ParseFromString(read_bytes(pb))) continue;
    opt->shapes.emplace_back(name, Dims(t.dims().begin(), t.dims().end()));
  }
}

// Imports with the integer inputs the importer asks for (InputValuesNeeded) fixed to the test's
// values, as shape-value inputs; false (and the last error in *msg) when that does not succeed.
inline bool import_with_test_values(const fs::path& dir, ImportOptions opt, Network* net, std::string* msg) {
  const std::string model = (dir / "model.onnx").string();
  const OnnxModelSummary s = summarize_onnx(model);
  for (int round = 0; round < 8; ++round) {
    try {
      *net = import_onnx(model, opt);
      return true;
    } catch (const InputValuesNeeded& e) {
      *msg = e.what();
      for (const std::string& name : e.inputs) {
        size_t k = 0;
        while (k < s.inputs.size() && s.inputs[k].first != name) ++k;
        if (k == s.inputs.size()) return false;
        const HostTensor t = read_tensor_proto((dir / "test_data_set_0" / ("input_" + std::to_string(k) + ".pb")).string());
        std::vector<int64_t> values;
        for (int64_t i = 0; i < t.count(); ++i)
          values.push_back(t.type == DataType::kInt64 ? reinterpret_cast<const int64_t*>(t.data.data())[i]
                                                      : reinterpret_cast<const int32_t*>(t.data.data())[i]);
        if (t.type != DataType::kInt64 && t.type != DataType::kInt32) return false;
        opt.input_values.emplace_back(name, std::move(values));
      }
    } catch (const Error& e) {
      *msg = e.what();
      return false;
    }
  }
  return false;
}

// The retry with inputs as constants keeps only the first graph input: only its fixed dims apply.
inline ImportOptions first_input_shape(const ImportOptions& opt, const fs::path& dir) {
  ImportOptions first;
  const OnnxModelSummary s = summarize_onnx((dir / "model.onnx").string());
  for (const auto& [name, d] : opt.shapes)
    if (!s.inputs.empty() && name == s.inputs[0].first) first.shapes.emplace_back(name, d);
  return first;
}

inline std::string after_colon(const std::string& msg) {
  const size_t p = msg.find(": ");
  return p == std::string::npos ? msg : msg.substr(p + 2);
}

// Imports the test's model (retrying with inputs as constants); on failure returns the outcome.
inline std::optional<Outcome> import_model(const fs::path& dir, const fs::path& tmp_dir, Network* net,
                                           bool* folded, bool* valued) {
  const std::string name = dir.filename().string();
  ImportOptions opt;
  dims_from_test_data(dir, &opt);
  try {
    *net = import_onnx((dir / "model.onnx").string(), opt);
    return std::nullopt;
  } catch (const Error& e) {
    std::string msg = e.what();
    std::string retry;
    const bool needs_values = dynamic_cast<const InputValuesNeeded*>(&e) != nullptr;
    if (msg.find("must be a constant") != std::string::npos) retry = inputs_as_constants(dir, tmp_dir);
    if (!retry.empty()) {
      try {
        *net = import_onnx(retry, first_input_shape(opt, dir));
        *folded = true;
        return std::nullopt;
      } catch (const Error& e2) {
        msg = e2.what();
      }
    }
    if (needs_values) {
      if (import_with_test_values(dir, opt, net, &msg)) {
        *valued = true;
        return std::nullopt;
      }
      retry = "values";  // got past the first error: the listed limit is the last one
    }
    // Only the reviewed list makes an import error a skip: a new "is not supported" fails.
    auto lim = importer_limits().find(name);
    if (lim != importer_limits().end() && !retry.empty())  // the retry got past the listed limit, hit another
      return Outcome{"skip", "importer limit: " + after_colon(msg)};
    if (lim != importer_limits().end() && msg.find(lim->second) != std::string::npos)
      return Outcome{"skip", "importer limit: " + lim->second};
    return Outcome{"fail", "import: " + msg + (lim == importer_limits().end()
                                                   ? " (not on the reviewed list tests/onnx/conformance_limits.inc)"
                                                   : " (the reviewed list expects: " + lim->second + ")")};
  }
}

using ExecutorFactory = std::function<std::unique_ptr<Executor>(const Network&)>;

inline Outcome run_one(const fs::path& dir, const std::vector<std::string>& ops, const fs::path& tmp_dir,
                       const ExecutorFactory& make_executor) {
  const std::string name = dir.filename().string();
  if (name.find("training") != std::string::npos) return {"skip", "training mode"};
  Network net;
  bool folded = false, valued = false;
  if (auto failed = import_model(dir, tmp_dir, &net, &folded, &valued)) return *failed;
  bool reshaped = false;
  if (!folded && !valued && test_dims_differ(dir, net)) {
    const std::string path = declared_shapes_from_data(dir, tmp_dir);
    try {
      if (!path.empty()) net = import_onnx(path);
      reshaped = !path.empty();
    } catch (const Error& e) {
      return {"fail", std::string("import with the test data's input shapes: ") + e.what()};
    }
  }
  // The same skip on every backend: a test the CPU reference cannot compute is out of the table's
  // scope; what another backend cannot build shows as a failure, listed in its exceptions file.
  std::string why = cpu_unsupported_reason(net);
  if (!why.empty()) return {"skip", "data type: " + why};
  // Inputs: input_N.pb in graph input order (after folding, only the first remains when folded).
  TensorMap in;
  for (size_t i = 0; i < net.inputs.size(); ++i) {
    const Tensor& nt = net.tensors[net.inputs[i]];
    HostTensor t = read_test_tensor(dir / "test_data_set_0" / ("input_" + std::to_string(i) + ".pb"), nt.type);
    if (t.type != nt.type)
      return {"skip", "data type: input '" + nt.name + "' is " + std::string(to_string(t.type)) +
                          " in the test data, " + std::string(to_string(nt.type)) + " in the network"};
    t.name = nt.name;
    in[nt.name] = std::move(t);
  }
  TensorMap out;
  try {
    out = make_executor(net)->run(in);
  } catch (const Error& e) {
    return {"fail", std::string("run: ") + e.what()};
  }
  const Tolerance tol = tolerance_for(ops);
  int compared = 0;
  for (size_t i = 0; i < net.outputs.size(); ++i) {
    fs::path pb = dir / "test_data_set_0" / ("output_" + std::to_string(i) + ".pb");
    if (!fs::exists(pb)) continue;
    HostTensor want = read_test_tensor(pb, net.tensors[net.outputs[i]].type);
    const std::string& oname = net.tensors[net.outputs[i]].name;
    auto got = out.find(oname);
    if (got == out.end()) return {"fail", "output '" + oname + "': not returned by the executor"};
    std::string diff;
    const bool ok = checked_by_property(name) ? bernoulli_properties(got->second, want, &diff)
                                              : compare_values(got->second, want, tol, &diff);
    if (!ok) return {"fail", "output '" + oname + "': " + diff};
    ++compared;
  }
  if (compared == 0) return {"fail", "output: no output_N.pb compared"};
  if (checked_by_property(name))
    return {"property", "checked by property: shape, type, every value 0 or 1 (numpy's random draws are not reproducible)"};
  if (valued) return {"pass", "shape-value inputs"};
  return {"pass", folded ? "inputs as constants" : reshaped ? "input shapes from the test data" : ""};
}

inline bool bernoulli_properties(const HostTensor& got, const HostTensor& want, std::string* why) {
  if (got.dims != want.dims) {
    *why = "shape " + dims_to_string(got.dims) + ", expected " + dims_to_string(want.dims);
    return false;
  }
  auto is_float = [](DataType t) { return t == DataType::kFloat || t == DataType::kHalf || t == DataType::kBFloat16; };
  if (is_float(got.type) != is_float(want.type)) {
    *why = "type " + std::string(to_string(got.type)) + ", expected " + std::string(to_string(want.type));
    return false;
  }
  for (int64_t i = 0; i < got.count(); ++i) {
    const double v = element_value(got, i);
    if (v != 0.0 && v != 1.0) {
      *why = "element " + std::to_string(i) + " is " + std::to_string(v) + ", not 0 or 1";
      return false;
    }
  }
  return true;
}

struct Row {
  std::string name, status, ops, reason;
};

// Every node test (or those whose name contains `filter`), in name order.
inline std::vector<Row> run_all(const ExecutorFactory& make_executor, const char* filter) {
  fs::path tmp_dir = fs::temp_directory_path() / ("tandem_conf_" + std::to_string(::getpid()));
  fs::create_directories(tmp_dir);
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(kDataDir))
    if (fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  std::vector<Row> rows;
  for (const fs::path& d : dirs) {
    const std::string name = d.filename().string();
    if (filter && name.find(filter) == std::string::npos) continue;
    Outcome o;
    std::vector<std::string> ops;
    try {
      OnnxModelSummary s = summarize_onnx((d / "model.onnx").string());
      std::set<std::string> uniq(s.op_types.begin(), s.op_types.end());
      ops.assign(uniq.begin(), uniq.end());
      for (const std::string& op : s.op_types)
        if (!is_supported_onnx_op(op)) {
          o = {"skip", "unsupported op " + op};
          break;
        }
      if (o.status.empty()) o = run_one(d, ops, tmp_dir, make_executor);
    } catch (const std::exception& e) {
      o = {"fail", std::string("error: ") + e.what()};
    }
    std::string op_list;
    for (const std::string& op : ops) op_list += (op_list.empty() ? "" : ",") + op;
    rows.push_back({name, o.status, op_list, o.reason});
  }
  fs::remove_all(tmp_dir);
  return rows;
}

// ---- The committed expectations ---------------------------------------------------------------
// expected.tsv: name<TAB>status<TAB>reason class, one line per node test (all of them).
// expected_<backend>.tsv: name<TAB>status<TAB>reason class<TAB>why — the backend's exceptions.
struct Expected {
  std::string status, reason_class, why;
};
using ExpectedTable = std::map<std::string, Expected>;

inline std::string expected_path(const std::string& file) {
  return std::string(TANDEM_SOURCE_DIR) + "/tests/conformance/" + file;
}

inline ExpectedTable read_expected(const std::string& path, bool with_why) {
  ExpectedTable t;
  std::ifstream f(path);
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, '\t');) cols.push_back(c);
    cols.resize(std::max<size_t>(cols.size(), 4));
    if (cols[0].empty() || cols[1].empty() || (with_why && cols[3].empty()))
      throw Error(path + ":" + std::to_string(n) + ": expected name<TAB>status<TAB>class" +
                  (with_why ? "<TAB>why (the why is required)" : ""));
    t[cols[0]] = {cols[1], cols[2], cols[3]};
  }
  return t;
}

inline void write_expected(const std::string& path, const std::vector<Row>& rows) {
  std::ofstream f(path + ".tmp");
  f << "# Every ONNX node test's status on the CPU backend: name, status, reason class.\n"
       "# Written by TANDEM_UPDATE_GOLDEN=1 tests/conformance/tandem_conformance after a reviewed change;\n"
       "# tests/conformance/conformance_runner.h says what the classes mean.\n";
  for (const Row& r : rows) f << r.name << '\t' << r.status << '\t' << reason_class({r.status, r.reason}) << '\n';
  f.close();
  fs::rename(path + ".tmp", path);
}

// Names whose status or reason class differ from the table, each with both.
inline std::vector<std::string> changed_statuses(const std::vector<Row>& rows, const ExpectedTable& want,
                                                 bool whole_table) {
  std::vector<std::string> changed;
  std::set<std::string> seen;
  for (const Row& r : rows) {
    seen.insert(r.name);
    const std::string got = r.status + " (" + reason_class({r.status, r.reason}) + ")";
    auto w = want.find(r.name);
    if (w == want.end()) {
      changed.push_back(r.name + ": new test, " + got + ": " + r.reason);
      continue;
    }
    const std::string exp = w->second.status + " (" + w->second.reason_class + ")";
    if (got != exp) changed.push_back(r.name + ": expected " + exp + ", got " + got + ": " + r.reason);
  }
  if (whole_table)
    for (const auto& [name, w] : want)
      if (!seen.count(name)) changed.push_back(name + ": in the table, not in " + std::string(kDataDir));
  return changed;
}

// Runs every node test on one backend and checks each status against expected.tsv, overridden
// by the backend's exceptions file (empty name: none). TANDEM_UPDATE_GOLDEN=1 rewrites expected.tsv
// (CPU only); TANDEM_CONFORMANCE_REPORT=file writes name<TAB>status<TAB>ops<TAB>reason per test
// (scripts/conformance-report.sh); TANDEM_CONFORMANCE_FILTER=substring runs a subset.
inline void run_and_check(const std::string& backend, const ExecutorFactory& make_executor,
                          const std::string& exceptions_file) {
  ASSERT_TRUE(fs::exists(kDataDir)) << kDataDir << kDataMissing;
  const char* filter = std::getenv("TANDEM_CONFORMANCE_FILTER");
  const std::vector<Row> rows = run_all(make_executor, filter);
  std::map<std::string, int> counts, skip_reasons;
  std::ofstream report;
  if (const char* r = std::getenv("TANDEM_CONFORMANCE_REPORT")) report.open(r);
  for (const Row& r : rows) {
    ++counts[r.status];
    if (report) report << r.name << '\t' << r.status << '\t' << r.ops << '\t' << r.reason << '\n';
    if (r.status == "skip") ++skip_reasons[reason_class({r.status, r.reason})];
    if (r.status == "fail") std::printf("  FAIL %s: %s\n", r.name.c_str(), r.reason.c_str());
  }
  std::printf("conformance (%s backend): %d passed, %d failed, %d skipped\n", backend.c_str(), counts["pass"],
              counts["fail"], counts["skip"]);
  for (const auto& [r, n] : skip_reasons) std::printf("  skipped %4d: %s\n", n, r.c_str());
  const std::string table = expected_path("expected.tsv");
  if (std::getenv("TANDEM_UPDATE_GOLDEN") && exceptions_file.empty() && !filter) {
    write_expected(table, rows);
    std::printf("wrote %s\n", table.c_str());
    return;
  }
  ASSERT_TRUE(fs::exists(table)) << table << " is missing: TANDEM_UPDATE_GOLDEN=1 " << "tandem_conformance writes it";
  ExpectedTable want = read_expected(table, false);
  if (!exceptions_file.empty()) {
    const ExpectedTable exceptions = read_expected(expected_path(exceptions_file), true);
    for (const auto& [name, e] : exceptions) {
      auto base = want.find(name);
      ASSERT_TRUE(base != want.end()) << exceptions_file << ": '" << name << "' is not in expected.tsv";
      ASSERT_FALSE(base->second.status == e.status && base->second.reason_class == e.reason_class)
          << exceptions_file << ": '" << name << "' repeats expected.tsv (remove the exception)";
      base->second = e;
    }
  }
  const std::vector<std::string> changed = changed_statuses(rows, want, filter == nullptr);
  std::string list;
  for (const std::string& c : changed) list += "\n  " + c;
  EXPECT_TRUE(changed.empty()) << changed.size() << " node test(s) changed status on the " << backend
                               << " backend (fix the change, or after review rewrite the table: "
                                  "TANDEM_UPDATE_GOLDEN=1 tests/conformance/tandem_conformance"
                               << (exceptions_file.empty() ? "" : "; or list a backend exception in tests/conformance/" + exceptions_file)
                               << "):" << list;
}

}  // namespace tandem::conformance
