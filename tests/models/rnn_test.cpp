// Tests for models/rnn: the Elman RNN and LSTM classifiers and language models (shapes, padding,
// causality, overfitting one batch), the written-out LSTM cell against torch::nn::LSTM with the same
// weights, and the attention encoder-decoder (shapes, attention rows, padding, greedy decoding, the
// hard-attention loss, and learning to reverse short sequences).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "models/rnn/rnn.h"
#include "models/rnn/seq2seq.h"

using namespace attnzoo::models;

namespace {

RecurrentConfig tiny(const std::string& cell) {
  return {.cell = cell, .vocab_size = 11, .embed_dim = 8, .hidden_size = 16, .num_layers = 2, .num_classes = 3};
}

// Reversal data: tokens in [3, V), bos = 1; targets are the source reversed.
struct ReverseBatch {
  torch::Tensor src, tgt_in, tgt;  // (B, L) each
};
ReverseBatch reverse_batch(int64_t B, int64_t L, int64_t V, int64_t bos) {
  auto src = torch::randint(3, V, {B, L}, torch::kLong);
  auto tgt = src.flip({1});
  auto tgt_in = torch::cat({torch::full({B, 1}, bos, torch::kLong), tgt.narrow(1, 0, L - 1)}, 1);
  return {src, tgt_in, tgt};
}

}  // namespace

TEST(RnnModels, ClassifierShapesAndPaddingForBothCells) {
  torch::manual_seed(0);
  for (const std::string cell : {"rnn", "lstm"}) {
    RecurrentClassifier model(tiny(cell));
    model->eval();
    auto tokens = torch::randint(0, 11, {4, 7}, torch::kLong);
    auto lengths = torch::tensor({7, 3, 5, 1}, torch::kLong);
    auto logits = model(tokens, lengths);
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{4, 3})) << cell;
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>()) << cell;
    // Tokens after a sequence's length are padding: changing them changes nothing.
    auto changed = tokens.clone();
    changed.index_put_({1, torch::indexing::Slice(3)}, 0);
    changed.index_put_({3, torch::indexing::Slice(1)}, 5);
    EXPECT_TRUE(torch::allclose(model(changed, lengths), logits)) << cell;
    // Without lengths, the last step is used.
    EXPECT_TRUE(torch::allclose(model(tokens), model(tokens, torch::full({4}, 7, torch::kLong)))) << cell;
  }
  EXPECT_THROW(RecurrentClassifier(RecurrentConfig{.cell = "gru"}), std::invalid_argument);
}

TEST(RnnModels, LanguageModelIsCausalAndOverfitsOneBatch) {
  for (const std::string cell : {"rnn", "lstm"}) {
    torch::manual_seed(1);
    RecurrentLanguageModel model(tiny(cell));
    auto tokens = torch::randint(0, 11, {8, 12}, torch::kLong);
    auto logits = model(tokens);
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{8, 12, 11}));
    auto changed = tokens.clone();
    changed.narrow(1, 6, 6).random_(0, 11);
    EXPECT_TRUE(torch::allclose(model(changed).narrow(1, 0, 6), logits.narrow(1, 0, 6))) << cell;

    auto x = tokens.narrow(1, 0, 11), y = tokens.narrow(1, 1, 11);
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-2));
    double first = 0, last = 0;
    for (int step = 0; step < 150; ++step) {
      auto loss = torch::nn::functional::cross_entropy(model(x).reshape({-1, 11}), y.reshape({-1}));
      if (step == 0) first = loss.item<double>();
      last = loss.item<double>();
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
    EXPECT_LT(last, first / 2) << cell << ": loss " << first << " -> " << last;
  }
}

TEST(LstmCell, MatchesTorchLstmWithCopiedWeights) {
  torch::manual_seed(2);
  const int64_t B = 3, T = 5, I = 4, H = 6;
  torch::nn::LSTM fused(torch::nn::LSTMOptions(I, H).batch_first(true));
  LstmCell cell(I, H);
  {
    torch::NoGradGuard no_grad;
    cell->weight_ih.copy_(fused->named_parameters()["weight_ih_l0"]);
    cell->weight_hh.copy_(fused->named_parameters()["weight_hh_l0"]);
    cell->bias_ih.copy_(fused->named_parameters()["bias_ih_l0"]);
    cell->bias_hh.copy_(fused->named_parameters()["bias_hh_l0"]);
  }
  auto x = torch::randn({B, T, I}, torch::requires_grad());
  auto [expected, state] = fused(x);
  LstmState last;
  auto got = cell->unroll(x, &last);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(last.h, std::get<0>(state)[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(last.c, std::get<1>(state)[0], 1e-5, 1e-6));

  // The same gradients with respect to the input.
  auto g_fused = torch::autograd::grad({expected.sum()}, {x})[0];
  auto g_cell = torch::autograd::grad({got.sum()}, {x})[0];
  EXPECT_TRUE(torch::allclose(g_cell, g_fused, 1e-5, 1e-6));

  // A given initial state is used.
  LstmState s0{torch::randn({B, H}), torch::randn({B, H})};
  auto step = cell(x.select(1, 0), s0);
  auto [out1, state1] = fused(x.narrow(1, 0, 1), std::make_tuple(s0.h.unsqueeze(0), s0.c.unsqueeze(0)));
  EXPECT_TRUE(torch::allclose(step.h, out1.select(1, 0), 1e-5, 1e-6));
  EXPECT_THROW(cell(torch::randn({B, I + 1})), c10::Error);
}

TEST(Seq2Seq, ShapesAttentionRowsAndPadding) {
  torch::manual_seed(3);
  for (const std::string att : {"soft", "hard", "none"}) {
    Seq2Seq model(Seq2SeqConfig{.src_vocab_size = 9, .tgt_vocab_size = 7, .embed_dim = 8, .hidden_size = 12,
                                .attention_dim = 10, .attention = att});
    auto src = torch::randint(0, 9, {3, 6}, torch::kLong);
    auto lengths = torch::tensor({6, 4, 2}, torch::kLong);
    auto tgt_in = torch::randint(0, 7, {3, 5}, torch::kLong);
    auto out = model(src, lengths, tgt_in);
    ASSERT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 5, 7})) << att;
    ASSERT_EQ(out.attention.sizes(), (std::vector<int64_t>{3, 5, 6})) << att;
    EXPECT_TRUE(torch::isfinite(out.logits).all().item<bool>()) << att;
    if (att == "none") {
      EXPECT_EQ(out.attention.abs().sum().item<float>(), 0.0f);
      continue;
    }
    EXPECT_TRUE(torch::allclose(out.attention.sum(-1), torch::ones({3, 5}))) << att;
    // Padded source positions never receive weight.
    EXPECT_EQ(out.attention[1].narrow(1, 4, 2).abs().sum().item<float>(), 0.0f) << att;
    EXPECT_EQ(out.attention[2].narrow(1, 2, 4).abs().sum().item<float>(), 0.0f) << att;
    if (att == "hard") {
      ASSERT_EQ(out.log_prob.sizes(), (std::vector<int64_t>{3, 5}));
      MovingAverageBaseline baseline;
      auto loss = seq2seq_loss(out, tgt_in, -1, baseline.get(), 0.01);
      loss.backward();
      // REINFORCE reaches the attention scorer, which the sampled context alone would not.
      EXPECT_GT(model->attention->v->weight.grad().abs().sum().item<float>(), 0.0f);
      EXPECT_EQ(baseline->updates.item<int64_t>(), 1);
    }
    model->eval();
    auto decoded = model->greedy_decode(src, lengths, 4);
    ASSERT_EQ(decoded.tokens.sizes(), (std::vector<int64_t>{3, 4}));
    ASSERT_EQ(decoded.attention.sizes(), (std::vector<int64_t>{3, 4, 6}));
    // Greedy decoding equals teacher forcing on its own outputs.
    auto fed = torch::cat({torch::full({3, 1}, 1, torch::kLong), decoded.tokens.narrow(1, 0, 3)}, 1);
    EXPECT_TRUE(torch::equal(model(src, lengths, fed).logits.argmax(-1), decoded.tokens)) << att;
  }
  EXPECT_THROW(Seq2Seq(Seq2SeqConfig{.attention = "local"}), std::invalid_argument);
}

namespace {

// Trains an attention encoder-decoder to reverse sequences of 5 tokens from 7 symbols for 300 steps
// and returns its greedy decoding of 200 fresh ones.
std::pair<Seq2SeqDecoded, ReverseBatch> learn_to_reverse(const std::string& attention) {
  const int64_t V = 10, L = 5;
  Seq2Seq model(Seq2SeqConfig{.src_vocab_size = V, .tgt_vocab_size = V, .embed_dim = 16, .hidden_size = 48,
                              .attention_dim = 32, .attention = attention, .bos_id = 1});
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-2));
  MovingAverageBaseline baseline;
  for (int step = 0; step < 300; ++step) {
    auto b = reverse_batch(32, L, V, 1);
    auto loss = seq2seq_loss(model(b.src, torch::Tensor(), b.tgt_in), b.tgt, -1, baseline.get(), 0.01);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  model->eval();
  auto test = reverse_batch(200, L, V, 1);
  return {model->greedy_decode(test.src, {}, L), test};
}

double exact_match(const torch::Tensor& tokens, const torch::Tensor& targets) {
  return (tokens == targets).all(1).to(torch::kFloat).mean().item<double>();
}

}  // namespace

TEST(Seq2Seq, HardAttentionLearnsToReverseWithReinforce) {
  // Chance is 7^−5; soft attention reaches 100 % in the same budget, the REINFORCE-trained hard
  // attention 64–83 % over seeds 10–13.
  torch::manual_seed(5);
  auto [decoded, test] = learn_to_reverse("hard");
  EXPECT_GE(exact_match(decoded.tokens, test.tgt), 0.5);
}

TEST(Seq2Seq, SoftAttentionLearnsToReverse) {
  const int64_t L = 5;
  torch::manual_seed(4);
  auto [decoded, test] = learn_to_reverse("soft");
  EXPECT_GE(exact_match(decoded.tokens, test.tgt), 0.9);
  // Reversal puts the attention on the anti-diagonal.
  auto peak = decoded.attention.argmax(-1);  // (B, T)
  auto anti = torch::arange(L - 1, -1, -1, torch::kLong).unsqueeze(0).expand_as(peak);
  EXPECT_GE((peak == anti).to(torch::kFloat).mean().item<double>(), 0.8);
}
