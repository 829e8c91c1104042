// NumPy .npy files (format version 1.0 / 2.0 / 3.0 on read, 1.0 on write): the exchange format for
// inputs and outputs of `tandem run`, the ONNX Runtime peer and the calibration batchers.
// Supported dtypes, little-endian, C order: <f4 (fp32), <f2 (fp16), |i1 (int8), |u1 (uint8),
// <i4 (int32), <i8 (int64), |b1 (bool). A 0-d array reads as dims {} (one element).
#pragma once

#include <string>

#include "tandem/host_tensor.h"

namespace tandem {

// Throws Error ("<path>: <what>") on a missing file, bad magic, unsupported dtype, Fortran order,
// a malformed header or truncated data. The tensor's name is the file's stem ("x.npy" -> "x").
HostTensor read_npy(const std::string& path);

// Writes atomically: "<path>.tmp.<pid>" then rename. Throws Error naming the path on failure.
void write_npy(const std::string& path, const HostTensor& t);

// The descr string for a DataType ("<f4"), and the inverse. Return false for unsupported.
std::string npy_descr(DataType t);
bool parse_npy_descr(const std::string& descr, DataType* out);

}  // namespace tandem
