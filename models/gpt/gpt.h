// GPT: a decoder-only transformer language model (Radford et al. 2019, "Language Models are
// Unsupervised Multitask Learners"), laid out as nanoGPT's model.py and Hugging Face's GPT-2 so
// that module names are checkpoint keys: transformer.wte, transformer.wpe, transformer.h.N.ln_1,
// transformer.h.N.attn.c_attn, transformer.h.N.attn.c_proj, transformer.h.N.ln_2,
// transformer.h.N.mlp.c_fc, transformer.h.N.mlp.c_proj, transformer.ln_f. The output head is tied
// to wte (no lm_head key). Linear weights use torch's (out, in) layout; GPT-2's Conv1D checkpoints
// are transposed on import.
//
// Shape letters: B batch, T sequence length, C n_embd, H n_head, D = C / H head size, V vocab.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/common/layers.h"

namespace attnzoo::models {

struct GPTConfig {
  int64_t block_size = 256;        // maximum context length T
  int64_t vocab_size = 65;         // V (tinyshakespeare's characters)
  int64_t n_layer = 6;
  int64_t n_head = 6;
  int64_t n_embd = 384;            // C
  double dropout = 0.0;            // on embeddings, attention weights and residual branches
  bool bias = true;                // biases in Linear and LayerNorm layers (GPT-2: true)
  std::string activation = "gelu"; // "gelu" (exact, nanoGPT) or "gelu_tanh" (GPT-2's gelu_new)

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GPTConfig, block_size, vocab_size, n_layer, n_head, n_embd,
                                                dropout, bias, activation)

// Presets. Name lookup: "tiny", "shakespeare-char", "shakespeare-char-cpu", "gpt2".
GPTConfig gpt_tiny();                  // 2 layers, 32 dim: tests
GPTConfig gpt_shakespeare_char();      // nanoGPT's config/train_shakespeare_char.py (6 × 384, block 256)
GPTConfig gpt_shakespeare_char_cpu();  // nanoGPT's CPU recipe from its README (4 × 128, block 64)
GPTConfig gpt2_small();                // GPT-2 124M
GPTConfig gpt_preset(const std::string& name);

// A LoRA branch on one Linear layer (Hu et al. 2021; added by models/gpt/lora.h): the layer's
// output gains scaling · B(A(dropout(x))). A and B are registered inside the adapted Linear as
// `lora_A` and `lora_B`, so their keys are PEFT's (transformer.h.N.attn.c_attn.lora_A.weight).
// Empty (no adapter) by default.
struct LoraBranch {
  torch::nn::Linear A = nullptr;  // in -> r, weight (r, in): Kaiming-uniform, as PEFT
  torch::nn::Linear B = nullptr;  // r -> out, weight (out, r): zeros, so a new adapter changes nothing
  double scaling = 1.0;           // alpha / r
  double dropout = 0.0;           // on the branch's input only

  bool active() const { return !A.is_empty(); }
  // y + scaling · B(A(dropout(x))) for the layer's output y (..., out) and input x (..., in).
  torch::Tensor add(const torch::Tensor& y, const torch::Tensor& x, bool training) const;
};

// One layer's keys and values for incremental decoding, preallocated to the block size.
struct KVCache {
  torch::Tensor k, v;  // (B, H, block_size, D)
};
struct GPTCache {
  std::vector<KVCache> layers;
  int64_t length = 0;  // tokens already in the cache
};

class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit CausalSelfAttentionImpl(const GPTConfig& cfg);
  // x: (B, T, C). With a cache, x holds the T tokens after the cache->length cached ones.
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr, int64_t past = 0);

  torch::nn::Linear c_attn = nullptr;  // C -> 3C: q, k, v
  torch::nn::Linear c_proj = nullptr;  // C -> C
  torch::nn::Dropout resid_dropout = nullptr;
  LoraBranch c_attn_lora, c_proj_lora;  // empty unless LoRA is added (lora.h)
  int64_t n_head;
  double attn_dropout;
  torch::Tensor last_weights;  // (B, H, T, T') of the last forward when keep_weights
  bool keep_weights = false;
};
TORCH_MODULE(CausalSelfAttention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const GPTConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear c_fc = nullptr;    // C -> 4C
  torch::nn::Linear c_proj = nullptr;  // 4C -> C
  torch::nn::Dropout dropout = nullptr;
  LoraBranch c_fc_lora, c_proj_lora;  // empty unless LoRA is added (lora.h)
  std::string act;
};
TORCH_MODULE(MLP);

class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const GPTConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr, int64_t past = 0);

  LayerNorm ln_1 = nullptr;
  CausalSelfAttention attn = nullptr;
  LayerNorm ln_2 = nullptr;
  MLP mlp = nullptr;
};
TORCH_MODULE(Block);

// The `transformer` container of nanoGPT/GPT-2: embeddings, blocks, final norm.
class GPTTransformerImpl : public torch::nn::Module {
 public:
  explicit GPTTransformerImpl(const GPTConfig& cfg);

  torch::nn::Embedding wte = nullptr;  // (V, C), also the output head
  torch::nn::Embedding wpe = nullptr;  // (block_size, C)
  torch::nn::Dropout drop = nullptr;
  torch::nn::ModuleList h = nullptr;   // n_layer Blocks
  LayerNorm ln_f = nullptr;
};
TORCH_MODULE(GPTTransformer);

class GPTImpl : public torch::nn::Module {
 public:
  explicit GPTImpl(GPTConfig cfg);

  // idx: (B, T) token ids -> logits (B, T, V). With a cache, positions continue after
  // cache->length and the cache is extended by T.
  torch::Tensor forward(const torch::Tensor& idx, GPTCache* cache = nullptr);

  // A cache for `batch` sequences of up to block_size tokens, on the model's device and dtype.
  GPTCache make_cache(int64_t batch) const;

  // Parameters without the tied head; with exclude_embeddings, minus the position embeddings too
  // (nanoGPT's count).
  int64_t num_parameters(bool exclude_embeddings = false) const;

  const GPTConfig& config() const { return cfg; }

  GPTConfig cfg;
  GPTTransformer transformer = nullptr;

 private:
  void init_weights();
};
TORCH_MODULE(GPT);

}  // namespace attnzoo::models
