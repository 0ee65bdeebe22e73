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
#include "models/gpt/lora.h"
#include "tokenizers/tokenizer.h"

namespace attnzoo::apps {

struct GptRunConfig {
  models::GPTConfig model = models::gpt_shakespeare_char_cpu();
  engine::TrainConfig train;
  std::string data;         // the prepared data directory
  models::LoraConfig lora;  // rank 0: no LoRA (and no "lora" key in the JSON)
};

// gpt-train's defaults: nanoGPT's CPU recipe for tinyshakespeare-char (its README), which trains in
// about two minutes on two cores.
GptRunConfig default_run_config();

nlohmann::json to_json(const GptRunConfig& cfg);
// Applies {"model": {...}, "train": {...}, "data": "...", "lora": {...}} on top of `cfg`, refusing unknown keys.
// Throws std::invalid_argument "SOURCE: ..." naming the key.
void apply_json(GptRunConfig& cfg, const nlohmann::json& j, const std::string& source);

// The tokenizer a dataset or checkpoint was made with (its JSON form); throws naming `source`.
tokenizers::Tokenizer load_tokenizer(const nlohmann::json& tokenizer_json, const std::string& source);

// A trained model loaded from RUN's checkpoint `which` (best | latest | step-N), in eval mode. A
// LoRA run's checkpoints hold the whole model, adapters included (its config's "lora" says which).
struct LoadedRun {
  std::filesystem::path checkpoint;
  GptRunConfig config;
  models::GPT model = nullptr;
  tokenizers::Tokenizer tokenizer;
  nlohmann::json tokenizer_json;
};
LoadedRun load_run(const std::filesystem::path& run, const std::string& which, torch::Device device);

// --init-from hf:DIR -> DIR; throws std::invalid_argument for any other form.
std::filesystem::path hf_dir_of(const std::string& init_from);
// The tokenizer of a Hugging Face directory: SPEC when given (a tokenizer SPEC, or a prepared
// data directory, whose meta.json holds one), else DIR's vocab.json + merges.txt, else
// DIR/attnzoo_tokenizer (what `export --format hf` writes), else GPT-2's from GPT2_DIR (the repo's
// data/gpt2). Empty when none of these exists.
std::optional<tokenizers::Tokenizer> hf_tokenizer(const std::filesystem::path& dir, const std::string& spec,
                                                  const std::filesystem::path& gpt2_dir);
// A Hugging Face GPT-2 download (config.json + model.safetensors; weights/hf_gpt2.h) as a run, in
// eval mode, with hf_tokenizer(); a tokenizer larger than the model's vocabulary, or none at all, is
// refused naming DIR.
LoadedRun load_hf(const std::filesystem::path& dir, const std::string& tokenizer_spec,
                  const std::filesystem::path& gpt2_dir, torch::Device device);
// --run RUN or --init-from hf:DIR (exactly one), with the PEFT LoRA adapter in LORA_DIR applied
// when it is not empty (weights/peft_lora.h; refused on a model that already has adapters).
LoadedRun load_model(const std::string& run, const std::string& init_from, const std::string& which,
                     const std::string& tokenizer_spec, torch::Device device, const std::string& lora_dir = "");

// Replaces RUN's model by a plain GPT with its adapters merged (W' = W + (alpha / r) B A), in eval
// mode on the same device. Throws std::invalid_argument when the model has no adapters.
void merge_lora(LoadedRun& run);

// Writes RUN's model as a Hugging Face GPT-2 directory OUT (config.json, model.safetensors) with
// the tokenizer in our saved format under OUT/attnzoo_tokenizer. A model with LoRA adapters is
// refused (merge_lora first, or export_peft). The vocabulary keeps the run's
// padding (config.json's vocab_size is the model's, e.g. 50304). Atomic; a non-empty OUT needs FORCE.
void export_hf(const LoadedRun& run, const std::filesystem::path& out, bool force,
               torch::ScalarType dtype = torch::kFloat);
// Writes RUN's adapters alone as a PEFT directory OUT (adapter_config.json, adapter_model.safetensors).
void export_peft(const LoadedRun& run, const std::filesystem::path& out, bool force);

}  // namespace attnzoo::apps
