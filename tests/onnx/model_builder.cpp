#include "model_builder.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace tandem::test {

ModelBuilder::ModelBuilder(int64_t opset, int64_t ir) {
  m_.set_ir_version(ir);
  m_.set_producer_name("tandem-test");
  auto* o = m_.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m_.mutable_graph()->set_name("g");
}

ModelBuilder& ModelBuilder::input(const std::string& name, const std::vector<int64_t>& dims, int elem) {
  auto* vi = m_.mutable_graph()->add_input();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* sh = tt->mutable_shape();
  for (int64_t d : dims) {
    auto* dd = sh->add_dim();
    if (d < 0) dd->set_dim_param("?");
    else dd->set_dim_value(d);
  }
  return *this;
}

ModelBuilder& ModelBuilder::output(const std::string& name) {
  m_.mutable_graph()->add_output()->set_name(name);
  return *this;
}

ModelBuilder& ModelBuilder::init(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
  auto* t = m_.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  return *this;
}

ModelBuilder& ModelBuilder::init_i64(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& v) {
  auto* t = m_.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t x : v) t->add_int64_data(x);
  return *this;
}

onnx::NodeProto& ModelBuilder::node(const std::string& op, const std::vector<std::string>& in,
                                    const std::vector<std::string>& out, const std::string& name) {
  auto* n = m_.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return *n;
}

void ModelBuilder::attr_i(onnx::NodeProto& n, const std::string& name, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
void ModelBuilder::attr_f(onnx::NodeProto& n, const std::string& name, float v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
void ModelBuilder::attr_s(onnx::NodeProto& n, const std::string& name, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}
void ModelBuilder::attr_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

std::string temp_dir() {
  static const std::string dir = [] {
    auto p = std::filesystem::temp_directory_path() / ("tandem_onnx_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    return p.string();
  }();
  return dir;
}

std::string write_bytes(const std::string& file, const std::string& bytes) {
  const std::string path = temp_dir() + "/" + file;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string ModelBuilder::write(const std::string& file) const { return write_bytes(file, m_.SerializeAsString()); }

int run_cli(const std::string& args, std::string* out) {
  const std::string cmd = std::string(TANDEM_BINARY_DIR) + "/tools/tandem/tandem " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  out->clear();
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out->append(buf.data(), n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string models_dir() {
  const std::string d = std::string(TANDEM_SOURCE_DIR) + "/.data/models";
  if (!std::filesystem::exists(d + "/ch_PP-OCRv4_det_infer.onnx"))
    ADD_FAILURE() << d << " is missing the PP-OCR models: run scripts/fetch-data.sh first";
  return d;
}

}  // namespace tandem::test
