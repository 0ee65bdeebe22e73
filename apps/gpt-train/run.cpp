#include "apps/gpt-train/run.h"

#include <fstream>
#include <stdexcept>

#include "engine/checkpoint.h"
#include "weights/state_dict.h"

namespace attnzoo::apps {
namespace fs = std::filesystem;

GptRunConfig default_run_config() {
  GptRunConfig cfg;
  cfg.model = models::gpt_shakespeare_char_cpu();
  auto& t = cfg.train;
  t.batch_size = 12;
  t.max_iters = 2000;
  t.lr = 1e-3;
  t.min_lr = 1e-4;
  t.warmup_iters = 100;
  t.lr_decay_iters = 2000;
  t.beta2 = 0.99;  // nanoGPT: a little higher than GPT-2's 0.95 because there are few tokens per step
  t.weight_decay = 0.1;
  t.grad_clip = 1.0;
  t.eval_interval = 250;
  t.eval_iters = 200;
  return cfg;
}

nlohmann::json to_json(const GptRunConfig& cfg) {
  return {{"model", cfg.model}, {"train", cfg.train}, {"data", cfg.data}};
}

void apply_json(GptRunConfig& cfg, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::invalid_argument(source + ": expected a JSON object with \"model\" and \"train\"");
  try {
    for (const auto& [key, value] : j.items()) {
      if (key == "model") engine::merge_json(cfg.model, value, "model");
      else if (key == "train") engine::merge_json(cfg.train, value, "train");
      else if (key == "data" && value.is_string()) cfg.data = value.get<std::string>();
      else throw std::invalid_argument("unknown key '" + key + "' (expected model, train, data)");
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(source + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(source + ": " + e.what());
  }
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": malformed JSON: " + e.what());
  }
}

tokenizers::Tokenizer load_tokenizer(const nlohmann::json& j, const std::string& source) {
  try {
    return tokenizers::Tokenizer::from_json(j);
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": " + e.what());
  }
}

LoadedRun load_run(const fs::path& run, const std::string& which, torch::Device device) {
  if (!fs::is_directory(run)) throw std::runtime_error(run.string() + ": no such run directory");
  engine::CheckpointStore store(run);
  LoadedRun out;
  out.checkpoint = which == "best" && !fs::is_directory(store.root() / "best") ? store.resolve("latest")
                                                                              : store.resolve(which);
  auto ckpt = engine::read_checkpoint(out.checkpoint);
  out.config = default_run_config();
  apply_json(out.config, ckpt.config, (out.checkpoint / "config.json").string());
  if (!ckpt.state.contains("tokenizer"))
    throw std::runtime_error((out.checkpoint / "state.json").string() + ": no \"tokenizer\" entry");
  out.tokenizer_json = ckpt.state["tokenizer"];
  out.tokenizer = load_tokenizer(out.tokenizer_json, (out.checkpoint / "state.json").string());
  if (out.tokenizer.vocab_size() > out.config.model.vocab_size)
    throw std::runtime_error((out.checkpoint / "state.json").string() + ": the tokenizer has " +
                             std::to_string(out.tokenizer.vocab_size()) + " tokens but the model only " +
                             std::to_string(out.config.model.vocab_size));
  out.model = models::GPT(out.config.model);
  weights::load_state_dict(*out.model, ckpt.model, /*strict=*/true, (out.checkpoint / "model.safetensors").string());
  out.model->to(device);
  out.model->eval();
  return out;
}

}  // namespace attnzoo::apps
