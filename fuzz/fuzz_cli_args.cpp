// The CLI's value parsers: shapes (--shape, trtexec's --shapes), tensor formats, precisions,
// devices, strategies, targets, data types. Each answers or throws one tandem::Error.
#include <cstdint>
#include <string>

#include "tandem/builder.h"
#include "tandem/dla.h"
#include "tandem/onnx.h"
#include "tandem/plan.h"
#include "tandem/quant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  try {
    (void)tandem::parse_shape_arg(s);
  } catch (const tandem::Error&) {
  }
  try {
    (void)tandem::parse_tensor_format(s);
  } catch (const tandem::Error&) {
  }
  tandem::Precision p;
  tandem::Device d;
  tandem::Strategy st;
  tandem::DlaTarget t;
  tandem::DataType dt;
  tandem::LastBatch lb;
  tandem::ResizeMethod rm;
  tandem::CalibAlgorithm ca;
  (void)tandem::parse_precision(s, &p);
  (void)tandem::parse_device(s, &d);
  (void)tandem::parse_strategy(s, &st);
  (void)tandem::parse_dla_target(s, &t);
  (void)tandem::parse_data_type(s, &dt);
  (void)tandem::parse_last_batch(s, &lb);
  (void)tandem::parse_resize_method(s, &rm);
  (void)tandem::parse_calib_algorithm(s, &ca);
  return 0;
}
