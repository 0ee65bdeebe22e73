// Tests for datasets/synthetic: every task's answer is recoverable by brute force from its input,
// the layouts are as documented, generators are deterministic by seed, held-out test sets are
// distinct and never appear in training draws, and bad configs throw naming the field.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "datasets/synthetic.h"
#include "tests/test_util.h"

using namespace attnzoo::datasets;

namespace {

bool is_key(int64_t tok, int64_t num_keys) { return tok >= kFirstSymbolId && tok < kFirstSymbolId + num_keys; }

}  // namespace

TEST(SyntheticRecall, LayoutAndBruteForceAnswer) {
  std::mt19937_64 rng(1);
  for (int64_t N : {0, 1, 5, 50}) {
    RecallConfig cfg{.distance = N, .num_keys = 5, .num_distractors = 7};
    for (int i = 0; i < 50; ++i) {
      auto e = make_recall(cfg, rng);
      ASSERT_EQ(static_cast<int64_t>(e.input.size()), N + 2);
      EXPECT_EQ(e.input.back(), kQueryId);
      ASSERT_EQ(e.target.size(), 1u);
      // Brute force: the only key token in the sequence is the answer, and it is N + 1 before the query.
      std::vector<int64_t> keys;
      for (size_t t = 0; t < e.input.size(); ++t)
        if (is_key(e.input[t], cfg.num_keys)) keys.push_back(static_cast<int64_t>(t));
      ASSERT_EQ(keys.size(), 1u);
      EXPECT_EQ(keys[0], 0);
      EXPECT_EQ(e.input[0] - kFirstSymbolId, e.target[0]);
      for (auto tok : e.input) EXPECT_LT(tok, cfg.vocab_size());
    }
  }
}

TEST(SyntheticRecall, DeterministicBySeedAndCoversEveryKey) {
  RecallConfig cfg{.distance = 10};
  std::mt19937_64 a(42), b(42), c(43);
  std::set<int64_t> answers;
  bool differs = false;
  for (int i = 0; i < 200; ++i) {
    auto x = make_recall(cfg, a), y = make_recall(cfg, b), z = make_recall(cfg, c);
    EXPECT_EQ(x.input, y.input);
    EXPECT_EQ(x.target, y.target);
    differs |= x.input != z.input;
    answers.insert(x.target[0]);
  }
  EXPECT_TRUE(differs);
  EXPECT_EQ(static_cast<int64_t>(answers.size()), cfg.num_keys);
}

TEST(SyntheticSeq2Seq, TasksAgainstBruteForce) {
  std::mt19937_64 rng(3);
  for (auto task : {Seq2SeqTask::copy, Seq2SeqTask::reverse, Seq2SeqTask::sort}) {
    Seq2SeqTaskConfig cfg{.task = task, .min_len = 2, .max_len = 6, .num_symbols = 5};
    for (int i = 0; i < 100; ++i) {
      auto e = make_seq2seq(cfg, rng);
      const auto L = e.input.size();
      ASSERT_GE(L, 2u);
      ASSERT_LE(L, 6u);
      ASSERT_EQ(e.target.size(), L + 1);
      EXPECT_EQ(e.target.back(), kEosId);
      for (size_t t = 0; t < L; ++t) {
        if (task == Seq2SeqTask::copy) {
          EXPECT_EQ(e.target[t], e.input[t]);
        } else if (task == Seq2SeqTask::reverse) {
          EXPECT_EQ(e.target[t], e.input[L - 1 - t]);
        } else {
          // Sorted, and a permutation of the input: each symbol as often in the output as in the input.
          if (t > 0) {
            EXPECT_LE(e.target[t - 1], e.target[t]);
          }
          EXPECT_EQ(std::count(e.input.begin(), e.input.end(), e.target[t]),
                    std::count(e.target.begin(), e.target.end() - 1, e.target[t]));
        }
      }
    }
  }
}

TEST(SyntheticSeq2Seq, ParseTaskNames) {
  EXPECT_EQ(parse_seq2seq_task("copy"), Seq2SeqTask::copy);
  EXPECT_EQ(parse_seq2seq_task("reverse"), Seq2SeqTask::reverse);
  EXPECT_EQ(parse_seq2seq_task("sort"), Seq2SeqTask::sort);
  EXPECT_EQ(to_string(Seq2SeqTask::sort), "sort");
  EXPECT_CONTAINS(attnzoo::testing::error_of<std::invalid_argument>([] { parse_seq2seq_task("rot13"); }), "rot13");
}

TEST(SyntheticNearFar, KeyDistanceIsNearOrFar) {
  NearFarConfig cfg{.length = 40, .near_max = 3, .far_min = 20};
  std::mt19937_64 rng(5);
  for (bool far : {false, true})
    for (int i = 0; i < 100; ++i) {
      auto e = make_near_far(cfg, far, rng);
      ASSERT_EQ(static_cast<int64_t>(e.input.size()), cfg.length);
      EXPECT_EQ(e.input.back(), kQueryId);
      int64_t where = -1, count = 0;
      for (int64_t t = 0; t < cfg.length; ++t)
        if (is_key(e.input[t], cfg.num_keys)) where = t, ++count;
      ASSERT_EQ(count, 1);
      const int64_t d = cfg.length - 1 - where;
      if (far) {
        EXPECT_GE(d, cfg.far_min);
      } else {
        EXPECT_LE(d, cfg.near_max);
      }
      EXPECT_GE(d, 1);
      EXPECT_EQ(e.input[where] - kFirstSymbolId, e.target[0]);
    }
}

TEST(SyntheticHeldOut, TestSetDistinctAndDisjointFromTraining) {
  // Copy of length 3 over 3 symbols: 27 sequences, so training draws hit the test set often.
  Seq2SeqTaskConfig cfg{.task = Seq2SeqTask::copy, .min_len = 3, .max_len = 3, .num_symbols = 3};
  HeldOut split([cfg](std::mt19937_64& r) { return make_seq2seq(cfg, r); }, 10, 7);
  ASSERT_EQ(split.test().size(), 10u);
  std::set<std::vector<int64_t>> test;
  for (const auto& e : split.test()) test.insert(e.input);
  EXPECT_EQ(test.size(), 10u);
  std::mt19937_64 rng(8);
  std::set<std::vector<int64_t>> seen;
  for (int i = 0; i < 500; ++i) {
    auto e = split.train(rng);
    EXPECT_EQ(test.count(e.input), 0u);
    seen.insert(e.input);
  }
  EXPECT_EQ(seen.size(), 27u - 10u);  // every other sequence is drawn
  // Same seed, same test set.
  HeldOut again([cfg](std::mt19937_64& r) { return make_seq2seq(cfg, r); }, 10, 7);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(again.test()[i].input, split.test()[i].input);
}

TEST(SyntheticHeldOut, TooFewSequencesThrows) {
  Seq2SeqTaskConfig cfg{.min_len = 1, .max_len = 1, .num_symbols = 2};
  EXPECT_CONTAINS(attnzoo::testing::error_of<std::runtime_error>([&] {
                    HeldOut([cfg](std::mt19937_64& r) { return make_seq2seq(cfg, r); }, 5, 1);
                  }),
                  "too few");
}

TEST(SyntheticConfigs, BadValuesNameTheField) {
  std::mt19937_64 rng(1);
  EXPECT_CONTAINS(attnzoo::testing::error_of<std::invalid_argument>([&] { make_recall({.distance = -1}, rng); }), "distance");
  EXPECT_CONTAINS(attnzoo::testing::error_of<std::invalid_argument>([&] { make_seq2seq({.min_len = 5, .max_len = 2}, rng); }),
                  "min_len");
  EXPECT_CONTAINS(attnzoo::testing::error_of<std::invalid_argument>([&] { make_near_far({.near_max = 30, .far_min = 20}, false, rng); }),
                  "near_max");
}
