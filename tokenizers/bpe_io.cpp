// Reading and writing byte-level BPE vocabularies: our own saved format, GPT-2 / Hugging Face
// vocab.json + merges.txt, and tiktoken rank files and npm bundles. Every error names the file (and
// the line, for line-based files).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizers/bpe.h"
#include "tokenizers/files.h"
#include "tokenizers/utf8.h"

namespace attnzoo::tokenizers {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Lines without their "\n" / "\r\n"; a final line without a newline counts.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

bool parse_int(std::string_view s, int& value) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

// Standard base64 (RFC 4648, with padding), as tiktoken's rank files use.
bool base64_decode(std::string_view in, std::string& out) {
  static const auto table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = i;
    return t;
  }();
  out.clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  for (std::size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + static_cast<std::size_t>(k)];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad) return false;  // data after padding
        v[k] = table[static_cast<unsigned char>(c)];
        if (v[k] < 0) return false;
      }
    }
    const uint32_t word = (static_cast<uint32_t>(v[0]) << 18) | (static_cast<uint32_t>(v[1]) << 12) |
                          (static_cast<uint32_t>(v[2]) << 6) | static_cast<uint32_t>(v[3]);
    out.push_back(static_cast<char>(word >> 16));
    if (pad < 2) out.push_back(static_cast<char>((word >> 8) & 0xFF));
    if (pad < 1) out.push_back(static_cast<char>(word & 0xFF));
  }
  return true;
}

std::string base64_encode(std::string_view in) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, in.size() - i);
    uint32_t word = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (n > 1) word |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (n > 2) word |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 2]));
    out.push_back(alphabet[(word >> 18) & 63]);
    out.push_back(alphabet[(word >> 12) & 63]);
    out.push_back(n > 1 ? alphabet[(word >> 6) & 63] : '=');
    out.push_back(n > 2 ? alphabet[word & 63] : '=');
  }
  return out;
}

// JSON parse with the file named in the error, refusing duplicate keys at `depth` (nlohmann keeps
// the last of duplicates silently); `key_at_depth1` restricts the check to that top-level member.
json parse_json(const std::string& path, const std::string& text, int depth, const std::string& under = "") {
  std::string top_key, duplicate;
  std::unordered_set<std::string> seen;
  json doc;
  try {
    doc = json::parse(text, [&](int d, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::key) {
        if (d == 1) top_key = parsed.get<std::string>();
        if (d == depth && (under.empty() || top_key == under) && !seen.insert(parsed.get<std::string>()).second &&
            duplicate.empty())
          duplicate = parsed.get<std::string>();
      }
      return true;
    });
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": malformed JSON: " + e.what());
  }
  if (!duplicate.empty()) throw std::runtime_error(path + ": duplicate token '" + duplicate + "'");
  return doc;
}

// GPT-2's reversible byte <-> printable-character map (openai/gpt-2 encoder.py bytes_to_unicode):
// the printable bytes map to themselves, the others to U+0100 onwards in byte order.
const std::array<uint32_t, 256>& byte_to_codepoint() {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

// A GPT-2 alphabet token string back to its bytes; false when a character is outside the alphabet.
bool gpt2_token_bytes(std::string_view token, std::string& out) {
  static const auto inverse = [] {
    std::unordered_map<uint32_t, unsigned char> m;
    const auto& t = byte_to_codepoint();
    for (int b = 0; b < 256; ++b) m.emplace(t[static_cast<std::size_t>(b)], static_cast<unsigned char>(b));
    return m;
  }();
  out.clear();
  if (utf8_invalid_offset(token) != std::string_view::npos) return false;
  for (std::size_t i = 0; i < token.size();) {
    const auto c = static_cast<unsigned char>(token[i]);
    const std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(token[i + k]) & 0x3F);
    const auto it = inverse.find(cp);
    if (it == inverse.end()) return false;
    out.push_back(static_cast<char>(it->second));
    i += len;
  }
  return true;
}

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The encodings tiktoken publishes: pre-split pattern and special tokens by encoding name.
struct KnownEncoding {
  const char* name;
  const char* pattern;
  std::map<std::string, int> specials;
};
const std::vector<KnownEncoding>& known_encodings() {
  static const std::vector<KnownEncoding> known = {
      {"gpt2", "gpt2", {{"<|endoftext|>", 50256}}},
      {"r50k_base", "gpt2", {{"<|endoftext|>", 50256}}},
      {"p50k_base", "gpt2", {{"<|endoftext|>", 50256}}},
      {"p50k_edit", "gpt2", {{"<|endoftext|>", 50256}, {"<|fim_prefix|>", 50281}, {"<|fim_middle|>", 50282}, {"<|fim_suffix|>", 50283}}},
      {"cl100k_base", "cl100k",
       {{"<|endoftext|>", 100257}, {"<|fim_prefix|>", 100258}, {"<|fim_middle|>", 100259}, {"<|fim_suffix|>", 100260},
        {"<|endofprompt|>", 100276}}},
      {"o200k_base", "o200k", {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}},
  };
  return known;
}

// A pre-split regex as a pattern name when it is one we know (also tiktoken's own spelling of
// cl100k's), else "regex:<it>".
std::string pattern_from_regex(const std::string& regex) {
  static const std::string tiktoken_cl100k =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  if (regex == tiktoken_cl100k) return "cl100k";
  for (const auto& name : ByteBPE::pattern_names())
    if (name != "none" && ByteBPE::pattern_regex(name) == regex) return name;
  return "regex:" + regex;
}

// Parses tiktoken rank text: "BASE64 RANK" lines, or npm tiktoken's compact "! OFFSET TOKEN TOKEN ..."
// lines (consecutive ranks from OFFSET).
std::vector<std::pair<std::string, int>> parse_ranks(const std::string& path, std::string_view text) {
  std::vector<std::pair<std::string, int>> tokens;
  std::string bytes;
  const auto lines = split_lines(text);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const auto where = path + ":" + std::to_string(n + 1) + ": ";
    const auto fields = split_fields(lines[n]);
    if (fields.empty()) continue;
    if (fields[0] == "!") {
      int offset = 0;
      if (fields.size() < 2 || !parse_int(fields[1], offset) || offset < 0)
        throw std::runtime_error(where + "expected '! OFFSET TOKEN...', got a bad offset");
      for (std::size_t i = 2; i < fields.size(); ++i) {
        if (!base64_decode(fields[i], bytes))
          throw std::runtime_error(where + "token " + std::to_string(i - 1) + " is not base64: '" +
                                   std::string(fields[i].substr(0, 40)) + "'");
        const int64_t rank = static_cast<int64_t>(offset) + static_cast<int64_t>(i - 2);
        if (rank >= (int64_t{1} << 30)) throw std::runtime_error(where + "rank " + std::to_string(rank) + " is implausibly large");
        tokens.emplace_back(bytes, static_cast<int>(rank));
      }
      continue;
    }
    int rank = 0;
    if (fields.size() != 2 || !parse_int(fields[1], rank) || rank < 0)
      throw std::runtime_error(where + "expected 'BASE64 RANK', got '" + printable(lines[n].substr(0, 80)) + "'");
    if (!base64_decode(fields[0], bytes))
      throw std::runtime_error(where + "'" + printable(fields[0].substr(0, 40)) + "' is not base64");
    tokens.emplace_back(bytes, rank);
  }
  if (tokens.empty()) throw std::runtime_error(path + ": no tokens (an empty rank file)");
  return tokens;
}

std::map<std::string, int> parse_specials(const std::string& path, const json& specials) {
  if (!specials.is_object()) throw std::runtime_error(path + ": special tokens must be an object {token: id}");
  std::map<std::string, int> out;
  for (const auto& [token, id] : specials.items()) {
    if (!id.is_number_integer())
      throw std::runtime_error(path + ": special token '" + token + "' has id " + id.dump() + ", not an integer");
    out.emplace(token, id.get<int>());
  }
  return out;
}

// The "mode" of a saved tokenizer ("merges" when absent); throws naming LABEL when it is not a string.
std::string mode_of(const json& meta, const std::string& label) {
  if (!meta.is_object() || !meta.contains("mode")) return "merges";
  if (!meta["mode"].is_string()) throw std::runtime_error(label + ": \"mode\" must be \"merges\" or \"ranks\", got " + meta["mode"].dump());
  return meta["mode"].get<std::string>();
}

// Rethrows a validation error from ByteBPE's builders with the file named.
template <typename F>
ByteBPE built_from(const std::string& path, F build) {
  try {
    return build();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  } catch (const std::logic_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace

ByteBPE ByteBPE::load_gpt2(const std::string& vocab_json, const std::string& merges_txt, const std::string& pattern) {
  const json vocab = parse_json(vocab_json, read_file(vocab_json), 1);
  if (!vocab.is_object() || vocab.empty())
    throw std::runtime_error(vocab_json + ": expected a JSON object {token: id} (GPT-2 encoder.json / HF vocab.json)");
  std::unordered_map<std::string, int> token_id;  // token string (GPT-2 alphabet) -> id
  std::map<int, std::string> id_bytes;
  std::vector<int> byte_ids(256, -1);
  std::string bytes;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 30))
      throw std::runtime_error(vocab_json + ": token '" + printable(token) + "' has id " + id.dump() +
                               ", expected a non-negative integer");
    const int i = id.get<int>();
    if (!gpt2_token_bytes(token, bytes))
      throw std::runtime_error(vocab_json + ": token '" + printable(token) +
                               "' has a character outside GPT-2's byte-to-unicode alphabet");
    if (!id_bytes.emplace(i, bytes).second)
      throw std::runtime_error(vocab_json + ": tokens '" + printable(id_bytes[i]) + "' and '" + printable(token) +
                               "' share id " + std::to_string(i));
    token_id.emplace(token, i);
    if (bytes.size() == 1) byte_ids[static_cast<unsigned char>(bytes[0])] = i;
  }
  for (int b = 0; b < 256; ++b)
    if (byte_ids[static_cast<std::size_t>(b)] < 0)
      throw std::runtime_error(vocab_json + ": byte " + std::to_string(b) + " has no token (not a byte-level vocabulary)");

  const std::string text = read_file(merges_txt);
  const auto lines = split_lines(text);
  std::vector<Merge> merges;
  std::unordered_set<int> made;
  std::unordered_set<uint64_t> seen;
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const std::string_view line = lines[n];
    if (line.empty() || (n == 0 && line.substr(0, 9) == "#version:")) continue;
    const auto where = merges_txt + ":" + std::to_string(n + 1) + ": ";
    const auto fields = split_fields(line);
    if (fields.size() != 2) throw std::runtime_error(where + "expected 'A B', got '" + printable(line.substr(0, 80)) + "'");
    int parent[2];
    for (int k = 0; k < 2; ++k) {
      const auto it = token_id.find(std::string(fields[static_cast<std::size_t>(k)]));
      if (it == token_id.end())
        throw std::runtime_error(where + "merge references unknown symbol '" +
                                 printable(fields[static_cast<std::size_t>(k)]) + "' (not in " +
                                 fs::path(vocab_json).filename().string() + ")");
      parent[k] = it->second;
    }
    const std::string joined = std::string(fields[0]) + std::string(fields[1]);
    const auto result = token_id.find(joined);
    if (result == token_id.end())
      throw std::runtime_error(where + "the merged token '" + printable(joined) + "' is not in " +
                               fs::path(vocab_json).filename().string());
    const uint64_t key = (static_cast<uint64_t>(parent[0]) << 32) | static_cast<uint32_t>(parent[1]);
    if (!seen.insert(key).second) throw std::runtime_error(where + "duplicate merge '" + printable(line) + "'");
    merges.push_back({parent[0], parent[1], result->second});
    made.insert(result->second);
  }
  if (merges.empty()) throw std::runtime_error(merges_txt + ": no merges");
  // Whatever the merges and bytes do not make is an added (special) token.
  std::map<std::string, int> specials;
  std::set<int> bytes_ids(byte_ids.begin(), byte_ids.end());
  for (const auto& [id, b] : id_bytes)
    if (!made.count(id) && !bytes_ids.count(id)) {
      if (utf8_invalid_offset(b) != std::string::npos)
        throw std::runtime_error(vocab_json + ": token " + std::to_string(id) +
                                 " is neither a byte nor made by a merge, and its bytes are not text (a special token must be)");
      specials.emplace(b, id);
    }
  return built_from(merges_txt, [&] { return from_merges(pattern, byte_ids, merges, specials); });
}

void ByteBPE::save_gpt2(const std::string& dir) const {
  if (ranks_mode_)
    throw std::logic_error("byte BPE: a ranks-mode (tiktoken) vocabulary has no merge list to write as merges.txt");
  const auto& to_cp = byte_to_codepoint();
  const auto alphabet = [&](const std::string& bytes) {
    std::string out;
    for (const char c : bytes) {
      const uint32_t cp = to_cp[static_cast<unsigned char>(c)];
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else {  // every code point of the map is below U+0800: two UTF-8 bytes
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    return out;
  };
  json vocab = json::object();
  for (int id = 0; id < vocab_size(); ++id) {
    if (!has_id(id)) continue;
    const std::string& bytes = vocab_[static_cast<std::size_t>(id)];
    const auto special = specials_.find(bytes);
    const std::string token = special != specials_.end() && special->second == id ? bytes : alphabet(bytes);
    if (vocab.contains(token))
      throw std::logic_error("byte BPE: token " + std::to_string(id) + " and token " + std::to_string(vocab[token].get<int>()) +
                             " have the same vocab.json string '" + token + "'");
    vocab[token] = id;
  }
  std::string merges = "#version: 0.2\n";
  for (const auto& [a, b] : merges_)
    merges += alphabet(vocab_[static_cast<std::size_t>(a)]) + ' ' + alphabet(vocab_[static_cast<std::size_t>(b)]) + '\n';
  fs::create_directories(dir);
  write_file((fs::path(dir) / "vocab.json").string(), vocab.dump() + "\n");
  write_file((fs::path(dir) / "merges.txt").string(), merges);
}

ByteBPE ByteBPE::load_tiktoken(const std::string& file) {
  const std::string text = read_file(file);
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    const json bundle = parse_json(file, text, 2, "special_tokens");
    for (const char* key : {"pat_str", "special_tokens", "bpe_ranks"})
      if (!bundle.is_object() || !bundle.contains(key))
        throw std::runtime_error(file + ": missing field \"" + key + "\" (expected an npm tiktoken bundle)");
    if (!bundle["pat_str"].is_string() || !bundle["bpe_ranks"].is_string())
      throw std::runtime_error(file + ": \"pat_str\" and \"bpe_ranks\" must be strings");
    const auto tokens = parse_ranks(file + " (bpe_ranks)", bundle["bpe_ranks"].get<std::string>());
    const auto specials = parse_specials(file, bundle["special_tokens"]);
    const std::string pattern = pattern_from_regex(bundle["pat_str"].get<std::string>());
    return built_from(file, [&] { return from_ranks(pattern, tokens, specials); });
  }
  const std::string stem = fs::path(file).stem().string();
  const KnownEncoding* known = nullptr;
  for (const auto& k : known_encodings())
    if (stem == k.name) known = &k;
  if (known == nullptr) {
    std::string names;
    for (const auto& k : known_encodings()) names += (names.empty() ? "" : ", ") + std::string(k.name);
    throw std::runtime_error(file + ": a rank file does not say its pre-split pattern or special tokens; name it after "
                             "its encoding (" + names + ".tiktoken) or use npm tiktoken's JSON bundle");
  }
  const auto tokens = parse_ranks(file, text);
  return built_from(file, [&] { return from_ranks(known->pattern, tokens, known->specials); });
}

namespace {

// The fields of tokenizer.json shared by save() and to_json().
json metadata(const ByteBPE& bpe) {
  json specials = json::object();
  for (const auto& [token, id] : bpe.specials()) specials[token] = id;
  json meta = {{"type", "byte_bpe"},
               {"mode", bpe.ranks_mode() ? "ranks" : "merges"},
               {"pattern", bpe.pattern()},
               {"vocab_size", bpe.vocab_size()},
               {"specials", specials}};
  std::vector<int> byte_ids(256);
  bool identity = true;
  for (int b = 0; b < 256; ++b) {
    byte_ids[static_cast<std::size_t>(b)] = bpe.byte_id(static_cast<unsigned char>(b));
    identity = identity && byte_ids[static_cast<std::size_t>(b)] == b;
  }
  if (!bpe.ranks_mode() && !identity) meta["byte_ids"] = byte_ids;
  return meta;
}

// (bytes, rank) of every ordinary token, by rank.
std::vector<std::pair<int, std::string>> ranked_tokens(const ByteBPE& bpe) {
  std::vector<std::pair<int, std::string>> out;
  for (int id = 0; id < bpe.vocab_size(); ++id) {
    if (!bpe.has_id(id)) continue;
    const std::string& bytes = bpe.token_bytes(id);
    const auto it = bpe.specials().find(bytes);
    if (it != bpe.specials().end() && it->second == id) continue;
    out.emplace_back(id, bytes);
  }
  return out;
}

// The body of the saved format: merges.txt ("A B ID" lines) or ranks.txt ("BASE64 RANK" lines).
std::string body_text(const ByteBPE& bpe) {
  std::string body;
  if (bpe.ranks_mode()) {
    for (const auto& [rank, bytes] : ranked_tokens(bpe)) body += base64_encode(bytes) + ' ' + std::to_string(rank) + '\n';
  } else {
    const auto& merges = bpe.merges();
    for (std::size_t k = 0; k < merges.size(); ++k)
      body += std::to_string(merges[k].first) + ' ' + std::to_string(merges[k].second) + ' ' +
              std::to_string(bpe.merge_ids()[k]) + '\n';
  }
  return body;
}

// A tokenizer from its metadata (tokenizer.json's fields) and body text, as save() writes them and
// to_json() embeds them. Errors are std::runtime_error naming META_LABEL or BODY_LABEL:LINE.
ByteBPE from_saved(const json& meta, const std::string& meta_label, std::string_view body,
                   const std::string& body_label) {
  const auto field = [&](const char* name) -> const json& {
    if (!meta.is_object() || !meta.contains(name)) throw std::runtime_error(meta_label + ": missing field \"" + name + "\"");
    return meta.at(name);
  };
  if (field("type") != "byte_bpe")
    throw std::runtime_error(meta_label + ": \"type\" is " + field("type").dump() + ", expected \"byte_bpe\"");
  if (!field("pattern").is_string()) throw std::runtime_error(meta_label + ": \"pattern\" must be a string");
  if (!field("vocab_size").is_number_integer()) throw std::runtime_error(meta_label + ": \"vocab_size\" must be an integer");
  const std::string mode = mode_of(meta, meta_label);
  if (mode != "merges" && mode != "ranks")
    throw std::runtime_error(meta_label + ": \"mode\" is \"" + mode + "\", expected \"merges\" or \"ranks\"");
  const std::string pattern = field("pattern").get<std::string>();
  try {
    (void)ByteBPE::pattern_regex(pattern);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(meta_label + ": " + e.what());
  }
  const std::map<std::string, int> specials = parse_specials(meta_label, field("specials"));
  std::map<int, std::string> special_ids;
  for (const auto& [token, id] : specials)
    if (!special_ids.emplace(id, token).second)
      throw std::runtime_error(meta_label + ": special tokens '" + special_ids[id] + "' and '" + token + "' share id " +
                               std::to_string(id));

  std::optional<ByteBPE> bpe;
  if (mode == "ranks") {
    const auto tokens = parse_ranks(body_label, body);
    bpe.emplace(built_from(body_label, [&] { return ByteBPE::from_ranks(pattern, tokens, specials); }));
  } else {
    std::vector<int> byte_ids(256);
    for (int b = 0; b < 256; ++b) byte_ids[static_cast<std::size_t>(b)] = b;
    if (meta.contains("byte_ids")) {
      const auto& ids = meta["byte_ids"];
      if (!ids.is_array() || ids.size() != 256)
        throw std::runtime_error(meta_label + ": \"byte_ids\" must be an array of 256 ids");
      for (int b = 0; b < 256; ++b) {
        if (!ids[static_cast<std::size_t>(b)].is_number_integer())
          throw std::runtime_error(meta_label + ": \"byte_ids\"[" + std::to_string(b) + "] is not an integer");
        byte_ids[static_cast<std::size_t>(b)] = ids[static_cast<std::size_t>(b)].get<int>();
      }
    }
    std::unordered_set<int> defined(byte_ids.begin(), byte_ids.end());
    if (defined.size() != 256) throw std::runtime_error(meta_label + ": \"byte_ids\" repeats an id");
    std::unordered_set<uint64_t> seen;
    std::vector<ByteBPE::Merge> merges;
    const auto lines = split_lines(body);
    for (std::size_t n = 0; n < lines.size(); ++n) {
      const auto where = body_label + ":" + std::to_string(n + 1) + ": ";
      const auto fields = split_fields(lines[n]);
      int v[3] = {0, 0, 0};
      bool ok = fields.size() == 3;
      for (std::size_t i = 0; ok && i < 3; ++i) ok = parse_int(fields[i], v[i]);
      if (!ok)
        throw std::runtime_error(where + "expected three integers 'A B ID', got '" + printable(lines[n].substr(0, 80)) + "'");
      for (int i = 0; i < 2; ++i)
        if (!defined.count(v[i]))
          throw std::runtime_error(where + "merge references unknown id " + std::to_string(v[i]) +
                                   " (neither a byte nor made by an earlier merge)");
      if (v[2] < 0 || special_ids.count(v[2]) || !defined.insert(v[2]).second)
        throw std::runtime_error(where + "new id " + std::to_string(v[2]) + " is already used (or negative)");
      if (!seen.insert((static_cast<uint64_t>(v[0]) << 32) | static_cast<uint32_t>(v[1])).second)
        throw std::runtime_error(where + "duplicate merge " + std::to_string(v[0]) + " " + std::to_string(v[1]));
      merges.push_back({v[0], v[1], v[2]});
    }
    bpe.emplace(built_from(body_label, [&] { return ByteBPE::from_merges(pattern, byte_ids, merges, specials); }));
  }
  const int declared = field("vocab_size").get<int>();
  if (declared != bpe->vocab_size())
    throw std::runtime_error(meta_label + ": vocab_size " + std::to_string(declared) + " disagrees with the " +
                             (mode == "ranks" ? "ranks" : "merges") + " (" + std::to_string(bpe->vocab_size()) + ")");
  return std::move(*bpe);
}

}  // namespace

void ByteBPE::save(const std::string& dir) const {
  fs::create_directories(dir);
  write_file((fs::path(dir) / (ranks_mode_ ? "ranks.txt" : "merges.txt")).string(), body_text(*this));
  write_file((fs::path(dir) / "tokenizer.json").string(), metadata(*this).dump(2) + "\n");
}

json ByteBPE::to_json() const {
  json j = metadata(*this);
  j[ranks_mode_ ? "ranks" : "merges"] = body_text(*this);
  return j;
}

ByteBPE ByteBPE::from_json(const json& j) {
  const std::string label = "byte BPE tokenizer JSON";
  try {
    const std::string body = mode_of(j, label) == "ranks" ? "ranks" : "merges";
    if (!j.is_object() || !j.contains(body) || !j[body].is_string())
      throw std::runtime_error(label + ": missing \"" + body + "\" (the text of " + body + ".txt)");
    return from_saved(j, label, j[body].get<std::string>(), label + " (" + body + ")");
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(e.what());
  }
}

ByteBPE ByteBPE::load(const std::string& dir) {
  const std::string meta_path = (fs::path(dir) / "tokenizer.json").string();
  if (!fs::exists(meta_path))
    throw std::runtime_error(meta_path + ": cannot open (expected a tokenizer saved by attnzoo: tokenizer.json + merges.txt or ranks.txt)");
  const json meta = parse_json(meta_path, read_file(meta_path), 2, "specials");
  const bool ranks = mode_of(meta, meta_path) == "ranks";
  const std::string body_path = (fs::path(dir) / (ranks ? "ranks.txt" : "merges.txt")).string();
  return from_saved(meta, meta_path, read_file(body_path), body_path);
}

}  // namespace attnzoo::tokenizers
