#include "datasets/synthetic.h"

#include <algorithm>
#include <stdexcept>

namespace attnzoo::datasets {
namespace {

int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // [lo, hi]
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

void RecallConfig::validate() const {
  require(distance >= 0, "recall: distance must be >= 0, got " + std::to_string(distance));
  require(num_keys >= 2, "recall: num_keys must be >= 2, got " + std::to_string(num_keys));
  require(num_distractors >= 1, "recall: num_distractors must be >= 1, got " + std::to_string(num_distractors));
}

Example make_recall(const RecallConfig& cfg, std::mt19937_64& rng) {
  cfg.validate();
  const int64_t key = uniform(rng, 0, cfg.num_keys - 1);
  const int64_t first_distractor = kFirstSymbolId + cfg.num_keys;
  Example e;
  e.input.reserve(static_cast<size_t>(cfg.distance + 2));
  e.input.push_back(kFirstSymbolId + key);
  for (int64_t i = 0; i < cfg.distance; ++i) e.input.push_back(first_distractor + uniform(rng, 0, cfg.num_distractors - 1));
  e.input.push_back(kQueryId);
  e.target = {key};
  return e;
}

Seq2SeqTask parse_seq2seq_task(const std::string& name) {
  if (name == "copy") return Seq2SeqTask::copy;
  if (name == "reverse") return Seq2SeqTask::reverse;
  if (name == "sort") return Seq2SeqTask::sort;
  throw std::invalid_argument("unknown task '" + name + "' (expected copy, reverse or sort)");
}

std::string to_string(Seq2SeqTask task) {
  switch (task) {
    case Seq2SeqTask::copy: return "copy";
    case Seq2SeqTask::reverse: return "reverse";
    case Seq2SeqTask::sort: return "sort";
  }
  return "?";
}

void Seq2SeqTaskConfig::validate() const {
  require(min_len >= 1 && max_len >= min_len,
          "seq2seq: expected 1 <= min_len <= max_len, got " + std::to_string(min_len) + " and " + std::to_string(max_len));
  require(num_symbols >= 2, "seq2seq: num_symbols must be >= 2, got " + std::to_string(num_symbols));
}

std::vector<int64_t> apply_task(Seq2SeqTask task, std::vector<int64_t> symbols) {
  if (task == Seq2SeqTask::reverse) std::reverse(symbols.begin(), symbols.end());
  if (task == Seq2SeqTask::sort) std::sort(symbols.begin(), symbols.end());
  return symbols;
}

Example make_seq2seq(const Seq2SeqTaskConfig& cfg, std::mt19937_64& rng) {
  cfg.validate();
  const int64_t L = uniform(rng, cfg.min_len, cfg.max_len);
  Example e;
  for (int64_t i = 0; i < L; ++i) e.input.push_back(kFirstSymbolId + uniform(rng, 0, cfg.num_symbols - 1));
  e.target = apply_task(cfg.task, e.input);
  e.target.push_back(kEosId);
  return e;
}

void NearFarConfig::validate() const {
  require(length >= 3, "near-far: length must be >= 3, got " + std::to_string(length));
  require(near_max >= 1 && near_max < far_min,
          "near-far: expected 1 <= near_max < far_min, got " + std::to_string(near_max) + " and " + std::to_string(far_min));
  require(far_min <= length - 1, "near-far: far_min must be <= length - 1 = " + std::to_string(length - 1) + ", got " +
                                     std::to_string(far_min));
  require(num_keys >= 2, "near-far: num_keys must be >= 2, got " + std::to_string(num_keys));
  require(num_distractors >= 1, "near-far: num_distractors must be >= 1, got " + std::to_string(num_distractors));
}

Example make_near_far(const NearFarConfig& cfg, bool far, std::mt19937_64& rng) {
  cfg.validate();
  const int64_t T = cfg.length, first_distractor = kFirstSymbolId + cfg.num_keys;
  Example e;
  e.input.resize(static_cast<size_t>(T));
  for (int64_t i = 0; i + 1 < T; ++i) e.input[i] = first_distractor + uniform(rng, 0, cfg.num_distractors - 1);
  e.input[T - 1] = kQueryId;
  const int64_t d = far ? uniform(rng, cfg.far_min, T - 1) : uniform(rng, 1, cfg.near_max);
  const int64_t key = uniform(rng, 0, cfg.num_keys - 1);
  e.input[T - 1 - d] = kFirstSymbolId + key;
  e.target = {key};
  return e;
}

HeldOut::HeldOut(Generator gen, int64_t test_size, uint64_t seed) : gen_(std::move(gen)) {
  if (test_size < 0) throw std::invalid_argument("held-out: test_size must be >= 0, got " + std::to_string(test_size));
  std::mt19937_64 rng(seed);
  // A task whose inputs repeat this often has too few sequences for a test set and training data.
  const int64_t max_tries = 20 * test_size + 1000;
  for (int64_t tries = 0; static_cast<int64_t>(test_.size()) < test_size; ++tries) {
    if (tries >= max_tries)
      throw std::runtime_error("held-out: found only " + std::to_string(test_.size()) + " distinct inputs in " +
                               std::to_string(tries) + " draws for a test set of " + std::to_string(test_size) +
                               " (the task has too few sequences; make them longer or use more symbols)");
    auto e = gen_(rng);
    if (test_inputs_.insert(e.input).second) test_.push_back(std::move(e));
  }
}

Example HeldOut::train(std::mt19937_64& rng) const {
  for (int tries = 0; tries < 10000; ++tries) {
    auto e = gen_(rng);
    if (!in_test(e.input)) return e;
  }
  throw std::runtime_error("held-out: 10000 draws in a row were test sequences (the test set covers the task)");
}

}  // namespace attnzoo::datasets
