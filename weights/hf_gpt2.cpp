// Hugging Face GPT-2 import/export; see hf_gpt2.h.
#include "weights/hf_gpt2.h"

#include <unistd.h>

#include <cmath>
#include <map>
#include <regex>
#include <stdexcept>
#include <vector>

#include "weights/file_io.h"
#include "weights/hf_common.h"

namespace attnzoo::weights {
namespace fs = std::filesystem;
namespace {

const std::string kPrefix = "transformer.";

// One weight of GPT-2 as the file stores it (without the transformer. prefix).
struct HfKey {
  std::vector<int64_t> shape;  // as stored: Conv1D weights [in, out]
  bool conv1d;                 // transposed between the two layouts
};

// The Hugging Face keys of a GPT-2 of CFG, without the prefix, with their stored shapes.
std::map<std::string, HfKey> hf_keys(const models::GPTConfig& cfg) {
  const int64_t C = cfg.n_embd, V = cfg.vocab_size;
  std::map<std::string, HfKey> k;
  k["wte.weight"] = {{V, C}, false};
  k["wpe.weight"] = {{cfg.block_size, C}, false};
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    const std::string h = "h." + std::to_string(i) + ".";
    for (const char* ln : {"ln_1.", "ln_2."}) {
      k[h + ln + "weight"] = {{C}, false};
      k[h + ln + "bias"] = {{C}, false};
    }
    k[h + "attn.c_attn.weight"] = {{C, 3 * C}, true};
    k[h + "attn.c_attn.bias"] = {{3 * C}, false};
    k[h + "attn.c_proj.weight"] = {{C, C}, true};
    k[h + "attn.c_proj.bias"] = {{C}, false};
    k[h + "mlp.c_fc.weight"] = {{C, 4 * C}, true};
    k[h + "mlp.c_fc.bias"] = {{4 * C}, false};
    k[h + "mlp.c_proj.weight"] = {{4 * C, C}, true};
    k[h + "mlp.c_proj.bias"] = {{C}, false};
  }
  k["ln_f.weight"] = {{C}, false};
  k["ln_f.bias"] = {{C}, false};
  return k;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

void write_text(const fs::path& path, const std::string& text) { write_file(path.string(), text.data(), text.size()); }

}  // namespace

models::GPTConfig gpt2_config_from_hf(const nlohmann::json& j, const std::string& source) {
  auto fail = [&](const std::string& field, const std::string& what) -> void {
    throw std::runtime_error(source + ": " + field + ": " + what);
  };
  if (!j.is_object()) throw std::runtime_error(source + ": expected a JSON object (a GPT2Config)");
  if (j.contains("model_type") && j["model_type"] != "gpt2")
    fail("model_type", "expected \"gpt2\", got " + j["model_type"].dump() + " (not a GPT-2 checkpoint)");
  auto integer = [&](const char* field, const char* fallback = nullptr) -> int64_t {
    const char* name = field;
    if (!j.contains(name) && fallback && j.contains(fallback)) name = fallback;
    if (!j.contains(name)) fail(field, "missing");
    const auto& v = j[name];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(name, "expected a positive integer, got " + v.dump());
    return v.get<int64_t>();
  };
  models::GPTConfig cfg;
  cfg.n_layer = integer("n_layer");
  cfg.n_head = integer("n_head");
  cfg.n_embd = integer("n_embd");
  cfg.block_size = integer("n_positions", "n_ctx");
  cfg.vocab_size = integer("vocab_size");
  cfg.dropout = 0.0;
  cfg.bias = true;
  const std::string act = j.value("activation_function", std::string("gelu_new"));
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") cfg.activation = "gelu_tanh";
  else if (act == "gelu") cfg.activation = "gelu";
  else fail("activation_function", "expected gelu_new or gelu, got \"" + act + "\"");
  if (j.contains("layer_norm_epsilon")) {
    const auto& eps = j["layer_norm_epsilon"];
    if (!eps.is_number() || std::abs(eps.get<double>() - 1e-5) > 1e-12)
      fail("layer_norm_epsilon", "only 1e-5 (GPT-2's) is supported, got " + eps.dump());
  }
  if (j.contains("n_inner") && !j["n_inner"].is_null() && j["n_inner"] != 4 * cfg.n_embd)
    fail("n_inner", "only null or 4 * n_embd = " + std::to_string(4 * cfg.n_embd) + " is supported, got " +
                        j["n_inner"].dump());
  auto refuse_true = [&](const char* field, const char* why) {
    if (j.contains(field) && j[field] == true) fail(field, std::string("true is not supported (") + why + ")");
  };
  refuse_true("add_cross_attention", "an encoder-decoder GPT-2");
  refuse_true("scale_attn_by_inverse_layer_idx", "Mistral-style attention scaling");
  refuse_true("reorder_and_upcast_attn", "Mistral-style attention");
  if (j.contains("scale_attn_weights") && j["scale_attn_weights"] == false)
    fail("scale_attn_weights", "false is not supported (attention without 1/sqrt(d))");
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"] == false)
    fail("tie_word_embeddings", "false is not supported (attnzoo's GPT ties lm_head to wte)");
  try {
    cfg.validate();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
  return cfg;
}

nlohmann::json gpt2_config_to_hf(const models::GPTConfig& cfg, std::optional<int64_t> eos) {
  // The GPT2Config fields save_pretrained writes for gpt2 (dropouts are the training-time values
  // transformers uses when fine-tuning; they do not change inference).
  const double p = cfg.dropout;
  const nlohmann::json eos_token_id = eos ? nlohmann::json(*eos) : nlohmann::json(nullptr);
  return {
      {"activation_function", cfg.activation == "gelu_tanh" ? "gelu_new" : "gelu"},
      {"architectures", {"GPT2LMHeadModel"}},
      {"attn_pdrop", p},
      {"bos_token_id", eos_token_id},
      {"embd_pdrop", p},
      {"eos_token_id", eos_token_id},
      {"initializer_range", 0.02},
      {"layer_norm_epsilon", 1e-5},
      {"model_type", "gpt2"},
      {"n_ctx", cfg.block_size},
      {"n_embd", cfg.n_embd},
      {"n_head", cfg.n_head},
      {"n_inner", nullptr},
      {"n_layer", cfg.n_layer},
      {"n_positions", cfg.block_size},
      {"reorder_and_upcast_attn", false},
      {"resid_pdrop", p},
      {"scale_attn_by_inverse_layer_idx", false},
      {"scale_attn_weights", true},
      {"summary_activation", nullptr},
      {"summary_first_dropout", 0.1},
      {"summary_proj_to_labels", true},
      {"summary_type", "cls_index"},
      {"summary_use_proj", true},
      {"torch_dtype", "float32"},
      {"use_cache", true},
      {"vocab_size", cfg.vocab_size},
  };
}

TensorMap import_hf_gpt2(const TensorMap& hf, const models::GPTConfig& cfg, const std::string& source) {
  if (!cfg.bias) throw std::runtime_error(source + ": GPT-2 checkpoints have biases; the config has bias false");
  const auto expected = hf_keys(cfg);
  // The causal-mask buffers of older files: h.N.attn.bias (1, 1, T, T) and h.N.attn.masked_bias.
  static const std::regex mask_buffer(R"(h\.[0-9]+\.attn\.(bias|masked_bias))");
  TensorMap out;
  std::map<std::string, std::string> stored_as;  // name without prefix -> key in the file
  std::vector<std::string> unknown, mismatched, duplicated;
  const torch::Tensor* lm_head = nullptr;
  for (const auto& [key, tensor] : hf) {
    const std::string name = starts_with(key, kPrefix) ? key.substr(kPrefix.size()) : key;
    if (key == "lm_head.weight") {
      lm_head = &tensor;
      continue;
    }
    if (std::regex_match(name, mask_buffer)) continue;
    auto it = expected.find(name);
    if (it == expected.end()) {
      unknown.push_back(key);
      continue;
    }
    if (!stored_as.emplace(name, key).second) {
      duplicated.push_back(stored_as[name] + " and " + key);
      continue;
    }
    if (tensor.sizes() != torch::IntArrayRef(it->second.shape)) {
      mismatched.push_back(key + ": expected " + shape_string(it->second.shape) + ", got " +
                           shape_string(tensor.sizes()));
      continue;
    }
    if (!tensor.is_floating_point()) {
      mismatched.push_back(key + ": expected a floating-point tensor, got " + std::string(c10::toString(tensor.scalar_type())));
      continue;
    }
    out.emplace(kPrefix + name, it->second.conv1d ? tensor.t().contiguous() : tensor);
  }
  std::vector<std::string> missing;
  for (const auto& [name, info] : expected)
    if (!stored_as.count(name)) missing.push_back(name);
  std::string msg;
  add_key_part(msg, "unknown key(s)", unknown);
  add_key_part(msg, "missing key(s)", missing);
  add_key_part(msg, "size mismatch (config.json vs weights)", mismatched);
  add_key_part(msg, "key(s) given twice, with and without transformer.", duplicated);
  if (!msg.empty()) throw std::runtime_error(source + ": " + msg);
  if (lm_head) {
    const auto& wte = out.at(kPrefix + "wte.weight");
    if (lm_head->sizes() != wte.sizes() || !torch::equal(*lm_head, wte))
      throw std::runtime_error(source + ": lm_head.weight " + shape_string(lm_head->sizes()) +
                               " differs from wte.weight " + shape_string(wte.sizes()) +
                               " (an untied output head; attnzoo's GPT ties it to wte)");
  }
  return out;
}

TensorMap export_hf_gpt2(const TensorMap& ours, const models::GPTConfig& cfg) {
  const auto expected = hf_keys(cfg);
  TensorMap out;
  std::vector<std::string> unknown, mismatched, missing;
  for (const auto& [key, tensor] : ours) {
    const auto it = starts_with(key, kPrefix) ? expected.find(key.substr(kPrefix.size())) : expected.end();
    if (it == expected.end()) {
      unknown.push_back(key);
      continue;
    }
    const torch::Tensor t = it->second.conv1d ? tensor.t() : tensor;
    if (t.sizes() != torch::IntArrayRef(it->second.shape)) {
      mismatched.push_back(key + ": expected " + shape_string(it->second.shape) + " in Hugging Face's layout, got " +
                           shape_string(t.sizes()));
      continue;
    }
    out.emplace(key, t.contiguous());
  }
  for (const auto& [name, info] : expected)
    if (!ours.count(kPrefix + name)) missing.push_back(kPrefix + name);
  std::string msg;
  add_key_part(msg, "not a GPT-2 weight", unknown);
  add_key_part(msg, "missing", missing);
  add_key_part(msg, "size mismatch", mismatched);
  if (!msg.empty()) throw std::runtime_error("export to Hugging Face GPT-2: " + msg);
  return out;
}

HfGpt2 load_hf_gpt2_dir(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw std::runtime_error(dir.string() + ": not a directory (expected a Hugging Face GPT-2 download)");
  const fs::path config = dir / "config.json", model = dir / "model.safetensors";
  if (!fs::exists(config))
    throw std::runtime_error(config.string() + ": missing (not a Hugging Face model directory)");
  if (!fs::exists(model)) {
    const bool bin = fs::exists(dir / "pytorch_model.bin");
    throw std::runtime_error(model.string() + ": missing" +
                             (bin ? std::string(" (only pytorch_model.bin, a pickle, is there; download the "
                                                "safetensors file or convert it)")
                                  : std::string()));
  }
  HfGpt2 out;
  out.config = gpt2_config_from_hf(read_json(config), config.string());
  const auto file = load_safetensors(model.string());
  out.tensors = import_hf_gpt2(file.tensors, out.config, model.string());
  return out;
}

void save_hf_gpt2_dir(const fs::path& dir, const models::GPTConfig& cfg, const TensorMap& ours, std::optional<int64_t> eos,
                      bool force, const std::function<void(const fs::path&)>& extra) {
  const TensorMap hf = export_hf_gpt2(ours, cfg);
  write_directory(dir, force, [&](const fs::path& tmp) {
    auto config = gpt2_config_to_hf(cfg, eos);
    const auto dtype = hf.begin()->second.scalar_type();  // every tensor of a model has one dtype
    config["torch_dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kHalf ? "float16" : "float32";
    write_text(tmp / "config.json", config.dump(2) + "\n");
    save_safetensors((tmp / "model.safetensors").string(), hf, {{"format", "pt"}});
    if (extra) extra(tmp);
  });
}

}  // namespace attnzoo::weights
