#include "tandem/host_tensor.h"

namespace tandem {

HostTensor HostTensor::zeros(std::string name, DataType type, Dims dims) {
  HostTensor t;
  t.name = std::move(name);
  t.type = type;
  t.dims = std::move(dims);
  t.data.assign(static_cast<size_t>(volume(t.dims)) * element_size(type), 0);
  return t;
}

}  // namespace tandem
