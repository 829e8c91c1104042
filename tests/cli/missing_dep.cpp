// A library that the stand-in plugin (missing_dep_plugin.cpp) needs and that is not installed
// where the loader looks: the CUDA plugin without its libcudnn, in miniature.
extern "C" int tandem_missing_dep_value() { return 42; }
