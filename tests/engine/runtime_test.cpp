// engine/runtime.h and engine/progress.h: bf16 autocast scoping, thread and device set-up, the
// BLAS probe, and the duration format of the progress display.
#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "engine/progress.h"
#include "engine/runtime.h"

namespace {

namespace engine = attnzoo::engine;

TEST(AutocastGuard, Bf16RunsMatmulsInBf16OnlyInsideTheScope) {
  auto a = torch::randn({4, 8}), b = torch::randn({8, 3});
  {
    engine::AutocastGuard guard("bf16", torch::kCPU);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    {
      engine::AutocastGuard inner("bf16", torch::kCPU);  // nesting keeps it on
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
  {
    engine::AutocastGuard fp32("fp32", torch::kCPU);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
  }
}

TEST(Runtime, SetsThreadsAndRejectsBadDevices) {
  const int before = at::get_num_threads();
  EXPECT_EQ(engine::setup_runtime({"cpu", 1, true}), torch::Device(torch::kCPU));
  EXPECT_EQ(at::get_num_threads(), 1);
  engine::setup_runtime({"auto", 0, true});
  EXPECT_EQ(at::get_num_threads(), engine::available_cores());
  EXPECT_THROW(engine::setup_runtime({"tpu", 0, true}), std::invalid_argument);
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(engine::setup_runtime({"cuda", 0, true}), std::invalid_argument);
  }
  at::set_num_threads(before);
}

// LibTorch's at::parallel_for is an inline OpenMP loop in its headers: in code built without
// -fopenmp it runs on the calling thread alone (the fused AdamW update did, until the build added
// OpenMP). Two threads asked for must both take part.
TEST(Runtime, ParallelForInOurCodeRunsOnSeveralThreads) {
  const int before = at::get_num_threads();
  engine::setup_runtime({"cpu", 2, true});
  std::mutex mu;
  std::set<int> threads;
  at::parallel_for(0, 1000, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mu);
    threads.insert(at::get_thread_num());
  });
  EXPECT_EQ(threads.size(), 2u);
  at::set_num_threads(before);
}

TEST(Runtime, ReportsTheLoadedBlas) {
  // LibTorch is linked and loaded, so some BLAS is mapped; set-up installs OpenBLAS.
  const auto blas = engine::loaded_blas();
  EXPECT_NE(blas, "none");
  EXPECT_NE(blas, "reference") << "scripts/setup.sh should have selected OpenBLAS";
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(engine::Progress::format_duration(0), "0s");
  EXPECT_EQ(engine::Progress::format_duration(12.4), "12s");
  EXPECT_EQ(engine::Progress::format_duration(245), "4:05");
  EXPECT_EQ(engine::Progress::format_duration(3723), "1:02:03");
  EXPECT_EQ(engine::Progress::format_duration(-1), "?");
  EXPECT_EQ(engine::Progress::format_duration(std::nan("")), "?");
}

}  // namespace
