#include "apps/common/cli.h"

#include <fstream>
#include <iostream>
#include <stdexcept>

#include <c10/util/Exception.h>

namespace attnzoo::apps {

void add_train_flags(CLI::App* cmd, TrainFlags& f) {
  cmd->add_option("--batch-size", f.batch_size, "Examples per micro-batch");
  cmd->add_option("--max-iters", f.max_iters, "Optimizer steps");
  cmd->add_option("--lr", f.lr, "Peak learning rate");
  cmd->add_option("--min-lr", f.min_lr, "Final learning rate");
  cmd->add_option("--warmup-iters", f.warmup_iters, "Linear warmup steps");
  cmd->add_option("--lr-decay-iters", f.lr_decay_iters, "Steps until --min-lr (0 = --max-iters)");
  cmd->add_option("--lr-schedule", f.lr_schedule, "cosine, linear or constant");
  cmd->add_option("--weight-decay", f.weight_decay, "AdamW weight decay (weight matrices only)");
  cmd->add_option("--beta1", f.beta1, "AdamW beta1");
  cmd->add_option("--beta2", f.beta2, "AdamW beta2");
  cmd->add_option("--grad-clip", f.grad_clip, "Clip the global gradient norm (0 = off)");
  cmd->add_option("--grad-accum", f.grad_accum, "Micro-batches per optimizer step");
  cmd->add_option("--eval-interval", f.eval_interval, "Evaluate every N steps");
  cmd->add_option("--eval-iters", f.eval_iters, "Batches per evaluation");
  cmd->add_option("--log-interval", f.log_interval, "Log a line every N steps (when not on a terminal)");
  cmd->add_option("--checkpoint-interval", f.checkpoint_interval, "Checkpoint every N steps (0 = --eval-interval)");
  cmd->add_option("--keep-last", f.keep_last, "Step checkpoints to keep");
  cmd->add_option("--dtype", f.dtype, "fp32 or bf16 (autocast)");
  cmd->add_option("--device", f.device, "auto, cpu or cuda");
  cmd->add_option("--threads", f.threads, "CPU threads (0 = all cores)");
  cmd->add_option("--seed", f.seed, "Random seed (weights, batches, dropout)");
}

void apply_train_flags(engine::TrainConfig& t, const TrainFlags& f) {
  auto set = [](auto& field, const auto& flag) {
    if (flag) field = *flag;
  };
  set(t.batch_size, f.batch_size), set(t.max_iters, f.max_iters), set(t.lr, f.lr), set(t.min_lr, f.min_lr);
  set(t.warmup_iters, f.warmup_iters), set(t.lr_decay_iters, f.lr_decay_iters), set(t.lr_schedule, f.lr_schedule);
  set(t.weight_decay, f.weight_decay), set(t.grad_clip, f.grad_clip), set(t.grad_accum, f.grad_accum);
  set(t.beta1, f.beta1), set(t.beta2, f.beta2);
  set(t.eval_interval, f.eval_interval), set(t.eval_iters, f.eval_iters), set(t.log_interval, f.log_interval);
  set(t.checkpoint_interval, f.checkpoint_interval), set(t.keep_last, f.keep_last);
  set(t.dtype, f.dtype), set(t.device, f.device), set(t.threads, f.threads), set(t.seed, f.seed);
}

bool any_train_flag(const TrainFlags& f) {
  return f.batch_size || f.max_iters || f.warmup_iters || f.lr_decay_iters || f.grad_accum || f.eval_interval ||
         f.eval_iters || f.log_interval || f.checkpoint_interval || f.keep_last || f.threads || f.lr || f.min_lr ||
         f.weight_decay || f.grad_clip || f.beta1 || f.beta2 || f.dtype || f.device || f.lr_schedule || f.seed;
}

void add_runtime_flags(CLI::App* cmd, std::string& device, int64_t& threads, std::string* dtype,
                       const std::string& dtype_help) {
  cmd->add_option("--device", device, "auto, cpu or cuda")->capture_default_str();
  if (dtype) cmd->add_option("--dtype", *dtype, dtype_help)->capture_default_str()->check(CLI::IsMember({"fp32", "bf16"}));
  cmd->add_option("--threads", threads, "CPU threads (0 = all cores)");
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": malformed JSON: " + e.what());
  }
}

int run_guarded(const std::string& app, const std::function<int()>& body) {
  try {
    return body();
  } catch (const c10::Error& e) {
    std::cerr << app << ": error: " << e.what_without_backtrace() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << app << ": error: " << e.what() << std::endl;
  }
  return 1;
}

}  // namespace attnzoo::apps
