// Tests for datasets/bert_pretraining: reading the BERT input format, sentence pairs (exactly half
// random, a random B never from A's document, a true B the sentences right after A, lengths within
// max_seq_len with both sides kept, short documents skipped and counted), the prepared split files
// and the batches drawn from them (layout, masks reproducible per example, dynamic vs static).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <torch/torch.h>

#include "datasets/bert_pretraining.h"
#include "tests/test_util.h"
#include "tokenizers/wordpiece.h"

namespace fs = std::filesystem;
using namespace attnzoo::datasets;
using attnzoo::losses::MlmMaskingOptions;
using attnzoo::testing::any_error;
using attnzoo::tokenizers::WordPiece;

namespace {

using BertDataTest = attnzoo::testing::TempDirTest;

// [PAD] [UNK] [CLS] [SEP] [MASK] then w0 .. w{n-1}.
WordPiece word_tokenizer(int n = 300) {
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = 0; i < n; ++i) vocab.push_back("w" + std::to_string(i));
  return WordPiece(vocab);
}

// Sentence s of document d has its own token values, so that a pair shows where it came from:
// token = 1'000'000 + d * 1000 + s (one or more of them).
std::vector<Document> numbered_docs(int n_docs, std::mt19937_64& rng) {
  std::vector<Document> docs(n_docs);
  for (int d = 0; d < n_docs; ++d) {
    const int sentences = static_cast<int>(rng() % 12);  // 0..11: some too short to use
    for (int s = 0; s < sentences; ++s)
      docs[d].push_back(std::vector<int32_t>(1 + rng() % 30, 1'000'000 + d * 1000 + s));
  }
  return docs;
}

int doc_of(int32_t token) { return (token - 1'000'000) / 1000; }
int sentence_of(int32_t token) { return (token - 1'000'000) % 1000; }

TEST(BertData, ReadsTheBertInputFormat) {
  const WordPiece tok = word_tokenizer();
  const std::string text = "\n\nw1 w2\nw3\r\n  \n\n\nw4 w5 w6\n\t\nw7\n!!!\nw8";  // "!!!" tokenizes to [UNK]s
  const auto docs = read_documents(text, tok);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0], (Document{{6, 7}, {8}}));
  EXPECT_EQ(docs[1], (Document{{9, 10, 11}}));
  ASSERT_EQ(docs[2].size(), 3u);
  EXPECT_EQ(docs[2][0], (std::vector<int32_t>{12}));
  EXPECT_EQ(docs[2][2], (std::vector<int32_t>{13}));
  EXPECT_TRUE(read_documents("\n \n", tok).empty());
}

TEST(BertData, PairsAreHalfRandomFromOtherDocumentsAndFit) {
  std::mt19937_64 rng(11);
  const auto docs = numbered_docs(400, rng);
  int64_t short_docs = 0;
  for (const auto& d : docs) short_docs += d.size() < 2;
  for (int64_t max_seq_len : {16, 64, 128}) {
    PairOptions opt;
    opt.max_seq_len = max_seq_len;
    opt.short_seq_prob = 0.2;
    opt.dupe_factor = 2;
    PairStats stats;
    const auto pairs = make_sentence_pairs(docs, opt, stats);
    EXPECT_EQ(stats.documents, 400);
    EXPECT_EQ(stats.skipped_short_docs, short_docs);
    ASSERT_GT(stats.pairs, 500);
    EXPECT_EQ(stats.pairs, static_cast<int64_t>(pairs.size()));
    EXPECT_EQ(stats.pairs % 2, 0);
    int64_t random = 0;
    for (const auto& p : pairs) {
      ASSERT_FALSE(p.a.empty());
      ASSERT_FALSE(p.b.empty());
      ASSERT_LE(static_cast<int64_t>(p.a.size() + p.b.size()), max_seq_len - 3);
      for (int32_t t : p.a) ASSERT_EQ(doc_of(t), p.doc_a);
      for (int32_t t : p.b) ASSERT_EQ(doc_of(t), p.doc_b);
      ASSERT_GE(docs[p.doc_a].size(), 2u) << "a pair from a skipped document";
      if (p.next_random) {
        ++random;
        ASSERT_NE(p.doc_a, p.doc_b) << "a random next sentence from its own document";
      } else {
        ASSERT_EQ(p.doc_a, p.doc_b);
        // B comes after A in the document: right after it unless truncation (which stopped at
        // exactly max_seq_len - 3 tokens) trimmed whole sentences from the inner ends.
        ASSERT_GT(sentence_of(p.b.front()), sentence_of(p.a.back()));
        if (static_cast<int64_t>(p.a.size() + p.b.size()) < max_seq_len - 3) {
          ASSERT_EQ(sentence_of(p.b.front()), sentence_of(p.a.back()) + 1);
        }
      }
    }
    EXPECT_EQ(random * 2, stats.pairs) << "max_seq_len " << max_seq_len;
    EXPECT_EQ(stats.random_next, random);
    std::cout << "[ pairs ] max_seq_len " << max_seq_len << ": " << stats.pairs << " pairs, " << stats.truncated
              << " truncated, " << stats.dropped_to_balance << " dropped to balance" << std::endl;
  }
}

TEST(BertData, PairsNeedTwoUsableDocuments) {
  const std::vector<Document> docs = {{{1, 2}, {3}}, {{4}}, {}};
  PairStats stats;
  const std::string what = any_error([&] { make_sentence_pairs(docs, {}, stats); });
  EXPECT_CONTAINS(what, "need at least 2 documents of 2 or more sentences");
  EXPECT_CONTAINS(what, "2 shorter ones skipped");
  PairOptions bad;
  bad.max_seq_len = 4;
  EXPECT_CONTAINS(any_error([&] { bad.validate(); }), "max_seq_len must be at least 5");
}

TEST(BertData, TruncationTrimsTheLongerSide) {
  std::mt19937_64 rng(3);
  std::vector<int32_t> a(50, 1), b(3, 2);
  EXPECT_TRUE(truncate_pair(a, b, 10, rng));
  EXPECT_EQ(a.size() + b.size(), 10u);
  EXPECT_EQ(b.size(), 3u);
  std::vector<int32_t> c = {1, 2, 3, 4}, d = {5, 6, 7, 8};
  EXPECT_TRUE(truncate_pair(c, d, 2, rng));
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(d.size(), 1u);
  EXPECT_FALSE(truncate_pair(c, d, 2, rng));
}

TEST(BertData, VocabularyNeedsTheSpecialTokens) {
  EXPECT_NO_THROW(mlm_vocab(word_tokenizer()));
  const auto v = mlm_vocab(WordPiece::load(attnzoo::testing::fetched_data("bert-base-uncased/vocab.txt")));
  EXPECT_EQ(v.mask_id, 103);
  EXPECT_TRUE(v.never_select[101] && v.never_select[102] && v.never_select[0]);
  EXPECT_FALSE(v.never_select[100]);  // [UNK] may be predicted, as in BERT
  EXPECT_TRUE(v.continuation[WordPiece::load(attnzoo::testing::fetched_data("bert-base-uncased/vocab.txt"))
                                 .token_to_id("##ing")]);
  EXPECT_EQ(v.random_ids.size(), 30522u - 5u);
  const WordPiece no_mask({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "w"});
  EXPECT_CONTAINS(any_error([&] { require_bert_specials(no_mask, "vocab.txt"); }), "vocab.txt: no [MASK] token");
}

class PreparedDir : public BertDataTest {
 protected:
  void SetUp() override {
    BertDataTest::SetUp();
    const WordPiece tok = word_tokenizer();
    std::mt19937_64 rng(5);
    std::string text;
    for (int d = 0; d < 60; ++d) {
      for (int s = 0; s < 2 + static_cast<int>(rng() % 6); ++s) {
        for (int w = 0; w < 3 + static_cast<int>(rng() % 15); ++w) text += "w" + std::to_string(rng() % 300) + " ";
        text += "\n";
      }
      text += "\n";
    }
    PairStats stats;
    PairOptions opt;
    opt.max_seq_len = 32;
    const auto pairs = make_sentence_pairs(read_documents(text, tok), opt, stats);
    fs::create_directories(dir_ / "data");
    write_pair_split(dir_ / "data/train.safetensors", pairs, tok.cls_id(), tok.sep_id());
    write_pair_split(dir_ / "data/val.safetensors", {pairs.begin(), pairs.begin() + 10}, tok.cls_id(), tok.sep_id());
    std::ofstream(dir_ / "data/meta.json") << nlohmann::json{{"tokenizer", tok.to_json()}, {"max_seq_len", 32}}.dump();
    pairs_ = pairs;
  }
  std::vector<SentencePair> pairs_;
};

TEST_F(PreparedDir, SplitFilesHoldThePairs) {
  const BertPretrainingData data(dir_ / "data");
  const PairSplit& s = data.split(true);
  ASSERT_EQ(s.size(), static_cast<int64_t>(pairs_.size()));
  for (int64_t i = 0; i < s.size(); ++i) {
    const auto& p = pairs_[i];
    ASSERT_EQ(s.seq_len(i), static_cast<int64_t>(p.a.size() + p.b.size() + 3));
    EXPECT_EQ(s.tokens(i)[0], 2);
    EXPECT_EQ(s.tokens(i)[p.a.size() + 1], 3);
    EXPECT_EQ(s.tokens(i)[s.seq_len(i) - 1], 3);
    EXPECT_EQ(s.a_length(i), static_cast<int32_t>(p.a.size()));
    EXPECT_EQ(s.next_random(i), p.next_random);
    EXPECT_EQ(s.doc_a(i), p.doc_a);
    EXPECT_EQ(s.doc_b(i), p.doc_b);
  }
  EXPECT_EQ(data.split(false).size(), 10);
}

TEST_F(PreparedDir, BatchesHaveBertsLayout) {
  const BertPretrainingData data(dir_ / "data");
  const MlmMaskingOptions opt;
  const auto b = data.eval_batch(false, 0, 4, 7, opt);
  const int64_t T = b.input_ids.size(1);
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{4, T}));
  int64_t M = 0;
  for (int64_t r = 0; r < 4; ++r) {
    const auto& s = data.split(false);
    const int64_t len = s.seq_len(r), a = s.a_length(r);
    EXPECT_EQ(b.input_ids[r][0].item<int64_t>(), 2);
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(b.attention_mask[r][t].item<int64_t>(), t < len ? 1 : 0);
      EXPECT_EQ(b.token_type_ids[r][t].item<int64_t>(), (t >= a + 2 && t < len) ? 1 : 0);
      if (t >= len) {
        EXPECT_EQ(b.input_ids[r][t].item<int64_t>(), 0);  // [PAD]
      }
      const bool predicted = b.mlm_positions[r][t].item<bool>();
      if (predicted) {
        EXPECT_EQ(b.mlm_labels[M].item<int64_t>(), s.tokens(r)[t]);
        ++M;
      } else if (t < len) {
        EXPECT_EQ(b.input_ids[r][t].item<int64_t>(), s.tokens(r)[t]);
      }
    }
    EXPECT_EQ(b.next_sentence_labels[r].item<int64_t>(), s.next_random(r) ? 1 : 0);
  }
  EXPECT_EQ(M, b.mlm_labels.size(0));
  EXPECT_GT(M, 0);
}

TEST_F(PreparedDir, MasksAreReproducibleDynamicOrStatic) {
  const BertPretrainingData data(dir_ / "data");
  const int64_t n = data.split(true).size();
  MlmMaskingOptions opt;
  auto same = [](const BertBatch& x, const BertBatch& y) {
    return torch::equal(x.input_ids, y.input_ids) && torch::equal(x.mlm_positions, y.mlm_positions);
  };
  // A pure function of the example index: the same batch whatever was drawn before.
  const auto first = data.train_batch(3 * n + 5, 8, 1, opt);
  (void)data.train_batch(0, 8, 1, opt);
  EXPECT_TRUE(same(first, data.train_batch(3 * n + 5, 8, 1, opt)));
  EXPECT_FALSE(same(first, data.train_batch(3 * n + 5, 8, 2, opt))) << "another seed";
  // Each epoch visits every pair once.
  std::multiset<int64_t> labels_epoch0, labels_epoch1;
  for (int64_t k = 0; k < n; ++k) {
    labels_epoch0.insert(data.train_batch(k, 1, 1, opt).next_sentence_labels[0].item<int64_t>());
    labels_epoch1.insert(data.train_batch(n + k, 1, 1, opt).next_sentence_labels[0].item<int64_t>());
  }
  EXPECT_EQ(labels_epoch0.count(1) * 2, static_cast<size_t>(n));
  EXPECT_EQ(labels_epoch0, labels_epoch1);
  // The masks of one pair across epochs: re-drawn (dynamic) or the same (static). With batch size
  // n an epoch is one batch, so pair p is row perm^-1(p); compare the masked sequences as a set.
  auto masked_rows = [&](int64_t epoch, const MlmMaskingOptions& o) {
    const auto b = data.train_batch(epoch * n, n, 1, o);
    std::set<std::vector<int64_t>> rows;
    for (int64_t r = 0; r < n; ++r) {
      const auto row = b.input_ids[r].contiguous();
      rows.insert(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
    }
    return rows;
  };
  EXPECT_NE(masked_rows(0, opt), masked_rows(1, opt));
  MlmMaskingOptions fixed = opt;
  fixed.dynamic = false;
  EXPECT_EQ(masked_rows(0, fixed), masked_rows(1, fixed));
  // Evaluation batches are the same every time.
  EXPECT_TRUE(same(data.eval_batch(false, 2, 4, 1, opt), data.eval_batch(false, 2, 4, 1, opt)));
}

TEST_F(PreparedDir, MalformedDirectoriesNameTheFile) {
  fs::copy(dir_ / "data", dir_ / "bad");
  std::ofstream(dir_ / "bad/meta.json") << "{\"max_seq_len\": 32}";
  EXPECT_CONTAINS(any_error([&] { BertPretrainingData(dir_ / "bad"); }), "bad/meta.json: no \"tokenizer\" entry");
  std::ofstream(dir_ / "bad/meta.json") << "{not json";
  EXPECT_CONTAINS(any_error([&] { BertPretrainingData(dir_ / "bad"); }), "bad/meta.json: malformed JSON");
  fs::copy_file(dir_ / "data/meta.json", dir_ / "bad/meta.json", fs::copy_options::overwrite_existing);
  fs::remove(dir_ / "bad/val.safetensors");
  EXPECT_CONTAINS(any_error([&] { BertPretrainingData(dir_ / "bad"); }), "bad/val.safetensors: missing");
  std::ofstream(dir_ / "bad/val.safetensors") << "garbage";
  EXPECT_CONTAINS(any_error([&] { BertPretrainingData(dir_ / "bad"); }), "bad/val.safetensors");
  // A max_seq_len below the pairs' lengths.
  fs::copy_file(dir_ / "data/val.safetensors", dir_ / "bad/val.safetensors", fs::copy_options::overwrite_existing);
  std::ofstream(dir_ / "bad/meta.json") << nlohmann::json{{"tokenizer", word_tokenizer().to_json()}, {"max_seq_len", 8}}.dump();
  EXPECT_CONTAINS(any_error([&] { BertPretrainingData(dir_ / "bad"); }), "longer than max_seq_len 8");
}

}  // namespace
