# CMake flags of the instrumented build that scripts/test.sh tests and scripts/fuzz.sh fuzzes:
# clang with AddressSanitizer + UndefinedBehaviorSanitizer and libFuzzer's coverage, -O1, no CUDA.
# Sourced, not run.
asan_cmake_flags=(-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=None
                  -DCMAKE_CXX_FLAGS=-O1 -DTANDEM_SANITIZE=ON -DTANDEM_FUZZ=ON -DTANDEM_CUDA=OFF -DTANDEM_BENCH=OFF)
