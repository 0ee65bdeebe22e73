// What gpt-train's subcommands share: the run config (model + training settings + data
// directory), reading it from flags, a --config file or a checkpoint, and loading a trained model
// with its tokenizer.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/train_config.h"
#include "models/gpt/gpt.h"
#include "tokenizers/tokenizer.h"

namespace attnzoo::apps {

struct GptRunConfig {
  models::GPTConfig model = models::gpt_shakespeare_char_cpu();
  engine::TrainConfig train;
  std::string data;  // the prepared data directory
};

// gpt-train's defaults: nanoGPT's CPU recipe for tinyshakespeare-char (its README), which trains in
// about two minutes on two cores.
GptRunConfig default_run_config();

nlohmann::json to_json(const GptRunConfig& cfg);
// Applies {"model": {...}, "train": {...}, "data": "..."} on top of `cfg`, refusing unknown keys.
// Throws std::invalid_argument "SOURCE: ..." naming the key.
void apply_json(GptRunConfig& cfg, const nlohmann::json& j, const std::string& source);
// Reads a --config file: throws std::runtime_error "FILE: ..." on a missing file or malformed JSON.
nlohmann::json read_json_file(const std::string& path);

// The tokenizer a dataset or checkpoint was made with (its JSON form); throws naming `source`.
tokenizers::Tokenizer load_tokenizer(const nlohmann::json& tokenizer_json, const std::string& source);

// A trained model loaded from RUN's checkpoint `which` (best | latest | step-N), in eval mode.
struct LoadedRun {
  std::filesystem::path checkpoint;
  GptRunConfig config;
  models::GPT model = nullptr;
  tokenizers::Tokenizer tokenizer;
  nlohmann::json tokenizer_json;
};
LoadedRun load_run(const std::filesystem::path& run, const std::string& which, torch::Device device);

}  // namespace attnzoo::apps
