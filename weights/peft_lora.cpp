#include "weights/peft_lora.h"

#include <fstream>
#include <stdexcept>

#include "weights/file_io.h"
#include "weights/state_dict.h"

namespace attnzoo::weights {
namespace fs = std::filesystem;
namespace {

const std::string kPrefix = "base_model.model.";

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace

nlohmann::json peft_adapter_config(const models::LoraConfig& cfg) {
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"r", cfg.rank},
          {"lora_alpha", cfg.alpha},
          {"lora_dropout", cfg.dropout},
          {"target_modules", cfg.targets},
          {"fan_in_fan_out", true},  // GPT-2's Conv1D stores weights (in, out)
          {"bias", "none"},
          {"base_model_name_or_path", cfg.base_model},
          {"inference_mode", true},
          {"modules_to_save", nullptr},
          {"init_lora_weights", true},
          {"layers_to_transform", nullptr},
          {"layers_pattern", nullptr},
          {"rank_pattern", nlohmann::json::object()},
          {"alpha_pattern", nlohmann::json::object()},
          {"use_rslora", false},
          {"use_dora", false},
          {"revision", nullptr}};
}

models::LoraConfig lora_config_from_peft(const nlohmann::json& j, const std::string& source) {
  auto fail = [&](const std::string& field, const std::string& what) {
    throw std::runtime_error(source + ": " + field + ": " + what);
  };
  if (!j.is_object()) throw std::runtime_error(source + ": expected a JSON object (a PEFT adapter_config.json)");
  if (j.value("peft_type", std::string()) != "LORA")
    fail("peft_type", "expected \"LORA\", got " + (j.contains("peft_type") ? j["peft_type"].dump() : "nothing"));
  auto empty_or_null = [&](const char* key) {
    return !j.contains(key) || j[key].is_null() || (j[key].is_object() && j[key].empty()) ||
           (j[key].is_array() && j[key].empty());
  };
  if (j.contains("bias") && j["bias"] != "none") fail("bias", "only \"none\" is supported, got " + j["bias"].dump());
  for (const char* key : {"modules_to_save", "rank_pattern", "alpha_pattern", "layers_to_transform"})
    if (!empty_or_null(key)) fail(key, "not supported, got " + j[key].dump());
  for (const char* key : {"use_rslora", "use_dora"})
    if (j.value(key, false)) fail(key, "not supported (true)");
  models::LoraConfig cfg;
  try {
    cfg.rank = j.at("r").get<int64_t>();
    cfg.alpha = j.contains("lora_alpha") ? j["lora_alpha"].get<double>() : 8.0;
    cfg.dropout = j.contains("lora_dropout") ? j["lora_dropout"].get<double>() : 0.0;
    const auto& t = j.at("target_modules");
    cfg.targets = t.is_string() ? std::vector<std::string>{t.get<std::string>()} : t.get<std::vector<std::string>>();
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      cfg.base_model = j["base_model_name_or_path"].get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
  try {
    cfg.validate();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
  return cfg;
}

TensorMap export_peft_lora(const TensorMap& ours) {
  TensorMap out;
  for (const auto& [k, v] : ours) {
    if (!models::is_lora_key(k)) throw std::runtime_error("PEFT export: '" + k + "' is not a LoRA adapter weight");
    out[kPrefix + k] = v;
  }
  return out;
}

TensorMap import_peft_lora(const TensorMap& peft, const std::string& source) {
  TensorMap out;
  for (const auto& [k, v] : peft) {
    if (k.rfind(kPrefix, 0) != 0 || !models::is_lora_key(k))
      throw std::runtime_error(source + ": unexpected key '" + k + "' (expected base_model.model.*.lora_A.weight / lora_B.weight)");
    out[k.substr(kPrefix.size())] = v;
  }
  return out;
}

void save_peft_adapter_dir(const fs::path& dir, const models::LoraConfig& cfg, const TensorMap& ours, bool force) {
  const TensorMap peft = export_peft_lora(ours);
  write_directory(dir, force, [&](const fs::path& tmp) {
    const std::string text = peft_adapter_config(cfg).dump(2) + "\n";
    write_file((tmp / "adapter_config.json").string(), text.data(), text.size());
    save_safetensors((tmp / "adapter_model.safetensors").string(), peft, {{"format", "pt"}});
  });
}

PeftAdapter load_peft_adapter_dir(const fs::path& dir) {
  const fs::path config = dir / "adapter_config.json", model = dir / "adapter_model.safetensors";
  if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + ": no such adapter directory");
  if (!fs::exists(config))
    throw std::runtime_error(config.string() + ": missing (a PEFT adapter directory holds adapter_config.json + "
                                               "adapter_model.safetensors)");
  if (!fs::exists(model)) throw std::runtime_error(model.string() + ": missing (adapter_model.bin is not read; save with safetensors)");
  nlohmann::json j;
  {
    std::ifstream in(config);
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(config.string() + ": malformed JSON: " + e.what());
    }
  }
  PeftAdapter out;
  out.config = lora_config_from_peft(j, config.string());
  out.tensors = import_peft_lora(load_safetensors(model.string()).tensors, model.string());
  return out;
}

void apply_peft_adapter(models::GPT& model, const PeftAdapter& adapter, const std::string& source) {
  try {
    models::add_lora(model, adapter.config);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
  LoadReport report;
  const auto expected = models::lora_state_dict(model);
  for (const auto& [k, v] : expected) {
    auto it = adapter.tensors.find(k);
    if (it == adapter.tensors.end()) report.missing.push_back(kPrefix + k);
    else if (it->second.sizes() != v.sizes())
      report.mismatched.push_back(kPrefix + k + ": expected " + shape_str(v) + ", got " + shape_str(it->second));
  }
  for (const auto& [k, v] : adapter.tensors)
    if (!expected.count(k)) report.unexpected.push_back(kPrefix + k);
  if (!report.ok())
    throw std::runtime_error(source + ": " + report.summary() + " (an adapter for another base model or rank?)");
  torch::NoGradGuard no_grad;
  for (auto& [k, v] : expected) v.copy_(adapter.tensors.at(k));
}

}  // namespace attnzoo::weights
