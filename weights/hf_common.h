// What the Hugging Face importers share: shapes and key lists in error messages, and config.json
// reading with errors that name the file.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace attnzoo::weights {

// "[32, 96]"
std::string shape_string(torch::IntArrayRef sizes);
// "a, b, c, ... (N more)" after the first 8.
std::string key_list(const std::vector<std::string>& keys);
// Appends "WHAT: key_list(KEYS)" to MSG ("; "-separated) when KEYS is not empty.
void add_key_part(std::string& msg, const std::string& what, const std::vector<std::string>& keys);
// Parses a JSON file; throws std::runtime_error "PATH: missing or unreadable" / "PATH: malformed JSON: ...".
nlohmann::json read_json(const std::filesystem::path& path);

}  // namespace attnzoo::weights
