// Any of the library's tokenizers behind one value type, and the SPEC strings that name one:
//   DIR               a tokenizer saved by attnzoo (DIR/tokenizer.json says its type)
//   gpt2:DIR          GPT-2's encoder.json + vocab.bpe, or Hugging Face's vocab.json + merges.txt
//   tiktoken:FILE     a tiktoken rank file (named after its encoding) or an npm tiktoken JSON bundle
//   wordpiece:FILE    a BERT vocab.txt (bert-base-uncased options)
// Apps hold a Tokenizer; datasets and checkpoints store its to_json() so that it travels with them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizers/bpe.h"
#include "tokenizers/char_tokenizer.h"
#include "tokenizers/wordpiece.h"

namespace attnzoo::tokenizers {

class Tokenizer {
 public:
  Tokenizer() = default;  // an empty character tokenizer
  Tokenizer(CharTokenizer t) : impl_(std::move(t)) {}
  Tokenizer(ByteBPE t) : impl_(std::move(t)) {}
  Tokenizer(WordPiece t) : impl_(std::move(t)) {}

  // Opens SPEC (see above). Throws std::runtime_error naming the file at fault, or
  // std::invalid_argument for a SPEC of no known form.
  static Tokenizer open(const std::string& spec);
  // The inverse of to_json(); throws std::invalid_argument naming what is wrong.
  static Tokenizer from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  // Writes the tokenizer's own saved format into DIR (readable by open(DIR)).
  void save(const std::string& dir) const;

  // "char", "byte_bpe" or "wordpiece".
  std::string type() const;
  // One more than the largest id.
  int64_t vocab_size() const;
  // Ordinary text to ids. Byte BPE: special tokens written in the text are recognised when
  // `specials` is true (else encoded as text). WordPiece: the word pieces, with [CLS] ... [SEP]
  // around them when `specials` is true (as BertTokenizer.encode). Char: every character.
  std::vector<int64_t> encode(std::string_view text, bool specials = true) const;
  // encode(text) on up to THREADS threads, with the same ids. The text is cut only right after a
  // newline that an ASCII letter or digit follows, where no pre-tokenization piece of the char
  // tokenizer or of a BPE pre-split pattern (gpt2, cl100k, o200k) can continue, and into pieces of
  // at least MIN_PIECE bytes. WordPiece, a BPE without a pre-split pattern, or a short text is
  // encoded in one piece.
  std::vector<int64_t> encode_parallel(std::string_view text, int64_t threads, std::size_t min_piece = 1 << 20) const;
  // Throws std::invalid_argument naming an id outside the vocabulary.
  std::string decode(const std::vector<int64_t>& ids) const;
  // The special tokens and their ids (none for char).
  std::vector<std::pair<std::string, int64_t>> special_tokens() const;
  // A few lines for `tokenize info`: type, vocabulary size, pattern/options, specials.
  nlohmann::json info() const;

  const ByteBPE* bpe() const { return std::get_if<ByteBPE>(&impl_); }
  const WordPiece* wordpiece() const { return std::get_if<WordPiece>(&impl_); }
  const CharTokenizer* chars() const { return std::get_if<CharTokenizer>(&impl_); }

  // Same type and same vocabulary, merges, options and specials.
  bool operator==(const Tokenizer& other) const { return to_json() == other.to_json(); }

 private:
  std::variant<CharTokenizer, ByteBPE, WordPiece> impl_;
};

}  // namespace attnzoo::tokenizers
