// Tests for the repetition penalty (models/common/sampling) and early stopping in generate().
#include <gtest/gtest.h>

#include "models/common/sampling.h"
#include "models/gpt/generate.h"
#include "tests/test_util.h"

using attnzoo::models::apply_repetition_penalty;
using attnzoo::models::GenerateOptions;
using attnzoo::models::GPT;
using attnzoo::models::gpt_tiny;
using attnzoo::testing::seeded;

TEST(RepetitionPenalty, DividesPositiveAndMultipliesNegativeLogitsOfSeenTokens) {
  const auto logits = torch::tensor({{2.0f, -1.0f, 0.5f, -3.0f}, {1.0f, 1.0f, 1.0f, 1.0f}});
  const auto seen = torch::tensor({{0, 1, 1}, {3, 3, 3}}, torch::kLong);
  const auto out = apply_repetition_penalty(logits, seen, 2.0);
  EXPECT_TRUE(torch::allclose(out, torch::tensor({{1.0f, -2.0f, 0.5f, -3.0f}, {1.0f, 1.0f, 1.0f, 0.5f}})));
  EXPECT_TRUE(torch::equal(apply_repetition_penalty(logits, seen, 1.0), logits));
  EXPECT_THROW(apply_repetition_penalty(logits, seen, 0.0), c10::Error);
}

TEST(RepetitionPenalty, AStrongPenaltyStopsGreedyRepetition) {
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  const auto prompt = torch::zeros({1, 1}, torch::kLong);
  GenerateOptions opt{.max_new_tokens = 20, .sampling = {.temperature = 0.0, .repetition_penalty = 1e6}, .should_stop = {}};
  const auto out = generate(model, prompt, opt).flatten();
  // Greedy with a huge penalty never picks a token it has seen while unseen ones remain.
  const auto unique = std::get<0>(at::_unique(out));
  EXPECT_EQ(unique.numel(), out.numel());
}

TEST(Generate, ShouldStopEndsEarly) {
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  const auto prompt = torch::zeros({1, 2}, torch::kLong);
  GenerateOptions opt{.max_new_tokens = 50, .sampling = {.temperature = 1.0}, .should_stop = {}};
  opt.should_stop = [](const torch::Tensor& tokens) { return tokens.size(1) >= 7; };
  EXPECT_EQ(generate(model, prompt, opt, seeded(3)).size(1), 7);
}
