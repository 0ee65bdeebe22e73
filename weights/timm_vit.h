// timm Vision Transformers as the Hugging Face Hub ships them (a directory with model.safetensors
// and config.json) into attnzoo's ViT (models/vit/vit.h). timm's key names are ours, so the key
// map is the identity, with two adjustments timm's own checkpoint_filter_fn makes:
//
//   timm (file)                     attnzoo (state dict)
//   pos_embed (1, 1 + g·g, C)       pos_embed (1, 1 + g'·g', C)   resampled bicubically when the
//                                                                 config's img_size/patch_size differ
//   every other key                 the same key and shape; anything else (register tokens,
//                                   norm_pre, ...) is refused, naming it
//
// config.json: `architecture` ("vit_base_patch16_224.augreg2_in21k_ft_in1k": the part before the
// dot picks the preset; vit_{tiny,small,base,large}_patch{P}_{S} are understood), optional
// `model_args` overriding the preset (img_size, patch_size, in_chans, embed_dim, depth, num_heads,
// mlp_ratio, qkv_bias, global_pool, fc_norm, class_token), `num_classes`, `global_pool`,
// `label_names`, and `pretrained_cfg` (input_size, mean, std, interpolation, crop_pct: the
// preprocessing predict and eval apply).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/vit/vit.h"
#include "weights/safetensors.h"

namespace attnzoo::weights {

// The preprocessing a timm model was trained with (pretrained_cfg), with timm's defaults.
struct TimmPreprocess {
  int64_t channels = 3, height = 224, width = 224;  // input_size
  std::vector<double> mean{0.485, 0.456, 0.406};    // ImageNet's, timm's default
  std::vector<double> std{0.229, 0.224, 0.225};
  std::string interpolation = "bicubic";
  double crop_pct = 0.875;
};

// config.json -> the model config. Throws std::runtime_error "SOURCE: FIELD: ..." for an
// architecture that is not a plain ViT or a model_args key this ViT does not support.
models::ViTConfig vit_config_from_timm(const nlohmann::json& j, const std::string& source);
TimmPreprocess timm_preprocess(const nlohmann::json& j, const std::string& source);

// A timm state dict -> ours for CFG (see the table). Throws std::runtime_error "SOURCE: ..." listing
// unknown keys, missing keys and shape mismatches.
TensorMap import_timm_vit(const TensorMap& timm, const models::ViTConfig& cfg, const std::string& source);

struct TimmViT {
  models::ViTConfig config;
  TensorMap tensors;                     // our keys
  TimmPreprocess preprocess;
  std::vector<std::string> label_names;  // config.json's label_names; empty when absent
  std::string architecture;
};

// Reads DIR/config.json and DIR/model.safetensors. Errors name the file (and the key).
TimmViT load_timm_vit_dir(const std::filesystem::path& dir);

}  // namespace attnzoo::weights
