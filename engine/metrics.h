// metrics.jsonl: one JSON object per line, appended and flushed as training goes, e.g.
// {"step": 120, "split": "train", "loss": 2.31, "lr": 0.001, "ms_per_iter": 41.2, "tokens_per_s": 18640}
#pragma once

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnzoo::engine {

class MetricsLog {
 public:
  // Opens PATH for appending. With resume_step >= 0, first drops the rows a run resumed after
  // resume_step completed steps will log again: train rows with step >= resume_step and val rows
  // with step > resume_step. resume_step = 0 starts an empty log.
  explicit MetricsLog(std::filesystem::path path, int64_t resume_step = -1);
  void write(const nlohmann::json& row);
  // Whether a kept or written row has this split and step.
  bool has(const std::string& split, int64_t step) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
  std::set<std::pair<std::string, int64_t>> rows_;
};

// All rows of a metrics.jsonl file; lines that do not parse are skipped.
std::vector<nlohmann::json> read_metrics(const std::filesystem::path& path);

}  // namespace attnzoo::engine
