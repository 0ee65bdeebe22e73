// Synthetic sequence tasks for the lecture's claims (issue 4, apps/seq-lab), pure functions of a
// seeded std::mt19937_64 with no torch:
// - recall: "I lived in France … so I speak fluent ___" made synthetic: a key token at the start,
//   N distractor tokens, a query token at the end; the answer is the key. Long-range dependency
//   at distance N + 1.
// - copy / reverse / sort: a sequence of symbols -> itself, reversed, or sorted, then eos.
// - near / far: distractors with one key somewhere and the query at the end; the key lies within
//   `near_max` positions of the query (near) or at least `far_min` away (far). Local attention with
//   a window below far_min cannot see a far key.
// HeldOut draws a test set of distinct inputs and then training examples that never repeat one,
// so that accuracy on the test set is accuracy on unseen sequences.
//
// Token ids, shared by every task: 0 pad, 1 bos, 2 eos, 3 query, then the task's symbols (recall
// and near/far: num_keys keys, then num_distractors distractors).
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace attnzoo::datasets {

constexpr int64_t kPadId = 0, kBosId = 1, kEosId = 2, kQueryId = 3, kFirstSymbolId = 4;

struct Example {
  std::vector<int64_t> input;   // token ids
  std::vector<int64_t> target;  // classification: one class index; seq2seq: token ids ending in kEosId
};

struct RecallConfig {
  int64_t distance = 10;         // N, distractors between the key and the query
  int64_t num_keys = 8;          // classes; chance = 1 / num_keys
  int64_t num_distractors = 16;  // distractor symbols, disjoint from the keys

  int64_t vocab_size() const { return kFirstSymbolId + num_keys + num_distractors; }
  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};

// input [key, d_1 … d_N, query] (length N + 2); target {key − kFirstSymbolId}.
Example make_recall(const RecallConfig& cfg, std::mt19937_64& rng);

enum class Seq2SeqTask { copy, reverse, sort };
// "copy", "reverse", "sort"; throws std::invalid_argument otherwise.
Seq2SeqTask parse_seq2seq_task(const std::string& name);
std::string to_string(Seq2SeqTask task);

struct Seq2SeqTaskConfig {
  Seq2SeqTask task = Seq2SeqTask::copy;
  int64_t min_len = 3;      // input length drawn uniformly from [min_len, max_len]
  int64_t max_len = 8;
  int64_t num_symbols = 8;  // symbols kFirstSymbolId … kFirstSymbolId + num_symbols − 1

  int64_t vocab_size() const { return kFirstSymbolId + num_symbols; }
  void validate() const;
};

// input: symbols; target: the task applied to them, then kEosId.
Example make_seq2seq(const Seq2SeqTaskConfig& cfg, std::mt19937_64& rng);
// The task applied to a sequence of symbols (no eos).
std::vector<int64_t> apply_task(Seq2SeqTask task, std::vector<int64_t> symbols);

struct NearFarConfig {
  int64_t length = 48;           // T, the query included
  int64_t near_max = 4;          // near: the key sits 1 … near_max positions before the query
  int64_t far_min = 24;          // far: far_min … T − 1 positions before it
  int64_t num_keys = 8;
  int64_t num_distractors = 16;

  int64_t vocab_size() const { return kFirstSymbolId + num_keys + num_distractors; }
  void validate() const;
};

// input: T − 1 distractors with one key replacing the one `d` positions before the final query
// token; target {key − kFirstSymbolId}.
Example make_near_far(const NearFarConfig& cfg, bool far, std::mt19937_64& rng);

// A test set of distinct inputs and a source of training examples that avoids them.
class HeldOut {
 public:
  using Generator = std::function<Example(std::mt19937_64&)>;

  // Draws test_size examples with distinct inputs from gen with a generator seeded by seed. Throws
  // std::runtime_error when the task has too few distinct inputs to fill the test set and leave
  // training data.
  HeldOut(Generator gen, int64_t test_size, uint64_t seed);

  const std::vector<Example>& test() const { return test_; }
  bool in_test(const std::vector<int64_t>& input) const { return test_inputs_.count(input) > 0; }
  // A fresh example whose input is not in the test set (rejection sampling).
  Example train(std::mt19937_64& rng) const;

 private:
  Generator gen_;
  std::vector<Example> test_;
  std::set<std::vector<int64_t>> test_inputs_;
};

}  // namespace attnzoo::datasets
