#include "apps/gpt-train/run.h"

#include "apps/common/cli.h"

#include <fstream>
#include <stdexcept>

#include "engine/checkpoint.h"
#include "weights/hf_gpt2.h"
#include "weights/peft_lora.h"
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
  nlohmann::json j = {{"model", cfg.model}, {"train", cfg.train}, {"data", cfg.data}};
  if (cfg.lora.enabled()) j["lora"] = cfg.lora;
  return j;
}

void apply_json(GptRunConfig& cfg, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::invalid_argument(source + ": expected a JSON object with \"model\" and \"train\"");
  try {
    for (const auto& [key, value] : j.items()) {
      if (key == "model") engine::merge_json(cfg.model, value, "model");
      else if (key == "train") engine::merge_json(cfg.train, value, "train");
      else if (key == "data" && value.is_string()) cfg.data = value.get<std::string>();
      else if (key == "lora") engine::merge_json(cfg.lora, value, "lora");
      else throw std::invalid_argument("unknown key '" + key + "' (expected model, train, data, lora)");
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(source + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(source + ": " + e.what());
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
  if (out.config.lora.enabled()) {
    try {
      models::add_lora(out.model, out.config.lora);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error((out.checkpoint / "config.json").string() + ": " + e.what());
    }
  }
  weights::load_state_dict(*out.model, ckpt.model, /*strict=*/true, (out.checkpoint / "model.safetensors").string());
  out.model->to(device);
  out.model->eval();
  return out;
}

fs::path hf_dir_of(const std::string& init_from) {
  if (init_from.rfind("hf:", 0) != 0 || init_from.size() == 3)
    throw std::invalid_argument("--init-from: expected hf:DIR (a Hugging Face GPT-2 download), got '" + init_from + "'");
  return init_from.substr(3);
}

std::optional<tokenizers::Tokenizer> hf_tokenizer(const fs::path& dir, const std::string& spec, const fs::path& gpt2_dir) {
  if (!spec.empty()) {
    const fs::path meta = fs::path(spec) / "meta.json";
    if (fs::is_directory(spec) && fs::exists(meta) && !fs::exists(fs::path(spec) / "tokenizer.json"))
      return load_tokenizer(read_json_file(meta.string()).value("tokenizer", nlohmann::json()), meta.string());
    try {
      return tokenizers::Tokenizer::open(spec);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("--tokenizer: " + std::string(e.what()) + " (or a prepared data directory)");
    }
  }
  if (fs::exists(dir / "vocab.json") || fs::exists(dir / "merges.txt"))
    return tokenizers::Tokenizer::open("gpt2:" + dir.string());
  if (fs::is_directory(dir / "attnzoo_tokenizer")) return tokenizers::Tokenizer::open((dir / "attnzoo_tokenizer").string());
  if (fs::exists(gpt2_dir / "encoder.json") || fs::exists(gpt2_dir / "vocab.json"))
    return tokenizers::Tokenizer::open("gpt2:" + gpt2_dir.string());
  return std::nullopt;
}

LoadedRun load_hf(const fs::path& dir, const std::string& tokenizer_spec, const fs::path& gpt2_dir,
                  torch::Device device) {
  auto hf = weights::load_hf_gpt2_dir(dir);
  auto tok = hf_tokenizer(dir, tokenizer_spec, gpt2_dir);
  if (!tok)
    throw std::runtime_error(dir.string() + ": no tokenizer (no vocab.json + merges.txt here, none in " +
                             gpt2_dir.string() + "); pass --tokenizer SPEC");
  if (tok->vocab_size() > hf.config.vocab_size)
    throw std::runtime_error(dir.string() + ": the tokenizer has " + std::to_string(tok->vocab_size()) +
                             " tokens but the model only " + std::to_string(hf.config.vocab_size) +
                             " (a tokenizer of another model?)");
  LoadedRun out;
  out.checkpoint = dir;
  out.config = default_run_config();
  out.config.model = hf.config;
  out.tokenizer = std::move(*tok);
  out.tokenizer_json = out.tokenizer.to_json();
  out.model = models::GPT(out.config.model);
  weights::load_state_dict(*out.model, hf.tensors, /*strict=*/true, (dir / "model.safetensors").string());
  out.model->to(device);
  out.model->eval();
  return out;
}

LoadedRun load_model(const std::string& run, const std::string& init_from, const std::string& which,
                     const std::string& tokenizer_spec, torch::Device device, const std::string& lora_dir) {
  if (run.empty() == init_from.empty()) throw std::invalid_argument("give one of --run RUN and --init-from hf:DIR");
  if (init_from.empty() && !tokenizer_spec.empty())
    throw std::invalid_argument("--tokenizer: only with --init-from (a run's checkpoint holds its tokenizer)");
  LoadedRun out = !init_from.empty() ? load_hf(hf_dir_of(init_from), tokenizer_spec, "data/gpt2", device)
                                     : load_run(run, which, device);
  if (!lora_dir.empty()) {
    if (out.config.lora.enabled())
      throw std::invalid_argument("--lora: " + out.checkpoint.string() + " already has LoRA adapters (rank " +
                                  std::to_string(out.config.lora.rank) + "); give its base instead");
    auto adapter = weights::load_peft_adapter_dir(lora_dir);
    weights::apply_peft_adapter(out.model, adapter, (fs::path(lora_dir) / "adapter_model.safetensors").string());
    out.model->to(device);
    out.model->eval();
    out.config.lora = adapter.config;
  }
  return out;
}

void merge_lora(LoadedRun& run) {
  if (!run.config.lora.enabled())
    throw std::invalid_argument(run.checkpoint.string() + " has no LoRA adapters to merge");
  const auto& ref = run.model->transformer->wte->weight;
  const auto device = ref.device();
  const auto dtype = ref.scalar_type();
  auto merged = models::merged_state_dict(run.model);
  run.config.lora = models::LoraConfig{};
  run.model = models::GPT(run.config.model);
  weights::load_state_dict(*run.model, merged, /*strict=*/true, "merged LoRA model");
  run.model->to(device, dtype);
  run.model->eval();
}

void export_hf(const LoadedRun& run, const fs::path& out, bool force, torch::ScalarType dtype) {
  if (run.config.lora.enabled())
    throw std::invalid_argument(run.checkpoint.string() + " has LoRA adapters: pass --merge-lora (a plain GPT-2 with them "
                                "merged) or use --format peft (the adapters alone)");
  std::optional<int64_t> eos;
  for (const auto& [token, id] : run.tokenizer.special_tokens())
    if (token == "<|endoftext|>") eos = id;
  auto model = run.model;
  model->to(torch::kCPU, torch::kFloat);
  auto tensors = weights::state_dict(*model);
  for (auto& [key, t] : tensors) t = t.to(dtype);
  weights::save_hf_gpt2_dir(out, run.config.model, tensors, eos, force,
                            [&](const fs::path& tmp) {
                              run.tokenizer.save((tmp / "attnzoo_tokenizer").string());
                              // GPT2Tokenizer's files, when they say everything: a merges-mode byte
                              // BPE with GPT-2's pre-split (the files carry no pattern).
                              const auto* bpe = run.tokenizer.bpe();
                              if (bpe && !bpe->ranks_mode() && bpe->pattern() == "gpt2") bpe->save_gpt2(tmp.string());
                            });
}

void export_peft(const LoadedRun& run, const fs::path& out, bool force) {
  if (!run.config.lora.enabled())
    throw std::invalid_argument("--format peft: " + run.checkpoint.string() + " has no LoRA adapters (train with --lora-rank)");
  weights::TensorMap adapters;
  for (const auto& [k, v] : models::lora_state_dict(run.model)) adapters[k] = v.to(torch::kCPU, torch::kFloat);
  weights::save_peft_adapter_dir(out, run.config.lora, adapters, force);
}

}  // namespace attnzoo::apps
