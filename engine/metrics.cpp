#include "engine/metrics.h"

#include <stdexcept>

namespace attnzoo::engine {

std::vector<nlohmann::json> read_metrics(const std::filesystem::path& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_object()) rows.push_back(std::move(row));
  }
  return rows;
}

MetricsLog::MetricsLog(std::filesystem::path path, int64_t resume_step) : path_(std::move(path)) {
  if (resume_step >= 0 && std::filesystem::exists(path_)) {
    std::string kept;
    for (const auto& row : read_metrics(path_)) {
      const auto step = row.value("step", int64_t{0});
      const auto split = row.value("split", std::string());
      if (resume_step == 0 || step > resume_step || (step == resume_step && split != "val")) continue;
      kept += row.dump() + "\n";
      rows_.emplace(split, step);
    }
    std::ofstream rewrite(path_, std::ios::trunc);
    rewrite << kept;
    if (!rewrite) throw std::runtime_error(path_.string() + ": cannot rewrite");
  }
  out_.open(path_, std::ios::app);
  if (!out_) throw std::runtime_error(path_.string() + ": cannot open for writing");
}

void MetricsLog::write(const nlohmann::json& row) {
  out_ << row.dump() << "\n";
  out_.flush();
  if (!out_) throw std::runtime_error(path_.string() + ": write failed");
  rows_.emplace(row.value("split", std::string()), row.value("step", int64_t{0}));
}

bool MetricsLog::has(const std::string& split, int64_t step) const { return rows_.count({split, step}) > 0; }

}  // namespace attnzoo::engine
