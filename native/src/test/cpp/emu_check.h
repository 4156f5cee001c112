// Scaffolding shared by the emulation tests (lora_emu_test.cpp, mask_emu_test.cpp): the SM count the kernels plan
// their grids for, check counting, failure reports and the exit status. Included once per test binary.
#pragma once
#include <cstdio>
#include <string>

namespace sa2va {
// Replaces common/runtime's device query: tests set it to split the work over blocks in different ways.
int g_sms = 132;
int device_sm_count() { return g_sms; }
}  // namespace sa2va

namespace emu_check {

inline int failures = 0, checks = 0;

// Counts a failure; the first 30 are printed (one broken kernel would otherwise flood the log).
inline void fail(const std::string& what) {
  ++failures;
  if (failures <= 30) std::fprintf(stderr, "FAIL %s\n", what.c_str());
}

inline bool flag(int argc, char** argv, const char* name) { return argc > 1 && std::string(argv[1]) == name; }

// The summary line and main's return value.
inline int report() {
  std::printf("%s: %d of %d checks failed\n", failures ? "FAILED" : "OK", failures, checks);
  return failures ? 1 : 0;
}

}  // namespace emu_check
