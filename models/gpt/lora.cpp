#include "models/gpt/lora.h"

#include <set>
#include <stdexcept>

namespace attnzoo::models {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// PEFT's rule: the module name equals the target or ends with "." + target.
bool matches(const std::string& name, const std::string& target) {
  return name == target || ends_with(name, "." + target);
}

std::string layer_prefix(int64_t i) { return "transformer.h." + std::to_string(i) + "."; }

// A block's four adaptable layers: name suffix, the Linear, its (unset) branch.
struct Slot {
  const char* suffix;
  torch::nn::Linear layer;
  LoraBranch* branch;
};

std::vector<Slot> block_slots(BlockImpl& b) {
  auto& attn = *b.attn;
  auto& mlp = *b.mlp;
  return {{"attn.c_attn", attn.c_attn, &attn.c_attn_lora},
          {"attn.c_proj", attn.c_proj, &attn.c_proj_lora},
          {"mlp.c_fc", mlp.c_fc, &mlp.c_fc_lora},
          {"mlp.c_proj", mlp.c_proj, &mlp.c_proj_lora}};
}

}  // namespace

void LoraConfig::validate() const {
  if (rank <= 0) throw std::invalid_argument("lora rank must be positive, got " + std::to_string(rank));
  if (!(alpha > 0.0)) throw std::invalid_argument("lora alpha must be positive, got " + std::to_string(alpha));
  if (!(dropout >= 0.0 && dropout < 1.0))
    throw std::invalid_argument("lora dropout must be in [0, 1), got " + std::to_string(dropout));
  if (targets.empty()) throw std::invalid_argument("lora targets: none given (expected e.g. c_attn,c_proj,c_fc)");
}

std::vector<std::string> lora_layer_names(const GPTConfig& cfg, const std::vector<std::string>& targets) {
  static const char* kSuffixes[] = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};
  std::vector<std::string> names;
  std::set<std::string> used;
  for (int64_t i = 0; i < cfg.n_layer; ++i)
    for (const char* s : kSuffixes) {
      const std::string name = layer_prefix(i) + s;
      bool hit = false;
      for (const auto& t : targets)
        if (matches(name, t)) hit = true, used.insert(t);
      if (hit) names.push_back(name);
    }
  for (const auto& t : targets)
    if (!used.count(t))
      throw std::invalid_argument("lora targets: '" + t +
                                  "' names no linear layer of the GPT (expected c_attn, c_proj, c_fc, attn.c_proj, "
                                  "mlp.c_proj or a full name such as transformer.h.0.attn.c_attn)");
  return names;
}

void add_lora(GPT& model, const LoraConfig& cfg) {
  cfg.validate();
  const auto names = lora_layer_names(model->cfg, cfg.targets);
  const std::set<std::string> wanted(names.begin(), names.end());
  for (auto& p : model->parameters()) p.requires_grad_(false);
  const auto& ref = model->transformer->wte->weight;
  for (size_t i = 0; i < model->transformer->h->size(); ++i) {
    auto block = model->transformer->h[i]->as<Block>();
    for (auto& slot : block_slots(*block)) {
      if (!wanted.count(layer_prefix(static_cast<int64_t>(i)) + slot.suffix)) continue;
      if (slot.branch->active()) throw std::invalid_argument("add_lora: the model already has adapters");
      const int64_t in = slot.layer->options.in_features(), out = slot.layer->options.out_features();
      LoraBranch br;
      br.A = torch::nn::Linear(torch::nn::LinearOptions(in, cfg.rank).bias(false));  // kaiming_uniform_(a=√5)
      br.B = torch::nn::Linear(torch::nn::LinearOptions(cfg.rank, out).bias(false));
      {
        torch::NoGradGuard no_grad;
        br.B->weight.zero_();
      }
      br.A->to(ref.device(), ref.scalar_type());
      br.B->to(ref.device(), ref.scalar_type());
      br.scaling = cfg.alpha / static_cast<double>(cfg.rank);
      br.dropout = cfg.dropout;
      slot.layer->register_module("lora_A", br.A);
      slot.layer->register_module("lora_B", br.B);
      *slot.branch = br;
    }
  }
}

bool is_lora_key(const std::string& key) {
  return ends_with(key, ".lora_A.weight") || ends_with(key, ".lora_B.weight");
}

std::map<std::string, torch::Tensor> lora_state_dict(const GPT& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model->named_parameters())
    if (is_lora_key(item.key())) out[item.key()] = item.value().detach();
  return out;
}

std::map<std::string, torch::Tensor> merged_state_dict(const GPT& model) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model->named_parameters())
    if (!is_lora_key(item.key())) out[item.key()] = item.value().detach().clone();
  for (const auto& item : model->named_buffers()) out[item.key()] = item.value().detach().clone();
  auto& blocks = const_cast<GPT&>(model)->transformer->h;  // read only; ModuleList's [] is not const
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto block = blocks[i]->as<Block>();
    for (auto& slot : block_slots(*block)) {
      if (!slot.branch->active()) continue;
      auto& w = out.at(layer_prefix(static_cast<int64_t>(i)) + slot.suffix + ".weight");
      // (out, r) @ (r, in) -> (out, in), accumulated in fp64 and rounded once.
      const auto delta = slot.branch->B->weight.to(torch::kDouble).mm(slot.branch->A->weight.to(torch::kDouble));
      w = (w.to(torch::kDouble) + slot.branch->scaling * delta).to(w.scalar_type());
    }
  }
  return out;
}

int64_t num_trainable_parameters(const torch::nn::Module& module) {
  std::set<const void*> seen;
  int64_t n = 0;
  for (const auto& p : module.parameters())
    if (p.requires_grad() && seen.insert(p.unsafeGetTensorImpl()).second) n += p.numel();
  return n;
}

}  // namespace attnzoo::models
