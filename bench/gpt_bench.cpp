// GPT training-step throughput: ms/iter, tokens/s and model-FLOP utilisation (MFU) for named
// configs in fp32 and bf16, written as JSON. MFU = achieved model FLOP/s over the matmul peak
// that this program measures itself (a large GEMM in the same dtype, same thread count).
// Model FLOPs per token: 6·N (N = parameters without position embeddings; the tied head counts
// through wte) + 12·L·T·C for attention scores and values (PaLM appendix B, as nanoGPT's estimate_mfu).
//
// With --generate it measures batch-1 decoding with the KV cache instead: GPT-2 124M (random
// weights; speed does not depend on their values) generating --new-tokens tokens after a
// 16-token prompt (tokens/s), and ms per token with 16 and 900 tokens of context. bf16 here means
// bf16 weights (what `gpt-train sample --dtype bf16` runs), not autocast.
//
//   gpt-bench [--configs bench-4x256,shakespeare-char-cpu] [--dtypes fp32,bf16] [--iters 20] [--json out.json]
//   gpt-bench --generate [--dtypes fp32,bf16] [--new-tokens 128] [--json out.json]
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
#include "losses/language_model.h"
#include "models/common/gemm.h"
#include "models/gpt/generate.h"
#include "models/gpt/gpt.h"

using namespace attnzoo;
using bench::median;
using bench::split;

namespace {

struct BenchCase {
  std::string name;
  models::GPTConfig model;
  int64_t batch_size;
};

BenchCase bench_case(const std::string& name) {
  if (name == "bench-4x256")  // the configuration compared against PyTorch in Python (bench/python/gpt_step.py)
    return {name, {.block_size = 128, .vocab_size = 512, .n_layer = 4, .n_head = 4, .n_embd = 256}, 16};
  if (name == "shakespeare-char-cpu") return {name, models::gpt_shakespeare_char_cpu(), 12};
  if (name == "shakespeare-char") {
    auto m = models::gpt_shakespeare_char();
    m.dropout = 0.0;
    return {name, m, 8};
  }
  if (name == "gpt2") {
    auto m = models::gpt2_small();
    m.block_size = 256;
    return {name, m, 2};
  }
  if (name == "gpt2-4x256") {  // issue 5's CPU speed target: GPT-2 124M, batch 4 x 256
    auto m = models::gpt2_small();
    m.block_size = 256;
    m.dropout = 0.0;
    return {name, m, 4};
  }
  if (name == "gpt2-1024") {  // nanoGPT's GPT-2 (124M) training setup per micro-batch: 12 x 1024 (for GPUs)
    auto m = models::gpt2_small();
    m.dropout = 0.0;
    return {name, m, 12};
  }
  throw std::invalid_argument("--configs: unknown config '" + name +
                              "' (expected bench-4x256, shakespeare-char-cpu, shakespeare-char, gpt2, gpt2-4x256, gpt2-1024)");
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Best GFLOP/s of an n×n×n matmul in `dtype` (n = 1024 on a CPU, 8192 on a GPU), by LibTorch's
// torch::mm or by models::matmul (oneDNN on CPU builds that have it), whichever is faster: the
// fastest product this machine is known to run, so that MFU stays below 1.
double matmul_peak(torch::ScalarType dtype, const torch::Device& device, int reps = 10) {
  torch::NoGradGuard no_grad;
  const int64_t n = device.is_cuda() ? 8192 : 1024;
  auto a = torch::randn({n, n}).to(device, dtype), b = torch::randn({n, n}).to(device, dtype);
  double best = 0;
  for (bool ours : {false, true}) {
    for (int i = 0; i < reps; ++i) {
      synchronize(device);
      const auto t0 = std::chrono::steady_clock::now();
      auto c = ours ? attnzoo::models::matmul(a, b) : torch::mm(a, b);
      synchronize(device);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (i > 0) best = std::max(best, 2.0 * n * n * n / s / 1e9);
    }
  }
  return best;
}


double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Batch-1 decoding speed of GPT-2 124M in `dtype` weights.
nlohmann::json generation_bench(const std::string& dtype, int64_t new_tokens, int64_t reps, const torch::Device& device,
                                const std::string& profile_path) {
  torch::manual_seed(1337);
  const auto cfg = models::gpt2_small();
  models::GPT model(cfg);
  model->to(device, dtype == "bf16" ? torch::kBFloat16 : torch::kFloat);
  model->eval();
  c10::InferenceMode guard;
  auto prompt = torch::randint(cfg.vocab_size, {1, 16}, torch::kLong).to(device);
  models::GenerateOptions opt;
  opt.max_new_tokens = new_tokens;
  opt.sampling.temperature = 0.0;  // greedy: no sampling cost, same tokens every run
  models::generate(model, prompt, {.max_new_tokens = 8, .sampling = opt.sampling, .should_stop = {}});  // warm-up
  std::vector<double> rates;
  for (int64_t r = 0; r < reps; ++r) {
    synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    models::generate(model, prompt, opt);
    synchronize(device);
    rates.push_back(static_cast<double>(new_tokens) / seconds_since(t0));
  }
  // ms per token once the cache holds `context` tokens: prefill, then time single-token steps.
  auto ms_per_token_at = [&](int64_t context) {
    auto cache = model->make_cache(1);
    auto ids = torch::randint(cfg.vocab_size, {1, context}, torch::kLong).to(device);
    model->forward(ids, &cache);
    auto next = ids.narrow(1, context - 1, 1);
    std::vector<double> ms;
    for (int i = 0; i < 16; ++i) {
      std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
      if (!profile_path.empty() && i == 15)
        prof = std::make_unique<torch::autograd::profiler::RecordProfile>(profile_path + "." + dtype + ".ctx" +
                                                                          std::to_string(context) + ".json");
      synchronize(device);
      const auto t0 = std::chrono::steady_clock::now();
      auto logits = model->forward(next, &cache);
      next = logits.select(1, 0).argmax(-1, true);
      synchronize(device);
      ms.push_back(1000.0 * seconds_since(t0));
    }
    return median(ms);
  };
  const double ms16 = ms_per_token_at(16), ms900 = ms_per_token_at(900);
  const double rate = median(rates);
  std::cout << "generate gpt2 " << dtype << ": " << rate << " tokens/s (batch 1, " << new_tokens
            << " new tokens); " << ms16 << " ms/token at context 16, " << ms900 << " at 900" << std::endl;
  return {{"config", "gpt2-generate"}, {"dtype", dtype}, {"batch_size", 1}, {"new_tokens", new_tokens},
          {"tokens_per_s", rate}, {"tokens_per_s_all", rates}, {"ms_per_token_ctx16", ms16},
          {"ms_per_token_ctx900", ms900}, {"threads", at::get_num_threads()}, {"device", device.str()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gpt-bench: GPT training-step speed and model-FLOP utilisation"};
  std::string configs = "bench-4x256,shakespeare-char-cpu", dtypes = "fp32,bf16", json_path, profile_path, device_name = "cpu";
  int64_t iters = 20, warmup = 3, threads = 0;
  app.add_option("--configs", configs, "Comma-separated config names")->capture_default_str();
  app.add_option("--dtypes", dtypes, "fp32, bf16 or both")->capture_default_str();
  app.add_option("--iters", iters, "Timed steps")->capture_default_str();
  app.add_option("--warmup", warmup, "Untimed steps first")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0 = all cores)");
  app.add_option("--device", device_name, "cpu, cuda or auto")->capture_default_str();
  app.add_option("--json", json_path, "Write the results here");
  app.add_option("--profile", profile_path,
                 "Write a Chrome trace of the last timed step here (--generate: of one decoding step, PATH.DTYPE.ctxN.json)");
  bool generate = false;
  int64_t new_tokens = 128;
  app.add_flag("--generate", generate, "Measure batch-1 KV-cache generation of GPT-2 124M instead of training");
  app.add_option("--new-tokens", new_tokens, "--generate: tokens per timed generation")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const auto device = engine::setup_runtime({device_name, threads});
    nlohmann::json results = nlohmann::json::array();
    if (generate) {
      for (const auto& dtype : split(dtypes)) {
        if (dtype != "fp32" && dtype != "bf16") throw std::invalid_argument("--dtypes: expected fp32 or bf16");
        results.push_back(generation_bench(dtype, new_tokens, std::max<int64_t>(iters, 1), device, profile_path));
      }
    }
    std::map<std::string, double> peaks;
    if (generate) configs.clear(), dtypes.clear();  // no training configs, no GEMM peak needed
    for (const auto& dtype : split(dtypes)) {
      if (dtype != "fp32" && dtype != "bf16") throw std::invalid_argument("--dtypes: expected fp32 or bf16");
      peaks[dtype] = matmul_peak(dtype == "bf16" ? torch::kBFloat16 : torch::kFloat, device);
      std::cout << "matmul peak " << dtype << ": " << peaks[dtype] << " GFLOP/s" << std::endl;
    }
    for (const auto& name : split(configs)) {
      const auto bc = bench_case(name);
      for (const auto& dtype : split(dtypes)) {
        torch::manual_seed(1337);
        models::GPT model(bc.model);
        model->to(device);
        model->train();
        auto [decay, no_decay] = engine::weight_decay_groups(*model);
        std::vector<torch::Tensor> params;
        for (const auto* g : {&decay, &no_decay})
          for (const auto& p : *g) params.push_back(p.param);
        engine::AdamW opt(decay, no_decay, {0.9, 0.95, 1e-8, 0.1});
        const int64_t B = bc.batch_size, T = bc.model.block_size;
        std::vector<double> ms;
        double loss = 0;
        for (int64_t i = 0; i < warmup + iters; ++i) {
          auto x = torch::randint(bc.model.vocab_size, {B, T}, torch::kLong).to(device);
          auto y = torch::randint(bc.model.vocab_size, {B, T}, torch::kLong).to(device);
          std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
          if (!profile_path.empty() && i == warmup + iters - 1)
            prof = std::make_unique<torch::autograd::profiler::RecordProfile>(profile_path);
          synchronize(device);
          const auto t0 = std::chrono::steady_clock::now();
          torch::Tensor l;
          {
            engine::AutocastGuard autocast(dtype, device);
            l = losses::language_model_loss(model->forward(x), y);
          }
          l.backward();
          torch::nn::utils::clip_grad_norm_(params, 1.0);
          opt.step(1e-3);
          opt.zero_grad();
          loss = l.item<double>();
          if (i >= warmup)
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        const auto& m = bc.model;
        const double n_params = static_cast<double>(model->num_parameters(true));
        const double flops_per_token = 6.0 * n_params + 12.0 * m.n_layer * T * m.n_embd;
        const double med = median(ms);
        const double tokens_per_s = static_cast<double>(B * T) / (med / 1000.0);
        const double mfu = flops_per_token * tokens_per_s / (peaks[dtype] * 1e9);
        nlohmann::json r = {{"config", name}, {"dtype", dtype}, {"batch_size", B}, {"block_size", T},
                            {"n_layer", m.n_layer}, {"n_head", m.n_head}, {"n_embd", m.n_embd},
                            {"vocab_size", m.vocab_size}, {"params", n_params}, {"ms_per_iter", med},
                            {"ms_min", *std::min_element(ms.begin(), ms.end())}, {"tokens_per_s", tokens_per_s},
                            {"model_tflops", flops_per_token * tokens_per_s / 1e12},
                            {"matmul_peak_gflops", peaks[dtype]}, {"mfu", mfu}, {"threads", at::get_num_threads()}, {"device", device.str()},
                            {"final_loss", loss}, {"iters", iters}, {"ms_all", ms}};
        std::cout << name << " " << dtype << ": " << med << " ms/iter, " << tokens_per_s << " tokens/s, MFU "
                  << 100 * mfu << " %" << std::endl;
        results.push_back(r);
      }
    }
    bench::write_json(json_path, results);
  } catch (const std::exception& e) {
    std::cerr << "gpt-bench: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
