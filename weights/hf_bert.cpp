// Hugging Face BERT import/export; see hf_bert.h.
#include "weights/hf_bert.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>

#include "weights/file_io.h"
#include "weights/hf_common.h"

namespace attnzoo::weights {
namespace fs = std::filesystem;
namespace {

const std::string kBert = "bert.";

enum class Group { encoder, pooler, mlm, nsp };

struct Expected {
  std::vector<int64_t> shape;
  Group group;
};

// Our keys of a BertForPreTraining of CFG with their shapes and groups.
std::map<std::string, Expected> expected_keys(const models::BertConfig& cfg) {
  const int64_t C = cfg.hidden_size, V = cfg.vocab_size, I = cfg.intermediate_size;
  std::map<std::string, Expected> k;
  auto linear = [&](const std::string& name, int64_t out, int64_t in, Group g) {
    k[name + ".weight"] = {{out, in}, g};
    k[name + ".bias"] = {{out}, g};
  };
  auto norm = [&](const std::string& name, Group g) {
    k[name + ".weight"] = {{C}, g};
    k[name + ".bias"] = {{C}, g};
  };
  const auto E = Group::encoder;
  k["bert.embeddings.word_embeddings.weight"] = {{V, C}, E};
  k["bert.embeddings.position_embeddings.weight"] = {{cfg.max_position_embeddings, C}, E};
  k["bert.embeddings.token_type_embeddings.weight"] = {{cfg.type_vocab_size, C}, E};
  norm("bert.embeddings.LayerNorm", E);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    const std::string l = "bert.encoder.layer." + std::to_string(i) + ".";
    for (const char* p : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"})
      linear(l + p, C, C, E);
    norm(l + "attention.output.LayerNorm", E);
    linear(l + "intermediate.dense", I, C, E);
    linear(l + "output.dense", C, I, E);
    norm(l + "output.LayerNorm", E);
  }
  linear("bert.pooler.dense", C, C, Group::pooler);
  k["cls.predictions.bias"] = {{V}, Group::mlm};
  linear("cls.predictions.transform.dense", C, C, Group::mlm);
  norm("cls.predictions.transform.LayerNorm", Group::mlm);
  linear("cls.seq_relationship", 2, C, Group::nsp);
  return k;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// A file key -> our key: LayerNorm gamma/beta renamed, the bert. prefix added to encoder keys.
std::string our_name(const std::string& key) {
  std::string name = key;
  if (ends_with(name, "LayerNorm.gamma")) name.replace(name.size() - 5, 5, "weight");
  else if (ends_with(name, "LayerNorm.beta")) name.replace(name.size() - 4, 4, "bias");
  for (const char* part : {"embeddings.", "encoder.", "pooler."})
    if (starts_with(name, part)) return kBert + name;
  return name;
}

std::string hf_act(const std::string& act) { return act == "gelu_tanh" ? "gelu_new" : act; }

void write_text(const fs::path& path, const std::string& text) { write_file(path.string(), text.data(), text.size()); }

}  // namespace

models::BertConfig bert_config_from_hf(const nlohmann::json& j, const std::string& source) {
  auto fail = [&](const std::string& field, const std::string& what) {
    throw std::runtime_error(source + ": " + field + ": " + what);
  };
  if (!j.is_object()) throw std::runtime_error(source + ": expected a JSON object (a BertConfig)");
  if (j.contains("model_type") && j["model_type"] != "bert")
    fail("model_type", "expected \"bert\", got " + j["model_type"].dump() + " (not a BERT checkpoint)");
  models::BertConfig cfg;
  auto integer = [&](const char* field, int64_t& to) {
    if (!j.contains(field)) return;
    const auto& v = j[field];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(field, "expected a positive integer, got " + v.dump());
    to = v.get<int64_t>();
  };
  auto number = [&](const char* field, double& to) {
    if (!j.contains(field) || j[field].is_null()) return;
    if (!j[field].is_number()) fail(field, "expected a number, got " + j[field].dump());
    to = j[field].get<double>();
  };
  integer("vocab_size", cfg.vocab_size);
  integer("hidden_size", cfg.hidden_size);
  integer("num_hidden_layers", cfg.num_hidden_layers);
  integer("num_attention_heads", cfg.num_attention_heads);
  integer("intermediate_size", cfg.intermediate_size);
  integer("max_position_embeddings", cfg.max_position_embeddings);
  integer("type_vocab_size", cfg.type_vocab_size);
  number("hidden_dropout_prob", cfg.hidden_dropout_prob);
  number("attention_probs_dropout_prob", cfg.attention_probs_dropout_prob);
  number("layer_norm_eps", cfg.layer_norm_eps);
  number("initializer_range", cfg.initializer_range);
  if (j.contains("hidden_act")) {
    if (!j["hidden_act"].is_string()) fail("hidden_act", "expected a string, got " + j["hidden_act"].dump());
    const std::string act = j["hidden_act"];
    if (act == "gelu") cfg.hidden_act = "gelu";
    else if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") cfg.hidden_act = "gelu_tanh";
    else if (act == "relu") cfg.hidden_act = "relu";
    else fail("hidden_act", "expected gelu, gelu_new or relu, got \"" + act + "\"");
  }
  if (j.contains("position_embedding_type") && j["position_embedding_type"] != "absolute")
    fail("position_embedding_type", "only \"absolute\" is supported, got " + j["position_embedding_type"].dump());
  for (const char* field : {"is_decoder", "add_cross_attention"})
    if (j.contains(field) && j[field] == true) fail(field, "true is not supported (an encoder-only BERT)");
  try {
    cfg.validate();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
  return cfg;
}

nlohmann::json bert_config_to_hf(const models::BertConfig& cfg, const std::string& architecture,
                                 const std::vector<std::string>& labels) {
  nlohmann::json j = {
      {"architectures", {architecture}},
      {"attention_probs_dropout_prob", cfg.attention_probs_dropout_prob},
      {"classifier_dropout", nullptr},
      {"hidden_act", hf_act(cfg.hidden_act)},
      {"hidden_dropout_prob", cfg.hidden_dropout_prob},
      {"hidden_size", cfg.hidden_size},
      {"initializer_range", cfg.initializer_range},
      {"intermediate_size", cfg.intermediate_size},
      {"layer_norm_eps", cfg.layer_norm_eps},
      {"max_position_embeddings", cfg.max_position_embeddings},
      {"model_type", "bert"},
      {"num_attention_heads", cfg.num_attention_heads},
      {"num_hidden_layers", cfg.num_hidden_layers},
      {"pad_token_id", 0},
      {"position_embedding_type", "absolute"},
      {"torch_dtype", "float32"},
      {"type_vocab_size", cfg.type_vocab_size},
      {"use_cache", true},
      {"vocab_size", cfg.vocab_size},
  };
  if (!labels.empty()) {
    nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
    for (size_t i = 0; i < labels.size(); ++i) {
      id2label[std::to_string(i)] = labels[i];
      label2id[labels[i]] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
    j["problem_type"] = "single_label_classification";
  }
  return j;
}

HfBertWeights import_hf_bert(const TensorMap& hf, const models::BertConfig& cfg, const std::string& source) {
  const auto expected = expected_keys(cfg);
  HfBertWeights out;
  std::map<std::string, std::string> stored_as;  // our key -> key in the file
  std::vector<std::string> unknown, mismatched, duplicated;
  const torch::Tensor *decoder_weight = nullptr, *decoder_bias = nullptr;
  auto check = [&](const std::string& key, const torch::Tensor& t, torch::IntArrayRef shape) {
    if (t.sizes() != shape) {
      mismatched.push_back(key + ": expected " + shape_string(shape) + ", got " + shape_string(t.sizes()));
      return false;
    }
    if (!t.is_floating_point()) {
      mismatched.push_back(key + ": expected a floating-point tensor, got " + std::string(c10::toString(t.scalar_type())));
      return false;
    }
    return true;
  };
  for (const auto& [key, tensor] : hf) {
    const std::string name = our_name(key);
    if (name == "bert.embeddings.position_ids") continue;  // a buffer of older files
    if (name == "cls.predictions.decoder.weight") {
      decoder_weight = &tensor;
      continue;
    }
    if (name == "cls.predictions.decoder.bias") {
      decoder_bias = &tensor;
      continue;
    }
    if (!stored_as.emplace(name, key).second) {
      duplicated.push_back(stored_as[name] + " and " + key);
      continue;
    }
    if (name == "classifier.weight" || name == "classifier.bias") {
      const bool w = name == "classifier.weight";
      if (tensor.dim() != (w ? 2 : 1) || (w && tensor.size(1) != cfg.hidden_size) || tensor.size(0) < 1) {
        mismatched.push_back(key + ": expected " + (w ? "[L, " + std::to_string(cfg.hidden_size) + "]" : "[L]") +
                             ", got " + shape_string(tensor.sizes()));
        continue;
      }
      if (check(key, tensor, tensor.sizes())) out.tensors.emplace(name, tensor);
      continue;
    }
    auto it = expected.find(name);
    if (it == expected.end()) {
      unknown.push_back(key);
      continue;
    }
    if (check(key, tensor, it->second.shape)) out.tensors.emplace(name, tensor);
  }
  // HF ties cls.predictions.decoder.bias to cls.predictions.bias; a file may hold only the former.
  if (decoder_bias && !stored_as.count("cls.predictions.bias") &&
      check("cls.predictions.decoder.bias", *decoder_bias, {cfg.vocab_size})) {
    out.tensors.emplace("cls.predictions.bias", *decoder_bias);
    stored_as.emplace("cls.predictions.bias", "cls.predictions.decoder.bias");
    decoder_bias = nullptr;
  }

  // The encoder must be complete; each head is there in full or not at all.
  std::map<Group, std::vector<std::string>> missing;
  std::map<Group, int> present;
  for (const auto& [name, info] : expected) {
    if (stored_as.count(name)) ++present[info.group];
    else missing[info.group].push_back(name);
  }
  std::vector<std::string> missing_keys = missing[Group::encoder];
  for (Group g : {Group::pooler, Group::mlm, Group::nsp})
    if (present[g] > 0) missing_keys.insert(missing_keys.end(), missing[g].begin(), missing[g].end());
  if (stored_as.count("classifier.weight") != stored_as.count("classifier.bias"))
    missing_keys.push_back(stored_as.count("classifier.weight") ? "classifier.bias" : "classifier.weight");

  std::string msg;
  add_key_part(msg, "unknown key(s)", unknown);
  add_key_part(msg, "missing key(s)", missing_keys);
  add_key_part(msg, "size mismatch (config.json vs weights)", mismatched);
  add_key_part(msg, "key(s) given twice (with and without bert., or as gamma/beta and weight/bias)", duplicated);
  if (!msg.empty()) throw std::runtime_error(source + ": " + msg);

  if (out.tensors.count("classifier.weight")) {
    out.num_labels = out.tensors.at("classifier.weight").size(0);
    if (out.tensors.at("classifier.bias").size(0) != out.num_labels)
      throw std::runtime_error(source + ": classifier.bias " + shape_string(out.tensors.at("classifier.bias").sizes()) +
                               " does not match classifier.weight " +
                               shape_string(out.tensors.at("classifier.weight").sizes()));
  }
  out.has_pooler = present[Group::pooler] > 0;
  out.has_mlm_head = present[Group::mlm] > 0;
  out.has_nsp_head = present[Group::nsp] > 0;
  const auto& wte = out.tensors.at("bert.embeddings.word_embeddings.weight");
  if (decoder_weight && (decoder_weight->sizes() != wte.sizes() || !torch::equal(*decoder_weight, wte)))
    throw std::runtime_error(source + ": cls.predictions.decoder.weight " + shape_string(decoder_weight->sizes()) +
                             " differs from the word embeddings " + shape_string(wte.sizes()) +
                             " (an untied MLM decoder; attnzoo's BERT ties it, as Hugging Face's does)");
  if (decoder_bias) {
    const auto it = out.tensors.find("cls.predictions.bias");
    if (it == out.tensors.end() || decoder_bias->sizes() != it->second.sizes() || !torch::equal(*decoder_bias, it->second))
      throw std::runtime_error(source + ": cls.predictions.decoder.bias differs from cls.predictions.bias (they are one "
                               "tensor in Hugging Face's BERT)");
  }
  return out;
}

TensorMap export_hf_bert(const TensorMap& ours, const models::BertConfig& cfg) {
  const auto expected = expected_keys(cfg);
  TensorMap out;
  std::vector<std::string> unknown, mismatched, missing;
  for (const auto& [key, tensor] : ours) {
    const auto it = expected.find(key);
    if (it != expected.end()) {
      if (tensor.sizes() != torch::IntArrayRef(it->second.shape)) {
        mismatched.push_back(key + ": expected " + shape_string(it->second.shape) + ", got " + shape_string(tensor.sizes()));
        continue;
      }
    } else if (key == "classifier.weight" || key == "classifier.bias") {
      const bool w = key == "classifier.weight";
      if (tensor.dim() != (w ? 2 : 1) || (w && tensor.size(1) != cfg.hidden_size)) {
        mismatched.push_back(key + ": got " + shape_string(tensor.sizes()));
        continue;
      }
    } else {
      unknown.push_back(key);
      continue;
    }
    out.emplace(key, tensor.contiguous());
  }
  for (const auto& [name, info] : expected)
    if (info.group == Group::encoder && !ours.count(name)) missing.push_back(name);
  std::string msg;
  add_key_part(msg, "not a BERT weight", unknown);
  add_key_part(msg, "missing", missing);
  add_key_part(msg, "size mismatch", mismatched);
  if (!msg.empty()) throw std::runtime_error("export to Hugging Face BERT: " + msg);
  return out;
}

HfBert load_hf_bert_dir(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw std::runtime_error(dir.string() + ": not a directory (expected a Hugging Face BERT download)");
  const fs::path config = dir / "config.json", model = dir / "model.safetensors";
  if (!fs::exists(config)) throw std::runtime_error(config.string() + ": missing (not a Hugging Face model directory)");
  if (!fs::exists(model)) {
    const bool bin = fs::exists(dir / "pytorch_model.bin");
    throw std::runtime_error(model.string() + ": missing" +
                             (bin ? std::string(" (only pytorch_model.bin, a pickle, is there; download the "
                                                "safetensors file or convert it)")
                                  : std::string()));
  }
  HfBert out;
  const auto j = read_json(config);
  out.config = bert_config_from_hf(j, config.string());
  out.weights = import_hf_bert(load_safetensors(model.string()).tensors, out.config, model.string());
  if (out.weights.num_labels > 0) {
    out.labels.resize(static_cast<size_t>(out.weights.num_labels));
    for (int64_t i = 0; i < out.weights.num_labels; ++i) out.labels[i] = "LABEL_" + std::to_string(i);
    if (j.contains("id2label") && j["id2label"].is_object())
      for (const auto& [id, label] : j["id2label"].items()) {
        char* end = nullptr;
        const long k = std::strtol(id.c_str(), &end, 10);
        if (*end != '\0' || k < 0 || k >= out.weights.num_labels || !label.is_string())
          throw std::runtime_error(config.string() + ": id2label: entry \"" + id + "\" is not a label of the " +
                                   std::to_string(out.weights.num_labels) + " classifier outputs");
        out.labels[k] = label.get<std::string>();
      }
  }
  const fs::path tok_config = dir / "tokenizer_config.json";
  if (fs::exists(tok_config)) {
    const auto t = read_json(tok_config);
    if (t.contains("do_lower_case") && t["do_lower_case"].is_boolean()) out.lowercase = t["do_lower_case"].get<bool>();
  }
  return out;
}

void save_hf_bert_dir(const fs::path& dir, const models::BertConfig& cfg, const TensorMap& ours,
                      const std::vector<std::string>& labels, bool force,
                      const std::function<void(const fs::path&)>& extra) {
  const TensorMap hf = export_hf_bert(ours, cfg);
  const bool classifier = hf.count("classifier.weight") > 0;
  if (classifier != !labels.empty())
    throw std::runtime_error("export to Hugging Face BERT: " +
                             std::string(classifier ? "a classifier needs its labels" : "labels given without a classifier"));
  if (classifier && hf.at("classifier.weight").size(0) != static_cast<int64_t>(labels.size()))
    throw std::runtime_error("export to Hugging Face BERT: " + std::to_string(labels.size()) + " labels for a classifier of " +
                             std::to_string(hf.at("classifier.weight").size(0)));
  write_directory(dir, force, [&](const fs::path& tmp) {
    auto config = bert_config_to_hf(cfg, classifier ? "BertForSequenceClassification" : "BertForPreTraining", labels);
    const auto dtype = hf.begin()->second.scalar_type();
    config["torch_dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kHalf ? "float16" : "float32";
    write_text(tmp / "config.json", config.dump(2) + "\n");
    save_safetensors((tmp / "model.safetensors").string(), hf, {{"format", "pt"}});
    if (extra) extra(tmp);
  });
}

}  // namespace attnzoo::weights
