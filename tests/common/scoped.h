// Test helpers that last one scope: an environment variable set (or unset) and then restored to
// what it was (the executors read their switches when they compile), and a fresh temporary
// folder removed at the end.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace tandem::test {

struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  // v == nullptr unsets the variable for the scope.
  ScopedEnv(const char* n, const char* v) : name(n) {
    if (const char* o = std::getenv(n)) old = o;
    if (v) setenv(n, v, 1);
    else unsetenv(n);
  }
  ~ScopedEnv() {
    if (old) setenv(name.c_str(), old->c_str(), 1);
    else unsetenv(name.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
};

struct ScopedTempDir {
  std::filesystem::path path;
  explicit ScopedTempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() / ("tandem_test_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
};

}  // namespace tandem::test
