// Masked autoencoder (He et al. 2022, "Masked Autoencoders Are Scalable Vision Learners"), laid
// out as the official models_mae.py so that module names are its checkpoint keys: the encoder is
// a ViT (patch_embed.proj, cls_token, pos_embed, blocks.N.*, norm), the decoder decoder_embed,
// mask_token, decoder_pos_embed, decoder_blocks.N.*, decoder_norm, decoder_pred. Position
// embeddings of both are fixed 2-D sine-cosine tables (stored, not trained).
//
// Per sample a random subset of patches is kept (argsort of uniform noise: exactly
// floor(N · (1 − mask_ratio)) patches per sample), the encoder sees only those (plus [class]),
// the narrower decoder sees the encoded visible patches with a shared mask token in every masked
// position, and predicts each patch's pixels; the loss is the mean squared error on the masked
// patches only, optionally against per-patch normalised pixels (norm_pix_loss).
//
// Shape letters: B batch, N patches, L = floor(N · (1 − mask_ratio)) kept patches, C encoder
// width, Cd decoder width, P patch size, Cin channels, Pp = P·P·Cin pixels per patch.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/layers.h"
#include "models/vit/vit.h"

namespace attnzoo::models {

struct MAEConfig {
  ViTConfig encoder = vit_small_28();  // img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio
  int64_t decoder_embed_dim = 128;     // Cd
  int64_t decoder_depth = 2;
  int64_t decoder_num_heads = 4;
  double mask_ratio = 0.75;
  bool norm_pix_loss = false;          // MSE against per-patch normalised pixels

  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MAEConfig, encoder, decoder_embed_dim, decoder_depth, decoder_num_heads,
                                                mask_ratio, norm_pix_loss)

// Presets: "tiny" (tests), "small-28" (Fashion-MNIST), "small-32" (CIFAR-10), "base" (MAE ViT-B/16).
MAEConfig mae_preset(const std::string& name);

// MAE's get_2d_sincos_pos_embed: (prefix + g·g, D) float; row i·g + j (patch row i, column j)
// is [sincos_D/2(j), sincos_D/2(i)], each half [sin(p·ω_k)..., cos(p·ω_k)...] with
// ω_k = 1 / 10000^(k / (D/4)); the `prefix` rows ([class]) are zeros.
torch::Tensor sincos_2d_pos_embed(int64_t dim, int64_t grid, int64_t prefix = 1);

// (B, Cin, H, W) -> (B, N, P·P·Cin), each patch row-major over (p, q) with channels last, as MAE's patchify.
torch::Tensor patchify(const torch::Tensor& images, int64_t patch_size);
// The inverse, for a square grid.
torch::Tensor unpatchify(const torch::Tensor& patches, int64_t patch_size, int64_t channels);

struct Masking {
  torch::Tensor kept;         // (B, L, C) the kept tokens, in shuffled order
  torch::Tensor mask;         // (B, N) float: 0 kept, 1 masked, in the original order
  torch::Tensor ids_restore;  // (B, N) int64: position of each original patch in the shuffled order
};
// Keeps, per sample, the L patches with the smallest noise (noise: (B, N), e.g. uniform).
Masking random_masking(const torch::Tensor& x, double mask_ratio, const torch::Tensor& noise);

struct MAEOutput {
  torch::Tensor loss;  // scalar: MSE on masked patches
  torch::Tensor pred;  // (B, N, Pp) predicted pixels (normalised per patch with norm_pix_loss)
  torch::Tensor mask;  // (B, N) 1 = masked
};

class MaskedAutoencoderImpl : public torch::nn::Module {
 public:
  explicit MaskedAutoencoderImpl(MAEConfig cfg);

  // images (B, Cin, H, W) with H = W = img_size; noise (B, N) decides the masking (undefined: drawn
  // from torch's global generator).
  MAEOutput forward(const torch::Tensor& images, const torch::Tensor& noise = {});
  // -> (latent (B, 1 + L, C), masking)
  std::pair<torch::Tensor, Masking> forward_encoder(const torch::Tensor& images, const torch::Tensor& noise);
  // latent (B, 1 + L, C) -> pixels (B, N, Pp)
  torch::Tensor forward_decoder(const torch::Tensor& latent, const torch::Tensor& ids_restore);
  torch::Tensor forward_loss(const torch::Tensor& images, const torch::Tensor& pred, const torch::Tensor& mask) const;

  const MAEConfig& config() const { return cfg; }

  MAEConfig cfg;
  PatchEmbed patch_embed = nullptr;
  torch::Tensor cls_token;                 // (1, 1, C)
  torch::Tensor pos_embed;                 // (1, 1 + N, C) fixed sin-cos
  torch::nn::ModuleList blocks = nullptr;  // encoder ViTBlocks
  LayerNorm norm = nullptr;
  torch::nn::Linear decoder_embed = nullptr;  // C -> Cd
  torch::Tensor mask_token;                // (1, 1, Cd)
  torch::Tensor decoder_pos_embed;         // (1, 1 + N, Cd) fixed sin-cos
  torch::nn::ModuleList decoder_blocks = nullptr;
  LayerNorm decoder_norm = nullptr;
  torch::nn::Linear decoder_pred = nullptr;  // Cd -> Pp

 private:
  void init_weights();
};
TORCH_MODULE(MaskedAutoencoder);

// The ViT encoder config of an MAE with a head for `num_classes` ([class]-token pooling), and
// the encoder's tensors from an MAE state dict (decoder keys and mask_token dropped).
ViTConfig mae_encoder_config(const MAEConfig& cfg, int64_t num_classes);
std::map<std::string, torch::Tensor> mae_encoder_tensors(const std::map<std::string, torch::Tensor>& mae);

}  // namespace attnzoo::models
