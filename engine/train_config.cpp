#include "engine/train_config.h"

#include <cmath>
#include <stdexcept>

namespace attnzoo::engine {

void TrainConfig::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
  };
  require(batch_size > 0, "batch_size must be positive");
  require(max_iters >= 0, "max_iters must be >= 0");
  require(lr > 0 && std::isfinite(lr), "lr must be positive");
  require(min_lr >= 0 && min_lr <= lr, "min_lr must be in [0, lr]");
  require(warmup_iters >= 0, "warmup_iters must be >= 0");
  require(lr_decay_iters >= 0, "lr_decay_iters must be >= 0");
  require(lr_schedule == "cosine" || lr_schedule == "linear" || lr_schedule == "constant",
          "lr_schedule must be cosine, linear or constant, got '" + lr_schedule + "'");
  require(weight_decay >= 0, "weight_decay must be >= 0");
  require(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "beta1 and beta2 must be in [0, 1)");
  require(grad_clip >= 0, "grad_clip must be >= 0");
  require(grad_accum > 0, "grad_accum must be positive");
  require(eval_interval > 0, "eval_interval must be positive");
  require(eval_iters > 0, "eval_iters must be positive");
  require(log_interval > 0, "log_interval must be positive");
  require(checkpoint_interval >= 0, "checkpoint_interval must be >= 0");
  require(keep_last >= 1, "keep_last must be >= 1");
  require(dtype == "fp32" || dtype == "bf16", "dtype must be fp32 or bf16, got '" + dtype + "'");
  require(device == "auto" || device == "cpu" || device == "cuda",
          "device must be auto, cpu or cuda, got '" + device + "'");
  require(threads >= 0, "threads must be >= 0");
}

double learning_rate(const TrainConfig& cfg, int64_t step) {
  if (step < cfg.warmup_iters) return cfg.lr * static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_iters + 1);
  if (cfg.lr_schedule == "constant") return cfg.lr;
  const int64_t end = cfg.decay_iters();
  if (step >= end) return cfg.min_lr;
  const double progress =
      static_cast<double>(step - cfg.warmup_iters) / static_cast<double>(std::max<int64_t>(1, end - cfg.warmup_iters));
  const double coeff = cfg.lr_schedule == "linear" ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
  return cfg.min_lr + coeff * (cfg.lr - cfg.min_lr);
}

}  // namespace attnzoo::engine
