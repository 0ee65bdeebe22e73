// State dict extraction and loading for LibTorch modules; see state_dict.h.
#include "weights/state_dict.h"

#include <torch/types.h>

#include <map>
#include <stdexcept>

namespace attnzoo::weights {
namespace {

struct Slot {
  std::string name;
  torch::Tensor tensor;
  size_t group;  // slots naming the same tensor (tied weights) share a group
};

// Tied weights are one tensor under two names; a view of another tensor with another shape is not.
bool same_tensor(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && a.strides() == b.strides() &&
         a.device() == b.device();
}

std::vector<Slot> slots(const torch::nn::Module& module, size_t& n_groups) {
  std::vector<Slot> out;
  std::map<const void*, size_t> first_by_data;  // data_ptr -> index in out of its first name
  n_groups = 0;
  auto add = [&](const torch::OrderedDict<std::string, torch::Tensor>& dict) {
    for (const auto& item : dict) {
      const torch::Tensor& t = item.value();
      if (!t.defined()) continue;  // e.g. Linear(bias=false) registers an undefined bias
      const void* data = t.data_ptr();
      // Empty tensors may all have a null data_ptr without being tied.
      if (data != nullptr) {
        auto it = first_by_data.find(data);
        if (it != first_by_data.end() && same_tensor(out[it->second].tensor, t)) {
          out.push_back({item.key(), t, out[it->second].group});
          continue;
        }
        first_by_data.emplace(data, out.size());
      }
      out.push_back({item.key(), t, n_groups++});
    }
  };
  add(module.named_parameters(/*recurse=*/true));
  add(module.named_buffers(/*recurse=*/true));
  return out;
}

std::string shape_string(torch::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

std::string key_list(const std::vector<std::string>& keys) {
  constexpr size_t kShown = 10;  // enough to spot a prefix mismatch, short enough for one line
  std::string s;
  for (size_t i = 0; i < keys.size() && i < kShown; ++i) s += (i ? ", " : "") + keys[i];
  if (keys.size() > kShown) s += ", ... (" + std::to_string(keys.size() - kShown) + " more)";
  return s;
}

}  // namespace

TensorMap state_dict(const torch::nn::Module& module) {
  size_t n_groups = 0;
  std::vector<bool> seen;
  TensorMap out;
  for (const Slot& s : slots(module, n_groups)) {
    seen.resize(n_groups, false);
    if (seen[s.group]) continue;
    seen[s.group] = true;
    out.emplace(s.name, s.tensor.detach());
  }
  return out;
}

bool LoadReport::ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }

std::string LoadReport::summary() const {
  if (ok()) return "all keys matched";
  std::vector<std::string> parts;
  if (!missing.empty()) parts.push_back("missing key(s): " + key_list(missing));
  if (!unexpected.empty()) parts.push_back("unexpected key(s): " + key_list(unexpected));
  if (!mismatched.empty()) parts.push_back("size mismatch: " + key_list(mismatched));
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "; " : "") + parts[i];
  return s;
}

LoadReport load_state_dict(torch::nn::Module& module, const TensorMap& tensors, bool strict,
                           const std::string& source) {
  size_t n_groups = 0;
  const std::vector<Slot> all = slots(module, n_groups);

  std::vector<bool> group_present(n_groups, false);
  std::map<std::string, const Slot*> by_name;
  for (const Slot& s : all) {
    by_name.emplace(s.name, &s);
    if (tensors.count(s.name)) group_present[s.group] = true;
  }

  LoadReport report;
  std::vector<std::pair<const Slot*, const torch::Tensor*>> copies;
  std::vector<bool> reported(n_groups, false);
  for (const Slot& s : all) {
    auto it = tensors.find(s.name);
    if (it == tensors.end()) {
      // Report a tied group once, under its first name, and not at all if another name was given.
      if (!group_present[s.group] && !reported[s.group]) report.missing.push_back(s.name);
      reported[s.group] = true;
      continue;
    }
    const torch::Tensor& src = it->second;
    if (!src.defined() || src.sizes() != s.tensor.sizes()) {
      report.mismatched.push_back(s.name + ": expected " + shape_string(s.tensor.sizes()) + ", got " +
                                  (src.defined() ? shape_string(src.sizes()) : std::string("undefined")));
      continue;
    }
    copies.emplace_back(&s, &src);
  }
  for (const auto& [name, tensor] : tensors)
    if (!by_name.count(name)) report.unexpected.push_back(name);

  if (strict && !report.ok()) throw std::runtime_error(source + ": " + report.summary());

  torch::NoGradGuard no_grad;
  for (const auto& [slot, src] : copies) {
    torch::Tensor dst = slot->tensor;  // shares the module's TensorImpl, so copy_ writes the parameter
    dst.copy_(*src);
  }
  return report;
}

}  // namespace attnzoo::weights
