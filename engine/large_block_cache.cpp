#include "engine/large_block_cache.h"

#include <map>
#include <mutex>
#include <unordered_map>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/version.h>

#include <cstring>

// LibTorch 2.3 made Allocator::allocate non-const and added a pure virtual copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define ATTNZOO_ALLOCATE_CONST
#define ATTNZOO_ALLOCATOR_COPY_DATA 1
#else
#define ATTNZOO_ALLOCATE_CONST const
#define ATTNZOO_ALLOCATOR_COPY_DATA 0
#endif

namespace attnzoo::engine {
namespace {

constexpr std::size_t kLarge = std::size_t{32} << 20;  // glibc's largest mmap threshold

struct State {
  std::mutex mutex;
  std::unordered_map<void*, std::size_t> live;  // large blocks in use, with their sizes
  std::multimap<std::size_t, void*> free;       // large blocks kept for reuse
  std::size_t free_bytes = 0, max_bytes = 0;
  int64_t hits = 0;
};

State& state() {
  static auto* s = new State;  // never destroyed: tensors may be freed during static destruction
  return *s;
}

void release(void* p) {
  if (!p) return;
  auto& s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.live.find(p);
    if (it != s.live.end()) {
      const std::size_t n = it->second;
      s.live.erase(it);
      // Make room by dropping kept blocks (the smallest first), then keep this one.
      while (s.free_bytes + n > s.max_bytes && !s.free.empty()) {
        auto victim = s.free.begin();
        c10::free_cpu(victim->second);
        s.free_bytes -= victim->first;
        s.free.erase(victim);
      }
      if (s.free_bytes + n <= s.max_bytes) {
        s.free.emplace(n, p);
        s.free_bytes += n;
        return;
      }
    }
  }
  c10::free_cpu(p);
}

class LargeBlockCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t n) ATTNZOO_ALLOCATE_CONST override {
    void* p = nullptr;
    if (n >= kLarge) {
      auto& s = state();
      std::lock_guard<std::mutex> lock(s.mutex);
      auto it = s.free.find(n);
      if (it != s.free.end()) {
        p = it->second;
        s.free_bytes -= n;
        s.free.erase(it);
        ++s.hits;
      } else {
        p = c10::alloc_cpu(n);
      }
      s.live.emplace(p, n);
      return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
    }
    p = c10::alloc_cpu(n);
    return {p, p, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }  // frees either kind
#if ATTNZOO_ALLOCATOR_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif
};

}  // namespace

void install_large_block_cache(std::size_t max_cached_bytes) {
  static LargeBlockCache allocator;
  {
    std::lock_guard<std::mutex> lock(state().mutex);
    state().max_bytes = max_cached_bytes;
  }
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
}

std::size_t large_block_cache_bytes() {
  std::lock_guard<std::mutex> lock(state().mutex);
  return state().free_bytes;
}

int64_t large_block_cache_hits() {
  std::lock_guard<std::mutex> lock(state().mutex);
  return state().hits;
}

}  // namespace attnzoo::engine
