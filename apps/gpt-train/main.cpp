// gpt-train: prepare a text corpus, train a GPT on it, sample from it and evaluate it.
//   gpt-train prepare --input FILE --out DIR
//   gpt-train train --data DIR --out RUN [model and training flags] [--resume]
//   gpt-train train --data DIR --out RUN --init-from hf:HFDIR   (fine-tune a Hugging Face GPT-2)
//   gpt-train sample (--run RUN | --init-from hf:HFDIR) [--prompt TEXT] [--max-new-tokens N]
//   gpt-train eval (--run RUN | --init-from hf:HFDIR) --data DIR [--json]
//   gpt-train train ... --lora-rank R [--lora-alpha A --lora-dropout P --lora-targets c_attn,c_proj,c_fc]
//   gpt-train sample|eval ... --lora ADAPTER_DIR                (a PEFT adapter on the base)
//   gpt-train export --run RUN --format hf --out HFDIR [--merge-lora]
//   gpt-train export --run RUN --format peft --out ADAPTER_DIR  (a LoRA run's adapters alone)
#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "apps/common/cli.h"
#include "apps/gpt-train/run.h"
#include "apps/gpt-train/stop_text.h"
#include "datasets/token_files.h"
#include "engine/checkpoint.h"
#include "engine/runtime.h"
#include "engine/trainer.h"
#include "losses/language_model.h"
#include "models/gpt/generate.h"
#include "models/gpt/lora.h"
#include "tokenizers/utf8.h"
#include "weights/hf_gpt2.h"
#include "weights/peft_lora.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;
using namespace attnzoo;

namespace {

struct PrepareArgs {
  std::string input, out, tokenizer = "char", pattern = "gpt2", gpt2_dir = "data/gpt2", device = "cpu", dtype = "fp32";
  int vocab_size = 4096;
  int64_t threads = 0;
  double val_fraction = 0.1;
};

struct TrainArgs {
  std::string data, out, config, preset, init_from;
  bool resume = false, dump_config = false;
  std::optional<int64_t> n_layer, n_head, n_embd, block_size;
  std::optional<double> dropout;
  apps::TrainFlags train;
  std::optional<int64_t> lora_rank;
  std::optional<double> lora_alpha, lora_dropout;
  std::optional<std::string> lora_targets;
};

struct SampleArgs {
  std::string run, init_from, lora, tokenizer, checkpoint = "best", prompt, prompt_file, device = "auto", dtype = "fp32";
  int64_t max_new_tokens = 500, num_samples = 1, top_k = 0, threads = 0;
  double temperature = 0.8, top_p = 1.0, repetition_penalty = 1.0;
  std::vector<std::string> stop;
  uint64_t seed = 1337;
  bool json = false, no_cache = false, ignore_eot = false;
};

struct EvalArgs {
  std::string run, init_from, lora, tokenizer, data, text, checkpoint = "best", device = "auto", dtype = "fp32", split = "val";
  int64_t batch_size = 32, threads = 0;
  bool json = false;
};

struct ExportArgs {
  std::string run, checkpoint = "best", format = "hf", out, device = "cpu", dtype = "fp32";
  int64_t threads = 0;
  bool force = false, merge_lora = false;
};

// The tokenizer of `prepare`: char and bpe are trained on the corpus, gpt2 is GPT-2's own
// vocabulary, anything else a tokenizer SPEC (saved DIR, gpt2:DIR, tiktoken:FILE).
tokenizers::Tokenizer prepare_tokenizer(const PrepareArgs& a, const std::string& text) {
  if (a.tokenizer == "char") {
    if (auto bad = tokenizers::utf8_invalid_offset(text); bad != std::string::npos)
      throw std::runtime_error(a.input + ": invalid UTF-8 at byte " + std::to_string(bad) +
                               " (the char tokenizer needs UTF-8 text; --tokenizer bpe takes any bytes)");
    return tokenizers::CharTokenizer::train(text);
  }
  if (a.tokenizer == "bpe") {
    try {
      (void)tokenizers::ByteBPE::pattern_regex(a.pattern);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--pattern: ") + e.what());
    }
    if (a.vocab_size < 257 || a.vocab_size > 65536)
      throw std::invalid_argument("--vocab-size must be in [257, 65536] for --tokenizer bpe (256 bytes + <|endoftext|> "
                                  "at least; uint16 token files at most), got " + std::to_string(a.vocab_size));
    return tokenizers::ByteBPE::train({text}, a.vocab_size, a.pattern, {"<|endoftext|>"});
  }
  std::string spec = a.tokenizer;
  if (a.tokenizer == "gpt2") {
    if (!fs::exists(fs::path(a.gpt2_dir) / "encoder.json") && !fs::exists(fs::path(a.gpt2_dir) / "vocab.json"))
      throw std::runtime_error("--tokenizer gpt2: no encoder.json in " + a.gpt2_dir +
                               " (run scripts/setup.sh data, or pass --gpt2-dir DIR)");
    spec = "gpt2:" + a.gpt2_dir;
  }
  try {
    return tokenizers::Tokenizer::open(spec);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("--tokenizer: " + std::string(e.what()) + " (or char, bpe, gpt2)");
  }
}

void prepare(const PrepareArgs& a) {
  // prepare does no tensor work: --device and --dtype are checked (every subcommand takes them),
  // --threads encodes the text in parallel.
  engine::setup_runtime({a.device, a.threads, /*quiet=*/true});
  if (a.dtype != "fp32" && a.dtype != "bf16") throw std::invalid_argument("--dtype: expected fp32 or bf16, got " + a.dtype);
  const int64_t threads = a.threads > 0 ? a.threads : at::get_num_threads();
  if (!(a.val_fraction >= 0.0 && a.val_fraction < 1.0))
    throw std::invalid_argument("--val-fraction must be in [0, 1), got " + std::to_string(a.val_fraction));
  const std::string text = datasets::read_text_file(a.input);
  if (text.empty()) throw std::runtime_error(a.input + ": empty corpus");
  const auto tok = prepare_tokenizer(a, text);
  if (tok.vocab_size() > 65536)
    throw std::runtime_error(a.input + ": the tokenizer has " + std::to_string(tok.vocab_size()) +
                             " tokens, which do not fit uint16 token ids (at most 65536)");
  if (tok.wordpiece()) throw std::invalid_argument("--tokenizer: WordPiece is BERT's tokenizer; a GPT needs char, bpe or gpt2");
  // nanoGPT splits the text (first 90 % train, last 10 % val) and encodes the parts separately;
  // here at a character boundary (for invalid UTF-8, at a byte).
  std::size_t cut = static_cast<std::size_t>(static_cast<double>(text.size()) * (1.0 - a.val_fraction));
  if (tok.chars()) {
    const auto chars = tokenizers::utf8_chars(text);
    const auto n_train = static_cast<size_t>(static_cast<double>(chars.size()) * (1.0 - a.val_fraction));
    cut = 0;
    for (std::size_t i = 0; i < n_train; ++i) cut += chars[i].size();
  } else {
    while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  }
  const auto train = tok.encode_parallel(std::string_view(text).substr(0, cut), threads);
  const auto val = tok.encode_parallel(std::string_view(text).substr(cut), threads);
  nlohmann::json meta = {{"vocab_size", tok.vocab_size()}, {"tokenizer", tok.to_json()}, {"source", a.input},
                         {"train_tokens", train.size()}, {"val_tokens", val.size()}};
  datasets::write_token_dataset(a.out, train, val, meta);
  std::cout << "prepared " << a.out << ": " << tok.type() << " tokenizer, vocab " << tok.vocab_size() << ", train "
            << train.size() << " tokens, val " << val.size() << " tokens" << std::endl;
}

// Flags override the config file, which overrides the defaults (or, with --resume, the checkpoint).
void apply_flags(apps::GptRunConfig& c, const TrainArgs& a) {
  auto set = [](auto& field, const auto& flag) {
    if (flag) field = *flag;
  };
  set(c.model.n_layer, a.n_layer), set(c.model.n_head, a.n_head), set(c.model.n_embd, a.n_embd);
  set(c.model.block_size, a.block_size), set(c.model.dropout, a.dropout);
  apps::apply_train_flags(c.train, a.train);
  if (!a.data.empty()) c.data = a.data;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto end = std::min(s.find(',', start), s.size());
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// The --lora-* flags of a new run. LoRA runs default to no weight decay (Hugging Face
// TrainingArguments' default, with which PEFT's examples train), unless --weight-decay is given.
void apply_lora_flags(apps::GptRunConfig& c, const TrainArgs& a) {
  if (!a.lora_rank) {
    if (a.lora_alpha || a.lora_dropout || a.lora_targets)
      throw std::invalid_argument("--lora-alpha, --lora-dropout and --lora-targets need --lora-rank");
    return;
  }
  if (*a.lora_rank <= 0) throw std::invalid_argument("--lora-rank must be positive, got " + std::to_string(*a.lora_rank));
  c.lora.rank = *a.lora_rank;
  if (a.lora_alpha) c.lora.alpha = *a.lora_alpha;
  if (a.lora_dropout) c.lora.dropout = *a.lora_dropout;
  if (a.lora_targets) c.lora.targets = split_commas(*a.lora_targets);
  if (!a.train.weight_decay) c.train.weight_decay = 0.0;
}

// Peak resident memory of this process so far, in MiB (the kernel's VmHWM).
double peak_rss_mib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// Returns the exit code: 0, or 128 + the signal that interrupted training (after saving).
int train(const TrainArgs& a) {
  apps::GptRunConfig cfg = apps::default_run_config();
  std::optional<apps::LoadedRun> previous;
  if (a.resume && !a.preset.empty())
    throw std::invalid_argument("--preset cannot be combined with --resume (the model comes from the checkpoint)");
  std::optional<weights::HfGpt2> hf;  // --init-from hf:DIR: the model and its weights
  if (!a.init_from.empty()) {
    if (a.resume || !a.preset.empty())
      throw std::invalid_argument("--init-from cannot be combined with --resume or --preset");
    if (a.n_layer || a.n_head || a.n_embd || a.block_size)
      throw std::invalid_argument("--init-from: the model's shape comes from config.json; drop --n-layer, --n-head, "
                                  "--n-embd and --block-size");
    hf = weights::load_hf_gpt2_dir(apps::hf_dir_of(a.init_from));
    cfg.model = hf->config;
  }
  if (a.resume && (a.lora_rank || a.lora_alpha || a.lora_dropout || a.lora_targets))
    throw std::invalid_argument("--lora-*: cannot be combined with --resume (the adapters come from the checkpoint)");
  if (a.resume) {
    // The checkpoint's config is the base; only training settings may change.
    if (!engine::CheckpointStore(a.out).latest())
      throw std::runtime_error(a.out + ": --resume, but there is no checkpoint to resume from");
    previous = apps::load_run(a.out, "latest", torch::kCPU);
    cfg = previous->config;
  } else if (!a.preset.empty()) {
    cfg.model = models::gpt_preset(a.preset);
  }
  const auto model_before = nlohmann::json(cfg.model);
  if (!a.config.empty()) apps::apply_json(cfg, apps::read_json_file(a.config), a.config);
  apply_flags(cfg, a);
  if (!a.resume) apply_lora_flags(cfg, a);
  if (hf && cfg.lora.enabled() && cfg.lora.base_model.empty()) cfg.lora.base_model = apps::hf_dir_of(a.init_from).string();
  if (cfg.data.empty()) throw std::invalid_argument("--data is required");

  datasets::TokenDataset data(cfg.data);
  const std::string meta_path = (fs::path(cfg.data) / "meta.json").string();
  auto tokenizer = apps::load_tokenizer(data.meta().value("tokenizer", nlohmann::json()), meta_path);
  if (a.resume) {
    if (nlohmann::json(cfg.model) != model_before)
      throw std::invalid_argument("--resume: the model flags or --config change the model of " +
                                  previous->checkpoint.string() + " (was " + model_before.dump() + ")");
    if (!(tokenizer == previous->tokenizer))
      throw std::invalid_argument(meta_path + ": its tokenizer differs from the one of " +
                                  previous->checkpoint.string());
  } else if (hf) {
    const fs::path dir = apps::hf_dir_of(a.init_from);
    if (auto own = apps::hf_tokenizer(dir, "", ""); own && !(*own == tokenizer))
      throw std::invalid_argument(meta_path + ": its tokenizer differs from the one in " + dir.string() +
                                  " (prepare the data with that tokenizer: prepare --tokenizer gpt2:DIR or DIR/attnzoo_tokenizer)");
    if (tokenizer.vocab_size() > cfg.model.vocab_size)
      throw std::invalid_argument(meta_path + ": the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                                  " tokens but the model of " + dir.string() + " only " +
                                  std::to_string(cfg.model.vocab_size));
    if (cfg.model.n_embd != hf->config.n_embd || cfg.model.n_layer != hf->config.n_layer || cfg.model.n_head != hf->config.n_head ||
        cfg.model.block_size != hf->config.block_size || cfg.model.vocab_size != hf->config.vocab_size ||
        cfg.model.activation != hf->config.activation || cfg.model.bias != hf->config.bias)
      throw std::invalid_argument("--init-from: --config changes the model of " + dir.string() +
                                  " (only dropout may change)");
  } else {
    // A BPE vocabulary is padded to a multiple of 64, as nanoGPT pads GPT-2's 50257 to 50304:
    // faster matmuls; sampling never draws the padding (see GenerateOptions::vocab_limit).
    cfg.model.vocab_size = data.vocab_size();
    if (tokenizer.bpe()) cfg.model.vocab_size = (cfg.model.vocab_size + 63) / 64 * 64;
  }
  cfg.model.validate();
  cfg.train.validate();
  if (cfg.lora.enabled()) {
    try {
      cfg.lora.validate();
      (void)models::lora_layer_names(cfg.model, cfg.lora.targets);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--lora-*: ") + e.what());
    }
  }
  if (a.dump_config) {
    std::cout << apps::to_json(cfg).dump(2) << std::endl;
    return 0;
  }
  data.require_block(cfg.model.block_size);

  const auto device = engine::setup_runtime({cfg.train.device, cfg.train.threads});
  torch::manual_seed(cfg.train.seed);
  models::GPT model(cfg.model);
  if (hf) weights::load_state_dict(*model, hf->tensors, /*strict=*/true, a.init_from);
  model->to(device);
  if (cfg.lora.enabled()) models::add_lora(model, cfg.lora);  // freezes the base
  if (hf) std::cout << "initialised from " << a.init_from << std::endl;
  std::cout << "model: " << cfg.model.n_layer << " layers, " << cfg.model.n_head << " heads, " << cfg.model.n_embd
            << " dim, block " << cfg.model.block_size << ", vocab " << cfg.model.vocab_size << ", "
            << model->num_parameters(true) / 1e6 << "M parameters (" << models::num_trainable_parameters(*model)
            << " trainable); " << at::get_num_threads() << " threads, " << cfg.train.dtype << ", "
            << (device.is_cuda() ? "cuda" : "cpu") << std::endl;
  if (cfg.lora.enabled())
    std::cout << "LoRA: rank " << cfg.lora.rank << ", alpha " << cfg.lora.alpha << ", dropout " << cfg.lora.dropout
              << " on " << models::lora_layer_names(cfg.model, cfg.lora.targets).size()
              << " layers; the base is frozen" << std::endl;

  const auto& t = cfg.train;
  const int64_t T = cfg.model.block_size;
  auto step_on = [&](const datasets::Batch& b) {
    auto logits = model->forward(b.x.to(device));
    return engine::StepOutput{losses::language_model_loss(logits, b.y.to(device)), {}};
  };
  engine::Task task;
  task.train_step = [&](int64_t step, int64_t micro) {
    return step_on(data.random_batch(true, t.batch_size, T, t.seed, step, micro));
  };
  task.eval_step = [&](int64_t batch) { return step_on(data.random_batch(false, t.batch_size, T, t.seed, -1, batch)); };
  task.config = apps::to_json(cfg);
  task.extra_state = {{"tokenizer", tokenizer.to_json()}};
  task.tokens_per_micro_batch = t.batch_size * T;

  auto result = engine::train(*model, task, cfg.train, a.out, a.resume, device);
  if (result.interrupted) return 128 + result.signal;
  if (cfg.lora.enabled()) {
    // The final adapters alone, in PEFT's format (any checkpoint's: export --format peft).
    weights::TensorMap adapters;
    for (const auto& [k, v] : models::lora_state_dict(model)) adapters[k] = v.to(torch::kCPU, torch::kFloat);
    weights::save_peft_adapter_dir(fs::path(a.out) / "adapter", cfg.lora, adapters, /*force=*/true);
    std::cout << "adapters (PEFT): " << (fs::path(a.out) / "adapter").string() << std::endl;
  }
  std::cout << "done: " << result.steps_done << " steps in " << result.seconds << " s; val loss "
            << result.last_val_loss << " (best " << result.best_val_loss << "); peak RSS " << std::lround(peak_rss_mib())
            << " MiB; run in " << a.out << std::endl;
  return 0;
}

std::vector<int64_t> prompt_ids(const SampleArgs& a, const tokenizers::Tokenizer& tok) {
  if (!a.prompt.empty() && !a.prompt_file.empty())
    throw std::invalid_argument("--prompt and --prompt-file exclude each other");
  std::string text = a.prompt, source = "--prompt";
  if (!a.prompt_file.empty()) {
    text = datasets::read_text_file(a.prompt_file);
    source = a.prompt_file;
  }
  if (text.empty()) {
    // GPT-2 starts from <|endoftext|>, nanoGPT's char models from "\n"; a vocabulary without
    // either starts from token 0.
    for (const auto& [token, id] : tok.special_tokens())
      if (token == "<|endoftext|>") return {id};
    if (const auto* chars = tok.chars()) return {chars->covers("\n") ? chars->encode("\n")[0] : 0};
    return tok.encode("\n");
  }
  try {
    return tok.encode(text);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(source + ": " + e.what());
  }
}

void sample(const SampleArgs& a) {
  const auto device = engine::setup_runtime({a.device, a.threads});
  auto run = apps::load_model(a.run, a.init_from, a.checkpoint, a.tokenizer, device, a.lora);
  if (a.dtype == "bf16") run.model->to(torch::kBFloat16);
  else if (a.dtype != "fp32") throw std::invalid_argument("--dtype: expected fp32 or bf16, got '" + a.dtype + "'");
  if (a.max_new_tokens < 0 || a.num_samples < 1) throw std::invalid_argument("--max-new-tokens >= 0 and --num-samples >= 1");
  if (a.top_p <= 0.0 || a.top_p > 1.0) throw std::invalid_argument("--top-p must be in (0, 1]");
  if (!(a.repetition_penalty > 0.0)) throw std::invalid_argument("--repetition-penalty must be positive");
  auto ids = prompt_ids(a, run.tokenizer);
  const int64_t block = run.config.model.block_size;
  if (static_cast<int64_t>(ids.size()) > block)
    std::cerr << "gpt-train: warning: the prompt has " << ids.size() << " tokens, more than the context of " << block
              << "; the model sees only its last " << block << " (it is printed whole)" << std::endl;
  auto prompt = torch::tensor(ids, torch::kLong).unsqueeze(0).to(device);
  models::GenerateOptions opt{a.max_new_tokens, {a.temperature, a.top_k, a.top_p, a.repetition_penalty}, !a.no_cache,
                              run.tokenizer.vocab_size(), {}};
  // GPT-2's end of text ends a sample, as Hugging Face's generate() stops at eos_token_id.
  int64_t eot = -1;
  for (const auto& [token, id] : run.tokenizer.special_tokens())
    if (token == "<|endoftext|>" && !a.ignore_eot) eot = id;
  torch::Generator gen = at::detail::createCPUGenerator(a.seed);
  if (device.is_cuda()) {
    gen = at::globalContext().defaultGenerator(device);
    gen.set_current_seed(a.seed);
  }
  const std::string prompt_text = run.tokenizer.decode(ids);
  nlohmann::json samples = nlohmann::json::array();
  for (int64_t i = 0; i < a.num_samples; ++i) {
    if (!a.json) std::cout << prompt_text << std::flush;
    apps::StopText stop(a.stop);
    std::vector<int64_t> generated;
    std::string text;
    bool ended = false;
    opt.should_stop = [&](const torch::Tensor&) { return ended || stop.stopped(); };
    models::generate(run.model, prompt, opt, gen, [&](const torch::Tensor& next) {
      const int64_t id = next.item<int64_t>();
      if (id == eot) {
        ended = true;
        return;
      }
      generated.push_back(id);
      text = run.tokenizer.decode(generated);
      const std::string out = stop.update(text);
      if (!a.json) std::cout << out << std::flush;
    });
    const std::string rest = stop.finish(text);
    if (!a.json) std::cout << rest << "\n---------------" << std::endl;
    else samples.push_back(prompt_text + stop.text());
  }
  // A sample may end inside a UTF-8 character (byte-level tokens): such bytes print as U+FFFD.
  if (a.json)
    std::cout << nlohmann::json{{"checkpoint", run.checkpoint.string()}, {"samples", samples}}.dump(
                     -1, ' ', false, nlohmann::json::error_handler_t::replace)
              << std::endl;
}

void eval(const EvalArgs& a) {
  if (a.data.empty() == a.text.empty()) throw std::invalid_argument("eval needs exactly one of --data DIR and --text FILE");
  const auto device = engine::setup_runtime({a.device, a.threads});
  // A Hugging Face directory without a tokenizer of its own is read with the data's tokenizer.
  std::string tokenizer = a.tokenizer;
  if (!a.init_from.empty() && tokenizer.empty() && !apps::hf_tokenizer(apps::hf_dir_of(a.init_from), "", ""))
    tokenizer = a.data;
  auto run = apps::load_model(a.run, a.init_from, a.checkpoint, tokenizer, device, a.lora);
  if (a.batch_size < 1) throw std::invalid_argument("--batch-size must be positive");
  const int64_t T = run.config.model.block_size;
  torch::NoGradGuard no_grad;
  double nll = 0;
  int64_t tokens = 0;
  // Summed cross-entropy of one (B, t) batch of inputs and targets.
  const auto add_batch = [&](const torch::Tensor& x, const torch::Tensor& y) {
    engine::AutocastGuard autocast(a.dtype, device);
    auto logits = run.model->forward(x.to(device));
    nll += losses::language_model_loss(logits, y.to(device)).item<double>() * static_cast<double>(y.numel());
    tokens += y.numel();
  };
  if (!a.text.empty()) {
    // Any text file, tokenized with the model's own tokenizer: every non-overlapping window of
    // T tokens predicts its next tokens; the last, shorter window too.
    const std::string text = datasets::read_text_file(a.text);
    std::vector<int64_t> ids;
    try {
      ids = run.tokenizer.encode(text);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(a.text + ": " + e.what());
    }
    if (ids.size() < 2) throw std::runtime_error(a.text + ": fewer than 2 tokens, nothing to predict");
    const auto all = torch::tensor(ids, torch::kLong);
    const int64_t n = all.numel() - 1;  // predictions
    const int64_t full = n / T;
    for (int64_t w = 0; w < full; w += a.batch_size) {
      const int64_t b = std::min(a.batch_size, full - w);
      add_batch(all.narrow(0, w * T, b * T).view({b, T}), all.narrow(0, w * T + 1, b * T).view({b, T}));
    }
    if (const int64_t tail = n - full * T; tail > 0)
      add_batch(all.narrow(0, full * T, tail).view({1, tail}), all.narrow(0, full * T + 1, tail).view({1, tail}));
  } else {
    datasets::TokenDataset data(a.data);
    const std::string meta_path = (fs::path(a.data) / "meta.json").string();
    if (data.meta().value("tokenizer", nlohmann::json()) != run.tokenizer_json)
      throw std::invalid_argument(meta_path + ": the data was tokenized differently from " + run.checkpoint.string());
    if (a.split != "val" && a.split != "train") throw std::invalid_argument("--split: expected val or train");
    const bool train_split = a.split == "train";
    const int64_t windows = data.num_windows(train_split, T);
    if (windows < 1) data.require_block(T);
    // Every non-overlapping window of the split, so the number is complete and deterministic.
    for (int64_t w = 0; w < windows; w += a.batch_size) {
      auto b = data.window_batch(train_split, a.batch_size, T, w);
      add_batch(b.x, b.y);
    }
  }
  const double loss = nll / static_cast<double>(tokens);
  if (a.json) {
    std::cout << nlohmann::json{{"loss", loss}, {"perplexity", std::exp(loss)}, {"tokens", tokens},
                                {"split", a.text.empty() ? a.split : a.text}, {"checkpoint", run.checkpoint.string()}}.dump()
              << std::endl;
  } else {
    std::cout << (a.text.empty() ? a.split : a.text) << " loss " << loss << ", perplexity " << std::exp(loss) << " over " << tokens
              << " tokens (" << run.checkpoint.string() << ")" << std::endl;
  }
}

void export_model(const ExportArgs& a) {
  if (a.format != "hf" && a.format != "peft")
    throw std::invalid_argument("--format: expected hf or peft, got '" + a.format + "'");
  if (a.merge_lora && a.format != "hf") throw std::invalid_argument("--merge-lora: only with --format hf");
  if (a.dtype != "fp32" && a.dtype != "bf16") throw std::invalid_argument("--dtype: expected fp32 or bf16, got '" + a.dtype + "'");
  // The device and threads only matter for merging; the files are written from the CPU.
  const auto device = engine::setup_runtime({a.device, a.threads});
  auto run = apps::load_run(a.run, a.checkpoint, device);
  if (a.format == "peft") {
    apps::export_peft(run, a.out, a.force);
    std::cout << "exported the LoRA adapters of " << run.checkpoint.string() << " to " << a.out
              << " (PEFT: adapter_config.json, adapter_model.safetensors)" << std::endl;
    return;
  }
  if (a.merge_lora) {
    try {
      apps::merge_lora(run);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--merge-lora: ") + e.what());
    }
  }
  apps::export_hf(run, a.out, a.force, a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat);
  std::cout << "exported " << run.checkpoint.string() << " to " << a.out << " (Hugging Face GPT-2: config.json, "
            << "model.safetensors; vocab " << run.config.model.vocab_size << ")" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gpt-train: train a GPT language model on a text corpus, sample from it, evaluate it"};
  apps::one_line_parse_errors(app, "gpt-train");
  app.require_subcommand(1);

  PrepareArgs pa;
  auto* prep = app.add_subcommand("prepare", "Tokenize a text file into DIR/train.bin, val.bin and meta.json");
  prep->add_option("--input", pa.input, "UTF-8 text file")->required();
  prep->add_option("--out", pa.out, "Output data directory")->required();
  prep->add_option("--tokenizer", pa.tokenizer,
                   "char (nanoGPT's shakespeare_char), bpe (byte-level BPE trained on --input), gpt2 (GPT-2's "
                   "vocabulary from --gpt2-dir), or a tokenizer SPEC: saved DIR, gpt2:DIR, tiktoken:FILE")
      ->capture_default_str();
  prep->add_option("--vocab-size", pa.vocab_size, "--tokenizer bpe: tokens, <|endoftext|> included")->capture_default_str();
  prep->add_option("--pattern", pa.pattern, "--tokenizer bpe: pre-split gpt2, cl100k, o200k or none")->capture_default_str();
  prep->add_option("--gpt2-dir", pa.gpt2_dir, "--tokenizer gpt2: directory with encoder.json + vocab.bpe")
      ->capture_default_str();
  prep->add_option("--val-fraction", pa.val_fraction, "Fraction of the text (its end) kept for validation")
      ->capture_default_str();
  prep->add_option("--threads", pa.threads, "Threads encoding the text (0 = all cores); the ids do not depend on it");
  prep->add_option("--device", pa.device, "Checked only: prepare does no tensor work (auto, cpu or cuda)")->capture_default_str();
  prep->add_option("--dtype", pa.dtype, "Checked only: prepare does no tensor work (fp32 or bf16)")->capture_default_str();

  TrainArgs ta;
  auto* tr = app.add_subcommand("train", "Train a GPT (nanoGPT's CPU recipe by default)");
  tr->add_option("--data", ta.data, "Prepared data directory (from `prepare`)");
  tr->add_option("--out", ta.out, "Run directory: checkpoints, metrics.jsonl, loss.png")->required();
  tr->add_option("--config", ta.config, "JSON file {\"model\": {...}, \"train\": {...}} (see --dump-config)");
  tr->add_option("--preset", ta.preset, "Model preset: tiny, shakespeare-char, shakespeare-char-cpu, gpt2");
  tr->add_option("--init-from", ta.init_from, "hf:DIR: fine-tune a Hugging Face GPT-2 (config.json + model.safetensors)");
  tr->add_flag("--resume", ta.resume, "Continue from the run's latest checkpoint");
  tr->add_flag("--dump-config", ta.dump_config, "Print the resolved config as JSON and exit");
  tr->add_option("--n-layer", ta.n_layer, "Transformer blocks");
  tr->add_option("--n-head", ta.n_head, "Attention heads");
  tr->add_option("--n-embd", ta.n_embd, "Embedding width");
  tr->add_option("--block-size", ta.block_size, "Context length");
  tr->add_option("--dropout", ta.dropout, "Dropout probability");
  apps::add_train_flags(tr, ta.train);
  tr->add_option("--lora-rank", ta.lora_rank, "LoRA: train rank-r adapters only, the base frozen (also writes RUN/adapter, PEFT)");
  tr->add_option("--lora-alpha", ta.lora_alpha, "LoRA: scaling alpha / r (default 8, PEFT's)");
  tr->add_option("--lora-dropout", ta.lora_dropout, "LoRA: dropout on the adapters' input (default 0)");
  tr->add_option("--lora-targets", ta.lora_targets,
                 "LoRA: comma-separated layers, PEFT's suffix rule: c_attn, c_proj (attn and mlp), c_fc, attn.c_proj, "
                 "mlp.c_proj (default c_attn)");

  SampleArgs sa;
  auto* sm = app.add_subcommand("sample", "Generate text from a trained run");
  sm->add_option("--run", sa.run, "Run directory");
  sm->add_option("--init-from", sa.init_from, "hf:DIR: a Hugging Face GPT-2 download instead of a run");
  sm->add_option("--lora", sa.lora, "A PEFT LoRA adapter directory to apply to the model");
  sm->add_option("--tokenizer", sa.tokenizer, "With --init-from: tokenizer SPEC or prepared data DIR (default: DIR's "
                                              "vocab.json + merges.txt, else data/gpt2)");
  sm->add_option("--checkpoint", sa.checkpoint, "best, latest or step-N")->capture_default_str();
  sm->add_option("--prompt", sa.prompt, "Text to continue (default: a newline)");
  sm->add_option("--prompt-file", sa.prompt_file, "File whose text to continue");
  sm->add_option("--max-new-tokens", sa.max_new_tokens, "Tokens to generate per sample")->capture_default_str();
  sm->add_option("--temperature", sa.temperature, "Softmax temperature (0 = greedy)")->capture_default_str();
  sm->add_option("--top-k", sa.top_k, "Keep the k most likely tokens (0 = all)")->capture_default_str();
  sm->add_option("--top-p", sa.top_p, "Nucleus sampling threshold (1 = off)")->capture_default_str();
  sm->add_option("--num-samples", sa.num_samples, "Samples to draw")->capture_default_str();
  sm->add_option("--seed", sa.seed, "Random seed (same seed, same text)")->capture_default_str();
  apps::add_runtime_flags(sm, sa.device, sa.threads, &sa.dtype, "fp32 or bf16 weights");
  sm->add_option("--repetition-penalty", sa.repetition_penalty,
                 "Divide (multiply) the positive (negative) logits of tokens already in the text (1 = off; 1.2 is common)")
      ->capture_default_str();
  sm->add_option("--stop", sa.stop, "End a sample at this text (repeatable; the text itself is not printed)");
  sm->add_flag("--ignore-eot", sa.ignore_eot, "Keep generating past <|endoftext|> (by default it ends a sample)");
  sm->add_flag("--no-cache", sa.no_cache, "Recompute the whole context per token (no KV cache)");
  sm->add_flag("--json", sa.json, "Print {\"samples\": [...]} instead of streaming text");

  EvalArgs ea;
  auto* ev = app.add_subcommand("eval", "Loss and perplexity of a run on a prepared split");
  ev->add_option("--run", ea.run, "Run directory");
  ev->add_option("--init-from", ea.init_from, "hf:DIR: a Hugging Face GPT-2 download instead of a run");
  ev->add_option("--lora", ea.lora, "A PEFT LoRA adapter directory to apply to the model");
  ev->add_option("--tokenizer", ea.tokenizer, "With --init-from: tokenizer SPEC (default: DIR's own, else the data's)");
  ev->add_option("--data", ea.data, "Prepared data directory (or --text)");
  ev->add_option("--text", ea.text, "Any text file, tokenized with the model's tokenizer (or --data)");
  ev->add_option("--checkpoint", ea.checkpoint, "best, latest or step-N")->capture_default_str();
  ev->add_option("--split", ea.split, "val or train")->capture_default_str();
  ev->add_option("--batch-size", ea.batch_size, "Windows per forward")->capture_default_str();
  apps::add_runtime_flags(ev, ea.device, ea.threads, &ea.dtype);
  ev->add_flag("--json", ea.json, "Print {\"loss\", \"perplexity\", \"tokens\"} as JSON");

  ExportArgs xa;
  auto* ex = app.add_subcommand("export", "Write a run's model in another format (hf: Hugging Face GPT-2)");
  ex->add_option("--run", xa.run, "Run directory")->required();
  ex->add_option("--checkpoint", xa.checkpoint, "best, latest or step-N")->capture_default_str();
  ex->add_option("--format", xa.format,
                 "hf: config.json + model.safetensors for GPT2LMHeadModel.from_pretrained; peft: a LoRA run's adapters")
      ->capture_default_str();
  ex->add_flag("--merge-lora", xa.merge_lora, "--format hf of a LoRA run: merge the adapters into the weights");
  ex->add_option("--out", xa.out, "Output directory (must not exist or be empty, unless --force)")->required();
  ex->add_flag("--force", xa.force, "Replace a non-empty --out");
  apps::add_runtime_flags(ex, xa.device, xa.threads, &xa.dtype, "Weights written as fp32 or bf16 (--format hf)");

  CLI11_PARSE(app, argc, argv);
  return apps::run_guarded("gpt-train", [&] {
    if (*prep) prepare(pa);
    if (*tr) return train(ta);
    if (*sm) sample(sa);
    if (*ev) eval(ea);
    if (*ex) export_model(xa);
    return 0;
  });
}
