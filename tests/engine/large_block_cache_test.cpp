// engine/large_block_cache.h: a freed block above 32 MiB is handed back for the next request of its
// size instead of going back to the kernel; the kept bytes stay under the limit; small blocks and
// tensors made before the install free as before.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "engine/large_block_cache.h"

namespace {

namespace e = attnzoo::engine;

TEST(LargeBlockCache, ReusesFreedLargeBlocksWithinTheLimit) {
  auto before_install = torch::ones({9 << 20});  // 36 MiB, perhaps from the default allocator
  // Start empty whatever earlier tests left: with a limit of 0 a freed block drops every kept one.
  e::install_large_block_cache(0);
  { auto flush = torch::empty({9 << 20}); }
  ASSERT_EQ(e::large_block_cache_bytes(), 0u);
  e::install_large_block_cache(std::size_t{200} << 20);
  const int64_t hits = e::large_block_cache_hits();
  void* first = nullptr;
  {
    auto t = torch::empty({10 << 20});  // 40 MiB
    first = t.data_ptr();
    t.fill_(1.0f);
  }
  EXPECT_EQ(e::large_block_cache_bytes(), std::size_t{40} << 20);
  {
    auto t = torch::empty({10 << 20});
    EXPECT_EQ(t.data_ptr(), first) << "the same block again";
    EXPECT_EQ(e::large_block_cache_hits(), hits + 1);
    EXPECT_EQ(e::large_block_cache_bytes(), 0u);
    t.fill_(2.0f);
    EXPECT_EQ(t.sum().item<double>(), 2.0 * (10 << 20));
  }
  {
    auto other = torch::empty({12 << 20});  // another size: a new block
    EXPECT_NE(other.data_ptr(), first);
  }
  EXPECT_EQ(e::large_block_cache_bytes(), std::size_t{88} << 20);
  // Past the limit the smallest kept blocks go back to the system.
  {
    auto big = torch::empty({40 << 20});  // 160 MiB
  }
  EXPECT_LE(e::large_block_cache_bytes(), std::size_t{200} << 20);
  EXPECT_EQ(e::large_block_cache_bytes(), std::size_t{160} << 20);
  // Small tensors free as usual.
  auto small = torch::randn({1000});
  EXPECT_EQ(small.numel(), 1000);
  // A limit of 0 keeps nothing.
  e::install_large_block_cache(0);
  { auto t = torch::empty({10 << 20}); }
  EXPECT_EQ(e::large_block_cache_bytes(), 0u);
  before_install = torch::Tensor();
  EXPECT_EQ(e::large_block_cache_bytes(), 0u);
}

}  // namespace
