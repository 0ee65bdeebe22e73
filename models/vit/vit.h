// Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"): an image cut into
// P×P patches, each linearly embedded (a convolution with stride P), a learned [class] token and
// learned position embeddings, pre-LN transformer blocks, and a linear head on the [class] token
// or on the mean of the patch tokens. Laid out as timm's vision_transformer.py so that module
// names are timm's checkpoint keys: patch_embed.proj, cls_token, pos_embed, blocks.N.norm1,
// blocks.N.attn.qkv, blocks.N.attn.proj, blocks.N.norm2, blocks.N.mlp.fc1, blocks.N.mlp.fc2, norm
// (class-token pooling) or fc_norm (mean pooling), head.
//
// Shape letters: B batch, Cin image channels, H, W image size, P patch size, N = (H/P)·(W/P)
// patches, T = 1 + N tokens, C embed_dim, Hd heads, D = C / Hd head size, K classes.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/layers.h"

namespace attnzoo::models {

struct ViTConfig {
  int64_t img_size = 224;             // square images H = W the position embeddings are made for
  int64_t patch_size = 16;            // P
  int64_t in_chans = 3;               // Cin
  int64_t num_classes = 1000;         // K; 0 = no head (features only)
  int64_t embed_dim = 768;            // C
  int64_t depth = 12;                 // blocks
  int64_t num_heads = 12;             // Hd
  double mlp_ratio = 4.0;             // MLP hidden = mlp_ratio · C
  bool qkv_bias = true;
  std::string global_pool = "token";  // "token" ([class] token -> norm -> head) or "avg" (mean of patches -> fc_norm -> head)
  double dropout = 0.0;               // on embeddings, attention weights, residual branches and before the head
  double norm_eps = 1e-6;             // timm's LayerNorm eps

  int64_t grid() const { return img_size / patch_size; }
  int64_t num_patches() const { return grid() * grid(); }
  int64_t mlp_hidden() const { return static_cast<int64_t>(mlp_ratio * static_cast<double>(embed_dim)); }
  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ViTConfig, img_size, patch_size, in_chans, num_classes, embed_dim,
                                                depth, num_heads, mlp_ratio, qkv_bias, global_pool, dropout, norm_eps)

// Presets. Name lookup: "tiny", "small-28", "small-32", "vit_tiny_patch16_224", "vit_small_patch16_224",
// "vit_base_patch16_224".
ViTConfig vit_test_tiny();          // 16×16×3 images, patch 4, 2 × 32 dim: tests
ViTConfig vit_small_28();           // 28×28 grayscale (Fashion-MNIST), patch 4, 6 × 192, 3 heads
ViTConfig vit_small_32();           // 32×32 RGB (CIFAR-10), patch 4, 6 × 256, 4 heads (issue 7's training benchmark)
ViTConfig vit_tiny_patch16_224();   // ViT-Ti/16: 12 × 192, 3 heads
ViTConfig vit_small_patch16_224();  // ViT-S/16: 12 × 384, 6 heads
ViTConfig vit_base_patch16_224();   // ViT-B/16: 12 × 768, 12 heads
ViTConfig vit_preset(const std::string& name);

// Position embeddings (1, prefix + gh·gw, C) resampled to a new grid (1, prefix + nh·nw, C) as
// timm's resample_abs_pos_embed: the patch part as a (C, gh, gw) image, bicubic, antialiased,
// align_corners false; the `prefix` tokens ([class]) are kept.
torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int64_t prefix, int64_t gh, int64_t gw,
                                 int64_t nh, int64_t nw);

class PatchEmbedImpl : public torch::nn::Module {
 public:
  explicit PatchEmbedImpl(const ViTConfig& cfg);
  // (B, Cin, H, W) -> (B, N, C), patches in row-major order.
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d proj = nullptr;  // Cin -> C, kernel = stride = P
  int64_t patch_size;
};
TORCH_MODULE(PatchEmbed);

class ViTAttentionImpl : public torch::nn::Module {
 public:
  ViTAttentionImpl(int64_t dim, int64_t heads, bool qkv_bias, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, C) -> (B, T, C), full (bidirectional) attention

  torch::nn::Linear qkv = nullptr;   // C -> 3C
  torch::nn::Linear proj = nullptr;  // C -> C
  int64_t num_heads;
  double dropout;
  bool keep_weights = false;
  torch::Tensor last_weights;  // (B, Hd, T, T) of the last forward when keep_weights
};
TORCH_MODULE(ViTAttention);

class ViTMlpImpl : public torch::nn::Module {
 public:
  ViTMlpImpl(int64_t dim, int64_t hidden, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, C) -> (B, T, C), exact GELU

  torch::nn::Linear fc1 = nullptr;  // C -> hidden
  torch::nn::Linear fc2 = nullptr;  // hidden -> C
  double dropout;
};
TORCH_MODULE(ViTMlp);

// timm's Block: x + attn(norm1(x)), then x + mlp(norm2(x)). MAE's encoder and decoder use it too.
class ViTBlockImpl : public torch::nn::Module {
 public:
  ViTBlockImpl(int64_t dim, int64_t heads, int64_t mlp_hidden, bool qkv_bias, double dropout, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  LayerNorm norm1 = nullptr;
  ViTAttention attn = nullptr;
  LayerNorm norm2 = nullptr;
  ViTMlp mlp = nullptr;
  double dropout;
};
TORCH_MODULE(ViTBlock);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(ViTConfig cfg);

  // (B, Cin, H, W) -> logits (B, K) (or pooled features (B, C) without a head). H and W must be
  // multiples of P; another grid than the config's gets resampled position embeddings.
  torch::Tensor forward(const torch::Tensor& images);
  // Patch embedding + [class] token + position embeddings: (B, Cin, H, W) -> (B, T, C).
  torch::Tensor embed(const torch::Tensor& images);
  // Embeddings through the blocks and the final norm: (B, T, C).
  torch::Tensor forward_features(const torch::Tensor& images);
  // Pooling ([class] token or mean of the patches) and the head: (B, T, C) -> (B, K).
  torch::Tensor forward_head(const torch::Tensor& tokens);

  // Keep each block's attention weights on the next forwards (slower: no fused kernel).
  void keep_attention(bool keep);
  // (B, Hd, T, T) per block from the last forward with keep_attention(true); token 0 is [class].
  std::vector<torch::Tensor> attention_weights() const;

  // Replaces the head by a fresh one for `num_classes` (transfer learning).
  void reset_head(int64_t num_classes);
  // Parameter names of the backbone (everything but head and fc_norm).
  bool is_head_parameter(const std::string& name) const;

  const ViTConfig& config() const { return cfg; }

  ViTConfig cfg;
  PatchEmbed patch_embed = nullptr;
  torch::Tensor cls_token;              // (1, 1, C)
  torch::Tensor pos_embed;              // (1, T, C)
  torch::nn::Dropout pos_drop = nullptr;
  torch::nn::ModuleList blocks = nullptr;  // depth ViTBlocks
  LayerNorm norm = nullptr;             // global_pool "token"
  LayerNorm fc_norm = nullptr;          // global_pool "avg"
  torch::nn::Linear head = nullptr;     // C -> K; null when num_classes is 0

 private:
  void init_weights();
};
TORCH_MODULE(VisionTransformer);

// Attention rollout (Abnar & Zuidema 2020): per layer the head-averaged weights plus the identity
// (the residual), rows renormalised, multiplied from the first layer to the last; returns the
// [class] token's row over the patches, (B, N). weights: one (B, Hd, T, T) per layer.
torch::Tensor attention_rollout(const std::vector<torch::Tensor>& weights);

}  // namespace attnzoo::models
