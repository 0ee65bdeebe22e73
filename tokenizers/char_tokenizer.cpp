#include "tokenizers/char_tokenizer.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "tokenizers/utf8.h"

namespace attnzoo::tokenizers {

CharTokenizer::CharTokenizer(std::vector<std::string> vocab) : vocab_(std::move(vocab)) {
  for (std::size_t i = 0; i < vocab_.size(); ++i) {
    const auto& ch = vocab_[i];
    if (utf8_chars(ch).size() != 1)
      throw std::invalid_argument("char tokenizer: vocabulary entry " + std::to_string(i) +
                                  " is not a single character");
    if (!ids_.emplace(ch, static_cast<int64_t>(i)).second)
      throw std::invalid_argument("char tokenizer: duplicate vocabulary entry " + std::to_string(i));
  }
}

CharTokenizer CharTokenizer::train(std::string_view text) {
  // Byte-wise ordering of UTF-8 strings equals code point ordering, so std::set sorts as Python does.
  std::set<std::string> chars;
  for (auto& ch : utf8_chars(text)) chars.insert(std::move(ch));
  return CharTokenizer(std::vector<std::string>(chars.begin(), chars.end()));
}

std::vector<int64_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  std::size_t offset = 0;
  for (const auto& ch : utf8_chars(text)) {
    auto it = ids_.find(ch);
    if (it == ids_.end()) {
      std::string shown = ch == "\n" ? "\\n" : ch == "\t" ? "\\t" : ch;
      throw std::invalid_argument("character '" + shown + "' at byte " + std::to_string(offset) +
                                  " is not in the tokenizer's vocabulary of " +
                                  std::to_string(vocab_.size()) + " characters");
    }
    ids.push_back(it->second);
    offset += ch.size();
  }
  return ids;
}

bool CharTokenizer::covers(std::string_view text) const {
  for (const auto& ch : utf8_chars(text))
    if (!ids_.count(ch)) return false;
  return true;
}

std::string CharTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw std::invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary of " +
                                  std::to_string(vocab_size()));
    out += vocab_[static_cast<std::size_t>(id)];
  }
  return out;
}

nlohmann::json CharTokenizer::to_json() const { return {{"type", "char"}, {"vocab", vocab_}}; }

CharTokenizer CharTokenizer::from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string() || j["type"] != "char" ||
      !j.contains("vocab") || !j["vocab"].is_array())
    throw std::invalid_argument("not a char tokenizer (expected {\"type\": \"char\", \"vocab\": [...]})");
  std::vector<std::string> vocab;
  for (const auto& v : j["vocab"]) {
    if (!v.is_string()) throw std::invalid_argument("char tokenizer: vocabulary entries must be strings");
    vocab.push_back(v.get<std::string>());
  }
  return CharTokenizer(std::move(vocab));
}

}  // namespace attnzoo::tokenizers
