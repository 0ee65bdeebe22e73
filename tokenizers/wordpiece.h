// WordPiece tokenizer for BERT (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional
// Transformers"; the greedy longest-match-first algorithm of google-research/bert tokenization.py).
// Matches Hugging Face `tokenizers` (the Rust crate behind transformers' BertTokenizerFast) with
// bert-base-uncased's tokenizer.json: BertNormalizer, BertPreTokenizer, WordPiece, the
// [CLS] A [SEP] B [SEP] template, longest-first truncation and the WordPiece decoder with cleanup.
// Depends only on the standard library, nlohmann_json (save/load) and utf8proc (Unicode data).
//
// The basic tokenizer, in HF's order:
//   1. clean text: drop U+0000, U+FFFD and Cc/Cf/Co characters except \t \n \r; whitespace → space;
//   2. every CJK ideograph (the blocks of BERT's _is_chinese_char as the Rust crate spells them:
//      its fifth supplementary block starts at U+2B920, BERT's at U+2B820) is a word of its own;
//   3. strip accents: NFD, then drop nonspacing marks (Mn);
//   4. lower-case, per character (Unicode simple lower-case mapping plus U+0130 İ → "i̇",
//      which is what Rust's char::to_lowercase does: no final-sigma rule);
//   5. split on whitespace, and make every punctuation character (ASCII 33–47, 58–64, 91–96,
//      123–126, Unicode P*) a word of its own.
// Special tokens written in the text ("[MASK]", ...) are cut out before all of this, as HF does.
// Invalid UTF-8 bytes are read as U+FFFD, one per byte (so clean text drops them).
//
// Where HF's implementations disagree we follow the Rust crate: Python's slow BertTokenizer and
// the JS port lower-case a final Σ to ς (we give σ); the slow tokenizer drops unassigned code
// points (we keep them); the JS port misses CJK outside the BMP and encodes (a, "") as a single
// sequence; the slow truncation removes one token at a time (ties from B), which can end one token
// apart from the rule in encode(). Unicode data is utf8proc's (Unicode 15); the Rust crate's
// category tables are older, so characters assigned since can be classified differently.
//
// Saved format: DIR/vocab.txt (one token per line, id = line index, the format of BERT's
// releases) and DIR/tokenizer.json {"type": "wordpiece", "vocab_size": N, <the options>}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace attnzoo::tokenizers {

// Defaults are bert-base-uncased's.
struct WordPieceOptions {
  bool lowercase = true;               // uncased model
  std::optional<bool> strip_accents;   // NFD + drop Mn; unset: follow `lowercase` (as HF)
  bool clean_text = true;              // step 1 above
  bool tokenize_chinese_chars = true;  // step 2 above
  int max_input_chars_per_word = 100;  // a longer word (code points after normalization) is unk
  std::string continuing_subword_prefix = "##";
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  std::string mask_token = "[MASK]";
  bool special_tokens_in_text = true;  // the five tokens above are recognised when written in text

  bool strips_accents() const { return strip_accents.value_or(lowercase); }
};

class WordPiece {
 public:
  using Options = WordPieceOptions;

  // One encoded input: [CLS] A [SEP] (B [SEP]) then [PAD]s; all vectors have the same length.
  struct Encoding {
    std::vector<int> ids;
    std::vector<int> token_type_ids;   // 0 for [CLS] A [SEP], 1 for B [SEP], 0 for padding
    std::vector<int> attention_mask;   // 1 for real tokens, 0 for padding
    std::vector<std::string> tokens;   // the strings of `ids`
  };

  // VOCAB[id] = token. Throws std::invalid_argument for an empty vocabulary, an empty or duplicate
  // token, or a vocabulary without the unk token. [CLS]/[SEP]/[PAD]/[MASK] may be absent; the
  // calls that need one throw std::runtime_error naming it.
  explicit WordPiece(std::vector<std::string> vocab, Options options = {});

  // Reads a vocab.txt: one token per line, id = line index; "\r\n" endings and trailing spaces
  // are removed (as HF does). Throws std::runtime_error "FILE: ..." for a missing or empty file or
  // a vocabulary without the unk token, and "FILE:LINE: ..." for an empty line, invalid UTF-8 or a
  // duplicate token (naming the line of its first use).
  static WordPiece from_vocab_file(const std::string& path, Options options = {});
  // PATH is a directory written by save() (tokenizer.json may be absent: default options) or a
  // vocab.txt file (default options). Throws std::runtime_error naming the file at fault.
  static WordPiece load(const std::string& path);
  // Writes DIR/vocab.txt and DIR/tokenizer.json (DIR is created if missing).
  void save(const std::string& dir) const;
  // The options and the vocabulary as one JSON value, for embedding in a dataset's meta.json or a
  // checkpoint; from_json() throws std::invalid_argument naming what is wrong.
  nlohmann::json to_json() const;
  static WordPiece from_json(const nlohmann::json& j);

  // Builds a vocabulary of exactly `vocab_size` tokens (fewer only when every word of the corpus
  // has become one token) as HF's WordPieceTrainer does: the words of the basic tokenizer
  // (with `options`), the five specials first ([PAD] [UNK] [CLS] [SEP] [MASK]), then every
  // character seen (sorted by code point), then "##c" for every character seen inside a word
  // (sorted), then byte-pair merges over the words, most frequent adjacent pair first, ties to the
  // smaller (left id, right id); "x" + "##y" makes "xy" and "##x" + "##y" makes "##xy". Pair
  // counts are kept incrementally. Throws std::invalid_argument for a corpus without words or a
  // vocab_size below specials + alphabet (the message gives both numbers).
  static WordPiece train(const std::vector<std::string>& texts, int vocab_size, Options options = {});

  // The words of the basic tokenizer (special tokens written in the text are words of their own).
  std::vector<std::string> pre_tokenize(std::string_view text) const;
  // The WordPiece token strings of `text`, without [CLS]/[SEP].
  std::vector<std::string> tokenize(std::string_view text) const;
  // The ids of tokenize(text).
  std::vector<int> encode_ids(std::string_view text) const;
  // [CLS] A [SEP] (B [SEP]). max_length > 0 truncates A and B so that the whole (specials
  // included) fits, as HF's longest-first strategy: with n1 <= n2 the shorter keeps its length if
  // the longer can take the rest, else the shorter gets budget/2 and the longer the remainder
  // (with equal lengths, B is the longer). pad_to_max pads with [PAD] up to max_length.
  // Throws std::invalid_argument for max_length < 0, a max_length too small for the specials,
  // or pad_to_max without max_length.
  Encoding encode(std::string_view a, std::optional<std::string_view> b = std::nullopt, int max_length = 0,
                  bool pad_to_max = false) const;
  // Joins "##" pieces to the previous token and others with one space, then applies HF's
  // clean_up_tokenization (" ." → ".", " ?", " !", " ,", " ' " → "'", " n't", " 'm", " 's",
  // " 've", " 're"): BertTokenizer's default. skip_special drops [PAD] [UNK] [CLS] [SEP] [MASK]
  // (HF's skip_special_tokens). Throws std::invalid_argument naming an id outside the vocabulary.
  std::string decode(const std::vector<int>& ids, bool skip_special = true) const;

  int vocab_size() const { return static_cast<int>(vocab_.size()); }
  // -1 when absent.
  int token_to_id(std::string_view token) const;
  // Throws std::invalid_argument for an id outside [0, vocab_size()).
  const std::string& id_to_token(int id) const;
  const std::vector<std::string>& vocab() const { return vocab_; }
  const Options& options() const { return options_; }
  int unk_id() const { return unk_id_; }
  // These throw std::runtime_error when the vocabulary lacks the token.
  int cls_id() const;
  int sep_id() const;
  int pad_id() const;
  int mask_id() const;

 private:
  // Open addressing over token ids; keys compare against vocab_ strings, so copies stay valid.
  struct Table {
    std::vector<uint32_t> slots;  // id + 1, 0 = empty
    std::vector<uint32_t> tags;   // upper hash bits of the slot's key
    uint64_t mask = 0;
    std::size_t skip = 0;         // a slot's key is vocab_[id] without its first `skip` bytes
  };
  void build_index();
  void insert(Table& table, int id) const;
  int find(const Table& table, std::string_view key) const;
  int special_id(const std::string& token, const char* what) const;
  void wordpiece(std::string_view word, int n_chars, std::vector<int>& out) const;

  Options options_;
  std::vector<std::string> vocab_;
  Table whole_;         // every token
  Table continuation_;  // tokens that start with the prefix, keyed without it
  std::size_t max_whole_bytes_ = 0;
  std::size_t max_continuation_bytes_ = 0;  // without the prefix
  int unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, pad_id_ = -1, mask_id_ = -1;
  std::vector<std::pair<std::string, int>> specials_;  // those in the vocabulary, for text matching
  std::vector<bool> is_special_;                       // by id, for decode(skip_special)
};

}  // namespace attnzoo::tokenizers
