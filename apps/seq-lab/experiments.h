// The experiments of seq-lab (issue 4), each a function of its options that trains small models
// on a synthetic task (datasets/synthetic.h), writes JSON and PNGs under `out` and returns the
// JSON. Toy runs of seconds: a local loop with engine::AdamW, no checkpoints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace attnzoo::apps::seqlab {

struct CommonOptions {
  int64_t steps = 0;        // optimizer steps per model; 0 = the experiment's default
  int64_t batch_size = 32;
  double lr = 3e-3;
  uint64_t seed = 1;
  int64_t test_size = 500;  // held-out examples per evaluation
  std::string out = "seq-lab-out";
  torch::Device device = torch::kCPU;
};

struct RecallOptions {
  CommonOptions common;
  std::vector<int64_t> distances{5, 10, 25, 50, 100, 200};  // N
  std::vector<std::string> models{"rnn", "lstm", "lstm-soft", "lstm-hard", "transformer"};
  int64_t num_keys = 8;
};

struct Seq2SeqOptions {
  CommonOptions common;
  std::string task = "copy";  // copy, reverse, sort
  std::vector<std::string> models{"transformer", "lstm-soft"};
  int64_t min_len = 3, max_len = 8, num_symbols = 8;
};

struct MasksOptions {
  CommonOptions common;
  int64_t distance = 14;  // recall task the models are trained on: T = distance + 2
  int64_t window = 2;     // local mask: ±window
};

struct LocalGlobalOptions {
  CommonOptions common;
  int64_t length = 64;    // T
  int64_t window = 8;     // local attention: ±window
  int64_t near_max = 4;   // near answers: 1 … near_max before the query
  int64_t far_min = 32;   // far answers: far_min … T − 1 before it
};

// Default optimizer steps per model of each experiment (the "default budget").
constexpr int64_t kRecallSteps = 300, kSeq2SeqSteps = 600, kMasksSteps = 300, kLocalGlobalSteps = 400;

// Names the experiments accept, for validating flags.
const std::vector<std::string>& recall_model_names();
const std::vector<std::string>& seq2seq_model_names();

// Each throws std::invalid_argument for a bad option (naming the flag) and std::runtime_error when
// `out` cannot be written.
nlohmann::json run_recall(const RecallOptions& opt);
nlohmann::json run_seq2seq(const Seq2SeqOptions& opt);
nlohmann::json run_masks(const MasksOptions& opt);
nlohmann::json run_local_vs_global(const LocalGlobalOptions& opt);

}  // namespace attnzoo::apps::seqlab
