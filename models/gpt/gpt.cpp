#include "models/gpt/gpt.h"

#include <cmath>
#include <stdexcept>

#include "models/common/attention.h"

namespace attnzoo::models {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void GPTConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0) throw std::invalid_argument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  positive(block_size, "block_size");
  positive(vocab_size, "vocab_size");
  positive(n_layer, "n_layer");
  positive(n_head, "n_head");
  positive(n_embd, "n_embd");
  if (n_embd % n_head != 0)
    throw std::invalid_argument("n_embd (" + std::to_string(n_embd) + ") must be divisible by n_head (" +
                                std::to_string(n_head) + ")");
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("dropout must be in [0, 1), got " + std::to_string(dropout));
  check_activation(activation);
}

GPTConfig gpt_tiny() { return {.block_size = 16, .vocab_size = 37, .n_layer = 2, .n_head = 2, .n_embd = 32}; }

GPTConfig gpt_shakespeare_char() {
  return {.block_size = 256, .vocab_size = 65, .n_layer = 6, .n_head = 6, .n_embd = 384, .dropout = 0.2};
}

GPTConfig gpt_shakespeare_char_cpu() {
  return {.block_size = 64, .vocab_size = 65, .n_layer = 4, .n_head = 4, .n_embd = 128, .dropout = 0.0};
}

GPTConfig gpt2_small() {
  // 50257 tokens padded to a multiple of 64 (nanoGPT) for faster matmuls.
  return {.block_size = 1024, .vocab_size = 50304, .n_layer = 12, .n_head = 12, .n_embd = 768,
          .dropout = 0.0, .bias = true, .activation = "gelu_tanh"};
}

GPTConfig gpt_preset(const std::string& name) {
  if (name == "tiny") return gpt_tiny();
  if (name == "shakespeare-char") return gpt_shakespeare_char();
  if (name == "shakespeare-char-cpu") return gpt_shakespeare_char_cpu();
  if (name == "gpt2") return gpt2_small();
  throw std::invalid_argument("unknown GPT preset '" + name +
                              "' (expected tiny, shakespeare-char, shakespeare-char-cpu or gpt2)");
}

torch::Tensor LoraBranch::add(const torch::Tensor& y, const torch::Tensor& x, bool training) const {
  if (!active()) return y;
  auto h = dropout > 0.0 ? torch::dropout(x, dropout, training) : x;
  // (..., in) -> (..., r) -> (..., out)
  return y + scaling * linear(linear(h, A->weight, torch::Tensor()), B->weight, torch::Tensor());
}

CausalSelfAttentionImpl::CausalSelfAttentionImpl(const GPTConfig& cfg)
    : n_head(cfg.n_head), attn_dropout(cfg.dropout) {
  const int64_t C = cfg.n_embd;
  c_attn = register_module("c_attn", torch::nn::Linear(torch::nn::LinearOptions(C, 3 * C).bias(cfg.bias)));
  c_proj = register_module("c_proj", torch::nn::Linear(torch::nn::LinearOptions(C, C).bias(cfg.bias)));
  resid_dropout = register_module("resid_dropout", torch::nn::Dropout(cfg.dropout));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, KVCache* cache, int64_t past) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = n_head, D = C / H;
  // (B, T, 3C) -> 3 × (B, T, C) -> (B, T, H, D) -> (B, H, T, D), all views. split (not select) keeps
  // the backward to one concatenation instead of three zero-filled full-size gradients.
  auto qkv = c_attn_lora.add(linear(c_attn, x), x, is_training()).split(C, 2);
  auto q = qkv[0].view({B, T, H, D}).transpose(1, 2);
  auto k = qkv[1].view({B, T, H, D}).transpose(1, 2);
  auto v = qkv[2].view({B, T, H, D}).transpose(1, 2);
  if (cache) {
    // Append this step's keys and values; attend over everything cached so far.
    cache->k.narrow(2, past, T).copy_(k);
    cache->v.narrow(2, past, T).copy_(v);
    k = cache->k.narrow(2, 0, past + T);
    v = cache->v.narrow(2, 0, past + T);
  }
  AttentionOptions opt{.causal = true, .dropout = attn_dropout, .training = is_training(),
                       .need_weights = keep_weights};
  auto att = scaled_dot_product_attention(q, k, v, opt);
  if (keep_weights) last_weights = att.weights;
  auto y = att.out.transpose(1, 2).reshape({B, T, C});  // (B, H, T, D) -> (B, T, C)
  return resid_dropout(c_proj_lora.add(linear(c_proj, y), y, is_training()));
}

MLPImpl::MLPImpl(const GPTConfig& cfg) : act(cfg.activation) {
  const int64_t C = cfg.n_embd;
  c_fc = register_module("c_fc", torch::nn::Linear(torch::nn::LinearOptions(C, 4 * C).bias(cfg.bias)));
  c_proj = register_module("c_proj", torch::nn::Linear(torch::nn::LinearOptions(4 * C, C).bias(cfg.bias)));
  dropout = register_module("dropout", torch::nn::Dropout(cfg.dropout));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  auto h = c_fc_lora.active() ? activation(c_fc_lora.add(linear(c_fc, x), x, is_training()), act)
                              : linear_activation(c_fc, x, act);  // (B, T, 4C)
  return dropout(c_proj_lora.add(linear(c_proj, h), h, is_training()));
}

BlockImpl::BlockImpl(const GPTConfig& cfg) {
  ln_1 = register_module("ln_1", LayerNorm(cfg.n_embd, cfg.bias));
  attn = register_module("attn", CausalSelfAttention(cfg));
  ln_2 = register_module("ln_2", LayerNorm(cfg.n_embd, cfg.bias));
  mlp = register_module("mlp", MLP(cfg));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x_in, KVCache* cache, int64_t past) {
  auto x = x_in + attn(ln_1(x_in), cache, past);
  return x + mlp(ln_2(x));
}

GPTTransformerImpl::GPTTransformerImpl(const GPTConfig& cfg) {
  wte = register_module("wte", torch::nn::Embedding(cfg.vocab_size, cfg.n_embd));
  wpe = register_module("wpe", torch::nn::Embedding(cfg.block_size, cfg.n_embd));
  drop = register_module("drop", torch::nn::Dropout(cfg.dropout));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layer; ++i) h->push_back(Block(cfg));
  ln_f = register_module("ln_f", LayerNorm(cfg.n_embd, cfg.bias));
}

GPTImpl::GPTImpl(GPTConfig c) : cfg(std::move(c)) {
  cfg.validate();
  transformer = register_module("transformer", GPTTransformer(cfg));
  init_weights();
}

void GPTImpl::init_weights() {
  // GPT-2 / nanoGPT: N(0, 0.02) weights, zero biases, and residual projections scaled by
  // 1/√(2·n_layer) because each layer adds two residual branches.
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(cfg.n_layer));
  for (auto& item : named_parameters()) {
    const auto& name = item.key();
    auto& p = item.value();
    const bool is_norm = name.find(".ln_") != std::string::npos || name.rfind("transformer.ln_f", 0) == 0;
    if (is_norm) continue;  // LayerNorm: ones and zeros from its constructor
    if (ends_with(name, ".bias")) {
      p.zero_();
    } else if (ends_with(name, ".c_proj.weight")) {
      p.normal_(0.0, residual_std);
    } else {
      p.normal_(0.0, 0.02);
    }
  }
}

torch::Tensor GPTImpl::forward(const torch::Tensor& idx, GPTCache* cache) {
  TORCH_CHECK(idx.dim() == 2, "GPT expects (B, T) token ids, got shape ", idx.sizes());
  const int64_t T = idx.size(1);
  const int64_t past = cache ? cache->length : 0;
  TORCH_CHECK(past + T <= cfg.block_size, "cannot forward a sequence of length ", past + T,
              ", the block size is only ", cfg.block_size);
  // Positions past..past+T-1 are a slice of wpe: the same values as a lookup, with a cheaper backward.
  auto pos_emb = transformer->wpe->weight.narrow(0, past, T);                  // (T, C)
  // Training on CPU, the token lookup's gradient is sparse: B·T rows that autograd adds in place
  // into the head's dense gradient of the same (tied) matrix, where a dense one would zero-fill and
  // add a whole (V, C) matrix more each step (~10 % of a GPT-2 step; bench/gpt-bench --profile).
  const auto& wte = transformer->wte->weight;
  const bool sparse_grad = wte.device().is_cpu() && wte.requires_grad() && at::GradMode::is_enabled();
  auto tok_emb = torch::embedding(wte, idx, /*padding_idx=*/-1, /*scale_grad_by_freq=*/false, sparse_grad);
  auto x = transformer->drop(tok_emb + pos_emb);  // (B, T, C)
  for (size_t i = 0; i < transformer->h->size(); ++i)
    x = transformer->h[i]->as<Block>()->forward(x, cache ? &cache->layers[i] : nullptr, past);
  x = transformer->ln_f(x);
  if (cache) cache->length = past + T;
  return linear(x, wte, torch::Tensor());  // (B, T, V), head tied to wte
}

GPTCache GPTImpl::make_cache(int64_t batch) const {
  const auto& w = transformer->wte->weight;
  const int64_t D = cfg.n_embd / cfg.n_head;
  GPTCache cache;
  for (int64_t i = 0; i < cfg.n_layer; ++i)
    cache.layers.push_back({torch::empty({batch, cfg.n_head, cfg.block_size, D}, w.options()),
                            torch::empty({batch, cfg.n_head, cfg.block_size, D}, w.options())});
  return cache;
}

int64_t GPTImpl::num_parameters(bool exclude_embeddings) const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  if (exclude_embeddings) n -= transformer->wpe->weight.numel();
  return n;
}

}  // namespace attnzoo::models
