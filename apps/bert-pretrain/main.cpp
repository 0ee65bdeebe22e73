// bert-pretrain: pretrain BERT with masked language modelling and next-sentence prediction, fill in
// masked words, fine-tune a sentence (pair) classifier, and move weights to and from Hugging Face.
//   bert-pretrain prepare --input FILE... (--vocab VOCAB.txt | --train-vocab N) --out DIR [--max-seq-len 128]
//   bert-pretrain train --data DIR --out RUN [--preset small] [model, masking, training flags] [--resume]
//   bert-pretrain train --data DIR --out RUN --init-from hf:HFDIR        (continue from a Hub BERT)
//   bert-pretrain eval (--run RUN | --init-from hf:HFDIR) --data DIR [--split val|train] [--json]
//   bert-pretrain fill-mask (--run RUN | --init-from hf:HFDIR) --text "In Germany, people speak [MASK]." [--top-k 5] [--json]
//   bert-pretrain finetune --task classify --train FILE.tsv --dev FILE.tsv (--run RUN | --init-from hf:HFDIR) --out RUN2
//   bert-pretrain export --run RUN --format hf --out HFDIR
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "apps/bert-pretrain/run.h"
#include "apps/common/cli.h"
#include "datasets/bert_pretraining.h"
#include "datasets/text_classification.h"
#include "datasets/token_files.h"
#include "engine/checkpoint.h"
#include "engine/metrics.h"
#include "engine/plot.h"
#include "engine/runtime.h"
#include "engine/trainer.h"
#include "losses/bert_loss.h"
#include "weights/hf_bert.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;
using namespace attnzoo;

namespace {

struct PrepareArgs {
  std::vector<std::string> inputs;
  std::string vocab, out;
  std::optional<int> train_vocab;
  bool cased = false, force = false;
  datasets::PairOptions pairs;
  double val_fraction = 0.05;
};

// The flags that shape a model (a new run only).
struct ModelFlags {
  std::optional<int64_t> hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings;
  std::optional<double> dropout;
  bool any() const { return hidden_size || num_layers || num_heads || intermediate_size || max_position_embeddings; }
};

struct TrainArgs {
  std::string data, out, config, preset, init_from;
  bool resume = false, dump_config = false;
  ModelFlags model;
  std::optional<double> mask_prob;
  std::optional<int64_t> max_predictions;
  bool whole_word = false, static_masking = false;
  apps::TrainFlags train;
};

struct EvalArgs {
  std::string run, init_from, data, checkpoint = "best", split = "val", device = "auto", dtype = "fp32";
  int64_t batch_size = 32, threads = 0;
  bool json = false;
};

struct FillMaskArgs {
  std::string run, init_from, text, checkpoint = "best", device = "auto", dtype = "fp32";
  int64_t top_k = 5, threads = 0;
  bool json = false;
};

struct FinetuneArgs {
  std::string task = "classify", train_file, dev_file, run, init_from, out, config, checkpoint = "best";
  std::optional<int64_t> max_seq_len;
  std::optional<double> dropout;
  bool resume = false, dump_config = false, json = false;
  apps::TrainFlags train;
};

struct ExportArgs {
  std::string run, checkpoint = "best", format = "hf", out, dtype = "fp32";
  bool force = false;
};

std::string fixed(double v, int digits = 4) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// ---------------------------------------------------------------- prepare

tokenizers::WordPiece prepare_tokenizer(const PrepareArgs& a) {
  if (a.vocab.empty() == !a.train_vocab) throw std::invalid_argument("give one of --vocab VOCAB.txt and --train-vocab N");
  tokenizers::WordPieceOptions options;
  options.lowercase = !a.cased;
  if (!a.vocab.empty()) {
    auto tok = fs::is_directory(a.vocab) ? tokenizers::WordPiece::load(a.vocab)
                                         : tokenizers::WordPiece::from_vocab_file(a.vocab, options);
    datasets::require_bert_specials(tok, a.vocab);
    return tok;
  }
  // A WordPiece vocabulary of N tokens trained on the sentences of the inputs.
  std::vector<std::string> lines;
  for (const auto& path : a.inputs) {
    std::istringstream in(datasets::read_text_file(path));
    const size_t before = lines.size();
    for (std::string line; std::getline(in, line);)
      if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
    if (lines.size() == before)
      throw std::runtime_error(path + ": no sentences (expected one sentence per line, a blank line between documents)");
  }
  try {
    return tokenizers::WordPiece::train(lines, *a.train_vocab, options);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--train-vocab: ") + e.what());
  }
}

void prepare(const PrepareArgs& a) {
  const auto& p = a.pairs;
  if (p.max_seq_len < 5) throw std::invalid_argument("--max-seq-len must be at least 5 ([CLS] A [SEP] B [SEP]), got " + std::to_string(p.max_seq_len));
  if (!(p.short_seq_prob >= 0.0 && p.short_seq_prob <= 1.0)) throw std::invalid_argument("--short-seq-prob must be in [0, 1]");
  if (p.dupe_factor < 1) throw std::invalid_argument("--dupe-factor must be positive");
  if (!(a.val_fraction >= 0.0 && a.val_fraction < 1.0)) throw std::invalid_argument("--val-fraction must be in [0, 1)");
  const auto tok = prepare_tokenizer(a);
  const auto meta = datasets::prepare_pretraining_data(a.inputs, tok, a.pairs, a.val_fraction, a.out, a.force);
  const auto& train = meta["stats"]["train"];
  const auto& val = meta["stats"]["val"];
  const int64_t skipped = train["skipped_short_docs"].get<int64_t>() + val["skipped_short_docs"].get<int64_t>();
  std::cout << "prepared " << a.out << ": WordPiece vocab " << tok.vocab_size() << ", max_seq_len "
            << a.pairs.max_seq_len << "\n  documents: " << train["documents"].get<int64_t>() + val["documents"].get<int64_t>()
            << " (" << skipped << " skipped: fewer than 2 sentences)\n  train: " << train["pairs"] << " pairs ("
            << train["random_next"] << " with a random next sentence, " << train["truncated"] << " truncated, "
            << train["dropped_to_balance"] << " dropped to balance NSP)\n  val: " << val["pairs"] << " pairs"
            << (val["pairs"].get<int64_t>() == 0 ? " (too few documents: evaluation will use the training pairs)" : "")
            << std::endl;
}

// ---------------------------------------------------------------- train

void apply_model_flags(models::BertConfig& m, const ModelFlags& f) {
  auto set = [](auto& field, const auto& flag) {
    if (flag) field = *flag;
  };
  set(m.hidden_size, f.hidden_size), set(m.num_hidden_layers, f.num_layers), set(m.num_attention_heads, f.num_heads);
  set(m.intermediate_size, f.intermediate_size), set(m.max_position_embeddings, f.max_position_embeddings);
  if (f.dropout) m.hidden_dropout_prob = m.attention_probs_dropout_prob = *f.dropout;
}

// The MLM and NSP curves of a run's metrics.jsonl, train and val, as RUN/mlm_nsp_loss.png and
// RUN/mlm_nsp_accuracy.png.
void plot_pretraining_curves(const fs::path& run) {
  const auto rows = engine::read_metrics(run / "metrics.jsonl");
  auto curves = [&](const std::vector<std::string>& keys, const std::string& title, const std::string& ylabel,
                    const fs::path& png) {
    std::vector<engine::Series> series;
    for (const auto& key : keys)
      for (const char* split : {"train", "val"}) {
        engine::Series s{key + " (" + split + ")", {}, {}, std::string(split) == "val"};
        for (const auto& r : rows)
          if (r.value("split", "") == split && r.contains(key) && r[key].is_number()) {
            s.x.push_back(r["step"].get<double>());
            s.y.push_back(r[key].get<double>());
          }
        if (!s.x.empty()) series.push_back(std::move(s));
      }
    engine::plot_lines(series, title, "step", ylabel, png);
  };
  try {
    curves({"mlm_loss", "nsp_loss"}, "BERT pretraining: MLM and NSP loss", "cross-entropy", run / "mlm_nsp_loss.png");
    curves({"mlm_acc", "nsp_acc"}, "BERT pretraining: MLM and NSP accuracy", "accuracy", run / "mlm_nsp_accuracy.png");
  } catch (const std::exception& e) {
    std::cerr << "bert-pretrain: warning: " << e.what() << std::endl;
  }
}

engine::StepOutput pretraining_step(models::BertForPreTraining& model, const datasets::BertBatch& b, torch::Device device) {
  auto out = model->forward(b.input_ids.to(device), b.token_type_ids.to(device), b.attention_mask.to(device),
                            b.mlm_positions.to(device));
  auto l = losses::bert_pretraining_loss(out.prediction_logits, b.mlm_labels.to(device), out.seq_relationship_logits,
                                         b.next_sentence_labels.to(device));
  return {l.loss, {{"mlm_loss", l.mlm_loss}, {"mlm_acc", l.mlm_acc}, {"nsp_loss", l.nsp_loss}, {"nsp_acc", l.nsp_acc}}};
}

int train(const TrainArgs& a) {
  apps::BertRunConfig cfg = apps::default_pretrain_config();
  std::optional<apps::LoadedBert> previous, hf;
  if (a.resume && (!a.preset.empty() || !a.init_from.empty()))
    throw std::invalid_argument("--resume cannot be combined with --preset or --init-from (the model comes from the checkpoint)");
  if (!a.init_from.empty() && (!a.preset.empty() || a.model.any()))
    throw std::invalid_argument("--init-from: the model's shape comes from its config.json; drop --preset and the "
                                "model size flags");
  if (a.resume) {
    if (!engine::CheckpointStore(a.out).latest())
      throw std::runtime_error(a.out + ": --resume, but there is no checkpoint to resume from");
    previous = apps::load_run(a.out, "latest", torch::kCPU);
    if (previous->config.task != "pretrain") throw std::invalid_argument(a.out + ": a fine-tuning run (use finetune --resume)");
    cfg = previous->config;
  } else if (!a.init_from.empty()) {
    hf = apps::load_hf(apps::hf_dir_of(a.init_from), torch::kCPU);
    if (hf->classifier) throw std::invalid_argument("--init-from: " + a.init_from + " is a classifier; pretraining needs a BERT");
    cfg.model = hf->config.model;
    cfg.init_from = a.init_from;
  } else if (!a.preset.empty()) {
    cfg.model = models::bert_preset(a.preset);
  }
  const auto model_before = nlohmann::json(cfg.model);
  bool config_sets_max_predictions = false;
  if (!a.config.empty()) {
    const auto j = apps::read_json_file(a.config);
    config_sets_max_predictions = j.contains("masking") && j["masking"].contains("max_predictions");
    apps::apply_json(cfg, j, a.config);
  }
  if (a.resume && a.model.any()) throw std::invalid_argument("--resume: the model size flags cannot change a trained model");
  apply_model_flags(cfg.model, a.model);
  apps::apply_train_flags(cfg.train, a.train);
  if (a.mask_prob) cfg.masking.mask_prob = *a.mask_prob;
  if (a.max_predictions) cfg.masking.max_predictions = *a.max_predictions;
  if (a.whole_word) cfg.masking.whole_word = true;
  if (a.static_masking) cfg.masking.dynamic = false;
  if (!a.data.empty()) cfg.data = a.data;
  if (cfg.data.empty()) throw std::invalid_argument("--data is required");

  const datasets::BertPretrainingData data(cfg.data);
  const std::string meta_path = (fs::path(cfg.data) / "meta.json").string();
  const auto& tok = data.tokenizer();
  if (previous) {
    if (nlohmann::json(cfg.model) != model_before)
      throw std::invalid_argument("--resume: --config changes the model of " + previous->source.string());
    if (tok.vocab() != previous->tokenizer.vocab())
      throw std::invalid_argument(meta_path + ": its vocabulary differs from the one of " + previous->source.string());
  } else if (hf) {
    if (tok.vocab() != hf->tokenizer.vocab())
      throw std::invalid_argument(meta_path + ": its vocabulary differs from " +
                                  (apps::hf_dir_of(a.init_from) / "vocab.txt").string() +
                                  " (prepare the data with --vocab " + (apps::hf_dir_of(a.init_from) / "vocab.txt").string() + ")");
  } else {
    cfg.model.vocab_size = tok.vocab_size();
  }
  if (data.max_seq_len() > cfg.model.max_position_embeddings)
    throw std::invalid_argument(meta_path + ": max_seq_len " + std::to_string(data.max_seq_len()) +
                                " is longer than the model's " + std::to_string(cfg.model.max_position_embeddings) +
                                " positions (--max-position-embeddings)");
  // BERT caps predictions at about 15 % of the sequence (20 for 128 tokens, 80 for 512).
  if (!previous && !a.max_predictions && !config_sets_max_predictions)
    cfg.masking.max_predictions = static_cast<int64_t>(std::ceil(cfg.masking.mask_prob * static_cast<double>(data.max_seq_len())));
  try {
    cfg.model.validate();
    cfg.masking.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("the model or masking flags: ") + e.what());
  }
  cfg.train.validate();
  if (a.dump_config) {
    std::cout << apps::to_json(cfg).dump(2) << std::endl;
    return 0;
  }

  const auto device = engine::setup_runtime({cfg.train.device, cfg.train.threads});
  torch::manual_seed(cfg.train.seed);
  models::BertForPreTraining model(cfg.model);
  if (hf) {
    weights::load_state_dict(*model, weights::state_dict(*hf->pretraining), /*strict=*/true, a.init_from);
    if (!hf->has_mlm_head || !hf->has_nsp_head)
      std::cout << "note: " << a.init_from << " has no " << (!hf->has_mlm_head ? "MLM head" : "NSP head")
                << "; it starts from a random initialisation" << std::endl;
  }
  model->to(device);
  const bool val_split = data.split(false).size() > 0;
  std::cout << "model: BERT " << cfg.model.num_hidden_layers << " layers, " << cfg.model.hidden_size << " hidden, "
            << cfg.model.num_attention_heads << " heads, vocab " << cfg.model.vocab_size << ", "
            << fixed(static_cast<double>(model->num_parameters()) / 1e6, 2) << "M parameters; data: "
            << data.split(true).size() << " training pairs, " << data.split(false).size() << " validation pairs"
            << (val_split ? "" : " (evaluating on training pairs)") << "; " << at::get_num_threads() << " threads, "
            << cfg.train.dtype << ", " << (device.is_cuda() ? "cuda" : "cpu") << std::endl;

  const auto& t = cfg.train;
  engine::Task task;
  task.train_step = [&](int64_t step, int64_t micro) {
    const int64_t first = (step * t.grad_accum + micro) * t.batch_size;
    return pretraining_step(model, data.train_batch(first, t.batch_size, t.seed, cfg.masking), device);
  };
  task.eval_step = [&](int64_t batch) {
    return pretraining_step(model, data.eval_batch(!val_split, batch * t.batch_size, t.batch_size, t.seed, cfg.masking),
                            device);
  };
  task.config = apps::to_json(cfg);
  task.extra_state = {{"tokenizer", tok.to_json()}};
  task.tokens_per_micro_batch = t.batch_size * data.max_seq_len();
  auto result = engine::train(*model, task, cfg.train, a.out, a.resume, device);
  plot_pretraining_curves(a.out);
  if (result.interrupted) return 128 + result.signal;
  std::cout << "done: " << result.steps_done << " steps in " << fixed(result.seconds, 1) << " s; val loss "
            << fixed(result.last_val_loss) << " (best " << fixed(result.best_val_loss) << "); curves in "
            << (fs::path(a.out) / "mlm_nsp_loss.png").string() << std::endl;
  return 0;
}

// ---------------------------------------------------------------- eval

void eval(const EvalArgs& a) {
  const auto device = engine::setup_runtime({a.device, a.threads});
  auto m = apps::load_model(a.run, a.init_from, a.checkpoint, device);
  if (!m.pretraining) throw std::invalid_argument(m.source.string() + " is a classifier; eval measures MLM and NSP");
  if (!m.has_mlm_head || !m.has_nsp_head)
    throw std::invalid_argument(m.source.string() + " has no " + (!m.has_mlm_head ? "MLM" : "NSP") +
                                " head (a BertModel checkpoint); eval needs both");
  if (a.split != "val" && a.split != "train") throw std::invalid_argument("--split: expected val or train");
  if (a.batch_size < 1) throw std::invalid_argument("--batch-size must be positive");
  const datasets::BertPretrainingData data(a.data);
  if (data.tokenizer().vocab() != m.tokenizer.vocab())
    throw std::invalid_argument((fs::path(a.data) / "meta.json").string() + ": the data's vocabulary differs from " +
                                m.source.string() + "'s");
  if (data.max_seq_len() > m.config.model.max_position_embeddings)
    throw std::invalid_argument((fs::path(a.data) / "meta.json").string() + ": max_seq_len " +
                                std::to_string(data.max_seq_len()) + " is longer than the model's " +
                                std::to_string(m.config.model.max_position_embeddings) + " positions");
  // A Hugging Face model has no masking settings of its own: BERT's cap for the data's length.
  auto masking = m.config.masking;
  if (!a.init_from.empty())
    masking.max_predictions = static_cast<int64_t>(std::ceil(masking.mask_prob * static_cast<double>(data.max_seq_len())));
  const bool train_split = a.split == "train" || data.split(false).size() == 0;
  const int64_t n = data.split(train_split).size();
  torch::NoGradGuard no_grad;
  double mlm_nll = 0, mlm_right = 0, nsp_nll = 0, nsp_right = 0;
  int64_t predictions = 0;
  // Every pair of the split once, with the masks of the training run's evaluations (seed 1337).
  const uint64_t seed = m.config.train.seed;
  for (int64_t first = 0; first < n; first += a.batch_size) {
    const int64_t B = std::min(a.batch_size, n - first);
    const auto b = data.eval_batch(train_split, first, B, seed, masking);
    engine::AutocastGuard autocast(a.dtype, device);
    const auto out = m.pretraining->forward(b.input_ids.to(device), b.token_type_ids.to(device),
                                            b.attention_mask.to(device), b.mlm_positions.to(device));
    const auto l = losses::bert_pretraining_loss(out.prediction_logits, b.mlm_labels.to(device),
                                                 out.seq_relationship_logits, b.next_sentence_labels.to(device));
    mlm_nll += l.mlm_loss * static_cast<double>(l.predictions);
    mlm_right += l.mlm_acc * static_cast<double>(l.predictions);
    predictions += l.predictions;
    nsp_nll += l.nsp_loss * static_cast<double>(B);
    nsp_right += l.nsp_acc * static_cast<double>(B);
  }
  const double P = static_cast<double>(std::max<int64_t>(predictions, 1)), N = static_cast<double>(n);
  const std::string split = train_split ? "train" : "val";
  if (a.json) {
    std::cout << nlohmann::json{{"mlm_loss", mlm_nll / P}, {"mlm_acc", mlm_right / P}, {"nsp_loss", nsp_nll / N},
                                {"nsp_acc", nsp_right / N}, {"pairs", n}, {"predictions", predictions},
                                {"split", split}, {"checkpoint", m.source.string()}}.dump()
              << std::endl;
  } else {
    std::cout << split << " (" << n << " pairs, " << predictions << " masked tokens): mlm_loss " << fixed(mlm_nll / P)
              << ", mlm_acc " << fixed(mlm_right / P) << ", nsp_loss " << fixed(nsp_nll / N) << ", nsp_acc "
              << fixed(nsp_right / N) << " (" << m.source.string() << ")" << std::endl;
  }
}

// ---------------------------------------------------------------- fill-mask

void fill_mask(const FillMaskArgs& a) {
  if (a.text.empty()) throw std::invalid_argument("--text: empty (write [MASK] where a word is missing)");
  if (a.top_k < 1) throw std::invalid_argument("--top-k must be positive");
  const auto device = engine::setup_runtime({a.device, a.threads});
  auto m = apps::load_model(a.run, a.init_from, a.checkpoint, device);
  if (!m.pretraining || !m.has_mlm_head)
    throw std::invalid_argument(m.source.string() + " has no MLM head (cls.predictions): fill-mask needs a pretrained "
                                "BERT, not a BertModel or classifier checkpoint");
  const auto& tok = m.tokenizer;
  const auto enc = tok.encode(a.text);
  const auto T = static_cast<int64_t>(enc.ids.size());
  if (T > m.config.model.max_position_embeddings)
    throw std::invalid_argument("--text: " + std::to_string(T) + " tokens, more than the model's " +
                                std::to_string(m.config.model.max_position_embeddings) + " positions");
  std::vector<int64_t> ids(enc.ids.begin(), enc.ids.end()), masks;
  for (int64_t i = 0; i < T; ++i)
    if (ids[i] == tok.mask_id()) masks.push_back(i);
  if (masks.empty()) throw std::invalid_argument("--text: no " + tok.options().mask_token + " in the text");
  const auto input = torch::tensor(ids, torch::kLong).unsqueeze(0).to(device);
  auto positions = torch::zeros({1, T}, torch::kBool);
  for (int64_t i : masks) positions[0][i] = true;
  torch::NoGradGuard no_grad;
  engine::AutocastGuard autocast(a.dtype, device);
  const auto logits = m.pretraining->forward(input, {}, {}, positions.to(device)).prediction_logits;  // (masks, V)
  // Only the tokenizer's ids compete (a model's vocabulary may be padded past it).
  const auto probs = torch::softmax(logits.narrow(1, 0, tok.vocab_size()).to(torch::kFloat), -1).cpu();
  const auto top = probs.topk(std::min<int64_t>(a.top_k, tok.vocab_size()), -1);
  const auto values = std::get<0>(top), indices = std::get<1>(top);
  std::vector<int> filled(enc.ids.begin(), enc.ids.end());
  for (size_t k = 0; k < masks.size(); ++k) {
    // ordered_json: the keys in the order the issue shows them.
    nlohmann::ordered_json candidates = nlohmann::ordered_json::array();
    for (int64_t j = 0; j < values.size(1); ++j) {
      const auto id = static_cast<int>(indices[k][j].item<int64_t>());
      candidates.push_back({{"token", tok.id_to_token(id)}, {"id", id}, {"prob", values[k][j].item<double>()}});
    }
    filled[masks[k]] = candidates[0]["id"].get<int>();
    if (a.json) {
      std::cout << nlohmann::ordered_json{{"mask_index", masks[k]}, {"candidates", candidates}}.dump() << std::endl;
      continue;
    }
    std::cout << tok.options().mask_token << " at token " << masks[k] << ":" << std::endl;
    for (const auto& c : candidates)
      std::cout << "  " << std::left << std::setw(16) << c["token"].get<std::string>() << " " << fixed(c["prob"].get<double>())
                << std::endl;
  }
  if (!a.json) std::cout << "best: " << tok.decode(filled) << std::endl;
}

// ---------------------------------------------------------------- finetune

int finetune(const FinetuneArgs& a) {
  if (a.task != "classify") throw std::invalid_argument("--task: only classify is supported, got '" + a.task + "'");
  apps::BertRunConfig cfg = apps::default_classify_config();
  std::optional<apps::LoadedBert> source;
  if (a.resume) {
    if (!a.run.empty() || !a.init_from.empty()) throw std::invalid_argument("--resume cannot be combined with --run or --init-from");
    if (!engine::CheckpointStore(a.out).latest())
      throw std::runtime_error(a.out + ": --resume, but there is no checkpoint to resume from");
    source = apps::load_run(a.out, "latest", torch::kCPU);
    if (source->config.task != "classify") throw std::invalid_argument(a.out + ": a pretraining run (use train --resume)");
    cfg = source->config;
  } else {
    if (a.run.empty() == a.init_from.empty())
      throw std::invalid_argument("give one of --run RUN (a pretraining run) and --init-from hf:DIR to start from");
    source = apps::load_model(a.run, a.init_from, a.checkpoint, torch::kCPU);
    cfg.model = source->config.model;
    cfg.init_from = !a.init_from.empty() ? a.init_from : source->source.string();
  }
  bool warmup_given = a.train.warmup_iters.has_value();
  if (!a.config.empty()) {
    const auto j = apps::read_json_file(a.config);
    warmup_given = warmup_given || (j.contains("train") && j["train"].contains("warmup_iters"));
    apps::apply_json(cfg, j, a.config);
  }
  apps::apply_train_flags(cfg.train, a.train);
  if (a.dropout) cfg.model.hidden_dropout_prob = cfg.model.attention_probs_dropout_prob = *a.dropout;
  if (a.max_seq_len) cfg.max_seq_len = *a.max_seq_len;
  else if (!a.resume) cfg.max_seq_len = std::min<int64_t>(cfg.max_seq_len, cfg.model.max_position_embeddings);
  if (!a.train_file.empty()) cfg.train_file = a.train_file;
  if (!a.dev_file.empty()) cfg.dev_file = a.dev_file;
  if (cfg.train_file.empty() || cfg.dev_file.empty()) throw std::invalid_argument("--train FILE.tsv and --dev FILE.tsv are required");
  if (cfg.max_seq_len < 5 || cfg.max_seq_len > cfg.model.max_position_embeddings)
    throw std::invalid_argument("--max-seq-len must be in [5, " + std::to_string(cfg.model.max_position_embeddings) +
                                "] (the model's positions), got " + std::to_string(cfg.max_seq_len));

  const auto train_file = datasets::read_classification_tsv(cfg.train_file);
  const auto dev_file = datasets::read_classification_tsv(cfg.dev_file);
  if (train_file.pairs != dev_file.pairs)
    throw std::invalid_argument(cfg.dev_file + ": " + (dev_file.pairs ? "sentence pairs" : "single sentences") + ", but " +
                                cfg.train_file + " has " + (train_file.pairs ? "sentence pairs" : "single sentences"));
  const auto labels = datasets::label_set(train_file);
  if (a.resume && labels != cfg.labels)
    throw std::invalid_argument(cfg.train_file + ": its labels differ from the run's (" + nlohmann::json(cfg.labels).dump() + ")");
  if (labels.size() < 2) throw std::invalid_argument(cfg.train_file + ": only one label ('" + labels[0] + "'); a classifier needs two or more");
  cfg.labels = labels;
  const auto& tok = source->tokenizer;
  const datasets::TextClassificationSet train_set(train_file, tok, labels, cfg.max_seq_len);
  const datasets::TextClassificationSet dev_set(dev_file, tok, labels, cfg.max_seq_len);
  // Defaults from the data: three epochs, warmup 10 %, an evaluation of the whole dev file per epoch.
  auto& t = cfg.train;
  const int64_t steps_per_epoch = (train_set.size() + t.batch_size * t.grad_accum - 1) / (t.batch_size * t.grad_accum);
  if (t.max_iters == 0) t.max_iters = 3 * steps_per_epoch;
  if (!warmup_given && !a.resume) t.warmup_iters = t.max_iters / 10;
  if (t.eval_interval == 0) t.eval_interval = steps_per_epoch;
  if (t.eval_iters == 0) t.eval_iters = (dev_set.size() + t.batch_size - 1) / t.batch_size;
  cfg.model.validate();
  t.validate();
  if (a.dump_config) {
    std::cout << apps::to_json(cfg).dump(2) << std::endl;
    return 0;
  }

  const auto device = engine::setup_runtime({t.device, t.threads});
  torch::manual_seed(t.seed);
  models::BertForSequenceClassification model(cfg.model, static_cast<int64_t>(labels.size()));
  if (!a.resume) {
    // The encoder (bert.*) from the source; the classifier starts fresh.
    const auto& src_bert = source->classifier ? source->classifier->bert : source->pretraining->bert;
    weights::load_state_dict(*model->bert, weights::state_dict(*src_bert), /*strict=*/true, source->source.string());
  }
  model->to(device);
  std::cout << "fine-tuning " << cfg.init_from << " to classify " << labels.size() << " labels: " << train_set.size()
            << " training examples, " << dev_set.size() << " dev examples ("
            << train_set.truncated() + dev_set.truncated() << " truncated to " << cfg.max_seq_len << " tokens); "
            << t.max_iters << " steps" << std::endl;

  auto step_on = [&](const datasets::TextClassificationSet::Batch& b) {
    auto logits = model->forward(b.input_ids.to(device), b.token_type_ids.to(device), b.attention_mask.to(device));
    auto l = losses::classification_loss(logits, b.labels.to(device));
    return engine::StepOutput{l.loss, {{"accuracy", l.accuracy}}};
  };
  engine::Task task;
  task.train_step = [&](int64_t step, int64_t micro) {
    return step_on(train_set.train_batch((step * t.grad_accum + micro) * t.batch_size, t.batch_size, t.seed));
  };
  task.eval_step = [&](int64_t batch) { return step_on(dev_set.range_batch((batch * t.batch_size) % dev_set.size(), t.batch_size)); };
  task.config = apps::to_json(cfg);
  task.extra_state = {{"tokenizer", tok.to_json()}};
  auto result = engine::train(*model, task, cfg.train, a.out, a.resume, device);
  if (result.interrupted) return 128 + result.signal;

  // The final model's accuracy on every dev example.
  torch::NoGradGuard no_grad;
  model->eval();
  int64_t right = 0;
  for (int64_t first = 0; first < dev_set.size(); first += t.batch_size) {
    const auto b = dev_set.range_batch(first, t.batch_size);
    engine::AutocastGuard autocast(t.dtype, device);
    const auto logits = model->forward(b.input_ids.to(device), b.token_type_ids.to(device), b.attention_mask.to(device));
    right += logits.argmax(-1).cpu().eq(b.labels).sum().item<int64_t>();
  }
  const double acc = static_cast<double>(right) / static_cast<double>(dev_set.size());
  if (a.json)
    std::cout << nlohmann::json{{"dev_accuracy", acc}, {"dev_examples", dev_set.size()}, {"steps", result.steps_done},
                                {"run", a.out}}.dump()
              << std::endl;
  else
    std::cout << "done: " << result.steps_done << " steps in " << fixed(result.seconds, 1) << " s; dev accuracy "
              << fixed(acc) << " (" << right << "/" << dev_set.size() << "); run in " << a.out << std::endl;
  return 0;
}

// ---------------------------------------------------------------- export

void export_model(const ExportArgs& a) {
  if (a.format != "hf") throw std::invalid_argument("--format: expected hf, got '" + a.format + "'");
  if (a.dtype != "fp32" && a.dtype != "bf16") throw std::invalid_argument("--dtype: expected fp32 or bf16, got '" + a.dtype + "'");
  const auto m = apps::load_run(a.run, a.checkpoint, torch::kCPU);
  apps::export_hf(m, a.out, a.force, a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat);
  std::cout << "exported " << m.source.string() << " to " << a.out << " (Hugging Face "
            << (m.classifier ? "BertForSequenceClassification" : "BertForPreTraining")
            << ": config.json, model.safetensors, vocab.txt, tokenizer_config.json)" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bert-pretrain: pretrain BERT (masked LM + next-sentence prediction), fill masks, fine-tune a classifier"};
  apps::one_line_parse_errors(app, "bert-pretrain");
  app.require_subcommand(1);

  PrepareArgs pa;
  auto* prep = app.add_subcommand("prepare", "Tokenize BERT-format text into sentence pairs: DIR/meta.json, train/val.safetensors");
  prep->add_option("--input", pa.inputs, "Text files: one sentence per line, a blank line between documents")->required();
  prep->add_option("--vocab", pa.vocab, "A BERT vocab.txt (e.g. data/bert-base-uncased/vocab.txt) or a saved WordPiece DIR");
  prep->add_option("--train-vocab", pa.train_vocab, "Train a WordPiece vocabulary of N tokens on the inputs instead");
  prep->add_flag("--cased", pa.cased, "Keep case and accents (default: uncased, as bert-base-uncased)");
  prep->add_option("--out", pa.out, "Output data directory")->required();
  prep->add_flag("--force", pa.force, "Replace a non-empty --out");
  prep->add_option("--max-seq-len", pa.pairs.max_seq_len, "Tokens per pair, [CLS] and [SEP]s included")->capture_default_str();
  prep->add_option("--short-seq-prob", pa.pairs.short_seq_prob, "Probability of a shorter random target length")
      ->capture_default_str();
  prep->add_option("--dupe-factor", pa.pairs.dupe_factor, "Passes over the documents, each with other pairs")
      ->capture_default_str();
  prep->add_option("--val-fraction", pa.val_fraction, "Fraction of the documents (the last ones) kept for validation")
      ->capture_default_str();
  prep->add_option("--seed", pa.pairs.seed, "Random seed of the pairs")->capture_default_str();

  TrainArgs ta;
  auto* tr = app.add_subcommand("train", "Pretrain BERT with MLM + NSP (BERT-small by default)");
  tr->add_option("--data", ta.data, "Prepared data directory (from `prepare`)");
  tr->add_option("--out", ta.out, "Run directory: checkpoints, metrics.jsonl, loss curves")->required();
  tr->add_option("--config", ta.config, "JSON file {\"model\": {...}, \"train\": {...}, \"masking\": {...}} (see --dump-config)");
  tr->add_option("--preset", ta.preset, "Model preset: tiny, small, base, large");
  tr->add_option("--init-from", ta.init_from, "hf:DIR: continue pretraining a Hugging Face BERT");
  tr->add_flag("--resume", ta.resume, "Continue from the run's latest checkpoint");
  tr->add_flag("--dump-config", ta.dump_config, "Print the resolved config as JSON and exit");
  tr->add_option("--hidden-size", ta.model.hidden_size, "Hidden width");
  tr->add_option("--num-layers", ta.model.num_layers, "Encoder layers");
  tr->add_option("--num-heads", ta.model.num_heads, "Attention heads");
  tr->add_option("--intermediate-size", ta.model.intermediate_size, "Feed-forward width");
  tr->add_option("--max-position-embeddings", ta.model.max_position_embeddings, "Longest sequence the model takes");
  tr->add_option("--dropout", ta.model.dropout, "Hidden and attention dropout");
  tr->add_option("--mask-prob", ta.mask_prob, "Fraction of tokens to predict (0.15)");
  tr->add_option("--max-predictions", ta.max_predictions, "Predictions per sequence at most (default 15 % of max_seq_len)");
  tr->add_flag("--whole-word-masking", ta.whole_word, "Mask whole words (a token and its ## pieces)");
  tr->add_flag("--static-masking", ta.static_masking, "The same masks every epoch (default: re-drawn each epoch)");
  apps::add_train_flags(tr, ta.train);

  EvalArgs ea;
  auto* ev = app.add_subcommand("eval", "MLM and NSP loss and accuracy of a model on a prepared split");
  ev->add_option("--run", ea.run, "Run directory");
  ev->add_option("--init-from", ea.init_from, "hf:DIR: a Hugging Face BERT instead of a run");
  ev->add_option("--data", ea.data, "Prepared data directory")->required();
  ev->add_option("--checkpoint", ea.checkpoint, "best, latest or step-N")->capture_default_str();
  ev->add_option("--split", ea.split, "val or train (val falls back to train when empty)")->capture_default_str();
  ev->add_option("--batch-size", ea.batch_size, "Pairs per forward")->capture_default_str();
  apps::add_runtime_flags(ev, ea.device, ea.threads, &ea.dtype);
  ev->add_flag("--json", ea.json, "Print the numbers as one JSON object");

  FillMaskArgs fa;
  auto* fm = app.add_subcommand("fill-mask", "Predict the words at [MASK] in a text");
  fm->add_option("--run", fa.run, "Run directory");
  fm->add_option("--init-from", fa.init_from, "hf:DIR: a Hugging Face BERT (config.json, model.safetensors, vocab.txt)");
  fm->add_option("--checkpoint", fa.checkpoint, "best, latest or step-N")->capture_default_str();
  fm->add_option("--text", fa.text, "Text with one or more [MASK]")->required();
  fm->add_option("--top-k", fa.top_k, "Candidates per mask")->capture_default_str();
  apps::add_runtime_flags(fm, fa.device, fa.threads, &fa.dtype);
  fm->add_flag("--json", fa.json, "One JSON object per mask: {\"mask_index\", \"candidates\": [{\"token\", \"id\", \"prob\"}]}");

  FinetuneArgs fta;
  auto* ft = app.add_subcommand("finetune", "Fine-tune a classifier on the [CLS] pooled output");
  ft->add_option("--task", fta.task, "classify (text or text pair -> label)")->capture_default_str();
  ft->add_option("--train", fta.train_file, "TSV: text<TAB>label or text_a<TAB>text_b<TAB>label");
  ft->add_option("--dev", fta.dev_file, "TSV in the same form, for accuracy");
  ft->add_option("--run", fta.run, "A pretraining run to start from");
  ft->add_option("--init-from", fta.init_from, "hf:DIR: a Hugging Face BERT to start from");
  ft->add_option("--checkpoint", fta.checkpoint, "With --run: best, latest or step-N")->capture_default_str();
  ft->add_option("--out", fta.out, "Run directory of the classifier")->required();
  ft->add_option("--config", fta.config, "JSON file {\"train\": {...}} (see --dump-config)");
  ft->add_option("--max-seq-len", fta.max_seq_len, "Longer inputs are truncated (default 128, or the model's positions if fewer)");
  ft->add_option("--dropout", fta.dropout, "Hidden and attention dropout");
  ft->add_flag("--resume", fta.resume, "Continue from the run's latest checkpoint");
  ft->add_flag("--dump-config", fta.dump_config, "Print the resolved config as JSON and exit");
  ft->add_flag("--json", fta.json, "Print the final dev accuracy as JSON");
  apps::add_train_flags(ft, fta.train);

  ExportArgs xa;
  auto* ex = app.add_subcommand("export", "Write a run's model as a Hugging Face BERT directory");
  ex->add_option("--run", xa.run, "Run directory")->required();
  ex->add_option("--checkpoint", xa.checkpoint, "best, latest or step-N")->capture_default_str();
  ex->add_option("--format", xa.format, "hf: config.json + model.safetensors + vocab.txt")->capture_default_str();
  ex->add_option("--out", xa.out, "Output directory (must not exist or be empty, unless --force)")->required();
  ex->add_flag("--force", xa.force, "Replace a non-empty --out");
  ex->add_option("--dtype", xa.dtype, "Weights written as fp32 or bf16")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  return apps::run_guarded("bert-pretrain", [&] {
    if (*prep) prepare(pa);
    if (*tr) return train(ta);
    if (*ev) eval(ea);
    if (*fm) fill_mask(fa);
    if (*ft) return finetune(fta);
    if (*ex) export_model(xa);
    return 0;
  });
}
