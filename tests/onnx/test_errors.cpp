// Bad input: one clear line naming the file and the node or option; the CLI exits 2.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "model_builder.h"
#include "tandem/onnx.h"

using namespace tandem;
using tandem::test::ModelBuilder;

namespace {

// Checks the library error and the CLI (`tandem inspect <path> <args>`): exit 2, one line.
void expect_error(const std::string& path, const std::string& args, const std::vector<std::string>& parts) {
  ImportOptions opt;
  std::string lib_msg;
  try {
    // Same parsing as the CLI: every "--shape X" pair.
    std::istringstream is(args);
    std::string tok;
    while (is >> tok)
      if (tok == "--shape" && is >> tok) opt.shapes.push_back(parse_shape_arg(tok));
    import_onnx(path, opt);
  } catch (const Error& e) {
    lib_msg = e.what();
  }
  std::string out;
  const int rc = test::run_cli("inspect '" + path + "' " + args, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_EQ(out.rfind("tandem: error: ", 0), 0u) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "not one line: " << out;
  for (const auto& p : parts) EXPECT_NE(out.find(p), std::string::npos) << "missing '" << p << "' in: " << out;
  if (args.find("--shape") == std::string::npos || !lib_msg.empty()) {
    for (const auto& p : parts) EXPECT_NE(lib_msg.find(p), std::string::npos) << "library: missing '" << p << "' in: " << lib_msg;
  }
}

ModelBuilder relu_model(int64_t opset = 13) {
  ModelBuilder b(opset);
  b.input("x", {1, 3, 4, 4}).output("y");
  b.node("Relu", {"x"}, {"y"}, "relu0");
  return b;
}

}  // namespace

TEST(OnnxErrors, MissingFile) { expect_error("/nonexistent/m.onnx", "", {"/nonexistent/m.onnx", "no such file"}); }

TEST(OnnxErrors, TruncatedFile) {
  ModelBuilder b = relu_model();
  b.init("pad", {64}, std::vector<float>(64, 1.f));
  const std::string bytes = b.proto().SerializeAsString();
  const std::string p = test::write_bytes("truncated.onnx", bytes.substr(0, bytes.size() / 2));
  expect_error(p, "", {"truncated.onnx", "not a valid ONNX model"});
}

TEST(OnnxErrors, RandomBytes) {
  std::mt19937 rng(42);
  for (int i = 0; i < 20; ++i) {
    std::string bytes(64 + i * 37, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    const std::string p = test::write_bytes("random" + std::to_string(i) + ".onnx", bytes);
    expect_error(p, "", {"random" + std::to_string(i) + ".onnx"});
  }
}

TEST(OnnxErrors, MissingNodeInput) {
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("y");
  b.node("Add", {"x", "nowhere"}, {"y"}, "add0");
  expect_error(b.write("missing.onnx"), "", {"missing.onnx", "add0", "'nowhere'"});
}

TEST(OnnxErrors, Cycle) {
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("z");
  b.node("Add", {"x", "z"}, {"y"}, "a");
  b.node("Relu", {"y"}, {"z"}, "b");
  expect_error(b.write("cycle.onnx"), "", {"cycle.onnx", "cycle"});
}

TEST(OnnxErrors, UnknownOp) {
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("y");
  b.node("FancyOp", {"x"}, {"y"}, "fancy0");
  expect_error(b.write("unknown.onnx"), "", {"unknown.onnx", "fancy0", "FancyOp", "not supported"});
}

TEST(OnnxErrors, UnsupportedAttributeValue) {
  ModelBuilder b(13);
  b.input("x", {1, 3, 4, 4}).output("y");
  auto& n = b.node("Resize", {"x", "", "sc"}, {"y"}, "resize0");
  ModelBuilder::attr_s(n, "mode", "bogus");
  b.init("sc", {4}, {1, 1, 2, 2});
  expect_error(b.write("badattr.onnx"), "", {"badattr.onnx", "resize0", "mode 'bogus'"});
  ModelBuilder c(13);
  c.input("x", {1, 3, 4, 4}).output("y");
  auto& p = c.node("MaxPool", {"x"}, {"y"}, "pool0");
  ModelBuilder::attr_ints(p, "kernel_shape", {2, 2});
  ModelBuilder::attr_s(p, "auto_pad", "SIDEWAYS");
  expect_error(c.write("badpad.onnx"), "", {"badpad.onnx", "pool0", "auto_pad 'SIDEWAYS'"});
}

TEST(OnnxErrors, UnsupportedOpsetAndIr) {
  expect_error(relu_model(5).write("opset5.onnx"), "", {"opset5.onnx", "opset 5"});
  ModelBuilder b = relu_model();
  b.proto().set_ir_version(99);
  expect_error(b.write("ir99.onnx"), "", {"ir99.onnx", "IR version 99"});
}

TEST(OnnxErrors, DynamicInputNeedsShape) {
  ModelBuilder b(13);
  b.input("x", {1, 3, -1, -1}).output("y");
  b.node("Relu", {"x"}, {"y"}, "relu0");
  expect_error(b.write("dyn.onnx"), "", {"dyn.onnx: input 'x' has dynamic dims 1x3x?x?; fix it with --shape x:1x3xHxW"});
}

TEST(OnnxErrors, WrongShapeOptions) {
  ModelBuilder b(13);
  b.input("x", {1, 3, -1, -1}).output("y");
  b.node("Relu", {"x"}, {"y"}, "relu0");
  const std::string p = b.write("shapes.onnx");
  expect_error(p, "--shape nope:1x3x8x8", {"--shape nope:1x3x8x8", "no input 'nope'", "inputs: x"});
  expect_error(p, "--shape x:1x3x8", {"--shape x:1x3x8", "rank 4"});
  expect_error(p, "--shape x:1x3x-1x8", {"--shape 'x:1x3x-1x8'", "dim -1 is negative"});
  expect_error(p, "--shape x:1x3xabcx8", {"--shape 'x:1x3xabcx8'", "not an integer"});
  expect_error(p, "--shape x:2x3x8x8", {"--shape x:2x3x8x8", "fixed to 1"});
}

TEST(OnnxErrors, HostileValues) {
  {  // huge dims on an input
    ModelBuilder b(13);
    b.input("x", {1 << 30, 1 << 30, 1 << 30}).output("y");
    b.node("Relu", {"x"}, {"y"}, "relu0");
    expect_error(b.write("huge.onnx"), "", {"huge.onnx", "too large"});
  }
  {  // raw_data size mismatch
    ModelBuilder b(13);
    b.input("x", {1, 4}).output("y");
    auto* t = b.proto().mutable_graph()->add_initializer();
    t->set_name("k");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(4);
    t->set_raw_data(std::string(7, '\0'));
    b.node("Add", {"x", "k"}, {"y"}, "add0");
    expect_error(b.write("rawsize.onnx"), "", {"rawsize.onnx", "initializer 'k'", "raw_data has 7 bytes"});
  }
  {  // negative dims on an initializer
    ModelBuilder b(13);
    b.input("x", {1, 4}).output("y");
    auto* t = b.proto().mutable_graph()->add_initializer();
    t->set_name("k");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(-4);
    b.node("Add", {"x", "k"}, {"y"}, "add0");
    expect_error(b.write("negdims.onnx"), "", {"negdims.onnx", "initializer 'k'", "negative dim"});
  }
  {  // out-of-range gather index
    ModelBuilder b(13);
    b.input("x", {5, 4}).output("y");
    b.init_i64("i", {1}, {-9});
    b.node("Gather", {"x", "i"}, {"y"}, "gather0");
    expect_error(b.write("gather.onnx"), "", {"gather.onnx", "gather0", "index -9 out of range"});
  }
  {  // reshape to an overflowing volume
    ModelBuilder b(13);
    b.input("x", {2, 4}).output("y");
    b.init_i64("s", {3}, {int64_t{1} << 62, int64_t{1} << 62, 4});
    b.node("Reshape", {"x", "s"}, {"y"}, "reshape0");
    expect_error(b.write("reshape.onnx"), "", {"reshape.onnx", "reshape0"});
  }
  {  // negative pads
    ModelBuilder b(13);
    b.input("x", {1, 3, 4, 4}).output("y");
    auto& n = b.node("Conv", {"x", "w"}, {"y"}, "conv0");
    ModelBuilder::attr_ints(n, "pads", {-1, 0, 0, 0});
    b.init("w", {2, 3, 1, 1}, std::vector<float>(6, 1.f));
    expect_error(b.write("pads.onnx"), "", {"pads.onnx", "conv0", "pads"});
  }
}

TEST(OnnxErrors, ExternalDataOutsideTheFolder) {
  for (const std::string loc : {"../secret.bin", "/etc/passwd", "a/../../b.bin"}) {
    ModelBuilder b(13);
    b.input("x", {1, 4}).output("y");
    auto* t = b.proto().mutable_graph()->add_initializer();
    t->set_name("k");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(4);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value(loc);
    b.node("Add", {"x", "k"}, {"y"}, "add0");
    expect_error(b.write("ext/model.onnx"), "", {"model.onnx", "initializer 'k'", "outside the model's folder"});
  }
}

namespace {

// A model whose initializer 'big' declares `dims` of `type` and carries `fill` (what the caller
// sets on the TensorProto); the graph adds it to the input.
std::string model_with_tensor(const std::string& file, const std::vector<int64_t>& dims, int type,
                              const std::function<void(onnx::TensorProto&)>& fill = {}) {
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("y");
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name("big");
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  if (fill) fill(*t);
  b.node("Add", {"x", "big"}, {"y"}, "add0");
  return b.write(file);
}

// Imports `path` in a child whose address space is capped at what it has now plus 256 MiB, so an
// allocation sized by the declared dims instead of the file's bytes fails the test instead of
// passing quietly. Returns the error line, or what went wrong. ASan reserves terabytes of
// address space, so under it the cap is left off (the exact message is still checked).
std::string import_with_memory_cap(const std::string& path) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg;
#if !defined(__SANITIZE_ADDRESS__)
    long vm_kib = 0;
    std::ifstream st("/proc/self/status");
    for (std::string line; std::getline(st, line);)
      if (line.rfind("VmSize:", 0) == 0) vm_kib = std::stol(line.substr(7));
    const rlim_t cap = static_cast<rlim_t>(vm_kib) * 1024 + (rlim_t{256} << 20);
    rlimit rl{cap, cap};
    ::setrlimit(RLIMIT_AS, &rl);
#endif
    try {
      import_onnx(path, {});
      msg = "imported without an error";
    } catch (const Error& e) {
      msg = e.what();
    } catch (const std::exception& e) {
      msg = std::string("not a tandem::Error: ") + e.what();
    }
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

}  // namespace

// Issue 10 §4: dims of 2^40 floats and no data used to end in std::bad_alloc (exit 1).
TEST(OnnxErrors, InitializerWithoutDataIsOneLineNotAnAllocation) {
  const std::string p = model_with_tensor("nodata.onnx", {1048576, 1048576}, onnx::TensorProto::FLOAT);
  const std::string want = p + ": initializer 'big': dims 1048576x1048576 of float need 4398046511104 bytes, "
                               "the tensor carries no data (no raw_data, float_data or external data)";
  EXPECT_EQ(import_with_memory_cap(p), want);
  std::string out;
  EXPECT_EQ(test::run_cli("inspect '" + p + "'", &out), 2) << out;
  EXPECT_EQ(out, "tandem: error: " + want + "\n");
}

TEST(OnnxErrors, TensorDataShorterThanItsDimsFailsBeforeAllocating) {
  // 2^31 int64 = 16 GiB declared, three values present.
  const std::string typed = model_with_tensor("short_i64.onnx", {32768, 65536}, onnx::TensorProto::INT64,
                                              [](onnx::TensorProto& t) { for (int i = 0; i < 3; ++i) t.add_int64_data(i); });
  EXPECT_EQ(import_with_memory_cap(typed),
            typed + ": initializer 'big': int64_data has 3 values, dims 32768x65536 need 2147483648");
  expect_error(typed, "", {"short_i64.onnx", "initializer 'big'", "int64_data has 3 values"});
  // fp16 values live in int32_data.
  const std::string half = model_with_tensor("nodata_f16.onnx", {65536, 65536}, onnx::TensorProto::FLOAT16);
  EXPECT_EQ(import_with_memory_cap(half),
            half + ": initializer 'big': dims 65536x65536 of float16 need 8589934592 bytes, the tensor carries no "
                   "data (no raw_data, int32_data or external data)");
  // raw_data shorter than the dims.
  const std::string raw = model_with_tensor("short_raw.onnx", {65536, 65536}, onnx::TensorProto::FLOAT,
                                            [](onnx::TensorProto& t) { t.set_raw_data(std::string(16, '\0')); });
  EXPECT_EQ(import_with_memory_cap(raw),
            raw + ": initializer 'big': raw_data has 16 bytes, dims 65536x65536 of float need 17179869184");
  // External data: the declared length is checked against the data file's size first.
  test::write_bytes("extbig/w.bin", std::string(64, '\0'));
  ModelBuilder b(13);
  b.input("x", {1, 4}).output("y");
  auto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name("big");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(65536);
  t->add_dims(65536);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value("w.bin");
  b.node("Add", {"x", "big"}, {"y"}, "add0");
  const std::string ext = b.write("extbig/model.onnx");
  EXPECT_EQ(import_with_memory_cap(ext), ext + ": initializer 'big': external data offset 0 length 17179869184 exceed '" +
                                             test::temp_dir() + "/extbig/w.bin' (64 bytes)");
}

TEST(OnnxErrors, ConstantAttributeTensorWithoutDataIsOneLine) {
  {  // Constant node
    ModelBuilder b(13);
    b.input("x", {1, 4}).output("y");
    auto& n = b.node("Constant", {}, {"k"}, "const0");
    auto* a = n.add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
    a->mutable_t()->add_dims(1048576);
    a->mutable_t()->add_dims(1048576);
    b.node("Add", {"x", "k"}, {"y"}, "add0");
    const std::string p = b.write("const_nodata.onnx");
    const std::string want = p + ": node 'const0' (Constant): dims 1048576x1048576 of float need 4398046511104 "
                                 "bytes, the tensor carries no data (no raw_data, float_data or external data)";
    EXPECT_EQ(import_with_memory_cap(p), want);
    std::string out;
    EXPECT_EQ(test::run_cli("inspect '" + p + "'", &out), 2) << out;
    EXPECT_EQ(out, "tandem: error: " + want + "\n");
  }
  {  // ConstantOfShape's value attribute
    ModelBuilder b(13);
    b.input("x", {1, 4}).output("y");
    b.init_i64("shape", {2}, {1, 4});
    auto& n = b.node("ConstantOfShape", {"shape"}, {"k"}, "cos0");
    auto* a = n.add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
    a->mutable_t()->add_dims(1048576);
    a->mutable_t()->add_dims(1048576);
    b.node("Add", {"x", "k"}, {"y"}, "add0");
    const std::string p = b.write("cos_nodata.onnx");
    EXPECT_EQ(import_with_memory_cap(p), p + ": node 'cos0' (ConstantOfShape): dims 1048576x1048576 of float need "
                                             "4398046511104 bytes, the tensor carries no data (no raw_data, "
                                             "float_data or external data)");
    expect_error(p, "", {"cos_nodata.onnx", "cos0", "carries no data"});
  }
}

// A tiny model that declares activations far larger than its file: refused at import with one
// line naming the file and the largest tensor, before an executor could allocate them.
TEST(OnnxErrors, ActivationsOverTheMemoryCapAreOneLine) {
  test::ModelBuilder b;
  b.input("x", {1, 1, 1, 1}).output("y");
  b.init_i64("shape", {4}, {1, 256, 1024, 1024});  // 1 GiB of float32
  b.node("Expand", {"x", "shape"}, {"y"}, "expand");
  std::string p = b.write("expand_bomb.onnx");
  std::string out;
  EXPECT_EQ(test::run_cli("inspect '" + p + "'", &out), 0) << out;  // 1 GiB: under the default cap
  ::setenv("TANDEM_MEMORY_CAP", "512MiB", 1);
  EXPECT_EQ(test::run_cli("inspect '" + p + "'", &out), 2) << out;
  ::unsetenv("TANDEM_MEMORY_CAP");
  EXPECT_EQ(out, "tandem: error: " + p + ": its tensors need 1024 MiB at the peak (largest: 'y', 1024 MiB), over the "
                 "memory cap of 512 MiB (set TANDEM_MEMORY_CAP, e.g. 64GiB, to allow more)\n");
}
