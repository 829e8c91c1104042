// Test-only: builds small ONNX models with the generated protobuf classes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tandem_onnx_pb/onnx.pb.h"

namespace tandem::test {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 13, int64_t ir = 8);
  // dims: -1 = dynamic (dim_param "?").
  ModelBuilder& input(const std::string& name, const std::vector<int64_t>& dims, int elem = onnx::TensorProto::FLOAT);
  ModelBuilder& output(const std::string& name);
  ModelBuilder& init(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v);
  ModelBuilder& init_i64(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& v);
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& in, const std::vector<std::string>& out,
                        const std::string& name = "");
  static void attr_i(onnx::NodeProto& n, const std::string& name, int64_t v);
  static void attr_f(onnx::NodeProto& n, const std::string& name, float v);
  static void attr_s(onnx::NodeProto& n, const std::string& name, const std::string& v);
  static void attr_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v);
  onnx::ModelProto& proto() { return m_; }
  // Writes to a fresh file under the test temp dir; returns the path.
  std::string write(const std::string& file) const;

 private:
  onnx::ModelProto m_;
};

std::string temp_dir();
std::string write_bytes(const std::string& file, const std::string& bytes);
// Runs the tandem CLI; returns the exit code, stderr+stdout in *out.
int run_cli(const std::string& args, std::string* out);
std::string models_dir();  // .data/models; fails the test with a fetch hint when missing

}  // namespace tandem::test
