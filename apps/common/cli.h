// What every app's command line shares: the training-loop flags (engine::TrainConfig, the same
// names in every app), reading a --config JSON file, and the one place main() turns an exception
// into "APP: error: MESSAGE" and a non-zero exit.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "apps/common/cli_errors.h"
#include "engine/train_config.h"

namespace attnzoo::apps {

// Each flag is set only when given, so that flags override a --config file or a checkpoint's
// config, which override the defaults.
struct TrainFlags {
  std::optional<int64_t> batch_size, max_iters, warmup_iters, lr_decay_iters, grad_accum, eval_interval, eval_iters,
      log_interval, checkpoint_interval, keep_last, threads;
  std::optional<double> lr, min_lr, weight_decay, grad_clip, beta1, beta2;
  std::optional<std::string> dtype, device, lr_schedule;
  std::optional<uint64_t> seed;
};

// Adds --batch-size --max-iters --lr --min-lr --warmup-iters --lr-decay-iters --lr-schedule
// --weight-decay --beta1 --beta2 --grad-clip --grad-accum --eval-interval --eval-iters
// --log-interval --checkpoint-interval --keep-last --dtype --device --threads --seed to `cmd`.
void add_train_flags(CLI::App* cmd, TrainFlags& flags);
// Copies the flags that were given into `cfg`.
void apply_train_flags(engine::TrainConfig& cfg, const TrainFlags& flags);
// True when any flag of `flags` was given.
bool any_train_flag(const TrainFlags& flags);

// The flags every subcommand that runs a model takes: --device (auto, cpu or cuda), --threads
// (0 = all cores) and, when `dtype` is not null, --dtype, checked to be fp32 or bf16; `dtype_help`
// says what it does in that subcommand (autocast, or the weights' type).
void add_runtime_flags(CLI::App* cmd, std::string& device, int64_t& threads, std::string* dtype = nullptr,
                       const std::string& dtype_help = "fp32 or bf16 (autocast)");

// Reads a JSON file: throws std::runtime_error "FILE: cannot open" or "FILE: malformed JSON: ...".
nlohmann::json read_json_file(const std::string& path);

// Runs `body` and returns its exit code; an exception becomes one line "APP: error: MESSAGE" on
// stderr and exit code 1 (c10::Error without its C++ backtrace).
int run_guarded(const std::string& app, const std::function<int()>& body);

}  // namespace attnzoo::apps
