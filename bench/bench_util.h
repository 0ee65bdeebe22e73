// What the benchmark programs share: comma lists on the command line, medians, and the JSON file
// each one writes.
#pragma once

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace attnzoo::bench {

// "a,b,,c" -> {"a", "b", "c"}
inline std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Writes `results` to PATH (nothing when PATH is empty); throws std::runtime_error naming PATH.
inline void write_json(const std::string& path, const nlohmann::json& results) {
  if (path.empty()) return;
  std::ofstream out(path);
  out << results.dump(2) << "\n";
  if (!out) throw std::runtime_error(path + ": cannot write");
}

}  // namespace attnzoo::bench
