#include "losses/mlm_masking.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace attnzoo::losses {
namespace {

// Uniform in [0, 1) from the top 53 bits.
double uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Uniform in [0, n) (the modulo bias is below 2^-40 for the sizes used here).
uint64_t below(std::mt19937_64& rng, uint64_t n) { return rng() % n; }

}  // namespace

void MlmMaskingOptions::validate() const {
  auto probability = [](double p, const char* name) {
    if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument(std::string(name) + " must be in [0, 1], got " + std::to_string(p));
  };
  probability(mask_prob, "mask_prob");
  probability(mask_token_prob, "mask_token_prob");
  probability(random_token_prob, "random_token_prob");
  if (mask_token_prob + random_token_prob > 1.0)
    throw std::invalid_argument("mask_token_prob + random_token_prob must be at most 1, got " +
                                std::to_string(mask_token_prob + random_token_prob));
  if (max_predictions < 1)
    throw std::invalid_argument("max_predictions must be positive, got " + std::to_string(max_predictions));
}

void MlmVocab::validate() const {
  const auto n = static_cast<int64_t>(never_select.size());
  if (static_cast<int64_t>(continuation.size()) != n)
    throw std::invalid_argument("MLM vocabulary: never_select and continuation differ in size");
  if (mask_id < 0 || mask_id >= n) throw std::invalid_argument("MLM vocabulary: no [MASK] token");
  if (random_ids.empty()) throw std::invalid_argument("MLM vocabulary: no ids to draw random replacements from");
  for (int32_t id : random_ids)
    if (id < 0 || id >= n) throw std::invalid_argument("MLM vocabulary: random id " + std::to_string(id) + " out of range");
}

MaskedTokens mask_tokens(std::span<const int32_t> tokens, const MlmVocab& vocab, const MlmMaskingOptions& opt,
                         std::mt19937_64& rng) {
  const auto V = static_cast<int32_t>(vocab.never_select.size());
  MaskedTokens out{{tokens.begin(), tokens.end()}, std::vector<int32_t>(tokens.size(), kNoLabel)};

  // Candidate words: runs of positions; a "##" piece joins the word of the position just before it.
  std::vector<std::vector<int32_t>> words;
  int64_t candidates = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t t = tokens[i];
    if (t < 0 || t >= V)
      throw std::invalid_argument("mask_tokens: token id " + std::to_string(t) + " outside the vocabulary of " +
                                  std::to_string(V));
    if (vocab.never_select[t]) continue;
    ++candidates;
    const bool joins = opt.whole_word && vocab.continuation[t] && !words.empty() &&
                       words.back().back() == static_cast<int32_t>(i) - 1;
    if (joins) words.back().push_back(static_cast<int32_t>(i));
    else words.push_back({static_cast<int32_t>(i)});
  }

  // candidates × mask_prob, rounded up with the probability of its fraction.
  const double expected = static_cast<double>(candidates) * opt.mask_prob;
  auto target = static_cast<int64_t>(std::floor(expected));
  if (uniform(rng) < expected - static_cast<double>(target)) ++target;
  target = std::min(target, opt.max_predictions);

  for (size_t i = words.size(); i > 1; --i) std::swap(words[i - 1], words[below(rng, i)]);  // Fisher-Yates
  int64_t selected = 0;
  for (const auto& word : words) {
    if (selected >= target) break;
    if (selected + static_cast<int64_t>(word.size()) > target) continue;  // a whole word or nothing
    for (int32_t i : word) {
      out.labels[i] = tokens[i];
      const double u = uniform(rng);
      if (u < opt.mask_token_prob) out.input_ids[i] = vocab.mask_id;
      else if (u < opt.mask_token_prob + opt.random_token_prob)
        out.input_ids[i] = vocab.random_ids[below(rng, vocab.random_ids.size())];
    }
    selected += static_cast<int64_t>(word.size());
  }
  return out;
}

}  // namespace attnzoo::losses
