#include "models/common/multihead_attention.h"

#include <stdexcept>
#include <string>

#include "models/common/gemm.h"

namespace attnzoo::models {
namespace {

// (B, T, H·D) -> (B, H, T, D), a view.
torch::Tensor split_heads(const torch::Tensor& x, int64_t H) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2) / H;
  return x.view({B, T, H, D}).transpose(1, 2);
}

// Appends (B, H, T, D) to cache->{k, v}, growing the storage geometrically.
void append(AttentionCache& cache, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t T = k.size(2), need = cache.length + T;
  if (!cache.k.defined() || cache.k.size(2) < need) {
    const int64_t capacity = std::max<int64_t>({need, 16, cache.k.defined() ? 2 * cache.k.size(2) : 0});
    auto grow = [&](const torch::Tensor& old, const torch::Tensor& like) {
      auto t = torch::empty({like.size(0), like.size(1), capacity, like.size(3)}, like.options());
      if (cache.length > 0) t.narrow(2, 0, cache.length).copy_(old.narrow(2, 0, cache.length));
      return t;
    };
    cache.k = grow(cache.k, k);
    cache.v = grow(cache.v, v);
  }
  TORCH_CHECK(cache.k.size(0) == k.size(0) && cache.k.size(1) == k.size(1) && cache.k.size(3) == k.size(3),
              "attention cache holds (B, H, -, D) = ", cache.k.sizes(), ", the new keys are ", k.sizes());
  cache.k.narrow(2, cache.length, T).copy_(k);
  cache.v.narrow(2, cache.length, T).copy_(v);
  cache.length = need;
}

}  // namespace

void MultiheadAttentionConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(embed_dim, "embed_dim");
  positive(num_heads, "num_heads");
  if (embed_dim % num_heads != 0)
    throw std::invalid_argument("embed_dim (" + std::to_string(embed_dim) + ") must be divisible by num_heads (" +
                                std::to_string(num_heads) + ")");
  if (kdim < 0) throw std::invalid_argument("kdim must be >= 0 (0 = embed_dim), got " + std::to_string(kdim));
  if (vdim < 0) throw std::invalid_argument("vdim must be >= 0 (0 = embed_dim), got " + std::to_string(vdim));
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("dropout must be in [0, 1), got " + std::to_string(dropout));
}

MultiheadAttentionImpl::MultiheadAttentionImpl(MultiheadAttentionConfig c) : cfg(std::move(c)) {
  cfg.validate();
  const int64_t E = cfg.embed_dim;
  if (cfg.kdim == 0) cfg.kdim = E;
  if (cfg.vdim == 0) cfg.vdim = E;
  packed = cfg.kdim == E && cfg.vdim == E;
  // PyTorch's initialisation: Xavier-uniform input projections, zero biases.
  if (packed) {
    in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * E, E}));
    torch::nn::init::xavier_uniform_(in_proj_weight);
  } else {
    q_proj_weight = register_parameter("q_proj_weight", torch::empty({E, E}));
    k_proj_weight = register_parameter("k_proj_weight", torch::empty({E, cfg.kdim}));
    v_proj_weight = register_parameter("v_proj_weight", torch::empty({E, cfg.vdim}));
    for (auto* w : {&q_proj_weight, &k_proj_weight, &v_proj_weight}) torch::nn::init::xavier_uniform_(*w);
  }
  if (cfg.bias) in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * E}));
  out_proj = register_module("out_proj", torch::nn::Linear(torch::nn::LinearOptions(E, E).bias(cfg.bias)));
  if (cfg.bias) torch::nn::init::zeros_(out_proj->bias);
}

torch::Tensor MultiheadAttentionImpl::project(const torch::Tensor& x, int64_t i, int64_t n) const {
  const int64_t E = cfg.embed_dim;
  auto bias = cfg.bias ? in_proj_bias.narrow(0, i * E, n * E) : torch::Tensor();
  if (packed) return linear(x, in_proj_weight.narrow(0, i * E, n * E), bias);
  TORCH_INTERNAL_ASSERT(n == 1);
  const auto& w = i == 0 ? q_proj_weight : i == 1 ? k_proj_weight : v_proj_weight;
  return linear(x, w, bias);
}

MultiheadAttentionOutput MultiheadAttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& key,
                                                         const torch::Tensor& value, const AttentionOptions& opt,
                                                         AttentionCache* cache) {
  const int64_t E = cfg.embed_dim, H = cfg.num_heads;
  TORCH_CHECK(opt.dropout == 0.0 && !opt.training,
              "multi-head attention takes its dropout from MultiheadAttentionConfig and its mode from train()/eval(); "
              "leave AttentionOptions::dropout and ::training unset");
  TORCH_CHECK(query.dim() == 3 && query.size(2) == E, "multi-head attention expects queries (B, Tq, E = ", E,
              "), got ", query.sizes());
  const int64_t B = query.size(0), Tq = query.size(1);
  const bool reuse_static = cache && cache->static_kv && cache->k.defined();
  if (!reuse_static) {
    TORCH_CHECK(key.dim() == 3 && value.dim() == 3 && key.size(0) == B && value.size(0) == B &&
                    key.size(1) == value.size(1) && key.size(2) == cfg.kdim && value.size(2) == cfg.vdim,
                "multi-head attention expects keys (B, Tk, kdim) = (", B, ", Tk, ", cfg.kdim,
                ") and values (B, Tk, vdim) = (", B, ", Tk, ", cfg.vdim, "), got ", key.sizes(), " and ",
                value.sizes());
  }

  torch::Tensor q, k, v;  // (B, H, T, D)
  if (packed && query.is_same(key) && key.is_same(value) && !reuse_static) {
    auto qkv = project(query, 0, 3).split(E, -1);  // (B, T, 3E) -> 3 × (B, T, E), views
    q = split_heads(qkv[0], H);
    k = split_heads(qkv[1], H);
    v = split_heads(qkv[2], H);
  } else {
    q = split_heads(project(query, 0, 1), H);
    if (!reuse_static) {
      if (packed && key.is_same(value)) {
        auto kv = project(key, 1, 2).split(E, -1);  // (B, Tk, 2E) -> 2 × (B, Tk, E)
        k = split_heads(kv[0], H);
        v = split_heads(kv[1], H);
      } else {
        k = split_heads(project(key, 1, 1), H);
        v = split_heads(project(value, 2, 1), H);
      }
    }
  }
  if (cache) {
    if (!reuse_static) append(*cache, k, v);
    k = cache->k.narrow(2, 0, cache->length);
    v = cache->v.narrow(2, 0, cache->length);
  }

  AttentionOptions attn = opt;
  attn.dropout = cfg.dropout;
  attn.training = is_training();
  auto att = scaled_dot_product_attention(q, k, v, attn);
  auto y = att.out.transpose(1, 2).reshape({B, Tq, E});  // (B, H, Tq, D) -> (B, Tq, E): concatenated heads
  return {linear(y, out_proj->weight, out_proj->bias), att.weights};
}

}  // namespace attnzoo::models
