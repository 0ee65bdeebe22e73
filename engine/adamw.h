// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, numerically the same update
// as torch.optim.AdamW. Parameters are split into a decayed group (weight matrices) and an
// undecayed one (biases, norm gains, embeddings), as GPT-2/nanoGPT train. Its state is a plain map
// of named tensors so checkpoints store it as safetensors ("NAME.exp_avg", "NAME.exp_avg_sq").
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace attnzoo::engine {

struct NamedParam {
  std::string name;
  torch::Tensor param;
};

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // applied to the decayed group only
};

class AdamW {
 public:
  AdamW(std::vector<NamedParam> decay, std::vector<NamedParam> no_decay, AdamWOptions opt);

  // One update with learning rate `lr` from the parameters' current .grad() (undefined grads skip).
  void step(double lr);
  void zero_grad();
  // Multiplies the learning rate of each parameter by scale(name) (default 1), e.g. a lower rate
  // for a pretrained backbone than for a new head. Weight decay follows the scaled rate.
  void set_lr_scales(const std::function<double(const std::string&)>& scale);

  int64_t steps() const { return step_; }
  const std::vector<NamedParam>& decayed() const { return decay_; }
  const std::vector<NamedParam>& undecayed() const { return no_decay_; }

  // "NAME.exp_avg" / "NAME.exp_avg_sq" for every parameter, plus "step" (a 0-d int64 tensor).
  std::map<std::string, torch::Tensor> state_dict() const;
  // Throws std::runtime_error naming the first missing or mis-shaped entry; nothing changes then.
  void load_state_dict(const std::map<std::string, torch::Tensor>& state);

 private:
  struct Slot {
    NamedParam p;
    torch::Tensor exp_avg, exp_avg_sq;
    bool decay;
    double lr_scale = 1.0;
  };
  std::vector<NamedParam> decay_, no_decay_;
  std::vector<Slot> slots_;
  AdamWOptions opt_;
  int64_t step_ = 0;
};

// Splits trainable parameters (requires_grad) of `module` into (decay, no_decay): weights of
// Linear/Conv layers decay; biases, 1-D parameters (norms) and Embedding weights do not. Tied
// parameters appear once, under their first name.
std::pair<std::vector<NamedParam>, std::vector<NamedParam>> weight_decay_groups(const torch::nn::Module& module);

}  // namespace attnzoo::engine
