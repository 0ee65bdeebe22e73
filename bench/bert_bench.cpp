// BERT pretraining-step speed: one MLM + NSP training step (forward, loss, backward, gradient
// clipping, AdamW) of BERT-small and BERT-base at sequence length 128, batch 8 (issue 6's setup),
// in fp32 and bf16 autocast, written as JSON. The MLM head scores only the masked positions
// (15 %, at most 20 per sequence, as BERT's pretraining code), or with --heads all also every
// position, as Hugging Face's BertForPreTraining does (the Python baseline,
// bench/python/bert_step.py).
//
//   bert-bench [--configs small,base] [--dtypes fp32,bf16] [--heads masked,all] [--iters 10] [--json out.json]
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/adamw.h"
#include "bench/bench_util.h"
#include "engine/runtime.h"
#include "losses/bert_loss.h"
#include "models/bert/bert.h"

using namespace attnzoo;
using bench::median;
using bench::split;

namespace {

struct Batch {
  torch::Tensor ids, types, mask, positions, labels, nsp;
};

// [CLS] A [SEP] B [SEP] of random ids, 128 tokens, 15 % of the 125 candidates masked (19), at most 20.
Batch random_batch(int64_t B, int64_t T, int64_t V, torch::Generator& gen) {
  auto ids = torch::randint(5, V, {B, T}, gen, torch::kLong);
  auto types = torch::zeros({B, T}, torch::kLong);
  auto positions = torch::zeros({B, T}, torch::kBool);
  const int64_t a = T / 2;
  for (int64_t b = 0; b < B; ++b) {
    ids[b][0] = 2, ids[b][a] = 3, ids[b][T - 1] = 3;
    types[b].narrow(0, a + 1, T - a - 1).fill_(1);
    auto order = torch::randperm(T - 3, gen, torch::kLong);  // candidates, not [CLS]/[SEP]
    const int64_t n = std::min<int64_t>(20, static_cast<int64_t>(0.15 * static_cast<double>(T - 3) + 0.5));
    for (int64_t i = 0; i < n; ++i) {
      int64_t p = 1 + order[i].item<int64_t>();
      if (p >= a) ++p;
      positions[b][p] = true;
    }
  }
  auto labels = ids.masked_select(positions);
  auto masked = ids.masked_fill(positions, 4);
  return {masked, types, torch::ones({B, T}, torch::kLong), positions, labels, torch::randint(0, 2, {B}, gen, torch::kLong)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bert-bench: BERT MLM + NSP training-step speed"};
  std::string configs = "small,base", dtypes = "fp32,bf16", heads = "masked", json_path, profile_path, device_name = "cpu";
  int64_t iters = 10, warmup = 2, threads = 2, batch_size = 8, seq_len = 128;
  app.add_option("--configs", configs, "BERT presets: tiny, small, base, large")->capture_default_str();
  app.add_option("--dtypes", dtypes, "fp32, bf16 or both")->capture_default_str();
  app.add_option("--heads", heads, "masked (score the masked positions only), all (every position), or both")
      ->capture_default_str();
  app.add_option("--batch-size", batch_size, "Sequences per step")->capture_default_str();
  app.add_option("--seq-len", seq_len, "Tokens per sequence")->capture_default_str();
  app.add_option("--iters", iters, "Timed steps")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0 = all cores)")->capture_default_str();
  app.add_option("--device", device_name, "cpu, cuda or auto")->capture_default_str();
  app.add_option("--json", json_path, "Write the results here");
  app.add_option("--profile", profile_path, "Write a Chrome trace of the last timed step here");
  CLI11_PARSE(app, argc, argv);

  try {
    const auto device = engine::setup_runtime({device_name, threads});
    nlohmann::json results = nlohmann::json::array();
    for (const auto& name : split(configs)) {
      auto cfg = models::bert_preset(name);
      cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.1;  // BERT's training setting, as in Python
      for (const auto& dtype : split(dtypes)) {
        if (dtype != "fp32" && dtype != "bf16") throw std::invalid_argument("--dtypes: expected fp32 or bf16");
        for (const auto& head : split(heads)) {
          if (head != "masked" && head != "all") throw std::invalid_argument("--heads: expected masked or all");
          torch::manual_seed(1337);
          models::BertForPreTraining model(cfg);
          model->to(device);
          model->train();
          auto [decay, no_decay] = engine::weight_decay_groups(*model);
          std::vector<torch::Tensor> params;
          for (const auto* g : {&decay, &no_decay})
            for (const auto& p : *g) params.push_back(p.param);
          engine::AdamW opt(decay, no_decay, {0.9, 0.999, 1e-6, 0.01});
          auto gen = at::detail::createCPUGenerator(1337);
          std::vector<double> ms;
          double loss = 0;
          for (int64_t i = 0; i < warmup + iters; ++i) {
            const auto b = random_batch(batch_size, seq_len, cfg.vocab_size, gen);
            std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
            if (!profile_path.empty() && i == warmup + iters - 1)
              prof = std::make_unique<torch::autograd::profiler::RecordProfile>(profile_path);
            if (device.is_cuda()) torch::cuda::synchronize();
            const auto t0 = std::chrono::steady_clock::now();
            torch::Tensor l;
            {
              engine::AutocastGuard autocast(dtype, device);
              const auto ids = b.ids.to(device), types = b.types.to(device), mask = b.mask.to(device);
              const auto positions = b.positions.to(device);
              auto out = model->forward(ids, types, mask, head == "masked" ? positions : torch::Tensor());
              // All positions scored: the loss still counts the masked ones only (HF's labels = -100 elsewhere).
              auto mlm = head == "masked" ? out.prediction_logits
                                          : out.prediction_logits.reshape({-1, cfg.vocab_size})
                                                .index_select(0, positions.reshape({-1}).nonzero().squeeze(1));
              l = losses::bert_pretraining_loss(mlm, b.labels.to(device), out.seq_relationship_logits, b.nsp.to(device)).loss;
            }
            l.backward();
            torch::nn::utils::clip_grad_norm_(params, 1.0);
            opt.step(1e-4);
            opt.zero_grad();
            loss = l.item<double>();
            if (i >= warmup)
              ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
          }
          const double med = median(ms);
          nlohmann::json r = {{"config", "bert-" + name}, {"dtype", dtype}, {"mlm_head", head},
                              {"batch_size", batch_size}, {"seq_len", seq_len}, {"layers", cfg.num_hidden_layers},
                              {"hidden", cfg.hidden_size}, {"params", model->num_parameters()},
                              {"ms_per_iter", med}, {"ms_min", *std::min_element(ms.begin(), ms.end())},
                              {"tokens_per_s", static_cast<double>(batch_size * seq_len) / (med / 1000.0)},
                              {"threads", at::get_num_threads()}, {"device", device.str()}, {"final_loss", loss},
                              {"iters", iters}, {"ms_all", ms}};
          std::cout << "bert-" << name << " " << dtype << " (MLM head on " << head << " positions): " << med
                    << " ms/iter" << std::endl;
          results.push_back(r);
        }
      }
    }
    bench::write_json(json_path, results);
  } catch (const std::exception& e) {
    std::cerr << "bert-bench: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
