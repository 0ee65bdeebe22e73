// Tests for datasets/text_classification: the TSV forms (single sentences, pairs, a header, CRLF,
// blank lines), the errors that name file and line, labels, truncation to max_seq_len, and batches
// ([CLS] A [SEP] B [SEP] with segment ids and padding; the shuffled stream visits every example).
#include <gtest/gtest.h>

#include <set>

#include <torch/torch.h>

#include "datasets/text_classification.h"
#include "tests/test_util.h"

using namespace attnzoo::datasets;
using attnzoo::testing::any_error;
using attnzoo::testing::write_bytes;
using attnzoo::tokenizers::WordPiece;

namespace {

using TextClassificationTest = attnzoo::testing::TempDirTest;

WordPiece tokenizer() { return WordPiece({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d"}); }

TEST_F(TextClassificationTest, ReadsSinglesPairsAndHeaders) {
  write_bytes(path("single.tsv"), "text\tlabel\r\na b\tpos\r\n\n  \nc\tneg\n");
  const auto single = read_classification_tsv(path("single.tsv"));
  EXPECT_FALSE(single.pairs);
  ASSERT_EQ(single.examples.size(), 2u);
  EXPECT_EQ(single.examples[0].text_a, "a b");
  EXPECT_EQ(single.examples[0].label, "pos");
  EXPECT_EQ(single.examples[1].line, 5);
  EXPECT_EQ(label_set(single), (std::vector<std::string>{"neg", "pos"}));
  write_bytes(path("pairs.tsv"), "a\tb\tyes\nc\td\tno");
  const auto pairs = read_classification_tsv(path("pairs.tsv"));
  EXPECT_TRUE(pairs.pairs);
  EXPECT_EQ(pairs.examples[1].text_b, "d");
  EXPECT_EQ(pairs.examples[1].label, "no");
}

TEST_F(TextClassificationTest, BadFilesNameFileAndLine) {
  auto error = [&](const std::string& name, const std::string& text) {
    write_bytes(path(name), text);
    return any_error([&] { read_classification_tsv(path(name)); });
  };
  EXPECT_CONTAINS(error("missing.tsv", "a\tpos\nb\t\n"), path("missing.tsv") + ":2: missing label");
  EXPECT_CONTAINS(error("fields.tsv", "a\tpos\nb\tc\tneg\n"), path("fields.tsv") + ":2: 3 fields, but the file's first line has 2");
  EXPECT_CONTAINS(error("one.tsv", "just text\n"), path("one.tsv") + ":1: expected 2 or 3 tab-separated fields");
  EXPECT_CONTAINS(error("empty_text.tsv", "\tpos\n"), path("empty_text.tsv") + ":1: empty text");
  EXPECT_CONTAINS(error("none.tsv", "text\tlabel\n\n"), path("none.tsv") + ": no examples");
  EXPECT_CONTAINS(any_error([&] { read_classification_tsv(path("absent.tsv")); }), path("absent.tsv"));
  write_bytes(path("dev.tsv"), "a\tpos\nb\tmaybe\n");
  const auto dev = read_classification_tsv(path("dev.tsv"));
  EXPECT_CONTAINS(any_error([&] { TextClassificationSet(dev, tokenizer(), {"neg", "pos"}, 16); }),
                  path("dev.tsv") + ":2: label 'maybe' is not one of the training labels (neg, pos)");
}

TEST_F(TextClassificationTest, BatchesTruncationAndOrder) {
  write_bytes(path("pairs.tsv"), "a b\tc\tyes\na a a a a a\tb b b b\tno\nd\tc\tyes\n");
  const auto file = read_classification_tsv(path("pairs.tsv"));
  const TextClassificationSet set(file, tokenizer(), {"no", "yes"}, 8);
  EXPECT_EQ(set.size(), 3);
  EXPECT_EQ(set.truncated(), 1);  // 6 + 4 + 3 > 8
  const auto b = set.range_batch(0, 3);
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{3, 8}));
  // [CLS] a b [SEP] c [SEP] [PAD] [PAD]
  EXPECT_TRUE(torch::equal(b.input_ids[0], torch::tensor({2, 5, 6, 3, 7, 3, 0, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.token_type_ids[0], torch::tensor({0, 0, 0, 0, 1, 1, 0, 0}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.attention_mask[0], torch::tensor({1, 1, 1, 1, 1, 1, 0, 0}, torch::kLong)));
  EXPECT_EQ(b.attention_mask[1].sum().item<int64_t>(), 8);  // truncated to exactly max_seq_len
  EXPECT_TRUE(torch::equal(b.labels, torch::tensor({1, 0, 1}, torch::kLong)));
  EXPECT_EQ(set.range_batch(2, 5).input_ids.size(0), 1);
  // An epoch of the shuffled stream holds every example once; the same seed gives the same order.
  std::multiset<int64_t> firsts;
  for (int64_t k = 0; k < 3; ++k) firsts.insert(set.train_batch(6 + k, 1, 9).input_ids[0][1].item<int64_t>());
  EXPECT_EQ(firsts, (std::multiset<int64_t>{5, 5, 8}));
  EXPECT_TRUE(torch::equal(set.train_batch(4, 3, 9).input_ids, set.train_batch(4, 3, 9).input_ids));
}

}  // namespace
