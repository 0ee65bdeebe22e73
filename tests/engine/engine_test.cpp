// Tests for engine/: the LR schedule against nanoGPT's get_lr, config validation and JSON merging,
// AdamW against torch::optim::AdamW and across a state save/load, checkpoint directories (atomic
// replace, a write that hits the file-size limit, one test per malformed file), the checkpoint
// store, metrics truncation on resume, and the training loop: exact resume, non-finite loss,
// refusing to overwrite a run, SIGINT.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "datasets/token_files.h"
#include "engine/adamw.h"
#include "engine/checkpoint.h"
#include "engine/metrics.h"
#include "engine/train_config.h"
#include "models/common/gemm.h"
#include "engine/trainer.h"
#include "losses/language_model.h"
#include "models/gpt/gpt.h"
#include "tests/test_util.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;
namespace engine = attnzoo::engine;
namespace weights = attnzoo::weights;
namespace models = attnzoo::models;
using attnzoo::models::GPT;
using attnzoo::models::gpt_tiny;
using attnzoo::models::GPTConfig;
using attnzoo::testing::any_error;
using attnzoo::testing::clone_tensors;
using attnzoo::testing::error_of;
using attnzoo::testing::expect_same_tensors;
using attnzoo::testing::FileSizeLimit;
using attnzoo::testing::TempDirTest;
using attnzoo::testing::write_bytes;
using engine::TrainConfig;

namespace {

// The names in directory D, sorted.
std::vector<std::string> listing(const fs::path& d) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(d)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// ---- learning_rate

// nanoGPT's train.py get_lr, transcribed.
double nanogpt_lr(int64_t it, double lr, double min_lr, int64_t warmup, int64_t decay) {
  if (it < warmup) return lr * static_cast<double>(it + 1) / static_cast<double>(warmup + 1);
  if (it > decay) return min_lr;
  const double ratio = static_cast<double>(it - warmup) / static_cast<double>(decay - warmup);
  const double coeff = 0.5 * (1.0 + std::cos(M_PI * ratio));
  return min_lr + coeff * (lr - min_lr);
}

TrainConfig schedule(const std::string& kind) {
  TrainConfig cfg;
  cfg.lr = 1.0;
  cfg.min_lr = 0.1;
  cfg.warmup_iters = 10;
  cfg.lr_decay_iters = 110;
  cfg.max_iters = 200;
  cfg.lr_schedule = kind;
  return cfg;
}

TEST(LearningRate, CosineMatchesNanoGpt) {
  const TrainConfig cfg = schedule("cosine");
  for (int64_t step = 0; step < 200; ++step)
    EXPECT_NEAR(engine::learning_rate(cfg, step), nanogpt_lr(step, 1.0, 0.1, 10, 110), 1e-12) << step;
}

TEST(LearningRate, WarmupIsLinearAndPeaksAtLr) {
  for (const char* kind : {"cosine", "linear", "constant"}) {
    SCOPED_TRACE(kind);
    const TrainConfig cfg = schedule(kind);
    EXPECT_DOUBLE_EQ(engine::learning_rate(cfg, 0), 1.0 / 11.0);
    for (int64_t s = 1; s < 10; ++s)
      EXPECT_NEAR(engine::learning_rate(cfg, s) - engine::learning_rate(cfg, s - 1), 1.0 / 11.0, 1e-12) << s;
    EXPECT_DOUBLE_EQ(engine::learning_rate(cfg, 9), 10.0 / 11.0);
    EXPECT_DOUBLE_EQ(engine::learning_rate(cfg, 10), 1.0) << "the peak, right after warmup";
    for (int64_t s = 0; s < 200; ++s) EXPECT_LE(engine::learning_rate(cfg, s), 1.0);
  }
}

TEST(LearningRate, CosineDecaysToMinLrAndStays) {
  const TrainConfig cfg = schedule("cosine");
  EXPECT_DOUBLE_EQ(engine::learning_rate(cfg, 60), 0.55) << "halfway: midpoint of lr and min_lr";
  EXPECT_NEAR(engine::learning_rate(cfg, 35), 0.1 + 0.5 * (1 + std::cos(M_PI / 4)) * 0.9, 1e-12);
  EXPECT_NEAR(engine::learning_rate(cfg, 109), 0.1, 1e-3);
  EXPECT_GT(engine::learning_rate(cfg, 109), 0.1);
  for (int64_t s = 110; s < 400; s += 7) EXPECT_DOUBLE_EQ(engine::learning_rate(cfg, s), 0.1) << s;
  for (int64_t s = 11; s <= 110; ++s) EXPECT_LE(engine::learning_rate(cfg, s), engine::learning_rate(cfg, s - 1));
}

TEST(LearningRate, LinearAndConstantSchedules) {
  const TrainConfig linear = schedule("linear");
  EXPECT_DOUBLE_EQ(engine::learning_rate(linear, 60), 0.55);
  EXPECT_NEAR(engine::learning_rate(linear, 35), 0.1 + 0.75 * 0.9, 1e-12);
  EXPECT_NEAR(engine::learning_rate(linear, 85), 0.1 + 0.25 * 0.9, 1e-12);
  EXPECT_DOUBLE_EQ(engine::learning_rate(linear, 110), 0.1);
  EXPECT_DOUBLE_EQ(engine::learning_rate(linear, 150), 0.1);
  for (int64_t s = 12; s <= 110; ++s)
    EXPECT_NEAR(engine::learning_rate(linear, s - 1) - engine::learning_rate(linear, s), 0.9 / 100, 1e-12);

  const TrainConfig constant = schedule("constant");
  for (int64_t s : {10, 11, 60, 110, 1000}) EXPECT_DOUBLE_EQ(engine::learning_rate(constant, s), 1.0) << s;
}

TEST(LearningRate, DecayItersDefaultsToMaxItersAndWarmupMayBeZero) {
  TrainConfig cfg = schedule("cosine");
  cfg.lr_decay_iters = 0;
  cfg.max_iters = 210;
  EXPECT_EQ(cfg.decay_iters(), 210);
  EXPECT_DOUBLE_EQ(engine::learning_rate(cfg, 110), 0.55);
  EXPECT_DOUBLE_EQ(engine::learning_rate(cfg, 210), 0.1);
  cfg.warmup_iters = 0;
  EXPECT_DOUBLE_EQ(engine::learning_rate(cfg, 0), 1.0);
}

// ---- TrainConfig

TEST(TrainConfig, ValidateNamesTheBadField) {
  EXPECT_NO_THROW(TrainConfig{}.validate());
  const std::vector<std::pair<std::function<void(TrainConfig&)>, std::string>> cases = {
      {[](TrainConfig& c) { c.batch_size = 0; }, "batch_size"},
      {[](TrainConfig& c) { c.max_iters = -1; }, "max_iters"},
      {[](TrainConfig& c) { c.lr = 0; }, "lr must be positive"},
      {[](TrainConfig& c) { c.lr = std::numeric_limits<double>::quiet_NaN(); }, "lr must be positive"},
      {[](TrainConfig& c) { c.lr = std::numeric_limits<double>::infinity(); }, "lr must be positive"},
      {[](TrainConfig& c) { c.min_lr = 1.0; }, "min_lr"},
      {[](TrainConfig& c) { c.warmup_iters = -1; }, "warmup_iters"},
      {[](TrainConfig& c) { c.lr_decay_iters = -5; }, "lr_decay_iters"},
      {[](TrainConfig& c) { c.lr_schedule = "step"; }, "lr_schedule must be cosine, linear or constant, got 'step'"},
      {[](TrainConfig& c) { c.weight_decay = -0.1; }, "weight_decay"},
      {[](TrainConfig& c) { c.beta1 = 1.0; }, "beta1"},
      {[](TrainConfig& c) { c.beta2 = -0.1; }, "beta2"},
      {[](TrainConfig& c) { c.grad_clip = -1; }, "grad_clip"},
      {[](TrainConfig& c) { c.grad_accum = 0; }, "grad_accum"},
      {[](TrainConfig& c) { c.eval_interval = 0; }, "eval_interval"},
      {[](TrainConfig& c) { c.eval_iters = 0; }, "eval_iters"},
      {[](TrainConfig& c) { c.log_interval = 0; }, "log_interval"},
      {[](TrainConfig& c) { c.checkpoint_interval = -1; }, "checkpoint_interval"},
      {[](TrainConfig& c) { c.keep_last = 0; }, "keep_last"},
      {[](TrainConfig& c) { c.dtype = "fp16"; }, "dtype must be fp32 or bf16, got 'fp16'"},
      {[](TrainConfig& c) { c.device = "tpu"; }, "device must be auto, cpu or cuda, got 'tpu'"},
      {[](TrainConfig& c) { c.threads = -2; }, "threads"},
  };
  for (const auto& [mutate, want] : cases) {
    TrainConfig cfg;
    mutate(cfg);
    EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { cfg.validate(); }), want);
  }
}

TEST(TrainConfig, CheckpointIntervalDefaultsToEvalInterval) {
  TrainConfig cfg;
  cfg.eval_interval = 50;
  EXPECT_EQ(cfg.ckpt_interval(), 50);
  cfg.checkpoint_interval = 7;
  EXPECT_EQ(cfg.ckpt_interval(), 7);
}

TEST(MergeJson, ReplacesNamedFieldsOnly) {
  TrainConfig cfg;
  engine::merge_json(cfg, {{"lr", 1e-3}, {"max_iters", 10}, {"lr_schedule", "linear"}, {"seed", 7}}, "train");
  EXPECT_EQ(cfg.lr, 1e-3);
  EXPECT_EQ(cfg.max_iters, 10);
  EXPECT_EQ(cfg.lr_schedule, "linear");
  EXPECT_EQ(cfg.seed, 7u);
  EXPECT_EQ(cfg.batch_size, TrainConfig{}.batch_size) << "untouched";
  engine::merge_json(cfg, {{"lr", 2}}, "train");
  EXPECT_EQ(cfg.lr, 2.0) << "an integer is a fine value for a float field";
  engine::merge_json(cfg, nlohmann::json::object(), "train");
  EXPECT_EQ(cfg.lr, 2.0);

  GPTConfig model;
  engine::merge_json(model, {{"bias", false}, {"activation", "relu"}}, "model");
  EXPECT_FALSE(model.bias);
  EXPECT_EQ(model.activation, "relu");
}

TEST(MergeJson, RefusesUnknownKeysAndWrongTypesLeavingTheTargetUnchanged) {
  const nlohmann::json before = TrainConfig{};
  auto refuse = [&](const nlohmann::json& patch, const std::string& want) {
    TrainConfig cfg;
    EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { engine::merge_json(cfg, patch, "train"); }), want);
    EXPECT_EQ(nlohmann::json(cfg), before) << patch.dump();
  };
  refuse({{"lr", 0.1}, {"learning_rate", 0.1}}, "unknown key 'train.learning_rate'");
  refuse({{"max_iters", "10"}}, "key 'train.max_iters' should be number, got string");
  refuse({{"lr", "fast"}}, "key 'train.lr'");
  refuse({{"lr_schedule", 3}}, "key 'train.lr_schedule' should be string, got number");
  refuse({{"batch_size", true}}, "key 'train.batch_size'");
  refuse({{"dtype", nullptr}}, "key 'train.dtype'");
  refuse({{"max_iters", 10.5}}, "key 'train.max_iters' should be an integer, got 10.5");
  refuse({{"max_iters", 10.0}}, "key 'train.max_iters' should be an integer");
  refuse({{"lr", 0.5}, {"max_iters", 1.5}}, "train.max_iters");
  refuse(nlohmann::json::array({1, 2}), "train must be a JSON object");

  GPTConfig model;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    engine::merge_json(model, {{"bias", 1}}, "model");
                  }),
                  "key 'model.bias' should be boolean, got number");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] {
                    engine::merge_json(model, {{"bias", "true"}}, "model");
                  }),
                  "key 'model.bias'");
}

// ---- weight_decay_groups and AdamW

std::set<std::string> names_of(const std::vector<engine::NamedParam>& group) {
  std::set<std::string> out;
  for (const auto& p : group) out.insert(p.name);
  return out;
}

TEST(WeightDecayGroups, GptLinearWeightsDecayEverythingElseDoesNot) {
  GPT model(gpt_tiny());
  auto [decay, no_decay] = engine::weight_decay_groups(*model);
  std::set<std::string> want_decay;
  for (int i = 0; i < 2; ++i)
    for (const char* w : {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"})
      want_decay.insert("transformer.h." + std::to_string(i) + "." + w);
  EXPECT_EQ(names_of(decay), want_decay);
  const auto undecayed = names_of(no_decay);
  for (const char* k : {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight",
                        "transformer.ln_f.bias", "transformer.h.0.ln_1.weight", "transformer.h.1.mlp.c_fc.bias"})
    EXPECT_EQ(undecayed.count(k), 1u) << k;

  // Every trainable parameter exactly once, and the group entries are the parameters themselves.
  std::multiset<std::string> all;
  for (const auto* group : {&decay, &no_decay})
    for (const auto& p : *group) all.insert(p.name);
  std::multiset<std::string> params;
  for (const auto& item : model->named_parameters()) params.insert(item.key());
  EXPECT_EQ(all, params);
  EXPECT_EQ(decay.size() + no_decay.size(), model->parameters().size());
  EXPECT_EQ(decay[0].param.data_ptr(), model->named_parameters()[decay[0].name].data_ptr());
}

TEST(WeightDecayGroups, FrozenParametersAreLeftOut) {
  GPT model(gpt_tiny());
  model->transformer->wpe->weight.requires_grad_(false);
  model->transformer->h[0]->as<attnzoo::models::Block>()->mlp->c_fc->weight.requires_grad_(false);
  auto [decay, no_decay] = engine::weight_decay_groups(*model);
  EXPECT_EQ(names_of(decay).count("transformer.h.0.mlp.c_fc.weight"), 0u);
  EXPECT_EQ(names_of(no_decay).count("transformer.wpe.weight"), 0u);
  EXPECT_EQ(decay.size() + no_decay.size(), model->parameters().size() - 2);
}

// Linear 5 -> 8, tanh, Linear 8 -> 3.
struct SmallNetImpl : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  SmallNetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(5, 8));
    fc2 = register_module("fc2", torch::nn::Linear(8, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::tanh(fc1(x))); }
};
TORCH_MODULE(SmallNet);

// train() and weight_decay_groups() take a Module&; one built on the stack (not in a shared_ptr)
// must work too.
TEST(WeightDecayGroups, AcceptsAModuleNotHeldInASharedPtr) {
  SmallNetImpl net;
  std::vector<engine::NamedParam> decay, no_decay;
  ASSERT_NO_THROW(std::tie(decay, no_decay) = engine::weight_decay_groups(net));
  EXPECT_EQ(names_of(decay), (std::set<std::string>{"fc1.weight", "fc2.weight"}));
  EXPECT_EQ(names_of(no_decay), (std::set<std::string>{"fc1.bias", "fc2.bias"}));
}

void copy_params(SmallNet& to, SmallNet& from) { weights::load_state_dict(*to, weights::state_dict(*from)); }

torch::Tensor small_loss(SmallNet& net, int step) {
  torch::manual_seed(100 + step);
  const auto x = torch::randn({16, 5});
  const auto y = torch::randn({16, 3});
  return torch::mse_loss(net->forward(x), y);
}

double lr_at(int step) { return 1e-2 * (step + 1) / 5.0; }

TEST(AdamW, MatchesTorchOptimAdamWWithTwoParamGroups) {
  torch::manual_seed(0);
  SmallNet ours, theirs;
  copy_params(theirs, ours);

  auto [decay, no_decay] = engine::weight_decay_groups(*ours);
  ASSERT_EQ(names_of(decay), (std::set<std::string>{"fc1.weight", "fc2.weight"}));
  engine::AdamW opt(decay, no_decay, {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1});

  auto options = [](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(lr_at(0)).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{theirs->fc1->weight, theirs->fc2->weight}, options(0.1));
  groups.emplace_back(std::vector<torch::Tensor>{theirs->fc1->bias, theirs->fc2->bias}, options(0.0));
  torch::optim::AdamW reference(std::move(groups));

  for (int step = 0; step < 5; ++step) {
    small_loss(ours, step).backward();
    opt.step(lr_at(step));
    opt.zero_grad();

    for (auto& group : reference.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr_at(step));
    reference.zero_grad();
    small_loss(theirs, step).backward();
    reference.step();
  }
  EXPECT_EQ(opt.steps(), 5);
  const auto a = weights::state_dict(*ours), b = weights::state_dict(*theirs);
  for (const auto& [k, v] : a) {
    const double diff = (v - b.at(k)).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6) << k;
  }
  // The parameters moved by more than the tolerance, so the comparison means something.
  torch::manual_seed(0);
  SmallNet fresh;
  EXPECT_GT((a.at("fc1.weight") - fresh->fc1->weight).abs().max().item<double>(), 1e-3);
  EXPECT_FALSE(ours->fc1->weight.grad().defined()) << "zero_grad drops the gradients";
}

// The fused update writes through raw pointers; it bumps each parameter's version as ATen's
// in-place ops do, so that inference, which keeps blocked copies of weights keyed on the version
// (models::linear), computes with the updated weights.
TEST(AdamW, FusedStepBumpsVersionsSoInferenceSeesTheNewWeights) {
  torch::manual_seed(3);
  auto w = torch::randn({24, 40}).set_requires_grad(true);
  const auto x = torch::randn({96, 40});
  engine::AdamW opt({{"fc.weight", w}}, {}, {0.9, 0.999, 1e-8, 0.0});
  {
    torch::NoGradGuard no_grad;
    (void)models::linear(x, w);
  }
  w.mutable_grad() = torch::randn({24, 40});
  const auto before = w.detach().clone();
  const int64_t version = w._version();
  opt.step(0.1);
  EXPECT_GT(w._version(), version);
  ASSERT_GT((w.detach() - before).abs().max().item<double>(), 0.05);
  torch::NoGradGuard no_grad;
  EXPECT_LT((models::linear(x, w) - at::linear(x, w)).abs().max().item<double>(), 1e-4);
}

// Parameters large enough to be updated in several parallel chunks, and one that is not
// contiguous (a transposed view: the tensor-op path), against torch::optim::AdamW.
TEST(AdamW, MatchesTorchOptimAdamWOnLargeAndStridedParameters) {
  torch::manual_seed(3);
  auto big = torch::randn({700, 500}).requires_grad_();
  auto strided = torch::randn({40, 30}).t().requires_grad_();  // (30, 40), column-major
  const auto start = big.detach().clone();
  auto big_ref = big.detach().clone().requires_grad_(), strided_ref = strided.detach().clone().requires_grad_();
  engine::AdamW opt({{"big", big}, {"strided", strided}}, {}, {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1});
  torch::optim::AdamW reference(std::vector<torch::Tensor>{big_ref, strided_ref},
                                torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1));
  for (int step = 0; step < 4; ++step) {
    auto gb = torch::randn(big.sizes()), gs = torch::randn(strided.sizes());
    big.mutable_grad() = gb.clone(), strided.mutable_grad() = gs.clone();
    big_ref.mutable_grad() = gb.clone(), strided_ref.mutable_grad() = gs.clone();
    opt.step(1e-2);
    reference.step();
  }
  EXPECT_LE((big - big_ref).abs().max().item<double>(), 1e-6);
  EXPECT_LE((strided - strided_ref).abs().max().item<double>(), 1e-6);
  EXPECT_GT((big - start).abs().max().item<double>(), 1e-3) << "the parameters moved";
}

TEST(AdamW, WeightDecayOnlyOnTheDecayedGroup) {
  // With zero gradients, Adam's update is zero and only decoupled decay moves the parameters.
  SmallNet net;
  auto [decay, no_decay] = engine::weight_decay_groups(*net);
  engine::AdamW opt(decay, no_decay, {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.5});
  const auto w = net->fc1->weight.detach().clone(), b = net->fc1->bias.detach().clone();
  for (auto& p : net->parameters()) p.mutable_grad() = torch::zeros_like(p);
  opt.step(0.1);
  EXPECT_TRUE(torch::allclose(net->fc1->weight, w * (1 - 0.1 * 0.5)));
  EXPECT_TRUE(torch::equal(net->fc1->bias, b));
}

engine::AdamW make_opt(SmallNet& net) {
  auto [decay, no_decay] = engine::weight_decay_groups(*net);
  return engine::AdamW(decay, no_decay, {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1});
}

void train_steps(SmallNet& net, engine::AdamW& opt, int from, int to) {
  for (int step = from; step < to; ++step) {
    small_loss(net, step).backward();
    opt.step(lr_at(step));
    opt.zero_grad();
  }
}

TEST(AdamW, StateDictRoundTripContinuesExactly) {
  torch::manual_seed(0);
  SmallNet straight, first, resumed;
  copy_params(first, straight);
  engine::AdamW straight_opt = make_opt(straight);
  train_steps(straight, straight_opt, 0, 5);

  engine::AdamW first_opt = make_opt(first);
  train_steps(first, first_opt, 0, 2);
  const auto state = clone_tensors(first_opt.state_dict());
  EXPECT_EQ(state.size(), 2u * 4 + 1) << "exp_avg and exp_avg_sq per parameter, and step";
  EXPECT_EQ(state.at("step").item<int64_t>(), 2);
  EXPECT_EQ(state.at("fc1.weight.exp_avg").sizes(), first->fc1->weight.sizes());

  // A new process: the model from its checkpoint, a fresh optimizer loading the saved state.
  copy_params(resumed, first);
  engine::AdamW resumed_opt = make_opt(resumed);
  resumed_opt.load_state_dict(state);
  EXPECT_EQ(resumed_opt.steps(), 2);
  train_steps(resumed, resumed_opt, 2, 5);

  for (const auto& [k, v] : weights::state_dict(*straight))
    EXPECT_TRUE(torch::equal(v, weights::state_dict(*resumed).at(k))) << k;
}

TEST(AdamW, LoadStateDictWithAMissingOrMisshapedKeyThrowsAndChangesNothing) {
  torch::manual_seed(0);
  SmallNet net;
  engine::AdamW opt = make_opt(net);
  train_steps(net, opt, 0, 2);
  const auto before = clone_tensors(opt.state_dict());

  auto other = clone_tensors(before);
  for (auto& [k, v] : other) v.fill_(7);
  other["step"] = torch::tensor(int64_t{9});

  auto missing = other;
  missing.erase("fc2.bias.exp_avg_sq");  // the last entry validated
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { opt.load_state_dict(missing); }),
                  "optimizer state is missing 'fc2.bias.exp_avg_sq'");
  auto no_step = other;
  no_step.erase("step");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { opt.load_state_dict(no_step); }), "'step'");
  auto misshaped = other;
  misshaped["fc2.weight.exp_avg"] = torch::zeros({3, 9});
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { opt.load_state_dict(misshaped); }),
                  "'fc2.weight.exp_avg' has shape [3, 9], expected [3, 8]");

  EXPECT_EQ(opt.steps(), 2);
  ASSERT_NO_FATAL_FAILURE(expect_same_tensors(opt.state_dict(), before));

  opt.load_state_dict(other);  // a good one loads
  EXPECT_EQ(opt.steps(), 9);
  EXPECT_EQ(opt.state_dict().at("fc1.bias.exp_avg")[0].item<float>(), 7.0f);
}

// ---- checkpoints

engine::Checkpoint sample_checkpoint(float fill, int64_t step) {
  engine::Checkpoint c;
  c.config = {{"model", nlohmann::json(gpt_tiny())}, {"note", "ünïcode"}};
  c.model = {{"w", torch::full({3, 4}, fill)}, {"b", torch::arange(5, torch::kLong)}};
  c.optimizer = {{"w.exp_avg", torch::full({3, 4}, fill / 2)}, {"step", torch::tensor(step)}};
  c.state = {{"step", step}, {"best_val_loss", nullptr}, {"rng", {{"cpu", "AAAA"}}}};
  return c;
}

void expect_same_checkpoint(const engine::Checkpoint& got, const engine::Checkpoint& want) {
  EXPECT_EQ(got.config, want.config);
  EXPECT_EQ(got.state, want.state);
  expect_same_tensors(got.model, want.model);
  expect_same_tensors(got.optimizer, want.optimizer);
}

using CheckpointTest = TempDirTest;

TEST_F(CheckpointTest, WriteReadRoundTrip) {
  const auto ckpt = sample_checkpoint(1.5f, 250);
  engine::write_checkpoint(dir_ / "run" / "checkpoints" / "step-000250", ckpt);
  EXPECT_EQ(listing(dir_ / "run" / "checkpoints"), std::vector<std::string>{"step-000250"});
  EXPECT_EQ(listing(dir_ / "run" / "checkpoints" / "step-000250"),
            (std::vector<std::string>{"config.json", "model.safetensors", "optimizer.safetensors", "state.json"}));
  expect_same_checkpoint(engine::read_checkpoint(dir_ / "run" / "checkpoints" / "step-000250"), ckpt);

  engine::Checkpoint no_optimizer = sample_checkpoint(2.0f, 1);
  no_optimizer.optimizer.clear();
  engine::write_checkpoint(dir_ / "export", no_optimizer);
  expect_same_checkpoint(engine::read_checkpoint(dir_ / "export"), no_optimizer);
}

TEST_F(CheckpointTest, WritingOverAnExistingCheckpointReplacesIt) {
  engine::write_checkpoint(dir_ / "best", sample_checkpoint(1.0f, 100));
  const auto newer = sample_checkpoint(2.0f, 200);
  engine::write_checkpoint(dir_ / "best", newer);
  expect_same_checkpoint(engine::read_checkpoint(dir_ / "best"), newer);
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"best"}) << "no temporary directory left";
}

TEST_F(CheckpointTest, FailedWriteKeepsThePreviousCheckpoint) {
  const fs::path ckpt_dir = dir_ / "checkpoints" / "step-000003";
  const auto previous = sample_checkpoint(3.0f, 3);
  engine::write_checkpoint(ckpt_dir, previous);

  engine::Checkpoint big = sample_checkpoint(4.0f, 6);
  big.model["huge"] = torch::ones({1 << 20});  // 4 MiB
  std::string error;
  {
    FileSizeLimit limit(1 << 20);
    ASSERT_TRUE(limit.ok()) << std::strerror(errno);
    error = error_of<std::runtime_error>([&] { engine::write_checkpoint(ckpt_dir, big); });
  }
  EXPECT_CONTAINS(error, "model.safetensors");
  EXPECT_CONTAINS(error, "File too large");
  expect_same_checkpoint(engine::read_checkpoint(ckpt_dir), previous);
  EXPECT_EQ(listing(dir_ / "checkpoints"), std::vector<std::string>{"step-000003"}) << "no temporary directory left";

  // A first write that fails leaves nothing at all.
  {
    FileSizeLimit limit(1 << 20);
    ASSERT_TRUE(limit.ok());
    error_of<std::runtime_error>([&] { engine::write_checkpoint(dir_ / "checkpoints" / "step-000006", big); });
  }
  EXPECT_EQ(listing(dir_ / "checkpoints"), std::vector<std::string>{"step-000003"});
  engine::write_checkpoint(ckpt_dir, big);  // the limit is restored
  EXPECT_EQ(engine::read_checkpoint(ckpt_dir).model.at("huge").numel(), 1 << 20);
}

// The error reading DIR throws; it must start with the path of FILE in DIR.
std::string read_error(const fs::path& dir, const std::string& file) {
  const std::string what = error_of<std::runtime_error>([&] { engine::read_checkpoint(dir); });
  EXPECT_STARTS_WITH(what, (dir / file).string() + ": ");
  return what;
}

TEST_F(CheckpointTest, ReadNamesTheBadFile) {
  const fs::path c = dir_ / "ckpt";
  auto fresh = [&] {
    fs::remove_all(c);
    engine::write_checkpoint(c, sample_checkpoint(1.0f, 10));
  };

  fresh();
  fs::remove(c / "model.safetensors");
  EXPECT_CONTAINS(read_error(c, "model.safetensors"), "missing from the checkpoint");

  fresh();
  fs::resize_file(c / "model.safetensors", fs::file_size(c / "model.safetensors") - 7);
  read_error(c, "model.safetensors");

  fresh();
  fs::resize_file(c / "optimizer.safetensors", 5);
  EXPECT_CONTAINS(read_error(c, "optimizer.safetensors"), "too short");

  fresh();
  write_bytes(c / "model.safetensors", "this is not a safetensors file, just some text\n");
  read_error(c, "model.safetensors");

  fresh();
  write_bytes(c / "state.json", "{\"step\": 10,");
  EXPECT_CONTAINS(read_error(c, "state.json"), "malformed JSON");

  fresh();
  write_bytes(c / "state.json", "[10]");
  EXPECT_CONTAINS(read_error(c, "state.json"), "expected a JSON object");

  fresh();
  write_bytes(c / "config.json", "");
  EXPECT_CONTAINS(read_error(c, "config.json"), "malformed JSON");

  const std::string what = error_of<std::runtime_error>([&] { engine::read_checkpoint(dir_ / "absent"); });
  EXPECT_STARTS_WITH(what, (dir_ / "absent").string() + ": ");
}

TEST_F(CheckpointTest, StoreKeepsTheLastKAndResolvesNames) {
  const engine::CheckpointStore store(dir_ / "run");
  EXPECT_EQ(store.root(), dir_ / "run" / "checkpoints");
  EXPECT_EQ(store.step_dir(250), dir_ / "run" / "checkpoints" / "step-000250");
  EXPECT_FALSE(store.latest().has_value());
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { store.resolve("latest"); }), "no checkpoint found");
  EXPECT_TRUE(store.steps().empty());

  for (int64_t step : {1, 2, 3, 4, 5}) store.save_step(step, sample_checkpoint(static_cast<float>(step), step), 2);
  EXPECT_EQ(store.steps(), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(listing(store.root()), (std::vector<std::string>{"step-000004", "step-000005"}));
  EXPECT_EQ(store.latest(), store.step_dir(5));
  EXPECT_EQ(store.resolve("latest"), store.step_dir(5));
  EXPECT_EQ(store.resolve("step-4"), store.step_dir(4));
  EXPECT_EQ(store.resolve("4"), store.step_dir(4));
  EXPECT_EQ(store.resolve("step-000004"), store.step_dir(4));
  EXPECT_EQ(engine::read_checkpoint(store.resolve("5")).state["step"], 5);

  // A well-formed name without a checkpoint: the message lists what there is.
  const std::string no_best = any_error([&] { store.resolve("best"); });
  EXPECT_CONTAINS(no_best, "no such checkpoint");
  EXPECT_CONTAINS(no_best, store.root().string());
  EXPECT_CONTAINS(no_best, "available: step-000004, step-000005");
  store.save_best(sample_checkpoint(9.0f, 3));
  EXPECT_EQ(store.resolve("best"), store.root() / "best");
  EXPECT_EQ(store.steps(), (std::vector<int64_t>{4, 5})) << "best is not a step";

  const std::string no_step = any_error([&] { store.resolve("step-3"); });
  EXPECT_CONTAINS(no_step, "no such checkpoint");
  EXPECT_CONTAINS(no_step, "available: step-000004, step-000005, best");
  for (const char* bad : {"bogus", "step-", "step-x", "4a", "", "step-4.5", "Latest"})
    EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { store.resolve(bad); }), "expected best, latest or step-N")
        << bad;

  // Stray entries are not steps.
  fs::create_directories(store.root() / "step-abc");
  fs::create_directories(store.root() / ".step-000009.tmp-123");
  write_bytes(store.root() / "step-000010", "a file");
  EXPECT_EQ(store.steps(), (std::vector<int64_t>{4, 5}));

  // With only best, latest is best.
  const engine::CheckpointStore only_best(dir_ / "other");
  only_best.save_best(sample_checkpoint(1.0f, 7));
  EXPECT_EQ(only_best.latest(), only_best.root() / "best");
}

// ---- metrics

using MetricsTest = TempDirTest;

TEST_F(MetricsTest, ResumeDropsRowsTheResumedRunLogsAgain) {
  const fs::path path = dir_ / "metrics.jsonl";
  {
    engine::MetricsLog log(path);
    for (int64_t step = 0; step < 6; ++step) {
      if (step % 3 == 0) log.write({{"step", step}, {"split", "val"}, {"loss", 5.0 - step}});
      log.write({{"step", step}, {"split", "train"}, {"loss", 4.0 - step}});
    }
    log.write({{"step", 6}, {"split", "val"}, {"loss", 0.5}});
    EXPECT_TRUE(log.has("train", 5));
    EXPECT_TRUE(log.has("val", 6));
    EXPECT_FALSE(log.has("val", 5));
  }
  ASSERT_EQ(engine::read_metrics(path).size(), 6u + 3);

  // Resuming after 3 completed steps: train rows 0..2 and val rows 0 and 3 stay.
  engine::MetricsLog log(path, 3);
  std::vector<std::pair<std::string, int64_t>> kept;
  for (const auto& row : engine::read_metrics(path))
    kept.emplace_back(row["split"].get<std::string>(), row["step"].get<int64_t>());
  EXPECT_EQ(kept, (std::vector<std::pair<std::string, int64_t>>{
                      {"val", 0}, {"train", 0}, {"train", 1}, {"train", 2}, {"val", 3}}));
  EXPECT_TRUE(log.has("val", 3)) << "the eval at step 3 is not repeated";
  EXPECT_FALSE(log.has("train", 3)) << "step 3 is trained again";
  EXPECT_FALSE(log.has("val", 6));
  EXPECT_TRUE(log.has("train", 2));

  log.write({{"step", 3}, {"split", "train"}, {"loss", 1.0}});
  EXPECT_TRUE(log.has("train", 3));
  const auto rows = engine::read_metrics(path);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows.back()["loss"], 1.0);
}

TEST_F(MetricsTest, ResumeStepZeroStartsEmptyAndMalformedLinesAreSkipped) {
  const fs::path path = dir_ / "metrics.jsonl";
  write_bytes(path, "{\"step\": 0, \"split\": \"train\", \"loss\": 1}\nnot json\n{\"step\": 1, \"split\"");
  EXPECT_EQ(engine::read_metrics(path).size(), 1u);
  { engine::MetricsLog log(path, 0); }
  EXPECT_TRUE(engine::read_metrics(path).empty());
  EXPECT_EQ(fs::file_size(path), 0u);
  EXPECT_TRUE(engine::read_metrics(dir_ / "absent.jsonl").empty());
}

// ---- the training loop

// A tiny GPT on a synthetic token dataset in DIR/data. Dropout 0.1 so that resume must restore the RNG.
struct TinyRun {
  GPTConfig model_cfg;
  TrainConfig cfg;
  fs::path data_dir;

  explicit TinyRun(const fs::path& dir) : data_dir(dir / "data") {
    model_cfg = gpt_tiny();
    model_cfg.dropout = 0.1;
    cfg.batch_size = 4;
    cfg.max_iters = 12;
    cfg.lr = 3e-3;
    cfg.min_lr = 3e-4;
    cfg.warmup_iters = 2;
    cfg.lr_decay_iters = 12;
    cfg.grad_accum = 2;
    cfg.eval_interval = 6;
    cfg.eval_iters = 2;
    cfg.log_interval = 1000;
    cfg.checkpoint_interval = 3;
    cfg.keep_last = 3;
    cfg.device = "cpu";
    cfg.seed = 1234;
    if (!fs::exists(data_dir / "meta.json")) {
      // A repeating pattern with noise: learnable, not trivial.
      std::vector<int64_t> train, val;
      for (int64_t i = 0; i < 3000; ++i) train.push_back((i * 7 + (i / 13) % 5) % model_cfg.vocab_size);
      for (int64_t i = 0; i < 600; ++i) val.push_back((i * 7 + (i / 11) % 5) % model_cfg.vocab_size);
      attnzoo::datasets::write_token_dataset(data_dir.string(), train, val, {{"vocab_size", model_cfg.vocab_size}});
    }
  }

  // step_hook(step, loss) may change the loss of a train step (after the model ran).
  engine::Task make_task(GPT model, std::function<torch::Tensor(int64_t, torch::Tensor)> step_hook = {}) const {
    auto ds = std::make_shared<attnzoo::datasets::TokenDataset>(data_dir.string());
    const int64_t B = cfg.batch_size, T = model_cfg.block_size;
    const uint64_t seed = cfg.seed;
    engine::Task task;
    task.train_step = [=](int64_t step, int64_t micro) mutable {
      auto batch = ds->random_batch(true, B, T, seed, step, micro);
      auto loss = attnzoo::losses::language_model_loss(model->forward(batch.x), batch.y);
      if (step_hook) loss = step_hook(step, loss);
      return engine::StepOutput{loss, {}};
    };
    task.eval_step = [=](int64_t b) mutable {
      auto batch = ds->window_batch(false, B, T, b * B);
      return engine::StepOutput{attnzoo::losses::language_model_loss(model->forward(batch.x), batch.y), {}};
    };
    task.config = {{"model", model_cfg}, {"train", cfg}};
    task.extra_state = {{"tokenizer", {{"type", "test"}}}};
    task.tokens_per_micro_batch = B * T;
    return task;
  }

  GPT make_model(uint64_t init_seed) const {
    torch::manual_seed(init_seed);
    return GPT(model_cfg);
  }
};

std::map<int64_t, double> losses_of(const fs::path& metrics, const std::string& split) {
  std::map<int64_t, double> out;
  for (const auto& row : engine::read_metrics(metrics)) {
    if (row["split"] != split) continue;
    const int64_t step = row["step"].get<int64_t>();
    EXPECT_EQ(out.count(step), 0u) << split << " step " << step << " logged twice";
    out[step] = row["loss"].get<double>();
  }
  return out;
}

using TrainerTest = TempDirTest;

TEST_F(TrainerTest, ResumedRunMatchesAnUninterruptedOneBitForBit) {
  TinyRun run(dir_);

  // 12 steps in one go.
  GPT straight = run.make_model(7);
  const auto straight_result =
      engine::train(*straight, run.make_task(straight), run.cfg, dir_ / "straight", false, torch::kCPU);
  EXPECT_EQ(straight_result.steps_done, 12);
  EXPECT_FALSE(straight_result.interrupted);

  // 6 steps, then a new process (a differently initialised model) resumes to 12.
  GPT first = run.make_model(7);
  TrainConfig half = run.cfg;
  half.max_iters = 6;
  EXPECT_EQ(engine::train(*first, run.make_task(first), half, dir_ / "resumed", false, torch::kCPU).steps_done, 6);
  const engine::CheckpointStore store(dir_ / "resumed");
  EXPECT_EQ(store.steps(), (std::vector<int64_t>{3, 6}));

  GPT second = run.make_model(99);
  torch::manual_seed(12345);  // the resumed run must restore the RNG, not rely on the caller's
  const auto resumed_result =
      engine::train(*second, run.make_task(second), run.cfg, dir_ / "resumed", true, torch::kCPU);
  EXPECT_EQ(resumed_result.steps_done, 12);
  EXPECT_EQ(store.steps(), (std::vector<int64_t>{6, 9, 12})) << "keep_last 3";

  const auto a = losses_of(dir_ / "straight" / "metrics.jsonl", "train");
  const auto b = losses_of(dir_ / "resumed" / "metrics.jsonl", "train");
  ASSERT_EQ(a.size(), 12u);
  ASSERT_EQ(b.size(), 12u);
  for (const auto& [step, loss] : a) {
    ASSERT_EQ(b.count(step), 1u) << step;
    EXPECT_EQ(loss, b.at(step)) << "train loss at step " << step;  // bit-identical
  }
  EXPECT_LT(a.at(11), a.at(0)) << "it learns";
  const auto va = losses_of(dir_ / "straight" / "metrics.jsonl", "val");
  const auto vb = losses_of(dir_ / "resumed" / "metrics.jsonl", "val");
  EXPECT_EQ(va, vb);
  EXPECT_EQ(va.size(), 3u) << "steps 0, 6 and 12";
  EXPECT_EQ(straight_result.last_val_loss, resumed_result.last_val_loss);

  const auto pa = weights::state_dict(*straight), pb = weights::state_dict(*second);
  ASSERT_NO_FATAL_FAILURE(expect_same_tensors(pa, pb));

  // The final checkpoint holds the run's config, the step and the task's extra state.
  const auto ckpt = engine::read_checkpoint(store.resolve("latest"));
  EXPECT_EQ(ckpt.state["step"], 12);
  EXPECT_EQ(ckpt.state["tokenizer"]["type"], "test");
  EXPECT_EQ(ckpt.config["model"]["n_layer"], 2);
  for (const auto& [k, v] : pa) EXPECT_TRUE(torch::equal(ckpt.model.at(k), v)) << k;

#ifdef ATTNZOO_HAVE_OPENCV
  const fs::path png = dir_ / "straight" / "loss.png";
  ASSERT_TRUE(fs::exists(png));
  std::ifstream in(png, std::ios::binary);
  std::string magic(8, '\0');
  in.read(magic.data(), 8);
  EXPECT_EQ(magic, "\x89PNG\r\n\x1a\n");
#else
  EXPECT_FALSE(fs::exists(dir_ / "straight" / "loss.png"));
#endif
}

TEST_F(TrainerTest, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  TinyRun run(dir_);
  TrainConfig cfg = run.cfg;
  cfg.max_iters = 10;
  GPT model = run.make_model(7);
  const auto task = run.make_task(model, [](int64_t step, torch::Tensor loss) {
    return step == 4 ? loss + std::numeric_limits<float>::quiet_NaN() : loss;
  });
  const fs::path run_dir = dir_ / "nan";
  const std::string what =
      error_of<std::runtime_error>([&] { engine::train(*model, task, cfg, run_dir, false, torch::kCPU); });
  EXPECT_CONTAINS(what, "non-finite loss at step 4");
  const engine::CheckpointStore store(run_dir);
  EXPECT_CONTAINS(what, store.step_dir(3).string());
  EXPECT_EQ(store.steps(), std::vector<int64_t>{3});
  EXPECT_EQ(store.latest(), store.step_dir(3));
  EXPECT_EQ(engine::read_checkpoint(store.step_dir(3)).state["step"], 3);
  EXPECT_EQ(losses_of(run_dir / "metrics.jsonl", "train").size(), 4u) << "steps 0..3 logged, not the NaN";
  EXPECT_TRUE(torch::isfinite(model->transformer->wte->weight).all().item<bool>()) << "no NaN update applied";

  // A fresh run in a directory that holds checkpoints is refused, and the run is left as it was.
  const auto metrics_before = engine::read_metrics(run_dir / "metrics.jsonl");
  GPT other = run.make_model(8);
  EXPECT_CONTAINS(error_of<std::runtime_error>(
                      [&] { engine::train(*other, run.make_task(other), cfg, run_dir, false, torch::kCPU); }),
                  "already holds checkpoints");
  EXPECT_EQ(engine::read_metrics(run_dir / "metrics.jsonl"), metrics_before);
  EXPECT_EQ(store.steps(), std::vector<int64_t>{3});
}

TEST_F(TrainerTest, ResumeWithoutACheckpointIsRefused) {
  TinyRun run(dir_);
  GPT model = run.make_model(7);
  EXPECT_CONTAINS(error_of<std::runtime_error>(
                      [&] { engine::train(*model, run.make_task(model), run.cfg, dir_ / "empty", true, torch::kCPU); }),
                  "no checkpoint");
}

TEST_F(TrainerTest, SigintSavesAndReturns) {
  TinyRun run(dir_);
  GPT model = run.make_model(7);
  auto raised = std::make_shared<bool>(false);  // once: a second SIGINT ends the process by design
  const auto task = run.make_task(model, [raised](int64_t step, torch::Tensor loss) {
    if (step == 4 && !*raised) {
      *raised = true;
      ::raise(SIGINT);
    }
    return loss;
  });
  const auto result = engine::train(*model, task, run.cfg, dir_ / "sigint", false, torch::kCPU);
  EXPECT_TRUE(result.interrupted);
  EXPECT_EQ(result.signal, SIGINT);
  EXPECT_EQ(result.steps_done, 5);
  const engine::CheckpointStore store(dir_ / "sigint");
  EXPECT_EQ(store.steps(), (std::vector<int64_t>{3, 5}));
}

}  // namespace
