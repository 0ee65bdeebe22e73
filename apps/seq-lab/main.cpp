// seq-lab: the lecture's claims about sequence models, measured on synthetic tasks (issue 4).
//   seq-lab recall [--distances 5,10,25,50,100,200] [--models rnn,lstm,lstm-soft,lstm-hard,transformer]
//   seq-lab seq2seq --task copy|reverse|sort [--models transformer,lstm-soft]
//   seq-lab masks [--distance 14 --window 2]
//   seq-lab local-vs-global [--length 64 --window 8 --near-max 4 --far-min 32]
// Every experiment: --steps --seed --out DIR --json --threads --device --batch-size --lr --test-size.
// Results go to DIR/<experiment>.json and PNGs in DIR; --json also prints the JSON on stdout.
// Progress lines go to stderr.
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "apps/common/cli.h"
#include "apps/seq-lab/experiments.h"
#include "engine/runtime.h"

using namespace attnzoo;
using namespace attnzoo::apps::seqlab;

namespace {

struct Flags {
  int64_t steps = 0;
  // One thread by default: these models are tiny, and on a shared 2-core machine 2 threads ran the
  // LSTM 20x slower than 1 (OpenMP regions per time step under contention); docs/seq-lab.md.
  int64_t threads = 1;
  std::string device = "auto";
  bool json = false;
};

void add_common(CLI::App* cmd, CommonOptions& c, Flags& f, int64_t default_steps) {
  f.steps = default_steps;
  cmd->add_option("--steps", f.steps, "Optimizer steps per model")->capture_default_str();
  cmd->add_option("--seed", c.seed, "Random seed (data, weights)")->capture_default_str();
  cmd->add_option("--out", c.out, "Output directory for JSON and PNGs")->capture_default_str();
  cmd->add_option("--batch-size", c.batch_size, "Sequences per step")->capture_default_str();
  cmd->add_option("--lr", c.lr, "Peak learning rate (AdamW, 10 % warmup)")->capture_default_str();
  cmd->add_option("--test-size", c.test_size, "Held-out test sequences")->capture_default_str();
  cmd->add_option("--threads", f.threads, "CPU threads (0 = all cores; tiny models run best on 1)")->capture_default_str();
  cmd->add_option("--device", f.device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_flag("--json", f.json, "Print the result JSON on stdout");
}

// "5,10,25" -> {5, 10, 25}; anything else names the flag.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  const std::string hint = flag + ": expected a comma-separated list of integers such as 5,10,25, got '" + text + "'";
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      throw std::invalid_argument(hint);
    }
    if (used != item.size()) throw std::invalid_argument(hint);
    out.push_back(v);
  }
  if (out.empty() || (!text.empty() && text.back() == ',')) throw std::invalid_argument(hint);
  return out;
}

std::vector<std::string> parse_name_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(item);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// Flags -> common options; sets up the device and threads.
void finish_common(CommonOptions& c, const Flags& f) {
  c.steps = f.steps;
  if (c.steps <= 0) throw std::invalid_argument("--steps must be > 0, got " + std::to_string(c.steps));
  if (f.threads < 0) throw std::invalid_argument("--threads must be >= 0, got " + std::to_string(f.threads));
  c.device = engine::setup_runtime({f.device, f.threads});
}

// The result: the whole JSON with --json, else the path of the JSON file.
void report(const nlohmann::json& j, const Flags& f, const std::string& out, const std::string& file) {
  if (f.json) std::cout << j.dump() << std::endl;
  else std::cout << "wrote " << out << "/" << file << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"seq-lab: RNN, LSTM, attention and the Transformer on synthetic sequence tasks (the lecture's claims, measured)"};
  apps::one_line_parse_errors(app, "seq-lab");
  app.require_subcommand(1);

  RecallOptions ro;
  Flags rf;
  std::string distances = "5,10,25,50,100,200", recall_models = join(ro.models);
  auto* rc = app.add_subcommand("recall", "Key at the start, N distractors, a query at the end: accuracy vs N per model");
  add_common(rc, ro.common, rf, kRecallSteps);
  rc->add_option("--distances", distances, "Comma-separated N values")->capture_default_str();
  rc->add_option("--models", recall_models, "Comma-separated: " + join(recall_model_names()))->capture_default_str();
  rc->add_option("--keys", ro.num_keys, "Distinct keys (classes; chance = 1/keys)")->capture_default_str();

  Seq2SeqOptions so;
  Flags sf;
  std::string s2s_models = join(so.models);
  auto* ss = app.add_subcommand("seq2seq", "Copy, reverse or sort held-out sequences: exact match and cross-attention");
  add_common(ss, so.common, sf, kSeq2SeqSteps);
  so.common.batch_size = 64;
  ss->add_option("--task", so.task, "copy, reverse or sort")->capture_default_str();
  ss->add_option("--models", s2s_models, "Comma-separated: " + join(seq2seq_model_names()))->capture_default_str();
  ss->add_option("--min-len", so.min_len, "Shortest input")->capture_default_str();
  ss->add_option("--max-len", so.max_len, "Longest input")->capture_default_str();
  ss->add_option("--symbols", so.num_symbols, "Distinct symbols")->capture_default_str();

  MasksOptions mo;
  Flags mf;
  auto* ms = app.add_subcommand("masks", "Causal, full and local masks and the attention trained under each");
  add_common(ms, mo.common, mf, kMasksSteps);
  ms->add_option("--distance", mo.distance, "Recall distance N of the task the models learn")->capture_default_str();
  ms->add_option("--window", mo.window, "Local mask: +-window positions")->capture_default_str();

  LocalGlobalOptions lo;
  Flags lf;
  auto* lg = app.add_subcommand("local-vs-global", "Local vs global attention on answers near vs far from the query");
  add_common(lg, lo.common, lf, kLocalGlobalSteps);
  lg->add_option("--length", lo.length, "Sequence length T")->capture_default_str();
  lg->add_option("--window", lo.window, "Local attention: +-window positions")->capture_default_str();
  lg->add_option("--near-max", lo.near_max, "Near answers lie 1..near-max before the query")->capture_default_str();
  lg->add_option("--far-min", lo.far_min, "Far answers lie far-min..T-1 before it")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  return apps::run_guarded("seq-lab", [&] {
    if (*rc) {
      ro.distances = parse_int_list(distances, "--distances");
      ro.models = parse_name_list(recall_models);
      finish_common(ro.common, rf);
      report(run_recall(ro), rf, ro.common.out, "recall.json");
    }
    if (*ss) {
      so.models = parse_name_list(s2s_models);
      finish_common(so.common, sf);
      report(run_seq2seq(so), sf, so.common.out, "seq2seq-" + so.task + ".json");
    }
    if (*ms) {
      finish_common(mo.common, mf);
      report(run_masks(mo), mf, mo.common.out, "masks.json");
    }
    if (*lg) {
      finish_common(lo.common, lf);
      report(run_local_vs_global(lo), lf, lo.common.out, "local-vs-global.json");
    }
    return 0;
  });
}
