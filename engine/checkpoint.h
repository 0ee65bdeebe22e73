// Checkpoint directories (DESIGN.md): config.json, model.safetensors, optimizer.safetensors and
// state.json. A checkpoint is written into a temporary sibling directory, flushed to disk and
// then renamed into place (an existing one is swapped out atomically), so a crash or a full disk
// never leaves a torn checkpoint and the previous one stays usable.
//
// A run directory holds them under RUN/checkpoints/: step-000250, step-000500, ... and best.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "weights/safetensors.h"

namespace attnzoo::engine {

struct Checkpoint {
  nlohmann::json config;             // the run's resolved config (model + train + app settings)
  weights::TensorMap model;          // model.safetensors
  weights::TensorMap optimizer;      // optimizer.safetensors (may be empty for inference-only exports)
  nlohmann::json state;              // step, best metric, RNG states, data position, tokenizer
};

// Writes `ckpt` as directory `dir`, atomically. Throws std::runtime_error naming the file that
// could not be written; `dir` is then unchanged.
void write_checkpoint(const std::filesystem::path& dir, const Checkpoint& ckpt);

// Reads a checkpoint directory, validating every file first. Throws std::runtime_error naming the
// missing or malformed file.
Checkpoint read_checkpoint(const std::filesystem::path& dir);

// The checkpoints of one run directory.
class CheckpointStore {
 public:
  explicit CheckpointStore(std::filesystem::path run_dir);

  std::filesystem::path root() const { return root_; }
  std::filesystem::path step_dir(int64_t step) const;

  // Saves the checkpoint of `step` and deletes step checkpoints beyond the newest keep_last.
  void save_step(int64_t step, const Checkpoint& ckpt, int64_t keep_last) const;
  void save_best(const Checkpoint& ckpt) const;

  // Completed step numbers that have a checkpoint, ascending.
  std::vector<int64_t> steps() const;
  // "latest" (the newest step checkpoint, or best if there is none), "best", or "step-N"/"N".
  // Throws std::runtime_error naming the run directory when it has no checkpoint at all, and
  // std::invalid_argument listing the available ones when the named checkpoint does not exist.
  std::filesystem::path resolve(const std::string& which) const;
  std::optional<std::filesystem::path> latest() const;

 private:
  std::filesystem::path root_;
};

}  // namespace attnzoo::engine
