// The settings of the shared training loop (engine/trainer.h), with nanoGPT's defaults where it
// has one. Every app embeds this struct in its run config; `--dump-config` prints it.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace attnzoo::engine {

struct TrainConfig {
  int64_t batch_size = 12;          // sequences (or images) per micro-batch
  int64_t max_iters = 5000;         // optimizer steps
  double lr = 6e-4;                 // peak learning rate, reached after warmup
  double min_lr = 6e-5;             // learning rate at the end of the decay
  int64_t warmup_iters = 100;       // linear warmup from 0
  int64_t lr_decay_iters = 0;       // steps until min_lr; 0 = max_iters
  std::string lr_schedule = "cosine";  // cosine | linear | constant (after warmup)
  double weight_decay = 0.1;        // AdamW, on weight matrices only
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;           // max global gradient norm; 0 = off
  int64_t grad_accum = 1;           // micro-batches per optimizer step
  int64_t eval_interval = 250;      // evaluate every N steps (and at the end)
  int64_t eval_iters = 200;         // batches per evaluation
  int64_t log_interval = 10;        // plain log line every N steps (metrics.jsonl gets every step)
  int64_t checkpoint_interval = 0;  // checkpoint every N steps; 0 = eval_interval
  int64_t keep_last = 3;            // step checkpoints kept (best is kept apart)
  std::string dtype = "fp32";       // fp32 | bf16 (autocast with fp32 master weights)
  std::string device = "auto";      // auto | cpu | cuda
  int64_t threads = 0;              // CPU threads; 0 = all available cores
  uint64_t seed = 1337;

  int64_t decay_iters() const { return lr_decay_iters > 0 ? lr_decay_iters : max_iters; }
  int64_t ckpt_interval() const { return checkpoint_interval > 0 ? checkpoint_interval : eval_interval; }
  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrainConfig, batch_size, max_iters, lr, min_lr, warmup_iters,
                                                lr_decay_iters, lr_schedule, weight_decay, beta1, beta2, eps,
                                                grad_clip, grad_accum, eval_interval, eval_iters, log_interval,
                                                checkpoint_interval, keep_last, dtype, device, threads, seed)

// Learning rate at optimizer step `step` (0-based): linear warmup to cfg.lr, then cosine or linear
// decay to cfg.min_lr at decay_iters(), min_lr after; constant stays at cfg.lr after warmup.
double learning_rate(const TrainConfig& cfg, int64_t step);

// Replaces the fields of `target` named in `patch` (a JSON object), refusing unknown keys:
// throws std::invalid_argument "unknown key 'where.k'" (where = `where`) or a type error naming the key.
template <typename T>
void merge_json(T& target, const nlohmann::json& patch, const std::string& where) {
  if (!patch.is_object()) throw std::invalid_argument(where + " must be a JSON object");
  nlohmann::json full = target;
  for (const auto& [key, value] : patch.items()) {
    if (!full.contains(key)) throw std::invalid_argument("unknown key '" + where + "." + key + "'");
    if (full[key].is_number() != value.is_number() || full[key].is_string() != value.is_string() ||
        full[key].is_boolean() != value.is_boolean())
      throw std::invalid_argument("key '" + where + "." + key + "' should be " + full[key].type_name() +
                                  ", got " + value.type_name());
    if (full[key].is_number_integer() && !value.is_number_integer())
      throw std::invalid_argument("key '" + where + "." + key + "' should be an integer, got " + value.dump());
    full[key] = value;
  }
  target = full.get<T>();
}

}  // namespace attnzoo::engine
