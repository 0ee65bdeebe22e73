// Tests for losses/mlm_masking and losses/bert_loss: the masking statistics over more than a
// million candidate tokens (15 % selected ± 0.2, of them 80/10/10 ± 0.5, in percentage points),
// never a special token, the cap per sequence, whole words selected whole, determinism in the
// seed; the pretraining loss and its accuracies.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include <torch/torch.h>

#include "losses/bert_loss.h"
#include "losses/mlm_masking.h"
#include "tests/test_util.h"

using namespace attnzoo::losses;

namespace {

// ids 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK]; 5..V/2-1 words; V/2.. "##" pieces.
constexpr int32_t kV = 1000, kCls = 2, kSep = 3, kMask = 4;

MlmVocab test_vocab() {
  MlmVocab v;
  v.mask_id = kMask;
  v.never_select.assign(kV, 0);
  v.continuation.assign(kV, 0);
  for (int32_t id : {0, kCls, kSep}) v.never_select[id] = 1;
  for (int32_t id = kV / 2; id < kV; ++id) v.continuation[id] = 1;
  for (int32_t id = 5; id < kV; ++id) v.random_ids.push_back(id);
  return v;
}

// [CLS] A [SEP] B [SEP] with |A| + |B| = n, words only (no "##" pieces) unless pieces.
std::vector<int32_t> sequence(std::mt19937_64& rng, int n, bool pieces) {
  std::vector<int32_t> s = {kCls};
  const int a = 1 + static_cast<int>(rng() % static_cast<uint64_t>(n - 1));
  for (int i = 0; i < n; ++i) {
    if (i == a) s.push_back(kSep);
    const uint64_t range = pieces ? kV - 5 : kV / 2 - 5;
    s.push_back(static_cast<int32_t>(5 + rng() % range));
  }
  s.push_back(kSep);
  return s;
}

TEST(MlmMasking, StatisticsOverAMillionCandidates) {
  const MlmVocab vocab = test_vocab();
  const MlmMaskingOptions opt;  // 0.15, 80/10/10, at most 20
  std::mt19937_64 data_rng(1), rng(2);
  int64_t candidates = 0, selected = 0, masked = 0, random = 0, unchanged = 0, sequences = 0;
  while (candidates < 1'200'000) {
    const auto s = sequence(data_rng, 8 + static_cast<int>(data_rng() % 118), false);  // 8..125 tokens
    const auto m = mask_tokens(s, vocab, opt, rng);
    ++sequences;
    int64_t here = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const bool special = s[i] == kCls || s[i] == kSep;
      candidates += !special;
      if (m.labels[i] == kNoLabel) {
        ASSERT_EQ(m.input_ids[i], s[i]) << "an unselected token changed";
        continue;
      }
      ASSERT_FALSE(special) << "selected [CLS] or [SEP]";
      ASSERT_EQ(m.labels[i], s[i]);
      ++selected, ++here;
      if (m.input_ids[i] == kMask) {
        ++masked;
      } else if (m.input_ids[i] != s[i]) {
        ++random;
        ASSERT_GE(m.input_ids[i], 5) << "a random replacement was a special token";
      } else {
        ++unchanged;
      }
    }
    ASSERT_LE(here, opt.max_predictions);
  }
  const double p_sel = 100.0 * static_cast<double>(selected) / static_cast<double>(candidates);
  const double p_mask = 100.0 * static_cast<double>(masked) / static_cast<double>(selected);
  const double p_rand = 100.0 * static_cast<double>(random) / static_cast<double>(selected);
  const double p_same = 100.0 * static_cast<double>(unchanged) / static_cast<double>(selected);
  std::cout << "[ masking ] " << candidates << " candidates in " << sequences << " sequences: " << p_sel
            << " % selected; of them " << p_mask << " % [MASK], " << p_rand << " % random, " << p_same
            << " % unchanged" << std::endl;
  EXPECT_NEAR(p_sel, 15.0, 0.2);
  EXPECT_NEAR(p_mask, 80.0, 0.5);
  EXPECT_NEAR(p_rand, 10.0, 0.5);
  EXPECT_NEAR(p_same, 10.0, 0.5);
}

TEST(MlmMasking, CapPerSequenceAndShortSequences) {
  const MlmVocab vocab = test_vocab();
  MlmMaskingOptions opt;
  opt.max_predictions = 5;
  std::mt19937_64 data_rng(3), rng(4);
  for (int i = 0; i < 200; ++i) {
    const auto s = sequence(data_rng, 120, false);
    const auto m = mask_tokens(s, vocab, opt, rng);
    int64_t n = 0;
    for (int32_t l : m.labels) n += l != kNoLabel;
    EXPECT_EQ(n, 5);  // 0.15 × 120 = 18 > 5: always the cap
  }
  // [CLS] x [SEP] y [SEP]: 2 candidates, 0.3 expected: 0 or 1 selected, never a special.
  int64_t total = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::vector<int32_t> s = {kCls, 7, kSep, 9, kSep};
    const auto m = mask_tokens(s, vocab, MlmMaskingOptions{}, rng);
    for (size_t j : {0u, 2u, 4u}) ASSERT_EQ(m.labels[j], kNoLabel);
    total += (m.labels[1] != kNoLabel) + (m.labels[3] != kNoLabel);
  }
  EXPECT_NEAR(static_cast<double>(total) / 2000.0, 0.3, 0.05);
}

TEST(MlmMasking, WholeWordsAreSelectedWhole) {
  const MlmVocab vocab = test_vocab();
  MlmMaskingOptions opt;
  opt.whole_word = true;
  std::mt19937_64 data_rng(5), rng(6);
  int64_t candidates = 0, selected = 0, split_words = 0;
  for (int i = 0; i < 3000; ++i) {
    const auto s = sequence(data_rng, 100, true);
    const auto m = mask_tokens(s, vocab, opt, rng);
    for (size_t j = 0; j < s.size(); ++j) {
      candidates += s[j] != kCls && s[j] != kSep;
      selected += m.labels[j] != kNoLabel;
      // A "##" piece right after a candidate token shares its fate.
      if (j > 0 && vocab.continuation[s[j]] && !vocab.never_select[s[j - 1]])
        split_words += (m.labels[j] != kNoLabel) != (m.labels[j - 1] != kNoLabel);
    }
  }
  EXPECT_EQ(split_words, 0);
  // Words that would overshoot the count are skipped, so a little under 15 %.
  const double p = static_cast<double>(selected) / static_cast<double>(candidates);
  EXPECT_GT(p, 0.14);
  EXPECT_LE(p, 0.1501);
  // Without whole-word masking pieces are selected alone.
  opt.whole_word = false;
  int64_t alone = 0;
  for (int i = 0; i < 300; ++i) {
    const auto s = sequence(data_rng, 100, true);
    const auto m = mask_tokens(s, vocab, opt, rng);
    for (size_t j = 1; j < s.size(); ++j)
      if (vocab.continuation[s[j]] && !vocab.never_select[s[j - 1]])
        alone += (m.labels[j] != kNoLabel) != (m.labels[j - 1] != kNoLabel);
  }
  EXPECT_GT(alone, 0);
}

TEST(MlmMasking, SameSeedSameMasks) {
  const MlmVocab vocab = test_vocab();
  std::mt19937_64 data_rng(7);
  const auto s = sequence(data_rng, 60, true);
  std::mt19937_64 a(42), b(42), c(43);
  const auto ma = mask_tokens(s, vocab, {}, a), mb = mask_tokens(s, vocab, {}, b), mc = mask_tokens(s, vocab, {}, c);
  EXPECT_EQ(ma.input_ids, mb.input_ids);
  EXPECT_EQ(ma.labels, mb.labels);
  EXPECT_NE(ma.labels, mc.labels);
}

TEST(MlmMasking, BadInputs) {
  const MlmVocab vocab = test_vocab();
  std::mt19937_64 rng(1);
  const std::vector<int32_t> bad = {kCls, kV, kSep};
  EXPECT_CONTAINS(attnzoo::testing::any_error([&] { mask_tokens(bad, vocab, {}, rng); }), "outside the vocabulary");
  MlmMaskingOptions opt;
  opt.mask_token_prob = 0.95;
  EXPECT_CONTAINS(attnzoo::testing::any_error([&] { opt.validate(); }), "at most 1");
  MlmVocab no_mask = vocab;
  no_mask.mask_id = -1;
  EXPECT_CONTAINS(attnzoo::testing::any_error([&] { no_mask.validate(); }), "no [MASK] token");
}

TEST(BertLoss, LossAndAccuracies) {
  // Two MLM predictions, one right; three NSP examples, two right.
  const auto mlm = torch::tensor({{5.0f, 0.0f, 0.0f}, {5.0f, 0.0f, 0.0f}});
  const auto mlm_labels = torch::tensor({0, 2}, torch::kLong);
  const auto nsp = torch::tensor({{2.0f, 0.0f}, {0.0f, 2.0f}, {2.0f, 0.0f}});
  const auto nsp_labels = torch::tensor({0, 1, 1}, torch::kLong);
  const auto l = bert_pretraining_loss(mlm, mlm_labels, nsp, nsp_labels);
  EXPECT_DOUBLE_EQ(l.mlm_acc, 0.5);
  EXPECT_NEAR(l.nsp_acc, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(l.predictions, 2);
  EXPECT_NEAR(l.mlm_loss, torch::cross_entropy_loss(mlm, mlm_labels).item<double>(), 1e-6);
  EXPECT_NEAR(l.loss.item<double>(), l.mlm_loss + l.nsp_loss, 1e-5);
  // No predictions in the batch: NSP only, and still differentiable through the MLM head.
  auto empty = torch::zeros({0, 3}, torch::requires_grad());
  const auto l0 = bert_pretraining_loss(empty, torch::zeros({0}, torch::kLong), nsp, nsp_labels);
  EXPECT_EQ(l0.predictions, 0);
  EXPECT_NEAR(l0.loss.item<double>(), l0.nsp_loss, 1e-6);
  l0.loss.backward();
  EXPECT_TRUE(empty.grad().defined());
}

}  // namespace
