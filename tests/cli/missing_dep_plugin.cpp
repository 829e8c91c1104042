// A stand-in libtandem_cuda.so whose dependency (libtandem_missing_dep.so) cannot be found: the
// registry must report the missing library in one line (backend_plugin_test.cpp).
extern "C" int tandem_missing_dep_value();
extern "C" int tandem_missing_dep_plugin_probe() { return tandem_missing_dep_value(); }
