// Runs a shell command line for the tests that drive the CLI: its exit status and everything it
// wrote to stdout (redirect stderr in the command line: "2>&1" to keep it, "2>/dev/null" to drop it).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
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

}  // namespace tandem::test
