// The training loop, written once for every app (DESIGN.md, "Training loop"). An app supplies a
// step function (one micro-batch -> loss and named metrics) and an eval function; the loop owns
// the LR schedule, AdamW, gradient accumulation and clipping, bf16 autocast, evaluation,
// checkpoints (every N steps, best, keep-last-K), exact resume, SIGINT/SIGTERM, non-finite loss
// handling, progress display, metrics.jsonl and the loss-curve PNG.
//
// Step numbering: a run performs optimizer steps 0 .. max_iters-1. "step k" in a checkpoint or in a
// val line means k steps are done; a train line with step k reports the loss of optimizer step k.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "engine/train_config.h"

namespace attnzoo::engine {

struct StepOutput {
  torch::Tensor loss;                      // scalar; backpropagated by the loop for train steps
  std::map<std::string, double> metrics;   // extra named values, averaged over micro-batches / eval batches
};

struct Task {
  // Forward of micro-batch `micro` of optimizer step `step`. Must be a pure function of
  // (step, micro) and the model (the data position), so that resume is exact.
  std::function<StepOutput(int64_t step, int64_t micro)> train_step;
  // Forward of eval batch `batch` (0 .. eval_iters-1), called under NoGradGuard in eval mode.
  std::function<StepOutput(int64_t batch)> eval_step;
  nlohmann::json config;       // the run's resolved config, stored as config.json in checkpoints
  nlohmann::json extra_state;  // stored in state.json (e.g. the tokenizer)
  int64_t tokens_per_micro_batch = 0;  // for tokens/s; 0 = not a token model
  // Optional multiplier of the learning rate per parameter name (e.g. 0.1 for a pretrained
  // backbone while a new head trains at the full rate); unset = 1 for every parameter.
  std::function<double(const std::string&)> lr_scale;
};

struct TrainResult {
  int64_t steps_done = 0;
  bool interrupted = false;
  int signal = 0;            // SIGINT or SIGTERM when interrupted
  double best_val_loss = 0;  // +inf when never evaluated
  double last_val_loss = 0;
  double seconds = 0;
};

// Trains `model` in RUN_DIR. With resume, continues from RUN_DIR's latest checkpoint (its model
// shape must equal the model's: checked by strict loading). Throws std::runtime_error with a
// one-line message on a non-finite loss (after keeping the last good checkpoint) or a failed
// checkpoint write.
TrainResult train(torch::nn::Module& model, const Task& task, const TrainConfig& cfg,
                  const std::filesystem::path& run_dir, bool resume, torch::Device device);

// Mean loss (and metrics) over cfg.eval_iters eval batches, in eval mode under NoGradGuard and autocast.
StepOutput evaluate(torch::nn::Module& model, const Task& task, const TrainConfig& cfg, torch::Device device);

}  // namespace attnzoo::engine
