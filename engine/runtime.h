// Where and how computations run: device choice, CPU threads, the BLAS that LibTorch loaded, and
// bf16 autocast. Every app calls setup_runtime() once after parsing its flags.
#pragma once

#include <optional>
#include <string>

#include <torch/torch.h>

namespace attnzoo::engine {

struct RuntimeOptions {
  std::string device = "auto";  // auto | cpu | cuda
  int64_t threads = 0;          // 0 = all cores available to this process
  bool quiet = false;           // no warning lines
};

// Resolves the device (throws std::invalid_argument for --device cuda without a GPU), sets the
// thread count, flushes denormals on CPU (they can double a step's time) and warns on stderr when
// the reference BLAS is loaded. Returns the device.
torch::Device setup_runtime(const RuntimeOptions& opt);

// Cores this process may run on (sched_getaffinity), at least 1.
int64_t available_cores();

// The BLAS shared library mapped into this process ("openblas-openmp", "reference", "mkl" or
// "none"): read from /proc/self/maps after LibTorch has loaded.
std::string loaded_blas();

// bf16 autocast for the lifetime of the guard when dtype is "bf16" (CPU or CUDA); nothing for
// "fp32". Weights stay fp32 (master weights); matmuls run in bf16.
class AutocastGuard {
 public:
  AutocastGuard(const std::string& dtype, torch::Device device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

}  // namespace attnzoo::engine
