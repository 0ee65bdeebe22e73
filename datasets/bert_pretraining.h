// BERT pretraining data (Devlin et al. 2019, §3.1 and appendix A.2), after google-research/bert
// create_pretraining_data.py:
//   - input: plain text, one sentence per line, a blank line between documents;
//   - sentence pairs: segment A is one or more whole sentences of a document; 50 % of the time
//     segment B is the text that follows A, 50 % a span from another document ("IsNext" /
//     "NotNext"); sequences aim at max_seq_len tokens, but with short_seq_prob at a random
//     shorter length; an over-long pair is trimmed from its longer side, front or back at random,
//     so that both keep at least one token;
//   - masking (losses/mlm_masking.h) happens when a batch is drawn, seeded per (epoch, pair), so
//     masks are re-drawn every epoch (dynamic) or the same in all (static), and resumable.
// Differences from the BERT repository, on purpose: the pairs of a split are exactly half random
// (where BERT flips a coin, the label short so far is taken; a one-sentence chunk must still have
// a random B, and a surplus left at the end, usually none or a few pairs, is dropped at random
// and counted); a random B
// never comes from A's own document (BERT falls back to it after ten tries); documents with fewer
// than two sentences are skipped and counted (BERT keeps them, and one-sentence documents then
// only make random pairs).
//
// A prepared directory (`bert-pretrain prepare`):
//   DIR/meta.json           {"tokenizer": {...}, "max_seq_len", "short_seq_prob", "dupe_factor",
//                            "seed", "val_fraction", "stats": {...}, "sources": [...]}
//   DIR/train.safetensors   the pairs of the training documents,
//   DIR/val.safetensors     of the validation documents (may hold no pairs), each with
//       tokens       I32 (N)     [CLS] A [SEP] B [SEP] of every pair, back to back
//       offsets      I64 (n+1)   pair i is tokens[offsets[i], offsets[i+1])
//       a_length     I32 (n)     tokens of A (B follows A's [SEP])
//       next_random  I32 (n)     1 when B is random (NSP label 1), else 0
//       doc_a, doc_b I32 (n)     the documents of A and of B (equal unless random)
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "datasets/epoch_order.h"
#include "losses/mlm_masking.h"
#include "tokenizers/wordpiece.h"

namespace attnzoo::datasets {

// A document: its sentences as token ids (special tokens not included).
using Document = std::vector<std::vector<int32_t>>;

// The documents of a BERT-format text. Lines are stripped of surrounding whitespace; a blank line
// ends a document; a sentence whose text tokenizes to nothing is dropped. Documents are returned
// in order, each with at least one sentence.
std::vector<Document> read_documents(const std::string& text, const tokenizers::WordPiece& tokenizer);

struct PairOptions {
  int64_t max_seq_len = 128;    // [CLS] A [SEP] B [SEP] at most
  double short_seq_prob = 0.1;  // probability of a random shorter target length
  int64_t dupe_factor = 1;      // passes over the documents (each draws other pairs)
  uint64_t seed = 12345;

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};

struct SentencePair {
  std::vector<int32_t> a, b;  // token ids without specials, each non-empty
  bool next_random = false;   // NSP label: B is from another document
  int32_t doc_a = 0, doc_b = 0;
};

struct PairStats {
  int64_t documents = 0;          // given
  int64_t skipped_short_docs = 0; // with fewer than 2 sentences, not used
  int64_t sentences = 0;          // in the documents used
  int64_t pairs = 0;              // kept
  int64_t random_next = 0;        // of them with a random B (= pairs / 2)
  int64_t dropped_to_balance = 0; // pairs dropped so that exactly half are random
  int64_t truncated = 0;          // pairs trimmed to fit max_seq_len
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PairStats, documents, skipped_short_docs, sentences, pairs,
                                                random_next, dropped_to_balance, truncated)

// The sentence pairs of DOCS (BERT's create_instances_from_document over every document,
// dupe_factor times). Documents with fewer than 2 sentences are skipped and counted; doc_a/doc_b
// index DOCS. Throws std::invalid_argument when fewer than two documents remain (a random B needs
// another document).
std::vector<SentencePair> make_sentence_pairs(const std::vector<Document>& docs, const PairOptions& opt,
                                              PairStats& stats);

// BERT's truncate_seq_pair: removes tokens from the longer of A and B (front or back at random)
// until |A| + |B| <= max_tokens. Returns whether anything was removed.
bool truncate_pair(std::vector<int32_t>& a, std::vector<int32_t>& b, int64_t max_tokens, std::mt19937_64& rng);

// What masking needs of a WordPiece vocabulary. Throws std::invalid_argument naming the special
// token a BERT vocabulary lacks ([PAD], [UNK], [CLS], [SEP] and [MASK] are all required).
losses::MlmVocab mlm_vocab(const tokenizers::WordPiece& tokenizer);
// The same check alone: "SOURCE: no [MASK] token (...)".
void require_bert_specials(const tokenizers::WordPiece& tokenizer, const std::string& source);

// Writes the pairs as one split file (see the top); CLS and SEP are the special ids.
void write_pair_split(const std::filesystem::path& file, const std::vector<SentencePair>& pairs, int32_t cls,
                      int32_t sep);

// `bert-pretrain prepare`: reads INPUTS (BERT-format text files; the end of a file also ends a
// document), tokenizes them with TOKENIZER, makes the pairs of the first (1 - val_fraction) of the
// documents for training and of the others for validation (none when they are fewer than two
// usable documents), and writes directory OUT atomically (a non-empty OUT only with FORCE).
// Returns the meta.json written. Throws std::runtime_error naming the input, or OUT, at fault.
nlohmann::json prepare_pretraining_data(const std::vector<std::string>& inputs, const tokenizers::WordPiece& tokenizer,
                                        const PairOptions& opt, double val_fraction,
                                        const std::filesystem::path& out, bool force);

// One micro-batch, padded to its longest sequence.
struct BertBatch {
  torch::Tensor input_ids;             // (B, T) int64, masked
  torch::Tensor token_type_ids;        // (B, T) int64: 0 for [CLS] A [SEP] and padding, 1 for B [SEP]
  torch::Tensor attention_mask;        // (B, T) int64: 1 real token, 0 padding
  torch::Tensor mlm_positions;         // (B, T) bool: the positions to predict
  torch::Tensor mlm_labels;            // (M) int64: their original tokens, in row-major order
  torch::Tensor next_sentence_labels;  // (B) int64: 0 B follows A, 1 B is random
};

// One split of a prepared directory, memory-mapped.
class PairSplit {
 public:
  // Throws std::runtime_error "FILE: ..." for a missing or malformed file.
  explicit PairSplit(const std::filesystem::path& file);
  int64_t size() const { return n_; }
  int64_t seq_len(int64_t i) const { return offsets_[i + 1] - offsets_[i]; }
  const int32_t* tokens(int64_t i) const { return tokens_ + offsets_[i]; }
  int32_t a_length(int64_t i) const { return a_length_[i]; }
  bool next_random(int64_t i) const { return next_random_[i] != 0; }
  int32_t doc_a(int64_t i) const { return doc_a_[i]; }
  int32_t doc_b(int64_t i) const { return doc_b_[i]; }
  int32_t max_token() const { return max_token_; }

 private:
  std::map<std::string, torch::Tensor> tensors_;  // keeps the mapping alive
  const int32_t* tokens_ = nullptr;
  const int64_t* offsets_ = nullptr;
  const int32_t *a_length_ = nullptr, *next_random_ = nullptr, *doc_a_ = nullptr, *doc_b_ = nullptr;
  int64_t n_ = 0;
  int32_t max_token_ = -1;
};

// A prepared directory: its tokenizer, both splits, and masked batches drawn from them.
class BertPretrainingData {
 public:
  // Reads DIR/meta.json, DIR/train.safetensors and DIR/val.safetensors; throws std::runtime_error
  // naming the file at fault (a tokenizer that is not WordPiece or lacks a special token included).
  explicit BertPretrainingData(const std::filesystem::path& dir);

  const PairSplit& split(bool train) const { return train ? train_ : val_; }
  const tokenizers::WordPiece& tokenizer() const { return tokenizer_; }
  const nlohmann::json& meta() const { return meta_; }
  int64_t max_seq_len() const { return max_seq_len_; }

  // Training examples first_example .. first_example + batch_size - 1 of an endless stream: epoch
  // e = k / n visits the n training pairs in a shuffled order (seeded by (seed, e)); masks are
  // seeded by (seed, pair, e when opt.dynamic else 0). A pure function of its arguments.
  BertBatch train_batch(int64_t first_example, int64_t batch_size, uint64_t seed,
                        const losses::MlmMaskingOptions& opt) const;
  // Validation pairs first .. first + batch_size - 1 (wrapping around) in file order, with masks
  // that depend only on (seed, pair): the same every evaluation. TRAIN selects the training split
  // (for runs prepared without validation documents).
  BertBatch eval_batch(bool train, int64_t first, int64_t batch_size, uint64_t seed,
                       const losses::MlmMaskingOptions& opt) const;

 private:
  BertBatch make_batch(const PairSplit& split, const std::vector<int64_t>& pairs, const std::vector<uint64_t>& seeds,
                       const losses::MlmMaskingOptions& opt) const;

  std::filesystem::path dir_;
  nlohmann::json meta_;
  tokenizers::WordPiece tokenizer_;
  losses::MlmVocab vocab_;
  PairSplit train_, val_;
  int64_t max_seq_len_ = 0;
};

}  // namespace attnzoo::datasets
