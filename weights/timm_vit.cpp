#include "weights/timm_vit.h"

#include <fstream>
#include <regex>
#include <set>
#include <stdexcept>

#include "weights/state_dict.h"

namespace attnzoo::weights {
namespace fs = std::filesystem;
namespace {

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error(p.string() + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(p.string() + ": malformed JSON: " + e.what());
  }
}

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace

models::ViTConfig vit_config_from_timm(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::runtime_error(source + ": expected a JSON object");
  const std::string arch = j.value("architecture", "");
  if (arch.empty()) throw std::runtime_error(source + ": architecture: missing (a timm config.json names its model)");
  const std::string base = arch.substr(0, arch.find('.'));
  // vit_{size}_patch{P}_{S}[_suffix]
  static const std::regex pattern(R"(vit_(tiny|small|base|large)_patch(\d+)_(\d+)(_[a-z0-9_]+)?)");
  std::smatch m;
  if (!std::regex_match(base, m, pattern))
    throw std::runtime_error(source + ": architecture: '" + arch +
                             "' is not a plain ViT (expected vit_{tiny,small,base,large}_patch{P}_{S}[.tag])");
  models::ViTConfig cfg;
  const std::string size = m[1];
  if (size == "tiny") cfg = models::vit_tiny_patch16_224();
  else if (size == "small") cfg = models::vit_small_patch16_224();
  else if (size == "base") cfg = models::vit_base_patch16_224();
  else cfg = {.embed_dim = 1024, .depth = 24, .num_heads = 16};
  cfg.patch_size = std::stoll(m[2]);
  cfg.img_size = std::stoll(m[3]);
  try {
    if (j.contains("model_args") && !j["model_args"].is_null()) {
      for (const auto& [key, v] : j["model_args"].items()) {
        if (key == "img_size") {
          if (v.is_array()) {
            if (v.size() != 2 || v[0] != v[1]) throw std::runtime_error("only square images are supported, got " + v.dump());
            cfg.img_size = v[0].get<int64_t>();
          } else {
            cfg.img_size = v.get<int64_t>();
          }
        } else if (key == "patch_size") cfg.patch_size = v.get<int64_t>();
        else if (key == "in_chans") cfg.in_chans = v.get<int64_t>();
        else if (key == "embed_dim") cfg.embed_dim = v.get<int64_t>();
        else if (key == "depth") cfg.depth = v.get<int64_t>();
        else if (key == "num_heads") cfg.num_heads = v.get<int64_t>();
        else if (key == "mlp_ratio") cfg.mlp_ratio = v.get<double>();
        else if (key == "qkv_bias") cfg.qkv_bias = v.get<bool>();
        else if (key == "num_classes") cfg.num_classes = v.get<int64_t>();
        else if (key == "global_pool") cfg.global_pool = v.get<std::string>();
        else if (key == "class_token" || key == "fc_norm" || key == "no_embed_class" || key == "pre_norm" ||
                 key == "reg_tokens" || key == "init_values" || key == "dynamic_img_size") {
          // Accepted only at the value our ViT implements.
          const bool ok = (key == "class_token" && v == true) || (key == "no_embed_class" && v == false) ||
                          (key == "pre_norm" && v == false) || (key == "reg_tokens" && v == 0) ||
                          (key == "init_values" && v.is_null()) || key == "dynamic_img_size" ||
                          (key == "fc_norm" && (v.is_null() || v.is_boolean()));
          if (!ok) throw std::runtime_error(key + ": " + v.dump() + " is not supported by this ViT");
          if (key == "fc_norm" && v.is_boolean()) cfg.global_pool = v.get<bool>() ? "avg" : "token";
        } else {
          throw std::runtime_error("unknown key '" + key + "'");
        }
      }
    }
    if (j.contains("num_classes") && !j["num_classes"].is_null()) cfg.num_classes = j["num_classes"].get<int64_t>();
    if (j.contains("global_pool") && j["global_pool"].is_string() && !j["global_pool"].get<std::string>().empty())
      cfg.global_pool = j["global_pool"].get<std::string>();
    cfg.validate();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(source + ": model_args: " + e.what());
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": model_args: " + e.what());
  }
  return cfg;
}

TimmPreprocess timm_preprocess(const nlohmann::json& j, const std::string& source) {
  TimmPreprocess p;
  if (!j.contains("pretrained_cfg") || !j["pretrained_cfg"].is_object()) return p;
  const auto& pc = j["pretrained_cfg"];
  try {
    if (pc.contains("input_size")) {
      const auto s = pc["input_size"].get<std::vector<int64_t>>();
      if (s.size() != 3) throw std::runtime_error("input_size: expected [C, H, W]");
      p.channels = s[0], p.height = s[1], p.width = s[2];
    }
    if (pc.contains("mean")) p.mean = pc["mean"].get<std::vector<double>>();
    if (pc.contains("std")) p.std = pc["std"].get<std::vector<double>>();
    if (pc.contains("interpolation") && pc["interpolation"].is_string()) p.interpolation = pc["interpolation"];
    if (pc.contains("crop_pct") && pc["crop_pct"].is_number()) p.crop_pct = pc["crop_pct"];
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": pretrained_cfg: " + e.what());
  }
  if (p.interpolation != "bicubic" && p.interpolation != "bilinear" && p.interpolation != "nearest")
    throw std::runtime_error(source + ": pretrained_cfg: interpolation '" + p.interpolation +
                             "' (expected bicubic, bilinear or nearest)");
  return p;
}

TensorMap import_timm_vit(const TensorMap& timm, const models::ViTConfig& cfg, const std::string& source) {
  torch::NoGradGuard no_grad;
  models::VisionTransformer reference(cfg);
  const TensorMap expected = state_dict(*reference);
  TensorMap out;
  std::vector<std::string> unknown, mismatched;
  for (const auto& [key, t] : timm) {
    auto it = expected.find(key);
    if (it == expected.end()) {
      unknown.push_back(key);
      continue;
    }
    torch::Tensor v = t;
    if (key == "pos_embed" && v.dim() == 3 && v.size(0) == 1 && v.size(2) == cfg.embed_dim &&
        v.size(1) != it->second.size(1)) {
      // timm's checkpoint_filter_fn: a checkpoint made for another grid is resampled.
      const auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(v.size(1) - 1))));
      if (g * g == v.size(1) - 1) v = models::resample_pos_embed(v, 1, g, g, cfg.grid(), cfg.grid()).contiguous();
    }
    if (v.sizes() != it->second.sizes()) {
      mismatched.push_back(key + ": expected " + shape_str(it->second) + ", got " + shape_str(v));
      continue;
    }
    out[key] = v;
  }
  std::vector<std::string> missing;
  for (const auto& [key, t] : expected)
    if (!timm.count(key)) missing.push_back(key);
  if (!unknown.empty() || !missing.empty() || !mismatched.empty()) {
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
      if (v.size() > 8) s += ", ... (" + std::to_string(v.size() - 8) + " more)";
      return s;
    };
    std::string msg = source + ":";
    if (!unknown.empty()) msg += " unknown key(s) for a ViT: " + join(unknown) + ";";
    if (!missing.empty()) msg += " missing key(s): " + join(missing) + ";";
    if (!mismatched.empty()) msg += " size mismatch: " + join(mismatched) + ";";
    msg.pop_back();
    throw std::runtime_error(msg + " (does config.json's architecture/model_args describe this checkpoint?)");
  }
  return out;
}

TimmViT load_timm_vit_dir(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + ": not a directory (expected a timm model download)");
  const fs::path config = dir / "config.json", model = dir / "model.safetensors";
  if (!fs::exists(config)) throw std::runtime_error(config.string() + ": missing (not a timm model directory)");
  if (!fs::exists(model)) {
    const bool bin = fs::exists(dir / "pytorch_model.bin");
    throw std::runtime_error(model.string() + ": missing" +
                             (bin ? std::string(" (only pytorch_model.bin, a pickle, is there; download the safetensors file)")
                                  : std::string()));
  }
  const auto j = read_json(config);
  TimmViT out;
  out.architecture = j.value("architecture", "");
  out.config = vit_config_from_timm(j, config.string());
  out.preprocess = timm_preprocess(j, config.string());
  if (j.contains("label_names") && j["label_names"].is_array()) {
    for (const auto& n : j["label_names"]) out.label_names.push_back(n.is_string() ? n.get<std::string>() : n.dump());
  }
  out.tensors = import_timm_vit(load_safetensors(model.string()).tensors, out.config, model.string());
  return out;
}

}  // namespace attnzoo::weights
