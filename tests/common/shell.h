// For the tests that drive the CLI: a shell runner, and a fixture with a fresh folder per test.
// run_shell runs a shell command line: its exit status and everything it
// wrote to stdout (redirect stderr in the command line: "2>&1" to keep it, "2>/dev/null" to drop it).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace tandem::test {

struct ShellResult {
  int rc = -1;      // the exit status; -1 when the command did not exit normally or did not start
  std::string out;  // stdout (and stderr when the command line merges it)
};

inline ShellResult run_shell(const std::string& command) {
  ShellResult r;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// A fresh temporary folder per test (named after the test, removed afterwards): dir, p("file").
class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          (prefix_ + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string p(const std::string& f) const { return (dir / f).string(); }
  std::filesystem::path dir;

 private:
  std::string prefix_;
};

}  // namespace tandem::test
