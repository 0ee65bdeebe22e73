// Tests for datasets/token_files: the nanoGPT .bin/meta.json layout written and read back, random
// batches as a pure function of (seed, split, step, micro) checked against the raw ids, complete
// window batches, and one test per error a user can meet (short split, wide ids, odd files, no meta).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "datasets/token_files.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using attnzoo::datasets::Batch;
using attnzoo::datasets::read_text_file;
using attnzoo::datasets::TokenDataset;
using attnzoo::datasets::TokenFile;
using attnzoo::datasets::write_token_dataset;
using attnzoo::testing::error_of;
using attnzoo::testing::write_bytes;

namespace {

using TokenFilesTest = attnzoo::testing::TempDirTest;

std::vector<int64_t> iota_ids(int64_t n, int64_t first = 0) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = first + i;
  return ids;
}

nlohmann::json meta(int64_t vocab) { return {{"vocab_size", vocab}, {"tokenizer", {{"type", "test"}}}}; }

TEST_F(TokenFilesTest, WriteThenReadRoundTrips) {
  const std::vector<int64_t> train = {0, 1, 65535, 42, 7, 65534, 300, 2};
  const std::vector<int64_t> val = {5, 4, 3};
  write_token_dataset(dir_.string(), train, val, meta(65536));

  EXPECT_EQ(fs::file_size(dir_ / "train.bin"), train.size() * 2);
  EXPECT_EQ(fs::file_size(dir_ / "val.bin"), val.size() * 2);
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path().extension(), entry.path().filename() == "meta.json" ? ".json" : ".bin")
        << "no temporary file left: " << entry.path();

  const TokenDataset ds(dir_.string());
  EXPECT_EQ(ds.vocab_size(), 65536);
  EXPECT_EQ(ds.meta(), meta(65536));
  EXPECT_EQ(ds.dir(), dir_.string());
  ASSERT_EQ(ds.split(true).size(), static_cast<int64_t>(train.size()));
  ASSERT_EQ(ds.split(false).size(), static_cast<int64_t>(val.size()));
  for (size_t i = 0; i < train.size(); ++i) EXPECT_EQ(ds.split(true)[static_cast<int64_t>(i)], train[i]);
  for (size_t i = 0; i < val.size(); ++i) EXPECT_EQ(ds.split(false)[static_cast<int64_t>(i)], val[i]);
  EXPECT_TRUE(torch::equal(ds.split(true).slice(1, 3), torch::tensor({1, 65535, 42}, torch::kLong)));

  // Little-endian uint16, as numpy's tofile writes on x86 (nanoGPT's prepare.py).
  std::ifstream in(dir_ / "train.bin", std::ios::binary);
  unsigned char b[6];
  in.read(reinterpret_cast<char*>(b), 6);
  EXPECT_EQ(std::vector<int>(b, b + 6), (std::vector<int>{0, 0, 1, 0, 0xFF, 0xFF}));
}

TEST_F(TokenFilesTest, RewritingReplacesTheFiles) {
  write_token_dataset(dir_.string(), iota_ids(100), iota_ids(50), meta(100));
  write_token_dataset(dir_.string(), {9, 8, 7}, {6, 5}, meta(10));
  const TokenDataset ds(dir_.string());
  EXPECT_EQ(ds.split(true).size(), 3);
  EXPECT_EQ(ds.split(false)[1], 5);
  EXPECT_EQ(ds.vocab_size(), 10);
}

TEST_F(TokenFilesTest, SliceOutsideTheFileThrows) {
  write_token_dataset(dir_.string(), iota_ids(10), iota_ids(10), meta(10));
  const TokenDataset ds(dir_.string());
  EXPECT_THROW(ds.split(true).slice(5, 6), c10::Error);
  EXPECT_THROW(ds.split(true).slice(-1, 2), c10::Error);
  EXPECT_EQ(ds.split(true).slice(4, 6).size(0), 6);
}

// Train ids 0..N-1 and val ids 30000.. so that a window's start is its first id.
class BatchTest : public TokenFilesTest {
 protected:
  static constexpr int64_t kTrain = 5000, kVal = 700, kValFirst = 30000;
  void SetUp() override {
    TokenFilesTest::SetUp();
    write_token_dataset(dir_.string(), iota_ids(kTrain), iota_ids(kVal, kValFirst), meta(65536));
    ds_ = std::make_unique<TokenDataset>(dir_.string());
  }
  std::unique_ptr<TokenDataset> ds_;
};

TEST_F(BatchTest, RandomBatchIsWindowsOfTheRawIdsWithTargetsShiftedByOne) {
  const int64_t B = 8, T = 16;
  for (bool train : {true, false}) {
    const int64_t first = train ? 0 : kValFirst, n = train ? kTrain : kVal;
    for (int64_t step = 0; step < 20; ++step) {
      const Batch batch = ds_->random_batch(train, B, T, 1337, step, 0);
      ASSERT_EQ(batch.x.sizes(), (std::vector<int64_t>{B, T}));
      ASSERT_EQ(batch.y.sizes(), (std::vector<int64_t>{B, T}));
      ASSERT_EQ(batch.x.scalar_type(), torch::kLong);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t start = batch.x[b][0].item<int64_t>() - first;
        ASSERT_GE(start, 0);
        ASSERT_LE(start + T, n - 1) << "the target of the last input must exist";
        for (int64_t t = 0; t < T; ++t) {
          ASSERT_EQ(batch.x[b][t].item<int64_t>(), first + start + t);
          ASSERT_EQ(batch.y[b][t].item<int64_t>(), first + start + t + 1);
        }
      }
    }
  }
}

TEST_F(BatchTest, RandomBatchIsDeterministicInItsArguments) {
  const auto same = [](const Batch& a, const Batch& b) { return torch::equal(a.x, b.x) && torch::equal(a.y, b.y); };
  const Batch a = ds_->random_batch(true, 4, 8, 1337, 7, 2);
  EXPECT_TRUE(same(a, ds_->random_batch(true, 4, 8, 1337, 7, 2)));
  EXPECT_TRUE(same(a, TokenDataset(dir_.string()).random_batch(true, 4, 8, 1337, 7, 2))) << "a reopened dataset";
  EXPECT_FALSE(same(a, ds_->random_batch(true, 4, 8, 1338, 7, 2))) << "seed";
  EXPECT_FALSE(same(a, ds_->random_batch(true, 4, 8, 1337, 8, 2))) << "step";
  EXPECT_FALSE(same(a, ds_->random_batch(true, 4, 8, 1337, 7, 3))) << "micro";
  // The same arguments on val draw from val.bin.
  EXPECT_GE(ds_->random_batch(false, 4, 8, 1337, 7, 2).x.min().item<int64_t>(), kValFirst);
  // The first rows of a larger batch are the smaller batch.
  const Batch big = ds_->random_batch(true, 6, 8, 1337, 7, 2);
  EXPECT_TRUE(torch::equal(big.x.narrow(0, 0, 4), a.x));
}

TEST_F(BatchTest, DifferentStepsGiveDifferentBatches) {
  std::set<std::vector<int64_t>> seen;
  for (int64_t step = 0; step < 200; ++step) {
    const Batch batch = ds_->random_batch(true, 4, 8, 1337, step, 0);
    auto starts = batch.x.select(1, 0).contiguous();
    seen.insert(std::vector<int64_t>(starts.data_ptr<int64_t>(), starts.data_ptr<int64_t>() + 4));
  }
  EXPECT_EQ(seen.size(), 200u);
}

// With gradient accumulation every (step, micro) pair must draw its own windows: were two pairs to
// coincide, the same data would be trained on twice and other data never. With 4 windows of 4992
// possible starts each, a chance repeat among 400 pairs has probability ~1e-10.
TEST_F(BatchTest, EveryStepAndMicroStepDrawsItsOwnWindows) {
  std::map<std::vector<int64_t>, std::pair<int64_t, int64_t>> seen;
  std::vector<std::string> repeats;
  for (int64_t step = 0; step < 100; ++step) {
    for (int64_t micro = 0; micro < 4; ++micro) {
      const Batch batch = ds_->random_batch(true, 4, 8, 1337, step, micro);
      auto starts = batch.x.select(1, 0).contiguous();
      std::vector<int64_t> key(starts.data_ptr<int64_t>(), starts.data_ptr<int64_t>() + 4);
      auto [it, fresh] = seen.emplace(key, std::make_pair(step, micro));
      if (!fresh && repeats.size() < 5)
        repeats.push_back("(step " + std::to_string(step) + ", micro " + std::to_string(micro) + ") = (step " +
                          std::to_string(it->second.first) + ", micro " + std::to_string(it->second.second) + ")");
    }
  }
  EXPECT_EQ(seen.size(), 400u) << "repeated batches, e.g. " << ::testing::PrintToString(repeats);
}

TEST_F(TokenFilesTest, RandomBatchCoversEveryStartIncludingTheLast) {
  const int64_t N = 40, T = 8;  // valid starts 0 .. N - T - 1 = 31
  write_token_dataset(dir_.string(), iota_ids(N), iota_ids(N), meta(N));
  const TokenDataset ds(dir_.string());
  std::set<int64_t> starts;
  for (int64_t step = 0; step < 300; ++step) {
    auto x = ds.random_batch(true, 4, T, 0, step, 0).x;
    for (int64_t b = 0; b < 4; ++b) starts.insert(x[b][0].item<int64_t>());
  }
  EXPECT_EQ(*starts.begin(), 0);
  EXPECT_EQ(*starts.rbegin(), N - T - 1);
  EXPECT_EQ(starts.size(), static_cast<size_t>(N - T));
}

TEST_F(TokenFilesTest, WindowBatchesCoverNonOverlappingWindowsInOrder) {
  const int64_t N = 103, T = 10;  // (N - 1) / T = 10 windows; ids 100..102 are never an input
  write_token_dataset(dir_.string(), iota_ids(N), iota_ids(21), meta(N));
  const TokenDataset ds(dir_.string());
  ASSERT_EQ(ds.num_windows(true, T), 10);
  EXPECT_EQ(ds.num_windows(false, T), 2);
  EXPECT_EQ(ds.num_windows(false, 20), 1) << "21 tokens hold exactly one window of 20 + 1";

  std::vector<torch::Tensor> xs, ys;
  std::vector<int64_t> sizes;
  for (int64_t w = 0; w < ds.num_windows(true, T); w += 3) {
    const Batch batch = ds.window_batch(true, 3, T, w);
    sizes.push_back(batch.x.size(0));
    ASSERT_EQ(batch.x.size(1), T);
    xs.push_back(batch.x);
    ys.push_back(batch.y);
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{3, 3, 3, 1})) << "the last batch is partial";
  const auto x = torch::cat(xs).flatten(), y = torch::cat(ys).flatten();
  EXPECT_TRUE(torch::equal(x, torch::arange(0, 100, torch::kLong))) << "every input once, in order";
  EXPECT_TRUE(torch::equal(y, torch::arange(1, 101, torch::kLong)));
  EXPECT_THROW(ds.window_batch(true, 3, T, 10), c10::Error) << "past the last window";
}

TEST_F(TokenFilesTest, RequireBlockNamesTheShortFile) {
  write_token_dataset(dir_.string(), iota_ids(100), iota_ids(8), meta(100));
  const TokenDataset ds(dir_.string());
  EXPECT_NO_THROW(ds.require_block(7)) << "8 tokens hold a block of 7 plus its target";
  const std::string msg = error_of<std::runtime_error>([&] { ds.require_block(8); });
  EXPECT_STARTS_WITH(msg, path("val.bin") + ": ");
  EXPECT_CONTAINS(msg, "holds 8 tokens");
  EXPECT_CONTAINS(msg, "block_size + 1 = 9");

  write_token_dataset(dir_.string(), iota_ids(5), iota_ids(100), meta(100));
  EXPECT_STARTS_WITH(error_of<std::runtime_error>([&] { TokenDataset(dir_.string()).require_block(8); }),
                     path("train.bin"));
}

TEST_F(TokenFilesTest, IdsThatDoNotFitUint16AreRejected) {
  std::string msg = error_of<std::runtime_error>([&] {
    write_token_dataset(dir_.string(), {1, 65536, 2}, {1}, meta(70000));
  });
  EXPECT_STARTS_WITH(msg, path("train.bin") + ": ");
  EXPECT_CONTAINS(msg, "token id 65536");
  EXPECT_FALSE(fs::exists(dir_ / "train.bin"));

  msg = error_of<std::runtime_error>([&] { write_token_dataset(dir_.string(), {1}, {-1}, meta(10)); });
  EXPECT_STARTS_WITH(msg, path("val.bin") + ": ");
  EXPECT_CONTAINS(msg, "token id -1");
}

TEST_F(TokenFilesTest, OddLengthBinIsRejected) {
  write_token_dataset(dir_.string(), iota_ids(10), iota_ids(10), meta(10));
  write_bytes(path("val.bin"), std::string(7, '\1'));
  const std::string msg = error_of<std::runtime_error>([&] { TokenDataset ds(dir_.string()); });
  EXPECT_STARTS_WITH(msg, path("val.bin") + ": ");
  EXPECT_CONTAINS(msg, "size 7 is odd");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { TokenFile f(path("val.bin")); }), "odd");
}

TEST_F(TokenFilesTest, MissingFilesAreNamed) {
  write_token_dataset(dir_.string(), iota_ids(10), iota_ids(10), meta(10));
  fs::remove(dir_ / "meta.json");
  std::string msg = error_of<std::runtime_error>([&] { TokenDataset ds(dir_.string()); });
  EXPECT_STARTS_WITH(msg, path("meta.json") + ": ");
  EXPECT_CONTAINS(msg, "cannot open");

  fs::remove(dir_ / "train.bin");
  msg = error_of<std::runtime_error>([&] { TokenDataset ds(dir_.string()); });
  EXPECT_STARTS_WITH(msg, path("train.bin") + ": ");
  EXPECT_CONTAINS(msg, "No such file or directory");
}

TEST_F(TokenFilesTest, MalformedMetaIsNamed) {
  write_token_dataset(dir_.string(), iota_ids(10), iota_ids(10), meta(10));
  write_bytes(path("meta.json"), "{\"vocab_size\": ");
  std::string msg = error_of<std::runtime_error>([&] { TokenDataset ds(dir_.string()); });
  EXPECT_STARTS_WITH(msg, path("meta.json") + ": malformed JSON");

  for (const char* text : {"{}", "[65]", "{\"vocab_size\": 0}", "{\"vocab_size\": \"65\"}", "{\"vocab_size\": 6.5}"}) {
    write_bytes(path("meta.json"), text);
    msg = error_of<std::runtime_error>([&] { TokenDataset ds(dir_.string()); });
    EXPECT_STARTS_WITH(msg, path("meta.json") + ": ") << text;
    EXPECT_CONTAINS(msg, "vocab_size");
  }
}

TEST_F(TokenFilesTest, EmptySplitsAreReadable) {
  write_token_dataset(dir_.string(), {}, {}, meta(5));
  const TokenDataset ds(dir_.string());
  EXPECT_EQ(ds.split(true).size(), 0);
  EXPECT_THROW(ds.require_block(1), std::runtime_error);
}

TEST_F(TokenFilesTest, ReadTextFile) {
  write_bytes(path("input.txt"), "héllo\nworld");
  EXPECT_EQ(read_text_file(path("input.txt")), "héllo\nworld");
  std::string with_nul("a\0b", 3);
  write_bytes(path("nul.txt"), with_nul);
  EXPECT_EQ(read_text_file(path("nul.txt")), with_nul);
  EXPECT_STARTS_WITH(error_of<std::runtime_error>([&] { read_text_file(path("absent.txt")); }),
                     path("absent.txt") + ": cannot open");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { read_text_file(dir_.string()); }), "is a directory");
}

}  // namespace
