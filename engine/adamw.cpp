#include "engine/adamw.h"

#include <cmath>
#include <set>
#include <stdexcept>

#include <ATen/Parallel.h>

namespace attnzoo::engine {
namespace {

struct UpdateScalars {
  float decay_factor;  // 1 - lr · weight_decay (1 for the undecayed group)
  float beta1, beta2;
  float step_size;     // lr / (1 - beta1^t)
  float bc2_sqrt;      // √(1 - beta2^t)
  float eps;
};

// Elements [begin, end) of one fp32 parameter in a single pass: p, g, m and v are each read once
// and p, m, v written once. The same arithmetic, in the same order, as step()'s tensor-op form,
// which makes ~20 passes over memory; the update is memory-bound, and for GPT-2's 124M parameters
// those passes were a tenth of a CPU training step. (no-math-errno lets the loop vectorise sqrt.)
[[gnu::optimize("no-math-errno")]] void update_range(float* __restrict p, const float* __restrict g,
                                                      float* __restrict m, float* __restrict v, int64_t begin,
                                                      int64_t end, UpdateScalars s) {
  const float one_minus_beta1 = 1.0f - s.beta1, one_minus_beta2 = 1.0f - s.beta2;
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float mi = m[i] * s.beta1 + gi * one_minus_beta1;
    const float vi = v[i] * s.beta2 + gi * gi * one_minus_beta2;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
    p[i] = p[i] * s.decay_factor + -s.step_size * (mi / denom);
  }
}

bool fusable(const torch::Tensor& p, const torch::Tensor& g, const torch::Tensor& m, const torch::Tensor& v) {
  for (const auto* t : {&p, &g, &m, &v})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat || !t->is_contiguous()) return false;
  return g.sizes() == p.sizes();
}

}  // namespace

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
    const bool decays = s.decay && opt_.weight_decay != 0.0;
    if (fusable(p, g, s.exp_avg, s.exp_avg_sq)) {
      const UpdateScalars k{static_cast<float>(decays ? 1.0 - lr * opt_.weight_decay : 1.0),
                            static_cast<float>(opt_.beta1), static_cast<float>(opt_.beta2),
                            static_cast<float>(step_size), static_cast<float>(bc2_sqrt), static_cast<float>(opt_.eps)};
      float* pp = p.data_ptr<float>();
      const float* gp = g.data_ptr<float>();
      float* mp = s.exp_avg.data_ptr<float>();
      float* vp = s.exp_avg_sq.data_ptr<float>();
      at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) { update_range(pp, gp, mp, vp, begin, end, k); });
      // Written through raw pointers: bump the version as ATen's in-place ops do, so that whatever
      // keys on it (models::linear's blocked weights at inference) sees the change.
      p.unsafeGetTensorImpl()->bump_version();
      continue;
    }
    if (decays) p.mul_(1.0 - lr * opt_.weight_decay);
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
