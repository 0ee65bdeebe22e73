#include "models/mae/mae.h"

#include <cmath>
#include <stdexcept>

namespace attnzoo::models {

void MAEConfig::validate() const {
  encoder.validate();
  if (decoder_embed_dim <= 0 || decoder_depth <= 0 || decoder_num_heads <= 0)
    throw std::invalid_argument("decoder_embed_dim, decoder_depth and decoder_num_heads must be positive");
  if (decoder_embed_dim % decoder_num_heads != 0)
    throw std::invalid_argument("decoder_embed_dim (" + std::to_string(decoder_embed_dim) +
                                ") must be divisible by decoder_num_heads (" + std::to_string(decoder_num_heads) + ")");
  if (encoder.embed_dim % 4 != 0 || decoder_embed_dim % 4 != 0)
    throw std::invalid_argument("the 2-D sin-cos position embeddings need embed_dim and decoder_embed_dim divisible by 4");
  if (!(mask_ratio >= 0.0 && mask_ratio < 1.0))
    throw std::invalid_argument("mask_ratio must be in [0, 1), got " + std::to_string(mask_ratio));
}

MAEConfig mae_preset(const std::string& name) {
  if (name == "tiny") {
    auto enc = vit_test_tiny();
    enc.num_classes = 0;
    return {.encoder = enc, .decoder_embed_dim = 16, .decoder_depth = 1, .decoder_num_heads = 2};
  }
  if (name == "small-28" || name == "small-32") {
    auto enc = name == "small-28" ? vit_small_28() : vit_small_32();
    enc.num_classes = 0;
    return {.encoder = enc, .decoder_embed_dim = 128, .decoder_depth = 2, .decoder_num_heads = 4};
  }
  if (name == "base") {
    auto enc = vit_base_patch16_224();
    enc.num_classes = 0;
    return {.encoder = enc, .decoder_embed_dim = 512, .decoder_depth = 8, .decoder_num_heads = 16};
  }
  throw std::invalid_argument("unknown MAE preset '" + name + "' (expected tiny, small-28, small-32 or base)");
}

torch::Tensor sincos_2d_pos_embed(int64_t dim, int64_t grid, int64_t prefix) {
  TORCH_CHECK(dim % 4 == 0, "sincos_2d_pos_embed needs dim divisible by 4, got ", dim);
  const int64_t quarter = dim / 4;
  auto omega = 1.0 / torch::pow(10000.0, torch::arange(quarter, torch::kDouble) / static_cast<double>(quarter));  // (D/4)
  auto pos = torch::arange(grid, torch::kDouble);
  auto one_d = [&](const torch::Tensor& p) {  // (M) -> (M, D/2): [sin..., cos...]
    auto out = torch::outer(p, omega);
    return torch::cat({out.sin(), out.cos()}, 1);
  };
  auto cols = pos.repeat({grid});                   // j of row i·g + j
  auto rows = pos.repeat_interleave(grid);          // i of row i·g + j
  auto emb = torch::cat({one_d(cols), one_d(rows)}, 1);  // (g·g, D)
  if (prefix > 0) emb = torch::cat({torch::zeros({prefix, dim}, torch::kDouble), emb}, 0);
  return emb.to(torch::kFloat);
}

torch::Tensor patchify(const torch::Tensor& images, int64_t p) {
  const int64_t B = images.size(0), C = images.size(1), h = images.size(2) / p, w = images.size(3) / p;
  TORCH_CHECK(images.size(2) % p == 0 && images.size(3) % p == 0, "image size ", images.size(2), "x", images.size(3),
              " is not a multiple of the patch size ", p);
  // (B, C, h, p, w, q) -> (B, h, w, p, q, C) -> (B, h·w, p·q·C)
  return images.reshape({B, C, h, p, w, p}).permute({0, 2, 4, 3, 5, 1}).reshape({B, h * w, p * p * C});
}

torch::Tensor unpatchify(const torch::Tensor& x, int64_t p, int64_t C) {
  const int64_t B = x.size(0), g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(x.size(1)))));
  TORCH_CHECK(g * g == x.size(1) && x.size(2) == p * p * C, "cannot unpatchify ", x.sizes(), " with patch ", p,
              " and ", C, " channels");
  // (B, h·w, p·q·C) -> (B, h, w, p, q, C) -> (B, C, h, p, w, q) -> (B, C, H, W)
  return x.reshape({B, g, g, p, p, C}).permute({0, 5, 1, 3, 2, 4}).reshape({B, C, g * p, g * p});
}

Masking random_masking(const torch::Tensor& x, double mask_ratio, const torch::Tensor& noise) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  const auto L = static_cast<int64_t>(static_cast<double>(N) * (1.0 - mask_ratio));
  TORCH_CHECK(noise.sizes() == torch::IntArrayRef({B, N}), "expected noise (", B, ", ", N, "), got ", noise.sizes());
  auto ids_shuffle = noise.argsort(/*dim=*/1, /*descending=*/false);  // ascending: the smallest noise is kept
  auto ids_restore = ids_shuffle.argsort(/*dim=*/1, /*descending=*/false);  // (B, N)
  auto ids_keep = ids_shuffle.narrow(1, 0, L);
  Masking m;
  m.kept = x.gather(1, ids_keep.unsqueeze(-1).expand({B, L, C}));  // (B, L, C)
  m.mask = torch::ones({B, N}, x.options().dtype(torch::kFloat));
  m.mask.narrow(1, 0, L).zero_();
  m.mask = m.mask.gather(1, ids_restore);  // back to the original order
  m.ids_restore = ids_restore;
  return m;
}

MaskedAutoencoderImpl::MaskedAutoencoderImpl(MAEConfig c) : cfg(std::move(c)) {
  cfg.validate();
  const auto& e = cfg.encoder;
  const int64_t C = e.embed_dim, Cd = cfg.decoder_embed_dim, N = e.num_patches();
  patch_embed = register_module("patch_embed", PatchEmbed(e));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, C}));
  pos_embed = register_parameter("pos_embed", sincos_2d_pos_embed(C, e.grid()).unsqueeze(0), /*requires_grad=*/false);
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < e.depth; ++i)
    blocks->push_back(ViTBlock(C, e.num_heads, e.mlp_hidden(), e.qkv_bias, 0.0, e.norm_eps));
  norm = register_module("norm", LayerNorm(C, true, e.norm_eps));
  decoder_embed = register_module("decoder_embed", torch::nn::Linear(C, Cd));
  mask_token = register_parameter("mask_token", torch::zeros({1, 1, Cd}));
  decoder_pos_embed =
      register_parameter("decoder_pos_embed", sincos_2d_pos_embed(Cd, e.grid()).unsqueeze(0), /*requires_grad=*/false);
  decoder_blocks = register_module("decoder_blocks", torch::nn::ModuleList());
  const auto dec_hidden = static_cast<int64_t>(e.mlp_ratio * static_cast<double>(Cd));
  for (int64_t i = 0; i < cfg.decoder_depth; ++i)
    decoder_blocks->push_back(ViTBlock(Cd, cfg.decoder_num_heads, dec_hidden, true, 0.0, e.norm_eps));
  decoder_norm = register_module("decoder_norm", LayerNorm(Cd, true, e.norm_eps));
  decoder_pred = register_module("decoder_pred", torch::nn::Linear(Cd, e.patch_size * e.patch_size * e.in_chans));
  (void)N;
  init_weights();
}

void MaskedAutoencoderImpl::init_weights() {
  // models_mae.py: xavier-uniform Linear weights (and the patch projection as a Linear), zero
  // biases, N(0, 0.02) [class] and mask tokens.
  torch::NoGradGuard no_grad;
  auto& w = patch_embed->proj->weight;
  torch::nn::init::xavier_uniform_(w.view({w.size(0), -1}));
  cls_token.normal_(0.0, 0.02);
  mask_token.normal_(0.0, 0.02);
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_uniform_(lin->weight);
      if (lin->bias.defined()) lin->bias.zero_();
    }
  }
}

std::pair<torch::Tensor, Masking> MaskedAutoencoderImpl::forward_encoder(const torch::Tensor& images,
                                                                         const torch::Tensor& noise_in) {
  const auto& e = cfg.encoder;
  TORCH_CHECK(images.dim() == 4 && images.size(2) == e.img_size && images.size(3) == e.img_size, "MAE expects images (B, ",
              e.in_chans, ", ", e.img_size, ", ", e.img_size, "), got ", images.sizes());
  auto x = patch_embed(images);  // (B, N, C)
  const int64_t B = x.size(0), N = x.size(1);
  x = x + pos_embed.narrow(1, 1, N).to(x.dtype());
  auto noise = noise_in.defined() ? noise_in.to(x.device()) : torch::rand({B, N}, x.options().dtype(torch::kFloat));
  auto m = random_masking(x, cfg.mask_ratio, noise);
  auto cls = (cls_token + pos_embed.narrow(1, 0, 1)).expand({B, 1, e.embed_dim}).to(x.dtype());
  auto h = torch::cat({cls, m.kept}, 1);  // (B, 1 + L, C)
  for (const auto& b : *blocks) h = b->as<ViTBlock>()->forward(h);
  return {norm(h), m};
}

torch::Tensor MaskedAutoencoderImpl::forward_decoder(const torch::Tensor& latent, const torch::Tensor& ids_restore) {
  auto x = linear(decoder_embed, latent);  // (B, 1 + L, Cd)
  const int64_t B = x.size(0), Cd = x.size(2), N = ids_restore.size(1), L = x.size(1) - 1;
  // The kept tokens, then a mask token for each masked patch, unshuffled to the original order.
  auto tokens = torch::cat({x.narrow(1, 1, L), mask_token.to(x.dtype()).expand({B, N - L, Cd})}, 1);  // (B, N, Cd)
  tokens = tokens.gather(1, ids_restore.unsqueeze(-1).expand({B, N, Cd}));
  x = torch::cat({x.narrow(1, 0, 1), tokens}, 1) + decoder_pos_embed.to(x.dtype());  // (B, 1 + N, Cd)
  for (const auto& b : *decoder_blocks) x = b->as<ViTBlock>()->forward(x);
  x = linear(decoder_pred, decoder_norm(x));  // (B, 1 + N, Pp)
  return x.narrow(1, 1, N);
}

torch::Tensor MaskedAutoencoderImpl::forward_loss(const torch::Tensor& images, const torch::Tensor& pred,
                                                  const torch::Tensor& mask) const {
  auto target = patchify(images, cfg.encoder.patch_size).to(torch::kFloat);  // (B, N, Pp)
  if (cfg.norm_pix_loss) {
    auto mean = target.mean(-1, true), var = target.var(-1, /*unbiased=*/true, /*keepdim=*/true);
    target = (target - mean) / (var + 1e-6).sqrt();
  }
  auto per_patch = (pred.to(torch::kFloat) - target).pow(2).mean(-1);  // (B, N)
  return (per_patch * mask).sum() / mask.sum().clamp_min(1.0);
}

MAEOutput MaskedAutoencoderImpl::forward(const torch::Tensor& images, const torch::Tensor& noise) {
  auto [latent, m] = forward_encoder(images, noise);
  auto pred = forward_decoder(latent, m.ids_restore);
  return {forward_loss(images, pred, m.mask), pred, m.mask};
}

ViTConfig mae_encoder_config(const MAEConfig& cfg, int64_t num_classes) {
  auto v = cfg.encoder;
  v.num_classes = num_classes;
  v.global_pool = "token";
  return v;
}

std::map<std::string, torch::Tensor> mae_encoder_tensors(const std::map<std::string, torch::Tensor>& mae) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, v] : mae)
    if (k.rfind("decoder_", 0) != 0 && k != "mask_token") out[k] = v;
  return out;
}

}  // namespace attnzoo::models
