#include "apps/seq-lab/experiments.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <stdexcept>

#include "datasets/synthetic.h"
#include "engine/adamw.h"
#include "engine/plot.h"
#include "losses/label_smoothing.h"
#include "models/common/attention.h"
#include "models/rnn/rnn.h"
#include "models/rnn/seq2seq.h"
#include "models/transformer/encoder_classifier.h"
#include "models/transformer/transformer.h"

namespace attnzoo::apps::seqlab {
namespace {

namespace fs = std::filesystem;
using datasets::Example;
using datasets::HeldOut;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void log(const std::string& line) { std::cerr << "seq-lab: " << line << std::endl; }

std::string fixed(double v, int digits = 3) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void check_common(const CommonOptions& c) {
  if (c.steps <= 0) throw std::invalid_argument("--steps must be > 0, got " + std::to_string(c.steps));
  if (c.batch_size <= 0) throw std::invalid_argument("--batch-size must be > 0, got " + std::to_string(c.batch_size));
  if (!(c.lr > 0)) throw std::invalid_argument("--lr must be > 0, got " + std::to_string(c.lr));
  if (c.test_size <= 0) throw std::invalid_argument("--test-size must be > 0, got " + std::to_string(c.test_size));
}

fs::path prepare_out(const std::string& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out)) throw std::runtime_error("--out " + out + ": cannot create the directory");
  return out;
}

void write_json(const nlohmann::json& j, const fs::path& path) {
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  if (!f) throw std::runtime_error(path.string() + ": cannot write");
}

// Rows of token ids -> (B, L_max) int64, right-padded with `pad`.
torch::Tensor pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad, torch::Device device) {
  size_t L = 0;
  for (const auto& r : rows) L = std::max(L, r.size());
  auto t = torch::full({static_cast<int64_t>(rows.size()), static_cast<int64_t>(L)}, pad, torch::kLong);
  auto a = t.accessor<int64_t, 2>();
  for (size_t b = 0; b < rows.size(); ++b)
    for (size_t i = 0; i < rows[b].size(); ++i) a[b][i] = rows[b][i];
  return t.to(device);
}

std::vector<Example> draw(const HeldOut& data, int64_t n, std::mt19937_64& rng) {
  std::vector<Example> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(data.train(rng));
  return out;
}

// Classification examples -> tokens (B, T) and labels (B).
std::pair<torch::Tensor, torch::Tensor> class_batch(const std::vector<Example>& ex, torch::Device device) {
  std::vector<std::vector<int64_t>> inputs;
  std::vector<int64_t> labels;
  for (const auto& e : ex) inputs.push_back(e.input), labels.push_back(e.target.at(0));
  return {pad_rows(inputs, datasets::kPadId, device), torch::tensor(labels, torch::kLong).to(device)};
}

// A toy training loop: AdamW (engine/adamw.h, no weight decay), linear warmup over the first 10 %
// of the steps, gradient clipping at norm 1 (the Elman RNN needs it). Returns the mean loss of the
// last 10 % of the steps.
double fit(torch::nn::Module& model, int64_t steps, double lr, const std::function<torch::Tensor(int64_t)>& loss_of) {
  model.train();
  auto [decay, no_decay] = engine::weight_decay_groups(model);
  engine::AdamW opt(decay, no_decay, {.weight_decay = 0.0});
  const int64_t warmup = std::max<int64_t>(1, steps / 10), tail = std::max<int64_t>(1, steps / 10);
  double tail_sum = 0;
  for (int64_t step = 0; step < steps; ++step) {
    auto loss = loss_of(step);
    TORCH_CHECK(std::isfinite(loss.item<double>()), "the loss became non-finite at step ", step,
                " (try a smaller --lr)");
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(model.parameters(), 1.0);
    opt.step(lr * std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(warmup)));
    if (step >= steps - tail) tail_sum += loss.item<double>();
  }
  model.eval();
  return tail_sum / static_cast<double>(tail);
}

// A classifier of token sequences, whatever its architecture: the training loss and the logits.
struct Classifier {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> loss;  // tokens (B, T), labels (B)
  std::function<torch::Tensor(const torch::Tensor&)> logits;                      // tokens -> (B, K)
  std::function<std::vector<torch::Tensor>(const torch::Tensor&)> attention;      // transformer only
};

// rnn, lstm: the last hidden state -> linear. lstm-soft, lstm-hard: the LSTM encoder-decoder of
// models/rnn/seq2seq.h decoding one token (the class) while attending over the sequence, soft or
// hard (REINFORCE). transformer: the encoder classifier reading the last position.
Classifier make_classifier(const std::string& name, int64_t V, int64_t K, int64_t max_len,
                           const models::EncoderClassifierConfig& transformer_overrides) {
  Classifier c;
  if (name == "rnn" || name == "lstm") {
    auto m = models::RecurrentClassifier(models::RecurrentConfig{
        .cell = name, .vocab_size = V, .embed_dim = 32, .hidden_size = 64, .num_layers = 1, .num_classes = K});
    c.module = m.ptr();
    c.logits = [m](const torch::Tensor& x) mutable { return m(x); };
  } else if (name == "lstm-soft" || name == "lstm-hard") {
    // The class is the one target token; K doubles as the decoder's bos.
    auto m = models::Seq2Seq(models::Seq2SeqConfig{.src_vocab_size = V, .tgt_vocab_size = K + 1, .embed_dim = 32,
                                                   .hidden_size = 64, .attention_dim = 64,
                                                   .attention = name == "lstm-soft" ? "soft" : "hard", .bos_id = K});
    auto baseline = models::MovingAverageBaseline();
    c.module = m.ptr();
    auto bos = [K](const torch::Tensor& x) { return torch::full({x.size(0), 1}, K, x.options()); };
    c.loss = [m, baseline, bos](const torch::Tensor& x, const torch::Tensor& y) mutable {
      baseline->to(x.device());
      return models::seq2seq_loss(m->forward(x, torch::Tensor(), bos(x)), y.unsqueeze(1), -1, baseline.get(), 0.01);
    };
    c.logits = [m, bos, K](const torch::Tensor& x) mutable {
      return m->forward(x, torch::Tensor(), bos(x)).logits.squeeze(1).narrow(1, 0, K);  // (B, K)
    };
  } else if (name == "transformer") {
    auto cfg = transformer_overrides;
    cfg.vocab_size = V, cfg.num_classes = K, cfg.max_len = max_len;
    auto m = models::EncoderClassifier(cfg);
    c.module = m.ptr();
    c.logits = [m](const torch::Tensor& x) mutable { return m(x).logits; };
    c.attention = [m](const torch::Tensor& x) mutable { return m->forward(x, torch::Tensor(), true).attention; };
  } else {
    throw std::invalid_argument("unknown model '" + name + "'");
  }
  if (!c.loss) {
    auto logits = c.logits;
    c.loss = [logits](const torch::Tensor& x, const torch::Tensor& y) { return torch::cross_entropy_loss(logits(x), y); };
  }
  return c;
}

double accuracy(Classifier& c, const std::vector<Example>& test, torch::Device device) {
  torch::NoGradGuard no_grad;
  c.module->eval();
  int64_t right = 0;
  for (size_t i = 0; i < test.size(); i += 250) {
    std::vector<Example> part(test.begin() + static_cast<long>(i), test.begin() + static_cast<long>(std::min(i + 250, test.size())));
    auto [x, y] = class_batch(part, device);
    right += c.logits(x).argmax(1).eq(y).sum().item<int64_t>();
  }
  return static_cast<double>(right) / static_cast<double>(test.size());
}

// Trains c on batches from data for opt.steps steps; returns the final training loss.
double train_classifier(Classifier& c, const HeldOut& data, const CommonOptions& opt, uint64_t data_seed) {
  c.module->to(opt.device);
  std::mt19937_64 rng(data_seed);
  return fit(*c.module, opt.steps, opt.lr, [&](int64_t) {
    auto [x, y] = class_batch(draw(data, opt.batch_size, rng), opt.device);
    return c.loss(x, y);
  });
}

// Stable per-run seeds: the user's seed mixed with the run's name and size.
uint64_t run_seed(uint64_t seed, const std::string& name, int64_t n) {
  return seed * 1000003ULL + std::hash<std::string>{}(name) % 100003ULL * 31ULL + static_cast<uint64_t>(n);
}

std::vector<std::vector<double>> to_rows(const torch::Tensor& m) {  // (R, C) -> rows
  auto t = m.detach().to(torch::kCPU, torch::kDouble).contiguous();
  std::vector<std::vector<double>> rows(static_cast<size_t>(t.size(0)));
  for (int64_t r = 0; r < t.size(0); ++r) {
    auto row = t[r];
    rows[r].assign(row.data_ptr<double>(), row.data_ptr<double>() + t.size(1));
  }
  return rows;
}

std::string token_label(int64_t id) {
  if (id == datasets::kPadId) return "_";
  if (id == datasets::kBosId) return "<s>";
  if (id == datasets::kEosId) return "</s>";
  if (id == datasets::kQueryId) return "?";
  const int64_t s = id - datasets::kFirstSymbolId;
  return s < 26 ? std::string(1, static_cast<char>('a' + s)) : std::to_string(s);
}

std::vector<std::string> token_labels(const std::vector<int64_t>& ids) {
  std::vector<std::string> out;
  for (auto id : ids) out.push_back(token_label(id));
  return out;
}

std::vector<std::string> position_labels(int64_t n) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(std::to_string(i));
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

void check_names(const std::vector<std::string>& given, const std::vector<std::string>& known, const std::string& flag) {
  if (given.empty()) throw std::invalid_argument(flag + ": expected at least one of " + join(known));
  for (const auto& g : given)
    if (std::find(known.begin(), known.end(), g) == known.end())
      throw std::invalid_argument(flag + ": unknown model '" + g + "' (expected " + join(known) + ")");
}

}  // namespace

const std::vector<std::string>& recall_model_names() {
  static const std::vector<std::string> names{"rnn", "lstm", "lstm-soft", "lstm-hard", "transformer"};
  return names;
}

const std::vector<std::string>& seq2seq_model_names() {
  static const std::vector<std::string> names{"transformer", "lstm-soft"};
  return names;
}

nlohmann::json run_recall(const RecallOptions& o) {
  check_common(o.common);
  check_names(o.models, recall_model_names(), "--models");
  if (o.distances.empty()) throw std::invalid_argument("--distances: expected at least one distance");
  for (auto n : o.distances)
    if (n < 0 || n > 4096) throw std::invalid_argument("--distances: each N must be in [0, 4096], got " + std::to_string(n));
  if (o.num_keys < 2) throw std::invalid_argument("--keys must be >= 2, got " + std::to_string(o.num_keys));
  const auto dir = prepare_out(o.common.out);
  const auto t_all = Clock::now();
  nlohmann::json results = nlohmann::json::array(), table = nlohmann::json::object();
  std::vector<engine::Series> series;
  for (const auto& name : o.models) {
    engine::Series s{name, {}, {}, true};
    for (int64_t N : o.distances) {
      const datasets::RecallConfig task{.distance = N, .num_keys = o.num_keys};
      HeldOut data([task](std::mt19937_64& r) { return datasets::make_recall(task, r); }, o.common.test_size,
                   o.common.seed * 7919ULL + static_cast<uint64_t>(N));
      torch::manual_seed(run_seed(o.common.seed, name, N));
      auto c = make_classifier(name, task.vocab_size(), o.num_keys, N + 2, {});
      const auto t0 = Clock::now();
      const double loss = train_classifier(c, data, o.common, run_seed(o.common.seed + 1, name, N));
      const double secs = seconds_since(t0);
      const double acc = accuracy(c, data.test(), o.common.device);
      log("recall " + name + " N=" + std::to_string(N) + ": accuracy " + fixed(acc) + ", loss " + fixed(loss) + " (" +
          fixed(secs, 1) + " s)");
      results.push_back({{"model", name}, {"distance", N}, {"accuracy", acc}, {"train_loss", loss}, {"train_seconds", secs}});
      table[name].push_back(acc);
      s.x.push_back(static_cast<double>(N)), s.y.push_back(acc);
    }
    series.push_back(s);
  }
  const bool png = engine::plot_lines(series, "recall: test accuracy vs distance N (" + std::to_string(o.common.steps) + " steps; chance " +
                                          fixed(1.0 / static_cast<double>(o.num_keys), 3) + ")",
                                      "N (distractors between key and query)", "test accuracy", dir / "recall.png");
  nlohmann::json j{{"experiment", "recall"},
                   {"steps", o.common.steps},
                   {"batch_size", o.common.batch_size},
                   {"lr", o.common.lr},
                   {"seed", o.common.seed},
                   {"num_keys", o.num_keys},
                   {"chance", 1.0 / static_cast<double>(o.num_keys)},
                   {"test_size", o.common.test_size},
                   {"threads", torch::get_num_threads()},
                   {"distances", o.distances},
                   {"models", o.models},
                   {"accuracy", table},
                   {"results", results},
                   {"seconds", seconds_since(t_all)},
                   {"png", png ? nlohmann::json((dir / "recall.png").string()) : nlohmann::json()}};
  write_json(j, dir / "recall.json");
  return j;
}

namespace {

struct Seq2SeqBatch {
  torch::Tensor src, src_lengths, tgt_in, tgt;  // (B, S), (B), (B, T), (B, T) with -1 after eos
};

Seq2SeqBatch seq2seq_batch(const std::vector<Example>& ex, torch::Device device) {
  std::vector<std::vector<int64_t>> src, tgt, tgt_in;
  std::vector<int64_t> lengths;
  for (const auto& e : ex) {
    src.push_back(e.input);
    lengths.push_back(static_cast<int64_t>(e.input.size()));
    tgt.push_back(e.target);
    std::vector<int64_t> in{datasets::kBosId};
    in.insert(in.end(), e.target.begin(), e.target.end() - 1);
    tgt_in.push_back(in);
  }
  return {pad_rows(src, datasets::kPadId, device), torch::tensor(lengths, torch::kLong).to(device),
          pad_rows(tgt_in, datasets::kPadId, device), pad_rows(tgt, -1, device)};
}

// A sequence-to-sequence model: training loss, greedy decoding -> tokens (B, ≤ max_len) and the
// cross-attention (B, T, S) (heads averaged, the last decoder layer for the Transformer).
struct Translator {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const Seq2SeqBatch&)> loss;
  std::function<std::pair<torch::Tensor, torch::Tensor>(const Seq2SeqBatch&, int64_t)> decode;
};

Translator make_translator(const std::string& name, int64_t V) {
  Translator t;
  if (name == "transformer") {
    models::TransformerConfig cfg{.src_vocab_size = V, .tgt_vocab_size = V, .d_model = 64, .n_head = 4,
                                  .num_encoder_layers = 2, .num_decoder_layers = 1, .d_ff = 128, .dropout = 0.0,
                                  .pad_id = datasets::kPadId, .bos_id = datasets::kBosId, .eos_id = datasets::kEosId};
    auto m = models::Transformer(cfg);
    t.module = m.ptr();
    t.loss = [m](const Seq2SeqBatch& b) mutable {
      return losses::label_smoothed_cross_entropy(m(b.src, b.tgt_in).logits, b.tgt, 0.1, -1);
    };
    t.decode = [m](const Seq2SeqBatch& b, int64_t max_len) mutable {
      auto d = m->greedy_decode(b.src, max_len);
      return std::pair{d.tokens, d.cross_attention.mean(1)};  // (B, T), (B, T, S)
    };
  } else if (name == "lstm-soft") {
    auto m = models::Seq2Seq(models::Seq2SeqConfig{.src_vocab_size = V, .tgt_vocab_size = V, .embed_dim = 32,
                                                   .hidden_size = 64, .attention_dim = 64, .attention = "soft",
                                                   .bos_id = datasets::kBosId});
    t.module = m.ptr();
    t.loss = [m](const Seq2SeqBatch& b) mutable {
      return models::seq2seq_loss(m(b.src, b.src_lengths, b.tgt_in), b.tgt, -1);
    };
    t.decode = [m](const Seq2SeqBatch& b, int64_t max_len) mutable {
      auto d = m->greedy_decode(b.src, b.src_lengths, max_len);
      return std::pair{d.tokens, d.attention};
    };
  } else {
    throw std::invalid_argument("unknown model '" + name + "'");
  }
  return t;
}

// The source position each output step should read: copy t, reverse L − 1 − t; none for sort.
int64_t expected_source(datasets::Seq2SeqTask task, int64_t t, int64_t L) {
  if (task == datasets::Seq2SeqTask::copy) return t;
  if (task == datasets::Seq2SeqTask::reverse) return L - 1 - t;
  return -1;
}

}  // namespace

nlohmann::json run_seq2seq(const Seq2SeqOptions& o) {
  check_common(o.common);
  datasets::Seq2SeqTask task_kind;
  try {
    task_kind = datasets::parse_seq2seq_task(o.task);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--task: ") + e.what());
  }
  check_names(o.models, seq2seq_model_names(), "--models");
  const datasets::Seq2SeqTaskConfig task{.task = task_kind, .min_len = o.min_len, .max_len = o.max_len,
                                         .num_symbols = o.num_symbols};
  try {
    task.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--min-len/--max-len/--symbols: ") + e.what());
  }
  const auto dir = prepare_out(o.common.out);
  HeldOut data([task](std::mt19937_64& r) { return datasets::make_seq2seq(task, r); }, o.common.test_size,
               o.common.seed * 7919ULL + 17);
  const auto& test = data.test();
  const auto test_batch = seq2seq_batch(test, o.common.device);
  const int64_t max_out = o.max_len + 1;  // the longest target, eos included
  nlohmann::json results = nlohmann::json::array();
  for (const auto& name : o.models) {
    torch::manual_seed(run_seed(o.common.seed, name, 0));
    auto m = make_translator(name, task.vocab_size());
    m.module->to(o.common.device);
    std::mt19937_64 rng(run_seed(o.common.seed + 1, name, 0));
    const auto t0 = Clock::now();
    const double loss = fit(*m.module, o.common.steps, o.common.lr,
                            [&](int64_t) { return m.loss(seq2seq_batch(draw(data, o.common.batch_size, rng), o.common.device)); });
    const double secs = seconds_since(t0);
    torch::NoGradGuard no_grad;
    m.module->eval();
    auto [tokens, attn] = m.decode(test_batch, max_out);
    tokens = tokens.cpu(), attn = attn.to(torch::kCPU, torch::kFloat);
    auto tok = tokens.accessor<int64_t, 2>();
    int64_t exact = 0, aligned = 0, steps_checked = 0, right_tokens = 0, all_tokens = 0;
    for (size_t b = 0; b < test.size(); ++b) {
      const auto& target = test[b].target;
      const int64_t L = static_cast<int64_t>(test[b].input.size());
      bool ok = true;
      for (size_t t = 0; t < target.size(); ++t) {
        const bool hit = static_cast<int64_t>(t) < tokens.size(1) && tok[b][t] == target[t];
        ok &= hit, right_tokens += hit, ++all_tokens;
        const int64_t want = expected_source(task_kind, static_cast<int64_t>(t), L);
        if (want >= 0 && static_cast<int64_t>(t) < std::min<int64_t>(L, attn.size(1))) {
          aligned += attn[b][t].narrow(0, 0, L).argmax().item<int64_t>() == want;
          ++steps_checked;
        }
      }
      exact += ok;
    }
    const double em = static_cast<double>(exact) / static_cast<double>(test.size());
    // The cross-attention of the first test example, output steps (eos included) × source positions.
    const auto& ex = test[0];
    const int64_t T0 = std::min<int64_t>(static_cast<int64_t>(ex.target.size()), attn.size(1));
    const int64_t S0 = static_cast<int64_t>(ex.input.size());
    std::vector<int64_t> out_ids;
    for (int64_t t = 0; t < T0; ++t) out_ids.push_back(tok[0][t]);
    const auto png = dir / ("seq2seq-" + o.task + "-" + name + "-attention.png");
    const bool drew = engine::plot_heatmap(
        {.values = to_rows(attn[0].narrow(0, 0, T0).narrow(1, 0, S0)),
         .title = o.task + ", " + name + ": cross-attention of one held-out example",
         .xlabel = "source position (input token)",
         .ylabel = "output",
         .row_labels = token_labels(out_ids),
         .col_labels = token_labels(ex.input)},
        png);
    nlohmann::json r{{"model", name},
                     {"exact_match", em},
                     {"token_accuracy", static_cast<double>(right_tokens) / static_cast<double>(all_tokens)},
                     {"train_loss", loss},
                     {"train_seconds", secs},
                     {"attention_png", drew ? nlohmann::json(png.string()) : nlohmann::json()}};
    // Share of output steps whose strongest cross-attention is on the source token they copy.
    r["attention_on_expected_source"] =
        steps_checked ? nlohmann::json(static_cast<double>(aligned) / static_cast<double>(steps_checked)) : nlohmann::json();
    log("seq2seq " + o.task + " " + name + ": exact match " + fixed(em) + ", loss " + fixed(loss) + " (" + fixed(secs, 1) +
        " s)");
    results.push_back(r);
  }
  nlohmann::json j{{"experiment", "seq2seq"},
                   {"task", o.task},
                   {"steps", o.common.steps},
                   {"batch_size", o.common.batch_size},
                   {"lr", o.common.lr},
                   {"seed", o.common.seed},
                   {"min_len", o.min_len},
                   {"max_len", o.max_len},
                   {"num_symbols", o.num_symbols},
                   {"test_size", o.common.test_size},
                   {"held_out", true},
                   {"threads", torch::get_num_threads()},
                   {"results", results}};
  write_json(j, dir / ("seq2seq-" + o.task + ".json"));
  return j;
}

nlohmann::json run_masks(const MasksOptions& o) {
  check_common(o.common);
  if (o.distance < 0 || o.distance > 200) throw std::invalid_argument("--distance must be in [0, 200], got " + std::to_string(o.distance));
  if (o.window < 0) throw std::invalid_argument("--window must be >= 0, got " + std::to_string(o.window));
  const auto dir = prepare_out(o.common.out);
  const int64_t T = o.distance + 2, K = 8;
  const datasets::RecallConfig task{.distance = o.distance, .num_keys = K};
  HeldOut data([task](std::mt19937_64& r) { return datasets::make_recall(task, r); }, o.common.test_size,
               o.common.seed * 7919ULL + 29);
  nlohmann::json results = nlohmann::json::array();
  for (const std::string kind : {"full", "causal", "local"}) {
    torch::Tensor mask = kind == "full"     ? torch::ones({T, T}, torch::kBool)
                         : kind == "causal" ? models::causal_mask(T, T, torch::kCPU)
                                            : models::local_mask(T, T, o.window, torch::kCPU);
    const std::string what = kind == "local" ? "local (window +-" + std::to_string(o.window) + ")" : kind;
    const auto mask_png = dir / ("mask-" + kind + ".png");
    engine::plot_heatmap({.values = to_rows(mask.to(torch::kFloat)), .title = what + " mask: query i may attend key j",
                          .xlabel = "key j", .ylabel = "query i", .row_labels = position_labels(T),
                          .col_labels = position_labels(T)},
                         mask_png);
    models::EncoderClassifierConfig cfg{.d_model = 64, .n_head = 4, .num_layers = 2, .d_ff = 128,
                                        .attention = kind == "full" ? "global" : kind, .window = o.window};
    torch::manual_seed(run_seed(o.common.seed, kind, T));
    auto c = make_classifier("transformer", task.vocab_size(), K, T, cfg);
    const auto t0 = Clock::now();
    const double loss = train_classifier(c, data, o.common, run_seed(o.common.seed + 1, kind, T));
    const double secs = seconds_since(t0);
    const double acc = accuracy(c, data.test(), o.common.device);
    torch::NoGradGuard no_grad;
    auto [x, y] = class_batch({data.test()[0]}, o.common.device);
    auto layers = c.attention(x);
    const auto attn_png = dir / ("attention-" + kind + ".png");
    engine::plot_heatmap({.values = to_rows(layers.back()[0].mean(0)),
                          .title = what + ": trained attention, last layer (acc " + fixed(acc, 2) + ")",
                          .xlabel = "key (token)", .ylabel = "query",
                          .row_labels = token_labels(data.test()[0].input),
                          .col_labels = token_labels(data.test()[0].input)},
                         attn_png);
    log("masks " + kind + ": recall accuracy " + fixed(acc) + " at N=" + std::to_string(o.distance) + ", loss " +
        fixed(loss) + " (" + fixed(secs, 1) + " s)");
    results.push_back({{"mask", kind}, {"accuracy", acc}, {"train_loss", loss}, {"train_seconds", secs},
                       {"mask_png", mask_png.string()}, {"attention_png", attn_png.string()}});
  }
  nlohmann::json j{{"experiment", "masks"}, {"task", "recall"},     {"distance", o.distance},
                   {"window", o.window},    {"layers", 2},          {"steps", o.common.steps},
                   {"seed", o.common.seed}, {"chance", 1.0 / K},    {"threads", torch::get_num_threads()},
                   {"results", results}};
  write_json(j, dir / "masks.json");
  return j;
}

nlohmann::json run_local_vs_global(const LocalGlobalOptions& o) {
  check_common(o.common);
  const datasets::NearFarConfig task{.length = o.length, .near_max = o.near_max, .far_min = o.far_min};
  try {
    task.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--length/--near-max/--far-min: ") + e.what());
  }
  if (o.window < 0) throw std::invalid_argument("--window must be >= 0, got " + std::to_string(o.window));
  const auto dir = prepare_out(o.common.out);
  const int64_t layers = 2;
  // Training mixes near and far answers half and half; each is tested on its own held-out set.
  std::bernoulli_distribution coin(0.5);
  HeldOut mixed([task, coin](std::mt19937_64& r) mutable { return datasets::make_near_far(task, coin(r), r); },
                o.common.test_size, o.common.seed * 7919ULL + 41);
  HeldOut near([task](std::mt19937_64& r) { return datasets::make_near_far(task, false, r); }, o.common.test_size,
               o.common.seed * 7919ULL + 43);
  HeldOut far([task](std::mt19937_64& r) { return datasets::make_near_far(task, true, r); }, o.common.test_size,
              o.common.seed * 7919ULL + 47);
  nlohmann::json results = nlohmann::json::array();
  for (const std::string kind : {"global", "local"}) {
    models::EncoderClassifierConfig cfg{.d_model = 64, .n_head = 4, .num_layers = layers, .d_ff = 128,
                                        .attention = kind, .window = o.window};
    torch::manual_seed(run_seed(o.common.seed, kind, o.length));
    auto c = make_classifier("transformer", task.vocab_size(), task.num_keys, o.length, cfg);
    const auto t0 = Clock::now();
    const double loss = train_classifier(c, mixed, o.common, run_seed(o.common.seed + 1, kind, o.length));
    const double secs = seconds_since(t0);
    const double acc_near = accuracy(c, near.test(), o.common.device), acc_far = accuracy(c, far.test(), o.common.device);
    // Forward time on one batch of the test size, the mean of 5 after a warm-up.
    torch::NoGradGuard no_grad;
    auto [x, y] = class_batch(near.test(), o.common.device);
    c.logits(x);
    const auto tf = Clock::now();
    for (int i = 0; i < 5; ++i) c.logits(x).sum().item<float>();
    const double ms = seconds_since(tf) / 5 * 1000;
    log("local-vs-global " + kind + ": near " + fixed(acc_near) + ", far " + fixed(acc_far) + ", " + fixed(ms, 1) +
        " ms per forward of " + std::to_string(x.size(0)) + " (" + fixed(secs, 1) + " s training)");
    results.push_back({{"attention", kind}, {"window", kind == "local" ? nlohmann::json(o.window) : nlohmann::json()},
                       {"near_accuracy", acc_near}, {"far_accuracy", acc_far}, {"train_loss", loss},
                       {"train_seconds", secs}, {"forward_ms", ms}, {"forward_batch", x.size(0)}});
  }
  nlohmann::json j{{"experiment", "local-vs-global"},
                   {"length", o.length},
                   {"near_max", o.near_max},
                   {"far_min", o.far_min},
                   {"layers", layers},
                   {"local_receptive_field", layers * o.window},
                   {"steps", o.common.steps},
                   {"seed", o.common.seed},
                   {"chance", 1.0 / static_cast<double>(task.num_keys)},
                   {"threads", torch::get_num_threads()},
                   {"results", results}};
  write_json(j, dir / "local-vs-global.json");
  return j;
}

}  // namespace attnzoo::apps::seqlab
