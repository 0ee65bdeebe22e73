// LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") for the GPT of
// gpt.h, as Hugging Face PEFT's LoraModel applies it to GPT-2: a frozen Linear layer W gains a
// trainable low-rank branch, y = W x + b + (alpha / r) · B(A(dropout(x))), with A (r, in)
// Kaiming-uniform (a = √5, torch's Linear default, as PEFT) and B (out, r) zeros, so a new adapter
// leaves the model's outputs unchanged. Everything but the adapters is frozen (requires_grad
// false), so the training loop's AdamW (engine::weight_decay_groups) sees only the adapters.
//
// Targets follow PEFT's target_modules rule: a layer is adapted when its name equals a target or
// ends with "." + target. The layers: transformer.h.N.attn.c_attn, transformer.h.N.attn.c_proj,
// transformer.h.N.mlp.c_fc, transformer.h.N.mlp.c_proj; "c_proj" names both projections,
// "attn.c_proj" only the attention one. Adapter keys: LAYER.lora_A.weight, LAYER.lora_B.weight.
// PEFT's file format (adapter_model.safetensors, adapter_config.json) is weights/peft_lora.h.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/gpt/gpt.h"

namespace attnzoo::models {

struct LoraConfig {
  int64_t rank = 0;                               // r; 0 = no LoRA
  double alpha = 8.0;                             // lora_alpha; scaling = alpha / r (PEFT's default 8)
  double dropout = 0.0;                           // lora_dropout, on the adapter's input
  std::vector<std::string> targets = {"c_attn"};  // target_modules (PEFT's default for GPT-2: c_attn)
  std::string base_model;                         // the base's origin (adapter_config's base_model_name_or_path)

  bool enabled() const { return rank > 0; }
  // Throws std::invalid_argument naming the field ("lora rank must be positive, got 0").
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LoraConfig, rank, alpha, dropout, targets, base_model)

// "transformer.h.N.attn.c_attn" ... : the names of the layers TARGETS selects, in model order.
// Throws std::invalid_argument naming a target that matches no layer.
std::vector<std::string> lora_layer_names(const GPTConfig& cfg, const std::vector<std::string>& targets);

// Adds an adapter to every layer CFG targets and freezes all other parameters. The new A weights
// draw from the global torch generator. Throws std::invalid_argument for a bad CFG or a model that
// already has adapters.
void add_lora(GPT& model, const LoraConfig& cfg);

// Whether a state-dict key is an adapter weight (".lora_A.weight" / ".lora_B.weight").
bool is_lora_key(const std::string& key);

// The adapter weights alone, by our key names (transformer.h.0.attn.c_attn.lora_A.weight), detached.
std::map<std::string, torch::Tensor> lora_state_dict(const GPT& model);

// The model's parameters with every adapter merged into its layer, W' = W + (alpha / r) · B A, and
// no adapter keys: the state dict of a plain GPT that computes the same function (new tensors).
std::map<std::string, torch::Tensor> merged_state_dict(const GPT& model);

// Parameters with requires_grad (tied ones once).
int64_t num_trainable_parameters(const torch::nn::Module& module);

}  // namespace attnzoo::models
