// Hugging Face PEFT LoRA adapter directories for GPT-2 (what LoraModel.save_pretrained writes):
// adapter_config.json + adapter_model.safetensors, holding the adapters alone. Key map:
//
//   PEFT (file)                                              attnzoo (models/gpt/lora.h)
//   base_model.model.transformer.h.N.attn.c_attn.lora_A.weight (r, in)   transformer.h.N.attn.c_attn.lora_A.weight
//   base_model.model.transformer.h.N.attn.c_attn.lora_B.weight (out, r)  transformer.h.N.attn.c_attn.lora_B.weight
//
// Shapes need no transposing: PEFT's lora_A/lora_B are nn.Linear layers even on GPT-2's Conv1D
// (fan_in_fan_out = true only transposes the merged delta B A, which is (out, in) in our layout).
// adapter_config.json: {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r", "lora_alpha",
// "lora_dropout", "target_modules", "fan_in_fan_out": true, "bias": "none",
// "base_model_name_or_path", "inference_mode": true, ...}. Reading refuses what this
// implementation does not compute: another peft_type, bias other than "none", modules_to_save,
// rank_pattern / alpha_pattern, use_rslora, use_dora, layers_to_transform.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "models/gpt/lora.h"
#include "weights/safetensors.h"

namespace attnzoo::weights {

nlohmann::json peft_adapter_config(const models::LoraConfig& cfg);
// Throws std::runtime_error "SOURCE: FIELD: ..." for a config this implementation cannot apply.
models::LoraConfig lora_config_from_peft(const nlohmann::json& j, const std::string& source);

// Adapter weights by our names -> PEFT's (non-adapter keys are refused), and back (keys without the
// base_model.model. prefix or not ending in lora_A/lora_B.weight are refused, naming the key).
TensorMap export_peft_lora(const TensorMap& ours);
TensorMap import_peft_lora(const TensorMap& peft, const std::string& source);

struct PeftAdapter {
  models::LoraConfig config;
  TensorMap tensors;  // our keys
};
// Writes DIR/adapter_config.json + DIR/adapter_model.safetensors atomically (weights/file_io.h).
void save_peft_adapter_dir(const std::filesystem::path& dir, const models::LoraConfig& cfg, const TensorMap& ours,
                           bool force);
// Reads them; errors name the file.
PeftAdapter load_peft_adapter_dir(const std::filesystem::path& dir);

// Adds ADAPTER's LoRA layers to MODEL (models::add_lora) and loads its weights. An adapter made for
// another base (other layer count or widths) or whose weights disagree with its rank is refused:
// std::runtime_error "SOURCE: ..." listing missing, unexpected and mis-shaped keys.
void apply_peft_adapter(models::GPT& model, const PeftAdapter& adapter, const std::string& source);

}  // namespace attnzoo::weights
