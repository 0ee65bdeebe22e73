// A CPU allocator for LibTorch that keeps freed blocks above glibc's mmap threshold (32 MiB) for
// the next request of the same size. glibc returns such blocks to the kernel on free, so a
// training step that makes a GPT-2 head's 200 MB logits and their gradient page-faults them in
// again every step (~5 % of a step, bench/gpt-bench --profile). Smaller blocks go to glibc's heap,
// which keeps them (runtime.cpp: keep_freed_memory). setup_runtime() installs it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnzoo::engine {

// Makes the cache LibTorch's CPU allocator, keeping at most `max_cached_bytes` of freed blocks.
// Idempotent: a second call only changes the limit.
void install_large_block_cache(std::size_t max_cached_bytes);

// Bytes of freed blocks held for reuse now, and how many requests were served from them.
std::size_t large_block_cache_bytes();
int64_t large_block_cache_hits();

}  // namespace attnzoo::engine
