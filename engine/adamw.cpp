#include "engine/adamw.h"

#include <cmath>
#include <set>
#include <stdexcept>

namespace attnzoo::engine {

AdamW::AdamW(std::vector<NamedParam> decay, std::vector<NamedParam> no_decay, AdamWOptions opt)
    : decay_(std::move(decay)), no_decay_(std::move(no_decay)), opt_(opt) {
  for (bool d : {true, false})
    for (const auto& p : d ? decay_ : no_decay_)
      slots_.push_back({p, torch::zeros_like(p.param), torch::zeros_like(p.param), d});
}

void AdamW::zero_grad() {
  for (auto& s : slots_) s.p.param.mutable_grad() = torch::Tensor();
}

void AdamW::set_lr_scales(const std::function<double(const std::string&)>& scale) {
  for (auto& s : slots_) s.lr_scale = scale ? scale(s.p.name) : 1.0;
}

void AdamW::step(double lr_base) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(step_));
  const double bc2_sqrt = std::sqrt(bc2);
  for (auto& s : slots_) {
    auto& p = s.p.param;
    const auto& g = p.grad();
    if (!g.defined()) continue;
    const double lr = lr_base * s.lr_scale, step_size = lr / bc1;
    if (s.decay && opt_.weight_decay != 0.0) p.mul_(1.0 - lr * opt_.weight_decay);
    s.exp_avg.mul_(opt_.beta1).add_(g, 1.0 - opt_.beta1);
    s.exp_avg_sq.mul_(opt_.beta2).addcmul_(g, g, 1.0 - opt_.beta2);
    auto denom = (s.exp_avg_sq.sqrt() / bc2_sqrt).add_(opt_.eps);
    p.addcdiv_(s.exp_avg, denom, -step_size);
  }
}

std::map<std::string, torch::Tensor> AdamW::state_dict() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& s : slots_) {
    out[s.p.name + ".exp_avg"] = s.exp_avg;
    out[s.p.name + ".exp_avg_sq"] = s.exp_avg_sq;
  }
  out["step"] = torch::tensor(step_, torch::kLong);
  return out;
}

void AdamW::load_state_dict(const std::map<std::string, torch::Tensor>& state) {
  auto get = [&](const std::string& key, const torch::Tensor& like) -> const torch::Tensor& {
    auto it = state.find(key);
    if (it == state.end()) throw std::runtime_error("optimizer state is missing '" + key + "'");
    if (like.defined() && it->second.sizes() != like.sizes())
      throw std::runtime_error("optimizer state '" + key + "' has shape " + c10::str(it->second.sizes()) +
                               ", expected " + c10::str(like.sizes()));
    return it->second;
  };
  const auto& step = get("step", {});
  if (step.numel() != 1) throw std::runtime_error("optimizer state 'step' must be a scalar");
  for (const auto& s : slots_) {  // validate everything before changing anything
    get(s.p.name + ".exp_avg", s.exp_avg);
    get(s.p.name + ".exp_avg_sq", s.exp_avg_sq);
  }
  torch::NoGradGuard no_grad;
  for (auto& s : slots_) {
    s.exp_avg.copy_(get(s.p.name + ".exp_avg", s.exp_avg));
    s.exp_avg_sq.copy_(get(s.p.name + ".exp_avg_sq", s.exp_avg_sq));
  }
  step_ = step.item<int64_t>();
}

std::pair<std::vector<NamedParam>, std::vector<NamedParam>> weight_decay_groups(const torch::nn::Module& module) {
  std::set<const void*> embeddings;
  if (auto* e = dynamic_cast<const torch::nn::EmbeddingImpl*>(&module)) embeddings.insert(e->weight.unsafeGetTensorImpl());
  for (const auto& m : module.modules(/*include_self=*/false)) {
    if (auto* e = m->as<torch::nn::Embedding>()) embeddings.insert(e->weight.unsafeGetTensorImpl());
  }
  std::set<const void*> seen;
  std::vector<NamedParam> decay, no_decay;
  for (const auto& item : module.named_parameters()) {
    const auto& p = item.value();
    if (!p.requires_grad() || !seen.insert(p.unsafeGetTensorImpl()).second) continue;
    const bool is_bias = item.key() == "bias" || (item.key().size() >= 5 &&
                                                  item.key().compare(item.key().size() - 5, 5, ".bias") == 0);
    const bool no = is_bias || p.dim() < 2 || embeddings.count(p.unsafeGetTensorImpl());
    (no ? no_decay : decay).push_back({item.key(), p});
  }
  return {decay, no_decay};
}

}  // namespace attnzoo::engine
