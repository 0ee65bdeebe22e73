// Masked-language-model masking (Devlin et al. 2019, §3.1 "Task #1: Masked LM"; the algorithm of
// google-research/bert create_pretraining_data.py, create_masked_lm_predictions): a fraction of the
// candidate tokens (every token but [CLS], [SEP] and [PAD]) is selected for prediction, up to a cap
// per sequence; of the selected, 80 % become [MASK], 10 % a random token and 10 % stay unchanged.
// With whole-word masking a word (a token and the "##" pieces after it) is selected as a whole.
//
// Two deliberate differences from the BERT repository: the number of tokens to select is
// candidates × mask_prob rounded stochastically (floor, plus one with the probability of the
// fraction), so that exactly mask_prob of the candidates are selected on average whatever the
// sequence lengths (BERT rounds len(tokens) × 0.15, [CLS] and [SEP] included, and takes at least
// one); and a random replacement is never a special token (BERT draws from the whole vocabulary).
//
// No torch here: the masks are drawn with a std::mt19937_64 that the caller seeds (the pretraining
// dataset seeds one per sequence and epoch, so that masks are reproducible and resumable).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnzoo::losses {

// The label of a position that is not predicted (Hugging Face's ignore index).
inline constexpr int32_t kNoLabel = -100;

struct MlmMaskingOptions {
  double mask_prob = 0.15;          // fraction of candidate tokens selected for prediction
  double mask_token_prob = 0.8;     // of the selected: replaced by [MASK]
  double random_token_prob = 0.1;   // of the selected: replaced by a random token (the rest stay as they are)
  int64_t max_predictions = 20;     // per sequence at most (BERT: 20 for 128 tokens, 80 for 512)
  bool whole_word = false;          // select whole words: a token with the "##" pieces that follow it
  bool dynamic = true;              // masks re-drawn every epoch (RoBERTa); false: the same every epoch (static)

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MlmMaskingOptions, mask_prob, mask_token_prob, random_token_prob,
                                                max_predictions, whole_word, dynamic)

// What masking needs to know of the vocabulary, by token id.
struct MlmVocab {
  int32_t mask_id = -1;                // [MASK]
  std::vector<uint8_t> never_select;   // 1 for [CLS], [SEP], [PAD]: never selected
  std::vector<uint8_t> continuation;   // 1 for "##" pieces: part of the word before them
  std::vector<int32_t> random_ids;     // the ids a random replacement is drawn from (no special tokens)

  // Throws std::invalid_argument when the tables disagree in size, mask_id is outside them or
  // random_ids is empty or holds an id outside them.
  void validate() const;
};

struct MaskedTokens {
  std::vector<int32_t> input_ids;  // the tokens, selected ones replaced
  std::vector<int32_t> labels;     // the original token where selected, kNoLabel elsewhere
};

// Masks TOKENS (one sequence, [CLS] A [SEP] B [SEP]) with RNG. Every id must be < the vocabulary's
// size (throws std::invalid_argument otherwise).
MaskedTokens mask_tokens(std::span<const int32_t> tokens, const MlmVocab& vocab, const MlmMaskingOptions& opt,
                         std::mt19937_64& rng);

}  // namespace attnzoo::losses
