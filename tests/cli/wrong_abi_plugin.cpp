// A stand-in libtandem_cuda.so built for another plugin interface: the registry must refuse it in
// one line before touching its Backend (backend_plugin_test.cpp).
#include "tandem/backend.h"

extern "C" __attribute__((visibility("default"))) const tandem::BackendPlugin* tandem_backend_plugin() {
  static const tandem::BackendPlugin plugin{tandem::kBackendPluginAbi + 1, "0.0.0-other", 0, nullptr,
                                            "never read: the version check comes first"};
  return &plugin;
}
