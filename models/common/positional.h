// Positional encodings, the three the zoo uses:
// - fixed sinusoidal (Vaswani et al. 2017, §3.5): PE(pos, 2i) = sin(pos / 10000^(2i/d)),
//   PE(pos, 2i+1) = cos(pos / 10000^(2i/d));
// - learned: one trained vector per position (GPT-2's wpe, BERT's position_embeddings, ViT's
//   pos_embed);
// - the 2-D sine encoding DETR adds to the backbone's feature map (Carion et al. 2020, official
//   models/position_encoding.py PositionEmbeddingSine): the 1-D formula applied to the row (y) and
//   the column (x) coordinate of every unpadded pixel, num_pos_feats channels each, y first.
//
// Shape letters: B batch, T positions, C model width; H, W feature-map height and width.
#pragma once

#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace attnzoo::models {

// (T, C) table of the sinusoidal encoding for positions offset .. offset + T − 1; C even.
torch::Tensor sinusoidal_encoding(int64_t length, int64_t dim, int64_t offset = 0, double base = 10000.0,
                                  torch::TensorOptions options = {});

// A learned (max_len, C) table, stored as `weight` as in nn.Embedding; N(0, 0.02) at start.
class LearnedPositionalEmbeddingImpl : public torch::nn::Module {
 public:
  LearnedPositionalEmbeddingImpl(int64_t max_len, int64_t dim);
  // Positions offset .. offset + T − 1 -> (T, C): a slice of the table, cheaper than a lookup.
  torch::Tensor forward(int64_t length, int64_t offset = 0);
  // Arbitrary positions (any shape, int64) -> (..., C).
  torch::Tensor lookup(const torch::Tensor& positions);

  torch::Tensor weight;  // (max_len, C)
};
TORCH_MODULE(LearnedPositionalEmbedding);

struct PositionEmbeddingSineConfig {
  int64_t num_pos_feats = 128;    // channels per coordinate; the encoding has 2 · num_pos_feats = C (DETR: C / 2)
  double temperature = 10000.0;   // the base of the wavelengths
  bool normalize = true;          // scale coordinates to (0, scale] over each image's unpadded extent
  double scale = 2.0 * M_PI;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PositionEmbeddingSineConfig, num_pos_feats, temperature, normalize,
                                                scale)

// DETR's 2-D encoding for a padding mask (B, H, W), true at padded pixels (DETR's NestedTensor
// mask) -> (B, 2 · num_pos_feats, H, W) float32: channels [0, F) encode y, [F, 2F) encode x, each
// interleaving sin (even) and cos (odd) as the 1-D encoding. The coordinate of a pixel is the count
// of unpadded pixels up to it in its column (y) or row (x), 1-based; with normalize, divided by the
// column's (row's) total (+ 1e-6) and multiplied by scale.
torch::Tensor position_embedding_sine(const torch::Tensor& mask, const PositionEmbeddingSineConfig& cfg = {});

}  // namespace attnzoo::models
