#include "models/vit/vit.h"

#include <stdexcept>

#include "models/common/attention.h"

namespace attnzoo::models {

void ViTConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(img_size, "img_size");
  positive(patch_size, "patch_size");
  positive(in_chans, "in_chans");
  positive(embed_dim, "embed_dim");
  positive(depth, "depth");
  positive(num_heads, "num_heads");
  if (num_classes < 0) throw std::invalid_argument("num_classes must be >= 0, got " + std::to_string(num_classes));
  if (img_size % patch_size != 0)
    throw std::invalid_argument("img_size (" + std::to_string(img_size) + ") must be a multiple of patch_size (" +
                                std::to_string(patch_size) + ")");
  if (embed_dim % num_heads != 0)
    throw std::invalid_argument("embed_dim (" + std::to_string(embed_dim) + ") must be divisible by num_heads (" +
                                std::to_string(num_heads) + ")");
  if (!(mlp_ratio > 0)) throw std::invalid_argument("mlp_ratio must be positive, got " + std::to_string(mlp_ratio));
  if (global_pool != "token" && global_pool != "avg")
    throw std::invalid_argument("global_pool must be token or avg, got '" + global_pool + "'");
  if (!(dropout >= 0.0 && dropout < 1.0)) throw std::invalid_argument("dropout must be in [0, 1), got " + std::to_string(dropout));
}

ViTConfig vit_test_tiny() {
  return {.img_size = 16, .patch_size = 4, .in_chans = 3, .num_classes = 5, .embed_dim = 32, .depth = 2, .num_heads = 2};
}
ViTConfig vit_small_28() {
  return {.img_size = 28, .patch_size = 4, .in_chans = 1, .num_classes = 10, .embed_dim = 192, .depth = 6, .num_heads = 3,
          .mlp_ratio = 2.0};
}
ViTConfig vit_small_32() {
  return {.img_size = 32, .patch_size = 4, .in_chans = 3, .num_classes = 10, .embed_dim = 256, .depth = 6, .num_heads = 4};
}
ViTConfig vit_tiny_patch16_224() { return {.embed_dim = 192, .depth = 12, .num_heads = 3}; }
ViTConfig vit_small_patch16_224() { return {.embed_dim = 384, .depth = 12, .num_heads = 6}; }
ViTConfig vit_base_patch16_224() { return {.embed_dim = 768, .depth = 12, .num_heads = 12}; }

ViTConfig vit_preset(const std::string& name) {
  if (name == "tiny") return vit_test_tiny();
  if (name == "small-28") return vit_small_28();
  if (name == "small-32") return vit_small_32();
  if (name == "vit_tiny_patch16_224") return vit_tiny_patch16_224();
  if (name == "vit_small_patch16_224") return vit_small_patch16_224();
  if (name == "vit_base_patch16_224") return vit_base_patch16_224();
  throw std::invalid_argument("unknown ViT preset '" + name +
                              "' (expected tiny, small-28, small-32, vit_tiny_patch16_224, vit_small_patch16_224 or "
                              "vit_base_patch16_224)");
}

torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int64_t prefix, int64_t gh, int64_t gw, int64_t nh,
                                 int64_t nw) {
  TORCH_CHECK(pos_embed.dim() == 3 && pos_embed.size(1) == prefix + gh * gw, "expected pos_embed (1, ", prefix + gh * gw,
              ", C), got ", pos_embed.sizes());
  if (gh == nh && gw == nw) return pos_embed;
  const int64_t C = pos_embed.size(2);
  auto prefix_part = pos_embed.narrow(1, 0, prefix);
  // (1, gh·gw, C) -> (1, C, gh, gw)
  auto grid = pos_embed.narrow(1, prefix, gh * gw).reshape({1, gh, gw, C}).permute({0, 3, 1, 2}).to(torch::kFloat);
  namespace F = torch::nn::functional;
  grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{nh, nw})
                                  .mode(torch::kBicubic)
                                  .align_corners(false)
                                  .antialias(true));
  grid = grid.permute({0, 2, 3, 1}).reshape({1, nh * nw, C}).to(pos_embed.scalar_type());  // (1, nh·nw, C)
  return torch::cat({prefix_part, grid}, 1);
}

PatchEmbedImpl::PatchEmbedImpl(const ViTConfig& cfg) : patch_size(cfg.patch_size) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(cfg.in_chans, cfg.embed_dim, cfg.patch_size)
                                                       .stride(cfg.patch_size)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == proj->options.in_channels(), "expected images (B, ",
              proj->options.in_channels(), ", H, W), got shape ", x.sizes());
  TORCH_CHECK(x.size(2) % patch_size == 0 && x.size(3) % patch_size == 0, "image size ", x.size(2), "x", x.size(3),
              " is not a multiple of the patch size ", patch_size, " (resize the images to the model's size)");
  return proj(x).flatten(2).transpose(1, 2);  // (B, C, H/P, W/P) -> (B, N, C)
}

ViTAttentionImpl::ViTAttentionImpl(int64_t dim, int64_t heads, bool qkv_bias, double dropout_)
    : num_heads(heads), dropout(dropout_) {
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor ViTAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = num_heads, D = C / H;
  // (B, T, 3C) -> 3 × (B, T, C) -> (B, T, H, D) -> (B, H, T, D)
  auto parts = linear(qkv, x).split(C, 2);
  auto q = parts[0].view({B, T, H, D}).transpose(1, 2);
  auto k = parts[1].view({B, T, H, D}).transpose(1, 2);
  auto v = parts[2].view({B, T, H, D}).transpose(1, 2);
  AttentionOptions opt{.dropout = dropout, .training = is_training(), .need_weights = keep_weights};
  auto att = scaled_dot_product_attention(q, k, v, opt);
  if (keep_weights) last_weights = att.weights.detach();
  auto y = att.out.transpose(1, 2).reshape({B, T, C});  // (B, H, T, D) -> (B, T, C)
  return torch::dropout(linear(proj, y), dropout, is_training());
}

ViTMlpImpl::ViTMlpImpl(int64_t dim, int64_t hidden, double dropout_) : dropout(dropout_) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor ViTMlpImpl::forward(const torch::Tensor& x) {
  auto h = torch::dropout(linear_activation(fc1, x, "gelu"), dropout, is_training());  // (B, T, hidden)
  return torch::dropout(linear(fc2, h), dropout, is_training());
}

ViTBlockImpl::ViTBlockImpl(int64_t dim, int64_t heads, int64_t mlp_hidden, bool qkv_bias, double dropout_, double eps)
    : dropout(dropout_) {
  norm1 = register_module("norm1", LayerNorm(dim, true, eps));
  attn = register_module("attn", ViTAttention(dim, heads, qkv_bias, dropout_));
  norm2 = register_module("norm2", LayerNorm(dim, true, eps));
  mlp = register_module("mlp", ViTMlp(dim, mlp_hidden, dropout_));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x_in) {
  auto x = x_in + attn(norm1(x_in));
  return x + mlp(norm2(x));
}

VisionTransformerImpl::VisionTransformerImpl(ViTConfig c) : cfg(std::move(c)) {
  cfg.validate();
  const int64_t C = cfg.embed_dim;
  patch_embed = register_module("patch_embed", PatchEmbed(cfg));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, C}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, 1 + cfg.num_patches(), C}));
  pos_drop = register_module("pos_drop", torch::nn::Dropout(cfg.dropout));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.depth; ++i)
    blocks->push_back(ViTBlock(C, cfg.num_heads, cfg.mlp_hidden(), cfg.qkv_bias, cfg.dropout, cfg.norm_eps));
  if (cfg.global_pool == "avg") fc_norm = register_module("fc_norm", LayerNorm(C, true, cfg.norm_eps));
  else norm = register_module("norm", LayerNorm(C, true, cfg.norm_eps));
  if (cfg.num_classes > 0) head = register_module("head", torch::nn::Linear(C, cfg.num_classes));
  init_weights();
}

void VisionTransformerImpl::init_weights() {
  // timm's init: truncated N(0, 0.02) for position embeddings and Linear weights, zero biases,
  // N(0, 1e-6) for the [class] token; the patch projection keeps PyTorch's default.
  torch::NoGradGuard no_grad;
  auto trunc_normal = [](torch::Tensor& t, double std) { t.normal_(0.0, std).clamp_(-2.0 * std, 2.0 * std); };
  trunc_normal(pos_embed, 0.02);
  cls_token.normal_(0.0, 1e-6);
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      trunc_normal(lin->weight, 0.02);
      if (lin->bias.defined()) lin->bias.zero_();
    }
  }
}

torch::Tensor VisionTransformerImpl::embed(const torch::Tensor& images) {
  auto x = patch_embed(images);  // (B, N, C)
  const int64_t B = x.size(0), gh = images.size(2) / cfg.patch_size, gw = images.size(3) / cfg.patch_size;
  auto pos = resample_pos_embed(pos_embed, 1, cfg.grid(), cfg.grid(), gh, gw);  // (1, T, C)
  x = torch::cat({cls_token.expand({B, 1, cfg.embed_dim}).to(x.dtype()), x}, 1);  // (B, T, C)
  return pos_drop(x + pos);
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& images) {
  auto x = embed(images);
  for (const auto& b : *blocks) x = b->as<ViTBlock>()->forward(x);
  return norm ? norm(x) : x;
}

torch::Tensor VisionTransformerImpl::forward_head(const torch::Tensor& tokens) {
  // (B, T, C) -> (B, C): the [class] token, or the mean of the patch tokens.
  auto pooled = cfg.global_pool == "avg" ? fc_norm(tokens.narrow(1, 1, tokens.size(1) - 1).mean(1)) : tokens.select(1, 0);
  pooled = torch::dropout(pooled, cfg.dropout, is_training());
  return head ? linear(head, pooled) : pooled;
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) { return forward_head(forward_features(images)); }

void VisionTransformerImpl::keep_attention(bool keep) {
  for (const auto& b : *blocks) b->as<ViTBlock>()->attn->keep_weights = keep;
}

std::vector<torch::Tensor> VisionTransformerImpl::attention_weights() const {
  std::vector<torch::Tensor> out;
  for (const auto& b : *blocks) out.push_back(b->as<ViTBlock>()->attn->last_weights);
  return out;
}

void VisionTransformerImpl::reset_head(int64_t num_classes) {
  TORCH_CHECK(num_classes > 0, "num_classes must be positive, got ", num_classes);
  cfg.num_classes = num_classes;
  auto fresh = torch::nn::Linear(cfg.embed_dim, num_classes);
  {
    torch::NoGradGuard no_grad;
    fresh->weight.normal_(0.0, 0.02).clamp_(-0.04, 0.04);
    fresh->bias.zero_();
  }
  if (head) fresh->to(head->weight.device());
  head = head ? replace_module("head", fresh) : register_module("head", fresh);
}

bool VisionTransformerImpl::is_head_parameter(const std::string& name) const {
  return name.rfind("head.", 0) == 0 || name.rfind("fc_norm.", 0) == 0;
}

torch::Tensor attention_rollout(const std::vector<torch::Tensor>& weights) {
  TORCH_CHECK(!weights.empty() && weights[0].defined(), "attention_rollout needs the weights of at least one layer");
  const int64_t T = weights[0].size(-1);
  auto eye = torch::eye(T, weights[0].options().dtype(torch::kFloat));
  torch::Tensor rollout;
  for (const auto& w : weights) {
    auto a = w.to(torch::kFloat).mean(1) + eye;  // (B, T, T): heads averaged, plus the residual
    a = a / a.sum(-1, /*keepdim=*/true);
    rollout = rollout.defined() ? torch::bmm(a, rollout) : a;
  }
  return rollout.select(1, 0).narrow(1, 1, T - 1);  // (B, N): [class] row over the patches
}

}  // namespace attnzoo::models
