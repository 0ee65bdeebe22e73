#include "models/gpt/generate.h"

namespace attnzoo::models {

torch::Tensor generate(GPT& model, const torch::Tensor& idx, const GenerateOptions& opt,
                       std::optional<torch::Generator> gen,
                       const std::function<void(const torch::Tensor&)>& on_token) {
  TORCH_CHECK(idx.dim() == 2 && idx.size(1) >= 1, "generate expects a (B, T) prompt with T >= 1, got ",
              idx.sizes());
  c10::InferenceMode guard;
  const bool was_training = model->is_training();
  model->eval();
  const int64_t block = model->config().block_size;
  auto tokens = idx;
  std::optional<GPTCache> cache;
  torch::Tensor next_input;  // what the next forward must consume

  auto refill = [&] {
    // (Re)start from the last `block` tokens of the sequence.
    next_input = tokens.size(1) > block ? tokens.narrow(1, tokens.size(1) - block, block) : tokens;
    if (opt.use_cache) {
      if (!cache) cache = model->make_cache(idx.size(0));
      cache->length = 0;
    }
  };
  refill();
  for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
    auto logits = model->forward(next_input, cache ? &*cache : nullptr);  // (B, t, V)
    auto last = logits.select(1, logits.size(1) - 1);
    if (opt.vocab_limit > 0 && opt.vocab_limit < last.size(-1))
      last = last.slice(-1, 0, opt.vocab_limit);  // ids keep their value: the kept logits start at 0
    if (opt.sampling.repetition_penalty != 1.0)
      last = apply_repetition_penalty(last.to(torch::kFloat), tokens, opt.sampling.repetition_penalty);
    auto next = sample_next(last, opt.sampling, gen);  // (B, 1)
    tokens = torch::cat({tokens, next}, 1);
    if (on_token) on_token(next);
    if (opt.should_stop && opt.should_stop(tokens)) break;
    if (!opt.use_cache || cache->length >= block) {
      refill();
    } else {
      next_input = next;
    }
  }
  if (was_training) model->train();
  return tokens;
}

}  // namespace attnzoo::models
