// Character-level tokenizer, as nanoGPT's shakespeare_char: the vocabulary is the sorted set of
// characters (Unicode code points, UTF-8 encoded) of the training text; one token per character.
// Saved as JSON: {"type": "char", "vocab": ["\n", " ", "!", ...]} (the list index is the token id).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnzoo::tokenizers {

class CharTokenizer {
 public:
  CharTokenizer() = default;
  explicit CharTokenizer(std::vector<std::string> vocab);

  // Builds the vocabulary from every character of `text` (sorted by code point, as Python's sorted(set(text))).
  static CharTokenizer train(std::string_view text);

  // Throws std::invalid_argument naming the first character not in the vocabulary (and its byte offset).
  std::vector<int64_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  // Whether every character of `text` is in the vocabulary.
  bool covers(std::string_view text) const;

  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  const std::vector<std::string>& vocab() const { return vocab_; }

  nlohmann::json to_json() const;
  // Throws std::invalid_argument when `j` is not a char tokenizer description.
  static CharTokenizer from_json(const nlohmann::json& j);

  bool operator==(const CharTokenizer& other) const { return vocab_ == other.vocab_; }

 private:
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace attnzoo::tokenizers
