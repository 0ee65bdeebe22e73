// Tests for models/gpt: the three every model ships (tiny forward, golden outputs and gradients
// against scripts/reference/gpt_reference.py, overfit one batch), the KV cache against the full
// forward, cached vs uncached generation past the block size, GPT-2 key names, config validation.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/adamw.h"
#include "losses/language_model.h"
#include "models/gpt/generate.h"
#include "models/gpt/gpt.h"
#include "tests/test_util.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

using attnzoo::losses::language_model_loss;
using attnzoo::models::generate;
using attnzoo::models::GenerateOptions;
using attnzoo::models::GPT;
using attnzoo::models::gpt_preset;
using attnzoo::models::gpt_tiny;
using attnzoo::models::GPTCache;
using attnzoo::models::GPTConfig;
using attnzoo::testing::error_of;
using attnzoo::testing::seeded;
namespace weights = attnzoo::weights;

namespace {

void expect_close(const torch::Tensor& got, const torch::Tensor& want, double atol, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double diff = (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>();
  EXPECT_LE(diff, atol) << what << ": max abs diff " << diff;
}

torch::Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, V, {B, T}, torch::kLong);
}

TEST(GPT, TinyForwardShapeAndFinite) {
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  const auto cfg = model->config();
  for (int64_t T : std::vector<int64_t>{1, 7, cfg.block_size}) {
    const auto logits = model->forward(random_ids(3, T, cfg.vocab_size, 1));
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{3, T, cfg.vocab_size}));
    EXPECT_EQ(logits.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  }
  // Initial loss is about ln(V): the N(0, 0.02) init predicts nearly uniform tokens. (Targets are
  // drawn apart from the inputs: with the tied head, a target equal to its input scores higher.)
  const auto idx = random_ids(4, cfg.block_size, cfg.vocab_size, 2);
  const auto targets = random_ids(4, cfg.block_size, cfg.vocab_size, 3);
  const double loss = language_model_loss(model->forward(idx), targets).item<double>();
  EXPECT_NEAR(loss, std::log(static_cast<double>(cfg.vocab_size)), 0.1);
  EXPECT_THROW(model->forward(random_ids(1, cfg.block_size + 1, cfg.vocab_size, 3)), c10::Error);
  EXPECT_THROW(model->forward(torch::zeros({4}, torch::kLong)), c10::Error);
}

TEST(GPT, ForwardIsCausal) {
  // Changing token t changes no logits before position t.
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  auto idx = random_ids(1, 12, 37, 4);
  const auto a = model->forward(idx);
  idx[0][8] = (idx[0][8].item<int64_t>() + 1) % 37;
  const auto b = model->forward(idx);
  EXPECT_TRUE(torch::allclose(a.narrow(1, 0, 8), b.narrow(1, 0, 8), 0, 1e-6));
  EXPECT_FALSE(torch::allclose(a.narrow(1, 8, 1), b.narrow(1, 8, 1)));
}

struct Golden {
  weights::Safetensors file;
  GPTConfig cfg;
  weights::TensorMap params;  // keys without input./output./grad.
};

Golden load_golden(const std::string& name) {
  const std::string path = std::string(ATTNZOO_TEST_DATA) + "/" + name;
  Golden g;
  g.file = weights::load_safetensors(path);
  g.cfg = nlohmann::json::parse(g.file.metadata.at("config")).get<GPTConfig>();
  for (const auto& [key, t] : g.file.tensors)
    if (!key.starts_with("input.") && !key.starts_with("output.") && !key.starts_with("grad.")) g.params[key] = t;
  return g;
}

// Logits and loss of the reference, then (when the file has them) every parameter's gradient.
void check_golden(const std::string& name, bool expect_grads) {
  SCOPED_TRACE(name);
  const Golden g = load_golden(name);
  GPT model(g.cfg);
  const std::string path = std::string(ATTNZOO_TEST_DATA) + "/" + name;
  const auto report = weights::load_state_dict(*model, g.params, /*strict=*/true, path);
  ASSERT_TRUE(report.ok()) << report.summary();

  const auto& t = g.file.tensors;
  const auto logits = model->forward(t.at("input.idx"));
  expect_close(logits, t.at("output.logits"), 1e-5, "logits");
  const auto loss = language_model_loss(logits, t.at("input.targets"));
  expect_close(loss, t.at("output.loss"), 1e-5, "loss");

  if (!expect_grads) return;
  loss.backward();
  int checked = 0;
  for (const auto& item : model->named_parameters()) {
    const std::string key = "grad." + item.key();
    ASSERT_EQ(t.count(key), 1u) << key;
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    // The token lookup's sparse gradient lands inside the tied head's dense one.
    EXPECT_FALSE(item.value().grad().is_sparse()) << item.key();
    expect_close(item.value().grad(), t.at(key), 1e-5, key);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(g.params.size())) << "a gradient for every parameter";
}

TEST(GPT, GoldenLogitsLossAndGradients) {
  const Golden g = load_golden("gpt_golden.safetensors");
  EXPECT_EQ(g.cfg.n_layer, 2);
  EXPECT_EQ(g.cfg.activation, "gelu");
  EXPECT_TRUE(g.cfg.bias);
  check_golden("gpt_golden.safetensors", /*expect_grads=*/true);
}

TEST(GPT, GoldenTanhGeluWithoutBias) {
  const Golden g = load_golden("gpt_golden_tanh.safetensors");
  EXPECT_EQ(g.cfg.activation, "gelu_tanh");
  EXPECT_FALSE(g.cfg.bias);
  check_golden("gpt_golden_tanh.safetensors", /*expect_grads=*/false);
}

TEST(GPT, StateDictKeysMatchTheGoldenFile) {
  // The reference names every tensor as nanoGPT / Hugging Face GPT-2 do; importing is a key copy.
  for (const char* name : {"gpt_golden.safetensors", "gpt_golden_tanh.safetensors"}) {
    const Golden g = load_golden(name);
    GPT model(g.cfg);
    std::set<std::string> ours, theirs;
    for (const auto& [k, v] : weights::state_dict(*model)) ours.insert(k);
    for (const auto& [k, v] : g.params) theirs.insert(k);
    EXPECT_EQ(ours, theirs) << name;
  }
}

TEST(GPT, OverfitsOneBatch) {
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  const auto cfg = model->config();
  const auto data = random_ids(4, cfg.block_size + 1, cfg.vocab_size, 5);
  const auto x = data.narrow(1, 0, cfg.block_size), y = data.narrow(1, 1, cfg.block_size);
  auto [decay, no_decay] = attnzoo::engine::weight_decay_groups(*model);
  attnzoo::engine::AdamW opt(decay, no_decay, {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1});
  model->train();
  double first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    auto loss = language_model_loss(model->forward(x), y);
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    loss.backward();
    opt.step(3e-3);
    opt.zero_grad();
  }
  EXPECT_TRUE(std::isfinite(last));
  EXPECT_LT(last, 0.5 * first) << "initial " << first << ", final " << last;
}

TEST(GPT, KvCacheMatchesTheFullForward) {
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t B = 2, T = model->config().block_size;
  const auto idx = random_ids(B, T, model->config().vocab_size, 6);
  const auto full = model->forward(idx);

  // One token at a time.
  GPTCache cache = model->make_cache(B);
  ASSERT_EQ(cache.layers.size(), 2u);
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < T; ++t) {
    steps.push_back(model->forward(idx.narrow(1, t, 1), &cache));
    EXPECT_EQ(cache.length, t + 1);
  }
  expect_close(torch::cat(steps, 1), full, 1e-5, "token by token");

  // A prompt of 5, then chunks of 1 and 4, then the rest.
  GPTCache chunked = model->make_cache(B);
  std::vector<torch::Tensor> parts;
  for (auto [start, len] : std::vector<std::pair<int64_t, int64_t>>{{0, 5}, {5, 1}, {6, 4}, {10, T - 10}})
    parts.push_back(model->forward(idx.narrow(1, start, len), &chunked));
  expect_close(torch::cat(parts, 1), full, 1e-5, "chunks");

  // The cache is full: one more token does not fit.
  EXPECT_THROW(model->forward(idx.narrow(1, 0, 1), &cache), c10::Error);
}

// nanoGPT's generate(): crop to the last block_size tokens, full forward, greedy pick.
torch::Tensor greedy_reference(GPT& model, torch::Tensor idx, int64_t n) {
  torch::NoGradGuard no_grad;
  const int64_t block = model->config().block_size;
  for (int64_t i = 0; i < n; ++i) {
    auto cond = idx.size(1) > block ? idx.narrow(1, idx.size(1) - block, block) : idx;
    auto logits = model->forward(cond).select(1, cond.size(1) - 1);
    idx = torch::cat({idx, logits.argmax(-1, true)}, 1);
  }
  return idx;
}

TEST(GPT, GenerateWithAndWithoutCacheAgreePastTheBlockSize) {
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  // Sharper logits than the N(0, 0.02) init gives, so that greedy decoding is not a tie-break.
  {
    torch::NoGradGuard no_grad;
    model->transformer->wte->weight.mul_(20);
  }
  model->eval();
  const int64_t block = model->config().block_size, T0 = 5, N = 3 * block;
  const auto prompt = random_ids(2, T0, model->config().vocab_size, 7);

  for (double temperature : {0.0, 1.0}) {
    SCOPED_TRACE("temperature " + std::to_string(temperature));
    GenerateOptions opt{.max_new_tokens = N, .sampling = {.temperature = temperature}, .should_stop = {}};
    opt.use_cache = true;
    std::vector<torch::Tensor> streamed;
    const auto cached =
        generate(model, prompt, opt, seeded(42), [&](const torch::Tensor& t) { streamed.push_back(t); });
    opt.use_cache = false;
    const auto uncached = generate(model, prompt, opt, seeded(42));

    ASSERT_EQ(cached.sizes(), (std::vector<int64_t>{2, T0 + N}));
    EXPECT_TRUE(torch::equal(cached.narrow(1, 0, T0), prompt));
    EXPECT_TRUE(torch::equal(cached, uncached)) << cached << "\n" << uncached;
    ASSERT_EQ(streamed.size(), static_cast<size_t>(N));
    EXPECT_TRUE(torch::equal(torch::cat(streamed, 1), cached.narrow(1, T0, N)));
    if (temperature == 0.0) {
      EXPECT_TRUE(torch::equal(cached, greedy_reference(model, prompt, N)));
    }
  }
  EXPECT_FALSE(model->is_training()) << "generate restores the mode it found";
  model->train();
  generate(model, prompt, {.max_new_tokens = 2, .sampling = {}, .should_stop = {}});
  EXPECT_TRUE(model->is_training());
}

TEST(GPT, GenerateAtTemperatureOneDependsOnTheSeed) {
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  const auto prompt = random_ids(1, 3, 37, 8);
  GenerateOptions opt{.max_new_tokens = 40, .sampling = {.temperature = 1.0}, .should_stop = {}};
  const auto a = generate(model, prompt, opt, seeded(1));
  EXPECT_TRUE(torch::equal(a, generate(model, prompt, opt, seeded(1))));
  EXPECT_FALSE(torch::equal(a, generate(model, prompt, opt, seeded(2))));
}

TEST(GPT, GenerateNeverDrawsIdsPastTheVocabLimit) {
  // A padded vocabulary (as 50257 -> 50304): the padding ids have logits but no token.
  torch::manual_seed(0);
  GPT model(gpt_tiny());
  const int64_t V = gpt_tiny().vocab_size, limit = V / 4;
  const auto prompt = random_ids(1, 3, limit, 8);
  GenerateOptions opt{.max_new_tokens = 200, .sampling = {.temperature = 2.0}, .should_stop = {}};
  const auto free_run = generate(model, prompt, opt, seeded(1));
  EXPECT_GT(free_run.ge(limit).sum().item<int64_t>(), 0);  // without the limit, padding ids come up
  opt.vocab_limit = limit;
  const auto limited = generate(model, prompt, opt, seeded(1));
  EXPECT_EQ(limited.ge(limit).sum().item<int64_t>(), 0);
  EXPECT_EQ(limited.size(1), 203);
}

int64_t expected_parameters(const GPTConfig& c) {
  const int64_t C = c.n_embd, bias = c.bias ? 1 : 0;
  const int64_t per_layer = 2 * C + 2 * C * bias        // ln_1, ln_2
                            + 3 * C * C + 3 * C * bias  // c_attn
                            + C * C + C * bias          // attn.c_proj
                            + 4 * C * C + 4 * C * bias  // c_fc
                            + 4 * C * C + C * bias;     // mlp.c_proj
  return c.vocab_size * C + c.block_size * C + c.n_layer * per_layer + C + C * bias;
}

TEST(GPT, ParameterCountAndGpt2KeyNames) {
  for (bool bias : {true, false}) {
    GPTConfig cfg = gpt_tiny();
    cfg.bias = bias;
    GPT model(cfg);
    EXPECT_EQ(model->num_parameters(), expected_parameters(cfg)) << "bias " << bias;
    EXPECT_EQ(model->num_parameters(true), expected_parameters(cfg) - cfg.block_size * cfg.n_embd);
  }
  GPT model(gpt_tiny());
  std::set<std::string> keys;
  for (const auto& [k, v] : weights::state_dict(*model)) keys.insert(k);
  for (const char* k :
       {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias",
        "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_attn.bias", "transformer.h.0.attn.c_proj.weight",
        "transformer.h.0.ln_2.weight", "transformer.h.0.mlp.c_fc.weight", "transformer.h.1.mlp.c_proj.bias",
        "transformer.ln_f.weight", "transformer.ln_f.bias"})
    EXPECT_EQ(keys.count(k), 1u) << k;
  EXPECT_EQ(keys.count("lm_head.weight"), 0u) << "the head is tied to wte";
  EXPECT_EQ(keys.size(), 4u + 2 * 12) << "wte, wpe, ln_f (2) and 12 per layer";
  EXPECT_EQ(model->transformer->wte->weight.sizes(), (std::vector<int64_t>{37, 32}));
  EXPECT_EQ(model->transformer->h[0]->as<attnzoo::models::Block>()->attn->c_attn->weight.sizes(),
            (std::vector<int64_t>{96, 32}))
      << "torch's (out, in) layout";
}

// GPT-2 / nanoGPT init: N(0, 0.02), residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02/√(2·n_layer)).
TEST(GPT, InitFollowsGpt2) {
  torch::manual_seed(0);
  GPTConfig cfg = gpt_tiny();
  cfg.n_embd = 128;
  cfg.n_head = 4;
  cfg.vocab_size = 500;
  GPT model(cfg);
  const auto sd = weights::state_dict(*model);
  EXPECT_NEAR(sd.at("transformer.wte.weight").std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(sd.at("transformer.h.0.mlp.c_fc.weight").std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(sd.at("transformer.h.0.mlp.c_proj.weight").std().item<double>(), 0.02 / std::sqrt(4.0), 0.002);
  EXPECT_NEAR(sd.at("transformer.h.1.attn.c_proj.weight").std().item<double>(), 0.02 / std::sqrt(4.0), 0.002);
  EXPECT_EQ(sd.at("transformer.h.0.attn.c_attn.bias").abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(sd.at("transformer.h.0.ln_1.weight"), torch::ones({128})));
  EXPECT_TRUE(torch::equal(sd.at("transformer.ln_f.bias"), torch::zeros({128})));
}

TEST(GPTConfig, ValidateRejectsBadConfigs) {
  EXPECT_NO_THROW(gpt_tiny().validate());
  GPTConfig c = gpt_tiny();
  c.n_embd = 30;
  c.n_head = 4;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { c.validate(); }),
                  "n_embd (30) must be divisible by n_head (4)");
  EXPECT_THROW(GPT{c}, std::invalid_argument) << "the model validates its config";

  c = gpt_tiny();
  c.activation = "swish";
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { c.validate(); }), "unknown activation 'swish'");
  c = gpt_tiny();
  c.vocab_size = 0;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { c.validate(); }), "vocab_size must be positive");
  c = gpt_tiny();
  c.dropout = 1.0;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { c.validate(); }), "dropout");
}

TEST(GPTConfig, PresetsAndJson) {
  for (const char* name : {"tiny", "shakespeare-char", "shakespeare-char-cpu", "gpt2"})
    EXPECT_NO_THROW(gpt_preset(name).validate()) << name;
  EXPECT_THROW(gpt_preset("gpt5"), std::invalid_argument);
  const GPTConfig sc = gpt_preset("shakespeare-char");
  EXPECT_EQ(sc.n_layer, 6);
  EXPECT_EQ(sc.block_size, 256);
  EXPECT_EQ(sc.dropout, 0.2);

  // JSON round trip; missing fields keep their defaults.
  const GPTConfig g2 = gpt_preset("gpt2");
  const GPTConfig back = nlohmann::json(g2).get<GPTConfig>();
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(g2));
  const GPTConfig partial = nlohmann::json{{"n_layer", 3}}.get<GPTConfig>();
  EXPECT_EQ(partial.n_layer, 3);
  EXPECT_EQ(partial.n_embd, GPTConfig{}.n_embd);
}

TEST(GPTConfig, Gpt2PresetHas124MParameters) {
  // 124,475,904 with the vocabulary padded to 50304 (nanoGPT reports 124M for GPT-2 small).
  const GPTConfig cfg = gpt_preset("gpt2");
  EXPECT_EQ(expected_parameters(cfg), 124475904);
  const auto t0 = std::chrono::steady_clock::now();
  GPT model(cfg);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t n = model->num_parameters();
  EXPECT_GE(n, 124'000'000);
  EXPECT_LE(n, 125'000'000);
  EXPECT_EQ(n, expected_parameters(cfg));
  EXPECT_EQ(model->num_parameters(true), n - 1024 * 768);
  RecordProperty("build_seconds", std::to_string(seconds));
}

}  // namespace
