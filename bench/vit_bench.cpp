// ViT throughput (issue 7's targets), written as JSON:
//   - inference: ViT-B/16 (vit_base_patch16_224, 1000 classes) on a batch of 8 images at 224×224,
//     images/s in fp32 and with bf16 weights (what torchvision in Python was measured with);
//   - training: one full step (forward, cross-entropy, backward, clipping, AdamW) of the small
//     ViT of the issue (6 layers, 256 dim, 4 heads, 32×32 images, patch 4, 10 classes) at batch 64,
//     ms/iter in fp32 and bf16 autocast.
// Medians over --iters after 2 warm-up iterations. Random weights: speed does not depend on them.
//
// --device cuda runs the same work on a GPU (--batch sets the inference batch there, where 8 is small).
//
//   vit-bench [--what infer,train] [--dtypes fp32,bf16] [--iters 10] [--threads 0] [--device cpu]
//             [--batch 8] [--json out.json] [--profile P]
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/adamw.h"
#include "bench/bench_util.h"
#include "engine/runtime.h"
#include "models/vit/vit.h"

using namespace attnzoo;
using bench::median;
using bench::split;

namespace {

std::string profile_path;  // --profile: a Chrome trace of the last timed iteration, PATH.WHAT.DTYPE.json

torch::Device device(torch::kCPU);

double seconds_of(const std::function<void()>& f, const std::string& trace = "") {
  std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
  if (!trace.empty()) prof = std::make_unique<torch::autograd::profiler::RecordProfile>(trace);
  const auto t0 = std::chrono::steady_clock::now();
  f();
  if (device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string trace_name(int i, int iters, const std::string& what, const std::string& dtype) {
  return profile_path.empty() || i != iters + 1 ? "" : profile_path + "." + what + "." + dtype + ".json";
}

nlohmann::json bench_infer(const std::string& dtype, int iters, int64_t batch) {
  torch::manual_seed(0);
  models::VisionTransformer vit(models::vit_base_patch16_224());
  vit->eval();
  const auto type = dtype == "bf16" ? torch::kBFloat16 : torch::kFloat;
  vit->to(device, type);
  auto x = torch::randn({batch, 3, 224, 224}).to(device, type);
  torch::NoGradGuard no_grad;
  std::vector<double> times;
  for (int i = 0; i < iters + 2; ++i) {
    const double s = seconds_of([&] { (void)vit->forward(x).sum().item<double>(); }, trace_name(i, iters, "infer", dtype));
    if (i >= 2) times.push_back(s);
  }
  const double t = median(times);
  const double images = static_cast<double>(batch);
  std::cout << "vit_base_patch16_224 inference, batch " << batch << " @ 224, " << dtype << ": " << images / t
            << " images/s (" << 1000 * t << " ms/batch)" << std::endl;
  return {{"bench", "vit_b16_infer"},   {"dtype", dtype},           {"batch", batch},
          {"ms_per_batch", 1000 * t}, {"images_per_s", images / t}, {"device", device.str()}};
}

nlohmann::json bench_train(const std::string& dtype, int iters) {
  torch::manual_seed(0);
  auto cfg = models::vit_small_32();
  models::VisionTransformer vit(cfg);
  vit->to(device);
  vit->train();
  auto [decay, no_decay] = engine::weight_decay_groups(*vit);
  engine::AdamW opt(decay, no_decay, {0.9, 0.999, 1e-8, 0.05});
  auto x = torch::randn({64, 3, 32, 32}).to(device);
  auto y = torch::randint(0, 10, {64}).to(device);
  std::vector<double> times;
  for (int i = 0; i < iters + 2; ++i) {
    const double s = seconds_of([&] {
      torch::Tensor loss;
      {
        engine::AutocastGuard autocast(dtype, device);
        loss = torch::nn::functional::cross_entropy(vit->forward(x).to(torch::kFloat), y);
      }
      opt.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(vit->parameters(), 1.0);
      opt.step(1e-3);
      (void)loss.item<double>();
    }, trace_name(i, iters, "train", dtype));
    if (i >= 2) times.push_back(s);
  }
  const double t = median(times);
  std::cout << "small ViT (6 x 256, 32px / patch 4) training step, batch 64, " << dtype << ": " << 1000 * t
            << " ms/iter" << std::endl;
  return {{"bench", "vit_small32_train_step"}, {"dtype", dtype}, {"batch", 64}, {"ms_per_iter", 1000 * t},
          {"device", device.str()}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vit-bench: ViT-B/16 inference and small-ViT training-step speed"};
  std::string what = "infer,train", dtypes = "fp32,bf16", json, device_name = "cpu";
  int iters = 10;
  int64_t threads = 0, batch = 8;
  app.add_option("--what", what, "infer, train or both")->capture_default_str();
  app.add_option("--dtypes", dtypes, "fp32, bf16 or both")->capture_default_str();
  app.add_option("--iters", iters, "Timed iterations (after 2 warm-up ones)")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0 = all cores)");
  app.add_option("--device", device_name, "cpu, cuda or auto")->capture_default_str();
  app.add_option("--batch", batch, "Inference batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--json", json, "Write the results to this JSON file");
  app.add_option("--profile", profile_path, "Write a Chrome trace of the last timed iteration to PATH.WHAT.DTYPE.json");
  CLI11_PARSE(app, argc, argv);
  try {
    device = engine::setup_runtime({device_name, threads});
    nlohmann::json results = nlohmann::json::array();
    for (const auto& w : split(what))
      for (const auto& d : split(dtypes)) {
        if (d != "fp32" && d != "bf16") throw std::invalid_argument("--dtypes: expected fp32 or bf16, got " + d);
        if (w != "infer" && w != "train") throw std::invalid_argument("--what: expected infer or train, got " + w);
        auto r = w == "infer" ? bench_infer(d, iters, batch) : bench_train(d, iters);
        r["threads"] = at::get_num_threads();
        results.push_back(r);
      }
    bench::write_json(json, results);
  } catch (const std::exception& e) {
    std::cerr << "vit-bench: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
