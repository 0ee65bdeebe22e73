#include "engine/runtime.h"

#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <csignal>

#include <fstream>
#include <iostream>
#include <stdexcept>

#include <ATen/autocast_mode.h>

#include "engine/large_block_cache.h"

namespace attnzoo::engine {

int64_t available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line, found = "none";
  while (std::getline(maps, line)) {
    if (line.find("libmkl") != std::string::npos) return "mkl";
    if (line.find("libblas.so") == std::string::npos && line.find("libopenblas") == std::string::npos) continue;
    if (line.find("openblas-openmp") != std::string::npos) found = "openblas-openmp";
    else if (line.find("openblas-pthread") != std::string::npos) found = "openblas-pthread";
    else if (line.find("/blas/libblas.so") != std::string::npos) return "reference";
    else if (found == "none") found = "other";
  }
  return found;
}

namespace {

// Denormal floats (e.g. tiny attention weights) make every FMA that meets them ~100x slower; a
// step can run 10x longer. setFlushDenormal sets the calling thread's MXCSR only, so each thread
// of the intra-op pool (OpenMP, which OpenBLAS shares) sets it too.
// A training step allocates and frees the same large activations every time. glibc hands
// allocations above its mmap threshold to fresh mmaps and trims freed heap memory back to the
// kernel, so each step page-faults tens of MB in again. Keeping freed memory in the heap (as
// jemalloc/tcmalloc do) removes most of those faults.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest: larger blocks come from the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
  // Larger blocks: kept by LibTorch's CPU allocator, up to a quarter of the memory (8 GiB at most).
  const auto ram = static_cast<std::size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  install_large_block_cache(std::min(ram / 4, std::size_t{8} << 30));
}

void flush_denormals_everywhere() {
  at::globalContext().setFlushDenormal(true);
  const int64_t n = at::get_num_threads();
  at::parallel_for(0, n, 1, [](int64_t, int64_t) { at::globalContext().setFlushDenormal(true); });
}

}  // namespace

torch::Device setup_runtime(const RuntimeOptions& opt) {
  torch::Device device(torch::kCPU);
  if (opt.device == "cuda" || (opt.device == "auto" && torch::cuda::is_available())) {
    if (!torch::cuda::is_available())
      throw std::invalid_argument("--device cuda: no CUDA device is available to this LibTorch build");
    device = torch::Device(torch::kCUDA);
  } else if (opt.device != "cpu" && opt.device != "auto") {
    throw std::invalid_argument("--device: expected auto, cpu or cuda, got '" + opt.device + "'");
  }
  if (opt.threads < 0) throw std::invalid_argument("--threads must be >= 0");
  at::set_num_threads(static_cast<int>(opt.threads > 0 ? opt.threads : available_cores()));
  flush_denormals_everywhere();
  keep_freed_memory();
  // Past a file size limit, writes fail with EFBIG (reported with the file name) instead of the
  // process being killed by SIGXFSZ halfway through a checkpoint.
  std::signal(SIGXFSZ, SIG_IGN);
  if (!opt.quiet && device.is_cpu() && loaded_blas() == "reference")
    std::cerr << "warning: LibTorch is using the reference BLAS (slow matmuls, ~30x); install an optimized one: "
                 "apt-get install libopenblas0-openmp\n";
  return device;
}

AutocastGuard::AutocastGuard(const std::string& dtype, torch::Device device) {
  if (dtype != "bf16") return;
  active_ = true;
  cuda_ = device.is_cuda();
  // Same as Python's `with torch.autocast(...)`: enable, set dtype, count nesting; the cache of
  // cast weights is cleared when the outermost guard exits.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  prev_enabled_ = at::autocast::is_autocast_enabled(type);
  prev_dtype_ = at::autocast::get_autocast_dtype(type);
  at::autocast::set_autocast_enabled(type, true);
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
#else
  if (cuda_) {
    prev_enabled_ = at::autocast::is_enabled();
    prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  } else {
    prev_enabled_ = at::autocast::is_cpu_enabled();
    prev_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
#endif
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_enabled(type, prev_enabled_);
  at::autocast::set_autocast_dtype(type, prev_dtype_);
#else
  if (cuda_) {
    at::autocast::set_enabled(prev_enabled_);
    at::autocast::set_autocast_gpu_dtype(prev_dtype_);
  } else {
    at::autocast::set_cpu_enabled(prev_enabled_);
    at::autocast::set_autocast_cpu_dtype(prev_dtype_);
  }
#endif
}

}  // namespace attnzoo::engine
