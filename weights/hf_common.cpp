#include "weights/hf_common.h"

#include <fstream>
#include <stdexcept>

namespace attnzoo::weights {

std::string shape_string(torch::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

std::string key_list(const std::vector<std::string>& keys) {
  constexpr size_t kShown = 8;
  std::string s;
  for (size_t i = 0; i < keys.size() && i < kShown; ++i) s += (i ? ", " : "") + keys[i];
  if (keys.size() > kShown) s += ", ... (" + std::to_string(keys.size() - kShown) + " more)";
  return s;
}

void add_key_part(std::string& msg, const std::string& what, const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  msg += (msg.empty() ? "" : "; ") + what + ": " + key_list(keys);
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": missing or unreadable");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": malformed JSON: " + e.what());
  }
}

}  // namespace attnzoo::weights
