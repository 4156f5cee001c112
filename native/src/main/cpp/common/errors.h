// Error helpers: argument errors become std::invalid_argument, runtime failures std::runtime_error.
// The JavaCPP glue rethrows both as java.lang.RuntimeException carrying what().
#pragma once
#include <stdexcept>
#include <string>
#include <sstream>

namespace sa2va {

template <typename... Args>
inline std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

[[noreturn]] inline void fail_arg(const std::string& msg) { throw std::invalid_argument(msg); }

// Thrown by every CUDA entry point of a library built without nvcc.
[[noreturn]] inline void fail_no_cuda(const char* fn) {
  throw std::runtime_error(str_cat("sa2va native library was built without CUDA (nvcc was not found at build "
                                   "time), so the CUDA kernel '", fn, "' is not available; rebuild with nvcc "
                                   "on the PATH or use CPU tensors"));
}

}  // namespace sa2va

#define SA2VA_CHECK_ARG(cond, ...) \
  do { if (!(cond)) ::sa2va::fail_arg(::sa2va::str_cat(__VA_ARGS__)); } while (0)
