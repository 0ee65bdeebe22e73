#include "apps/bert-pretrain/run.h"

#include <algorithm>
#include <stdexcept>

#include "datasets/bert_pretraining.h"
#include "engine/checkpoint.h"
#include "weights/file_io.h"
#include "weights/hf_bert.h"
#include "weights/state_dict.h"

namespace attnzoo::apps {
namespace fs = std::filesystem;
namespace {

void write_text(const fs::path& path, const std::string& text) { weights::write_file(path.string(), text.data(), text.size()); }

}  // namespace

BertRunConfig default_pretrain_config() {
  BertRunConfig cfg;
  auto& t = cfg.train;
  t.batch_size = 32;
  t.max_iters = 2000;
  t.lr = 5e-4;
  t.min_lr = 0.0;
  t.lr_schedule = "linear";
  t.warmup_iters = 100;
  t.weight_decay = 0.01;
  t.beta2 = 0.999;
  t.grad_clip = 1.0;
  t.eval_interval = 200;
  t.eval_iters = 20;
  return cfg;
}

BertRunConfig default_classify_config() {
  BertRunConfig cfg;
  cfg.task = "classify";
  auto& t = cfg.train;
  t.batch_size = 32;
  t.max_iters = 0;  // 0: three epochs of the training file
  t.lr = 2e-5;
  t.min_lr = 0.0;
  t.lr_schedule = "linear";
  t.warmup_iters = 0;  // 0: 10 % of max_iters
  t.weight_decay = 0.01;
  t.beta2 = 0.999;
  t.grad_clip = 1.0;
  t.eval_interval = 0;  // 0: once per epoch
  t.eval_iters = 0;     // 0: the whole dev file
  return cfg;
}

nlohmann::json to_json(const BertRunConfig& cfg) {
  nlohmann::json j = {{"task", cfg.task}, {"model", cfg.model}, {"train", cfg.train}, {"init_from", cfg.init_from}};
  if (cfg.task == "pretrain") {
    j["masking"] = cfg.masking;
    j["data"] = cfg.data;
  } else {
    j["labels"] = cfg.labels;
    j["train_file"] = cfg.train_file;
    j["dev_file"] = cfg.dev_file;
    j["max_seq_len"] = cfg.max_seq_len;
  }
  return j;
}

void apply_json(BertRunConfig& cfg, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::invalid_argument(source + ": expected a JSON object with \"model\" and \"train\"");
  try {
    for (const auto& [key, value] : j.items()) {
      if (key == "model") engine::merge_json(cfg.model, value, "model");
      else if (key == "train") engine::merge_json(cfg.train, value, "train");
      else if (key == "masking") engine::merge_json(cfg.masking, value, "masking");
      else if (key == "task" && (value == "pretrain" || value == "classify")) cfg.task = value.get<std::string>();
      else if (key == "data" && value.is_string()) cfg.data = value.get<std::string>();
      else if (key == "init_from" && value.is_string()) cfg.init_from = value.get<std::string>();
      else if (key == "train_file" && value.is_string()) cfg.train_file = value.get<std::string>();
      else if (key == "dev_file" && value.is_string()) cfg.dev_file = value.get<std::string>();
      else if (key == "max_seq_len" && value.is_number_integer()) cfg.max_seq_len = value.get<int64_t>();
      else if (key == "labels" && value.is_array()) cfg.labels = value.get<std::vector<std::string>>();
      else
        throw std::invalid_argument("unknown key or bad value '" + key + "': " + value.dump() +
                                    " (expected task pretrain|classify, model, train, masking, data, labels, "
                                    "train_file, dev_file, max_seq_len, init_from)");
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(source + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(source + ": " + e.what());
  }
}

LoadedBert load_run(const fs::path& run, const std::string& which, torch::Device device) {
  if (!fs::is_directory(run)) throw std::runtime_error(run.string() + ": no such run directory");
  engine::CheckpointStore store(run);
  LoadedBert out;
  out.source = which == "best" && !fs::is_directory(store.root() / "best") ? store.resolve("latest") : store.resolve(which);
  auto ckpt = engine::read_checkpoint(out.source);
  const std::string config_path = (out.source / "config.json").string(), state_path = (out.source / "state.json").string();
  out.config = ckpt.config.value("task", "pretrain") == "classify" ? default_classify_config() : default_pretrain_config();
  apply_json(out.config, ckpt.config, config_path);
  if (!ckpt.state.contains("tokenizer")) throw std::runtime_error(state_path + ": no \"tokenizer\" entry");
  try {
    out.tokenizer = tokenizers::WordPiece::from_json(ckpt.state["tokenizer"]);
  } catch (const std::exception& e) {
    throw std::runtime_error(state_path + ": tokenizer: " + e.what());
  }
  if (out.tokenizer.vocab_size() > out.config.model.vocab_size)
    throw std::runtime_error(state_path + ": the tokenizer has " + std::to_string(out.tokenizer.vocab_size()) +
                             " tokens but the model only " + std::to_string(out.config.model.vocab_size));
  const std::string model_path = (out.source / "model.safetensors").string();
  if (out.config.task == "classify") {
    if (out.config.labels.empty()) throw std::runtime_error(config_path + ": a classifier run without \"labels\"");
    out.classifier = models::BertForSequenceClassification(out.config.model, static_cast<int64_t>(out.config.labels.size()));
    weights::load_state_dict(*out.classifier, ckpt.model, /*strict=*/true, model_path);
    out.classifier->to(device);
    out.classifier->eval();
    out.has_mlm_head = out.has_nsp_head = false;
  } else {
    out.pretraining = models::BertForPreTraining(out.config.model);
    weights::load_state_dict(*out.pretraining, ckpt.model, /*strict=*/true, model_path);
    out.pretraining->to(device);
    out.pretraining->eval();
  }
  return out;
}

fs::path hf_dir_of(const std::string& init_from) {
  if (init_from.rfind("hf:", 0) != 0 || init_from.size() == 3)
    throw std::invalid_argument("--init-from: expected hf:DIR (a Hugging Face BERT download), got '" + init_from + "'");
  return init_from.substr(3);
}

LoadedBert load_hf(const fs::path& dir, torch::Device device) {
  auto hf = weights::load_hf_bert_dir(dir);
  const fs::path vocab = dir / "vocab.txt";
  if (!fs::exists(vocab)) throw std::runtime_error(vocab.string() + ": missing (BERT's WordPiece vocabulary)");
  LoadedBert out;
  out.source = dir;
  tokenizers::WordPieceOptions options;
  options.lowercase = hf.lowercase;
  out.tokenizer = tokenizers::WordPiece::from_vocab_file(vocab.string(), options);
  datasets::require_bert_specials(out.tokenizer, vocab.string());
  if (out.tokenizer.vocab_size() > hf.config.vocab_size)
    throw std::runtime_error(vocab.string() + ": " + std::to_string(out.tokenizer.vocab_size()) +
                             " tokens, more than the model's vocab_size " + std::to_string(hf.config.vocab_size) +
                             " (a vocabulary of another model?)");
  out.config = default_pretrain_config();
  out.config.model = hf.config;
  out.config.init_from = "hf:" + dir.string();
  const std::string model_path = (dir / "model.safetensors").string();
  out.has_mlm_head = hf.weights.has_mlm_head;
  out.has_nsp_head = hf.weights.has_nsp_head && hf.weights.has_pooler;
  torch::nn::Module* module = nullptr;
  if (hf.weights.num_labels > 0) {
    out.config = default_classify_config();
    out.config.model = hf.config;
    out.config.init_from = "hf:" + dir.string();
    out.config.labels = hf.labels;
    out.classifier = models::BertForSequenceClassification(hf.config, hf.weights.num_labels);
    module = out.classifier.get();
  } else {
    out.pretraining = models::BertForPreTraining(hf.config);
    module = out.pretraining.get();
  }
  // Heads the file lacks keep their initialisation; everything the file has must fit.
  auto report = weights::load_state_dict(*module, hf.weights.tensors, /*strict=*/false, model_path);
  report.missing.erase(std::remove_if(report.missing.begin(), report.missing.end(),
                                      [&](const std::string& k) {
                                        return k.rfind("cls.", 0) == 0 || k.rfind("bert.pooler.", 0) == 0;
                                      }),
                       report.missing.end());
  if (!report.ok()) throw std::runtime_error(model_path + ": " + report.summary());
  module->to(device);
  module->eval();
  return out;
}

LoadedBert load_model(const std::string& run, const std::string& init_from, const std::string& which,
                      torch::Device device) {
  if (run.empty() == init_from.empty()) throw std::invalid_argument("give one of --run RUN and --init-from hf:DIR");
  return init_from.empty() ? load_run(run, which, device) : load_hf(hf_dir_of(init_from), device);
}

void export_hf(const LoadedBert& m, const fs::path& out, bool force, torch::ScalarType dtype) {
  auto classifier = m.classifier;
  auto pretraining = m.pretraining;
  torch::nn::Module& module = classifier ? static_cast<torch::nn::Module&>(*classifier)
                                         : static_cast<torch::nn::Module&>(*pretraining);
  module.to(torch::kCPU, torch::kFloat);
  auto tensors = weights::state_dict(module);
  for (auto& [key, t] : tensors) t = t.to(dtype);
  const std::vector<std::string> labels = m.classifier ? m.config.labels : std::vector<std::string>{};
  weights::save_hf_bert_dir(out, m.config.model, tensors, labels, force, [&](const fs::path& tmp) {
    std::string vocab;
    for (const auto& t : m.tokenizer.vocab()) vocab += t + "\n";
    write_text(tmp / "vocab.txt", vocab);
    const nlohmann::json tok = {{"do_lower_case", m.tokenizer.options().lowercase},
                                {"model_max_length", m.config.model.max_position_embeddings},
                                {"tokenizer_class", "BertTokenizer"}};
    write_text(tmp / "tokenizer_config.json", tok.dump(2) + "\n");
  });
}

}  // namespace attnzoo::apps
