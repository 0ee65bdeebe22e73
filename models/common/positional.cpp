#include "models/common/positional.h"

namespace attnzoo::models {
namespace {

// (..., 1) coordinates / (F) wavelengths -> (..., F): sin on even channels, cos on odd ones, where
// channels 2i and 2i+1 share the wavelength base^(2i / F).
torch::Tensor sine_features(const torch::Tensor& coords, int64_t F, double base) {
  auto opts = coords.options();
  auto pair = torch::arange(F, opts).div(2, "floor").mul(2);    // 0, 0, 2, 2, 4, 4, ...
  auto wavelength = torch::pow(base, pair / static_cast<double>(F));  // (F)
  auto angle = coords / wavelength;                             // (..., F)
  auto even = torch::arange(F, opts.dtype(torch::kLong)).remainder(2) == 0;
  return torch::where(even, angle.sin(), angle.cos());
}

}  // namespace

torch::Tensor sinusoidal_encoding(int64_t length, int64_t dim, int64_t offset, double base,
                                  torch::TensorOptions options) {
  TORCH_CHECK(length >= 0 && offset >= 0, "sinusoidal encoding needs length and offset >= 0, got ", length, " and ",
              offset);
  TORCH_CHECK(dim > 0 && dim % 2 == 0, "sinusoidal encoding needs an even positive width, got ", dim);
  // Computed in double: positions in the thousands lose digits in a float32 angle.
  auto pos = torch::arange(offset, offset + length, torch::kDouble).unsqueeze(1);  // (T, 1)
  const auto dtype = options.has_dtype() ? options.dtype().toScalarType() : torch::kFloat;
  return sine_features(pos, dim, base).to(options.device(), dtype);
}

LearnedPositionalEmbeddingImpl::LearnedPositionalEmbeddingImpl(int64_t max_len, int64_t dim) {
  TORCH_CHECK(max_len > 0 && dim > 0, "learned positional embedding needs max_len and dim > 0, got ", max_len,
              " and ", dim);
  weight = register_parameter("weight", torch::empty({max_len, dim}).normal_(0.0, 0.02));
}

torch::Tensor LearnedPositionalEmbeddingImpl::forward(int64_t length, int64_t offset) {
  TORCH_CHECK(offset >= 0 && length >= 0 && offset + length <= weight.size(0), "positions ", offset, " .. ",
              offset + length - 1, " are outside the learned table of ", weight.size(0), " positions");
  return weight.narrow(0, offset, length);
}

torch::Tensor LearnedPositionalEmbeddingImpl::lookup(const torch::Tensor& positions) {
  return torch::embedding(weight, positions);
}

torch::Tensor position_embedding_sine(const torch::Tensor& mask, const PositionEmbeddingSineConfig& cfg) {
  TORCH_CHECK(mask.dim() == 3 && mask.scalar_type() == torch::kBool,
              "DETR's sine position embedding expects a bool padding mask (B, H, W), got ", mask.scalar_type(), " ",
              mask.sizes());
  TORCH_CHECK(cfg.num_pos_feats > 0 && cfg.num_pos_feats % 2 == 0, "num_pos_feats must be even and positive, got ",
              cfg.num_pos_feats);
  const auto visible = mask.logical_not().to(torch::kFloat);
  auto y = visible.cumsum(1);  // (B, H, W): 1-based row among the unpadded pixels of the column
  auto x = visible.cumsum(2);  // (B, H, W)
  if (cfg.normalize) {
    const double eps = 1e-6;
    y = y / (y.narrow(1, y.size(1) - 1, 1) + eps) * cfg.scale;
    x = x / (x.narrow(2, x.size(2) - 1, 1) + eps) * cfg.scale;
  }
  const int64_t F = cfg.num_pos_feats;
  auto pos_y = sine_features(y.unsqueeze(-1), F, cfg.temperature);  // (B, H, W, F)
  auto pos_x = sine_features(x.unsqueeze(-1), F, cfg.temperature);  // (B, H, W, F)
  return torch::cat({pos_y, pos_x}, -1).permute({0, 3, 1, 2});      // (B, 2F, H, W)
}

}  // namespace attnzoo::models
