// Hugging Face GPT-2 checkpoints (GPT2LMHeadModel: gpt2, gpt2-medium, gpt2-large, gpt2-xl,
// distilgpt2) in and out of attnzoo's GPT (models/gpt/gpt.h). A Hub directory holds config.json
// (a GPT2Config) and model.safetensors. The key map between the two layouts:
//
//   Hugging Face (file)                          attnzoo (state dict)
//   [transformer.]wte.weight / wpe.weight        transformer.wte.weight / wpe.weight
//   [transformer.]h.N.ln_1|ln_2.weight|bias      transformer.h.N.ln_1|ln_2.weight|bias
//   [transformer.]h.N.attn.c_attn.weight (C,3C)  transformer.h.N.attn.c_attn.weight (3C,C)  transposed
//   [transformer.]h.N.attn.c_proj.weight (C,C)   transformer.h.N.attn.c_proj.weight (C,C)   transposed
//   [transformer.]h.N.mlp.c_fc.weight (C,4C)     transformer.h.N.mlp.c_fc.weight (4C,C)     transposed
//   [transformer.]h.N.mlp.c_proj.weight (4C,C)   transformer.h.N.mlp.c_proj.weight (C,4C)   transposed
//   [transformer.]h.N.*.bias, ln_f.*             the same name under transformer.
//   [transformer.]h.N.attn.bias, .masked_bias    (the causal-mask buffers of older files: dropped)
//   lm_head.weight                               (must equal wte: our head is tied; dropped)
//
// GPT-2's "Conv1D" stores its weight [in, out] and computes x W + b; ours are torch Linear
// layers, [out, in]. Export writes what GPT2LMHeadModel.save_pretrained writes with safetensors:
// every key under `transformer.`, no lm_head.weight (tied), no mask buffers.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/gpt/gpt.h"
#include "weights/safetensors.h"

namespace attnzoo::weights {

// GPT2Config JSON -> GPTConfig: n_layer, n_head, n_embd, n_positions (-> block_size), vocab_size,
// activation_function (gelu_new / gelu_pytorch_tanh -> gelu_tanh, gelu -> gelu), bias true.
// Dropout is 0 (set it when fine-tuning). Refused, naming the field: model_type other than gpt2,
// layer_norm_epsilon other than 1e-5, n_inner other than null or 4 n_embd, cross-attention,
// scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn, untied embeddings.
// Throws std::runtime_error "SOURCE: FIELD: ...".
models::GPTConfig gpt2_config_from_hf(const nlohmann::json& j, const std::string& source);
// GPTConfig -> the GPT2Config that save_pretrained writes (model_type, architectures, n_ctx,
// dropouts, bos_token_id = eos_token_id = EOS, the tokenizer's <|endoftext|>; null without one).
nlohmann::json gpt2_config_to_hf(const models::GPTConfig& cfg, std::optional<int64_t> eos = 50256);

// A Hugging Face GPT-2 state dict -> ours for CFG (see the table). Tensors keep their dtype;
// Conv1D weights are transposed (contiguous copies), the rest shared. Throws std::runtime_error
// "SOURCE: ..." listing unknown keys, missing keys and shape mismatches (as stored in the file, e.g.
// "h.0.attn.c_attn.weight: expected [32, 96], got [96, 32]"), or an lm_head.weight that is not wte.
TensorMap import_hf_gpt2(const TensorMap& hf, const models::GPTConfig& cfg, const std::string& source);
// Ours -> Hugging Face's keys and layout. Throws std::runtime_error naming any key that is not a
// plain GPT-2 weight of CFG (e.g. a LoRA adapter) or a shape that disagrees with CFG.
TensorMap export_hf_gpt2(const TensorMap& ours, const models::GPTConfig& cfg);

struct HfGpt2 {
  models::GPTConfig config;
  TensorMap tensors;  // our keys and layout
};
// Reads DIR/config.json and DIR/model.safetensors. Errors name the file (and the key).
HfGpt2 load_hf_gpt2_dir(const std::filesystem::path& dir);
// Writes DIR/config.json + DIR/model.safetensors (+ whatever EXTRA writes into the directory it is
// given), atomically: into a temporary sibling, then renamed. A DIR that exists and is not empty
// is refused unless FORCE, in which case it is replaced only once the new one is complete.
void save_hf_gpt2_dir(const std::filesystem::path& dir, const models::GPTConfig& cfg, const TensorMap& ours,
                      std::optional<int64_t> eos, bool force,
                      const std::function<void(const std::filesystem::path&)>& extra = {});

}  // namespace attnzoo::weights
