#include "tokenizers/tokenizer.h"

#include "tokenizers/files.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>

namespace attnzoo::tokenizers {
namespace {

namespace fs = std::filesystem;

template <class... F>
struct Overload : F... {
  using F::operator()...;
};
template <class... F>
Overload(F...) -> Overload<F...>;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The "type" of DIR/tokenizer.json, or "" when there is none.
std::string saved_type(const fs::path& dir) {
  const fs::path meta = dir / "tokenizer.json";
  std::ifstream in(meta, std::ios::binary);
  if (!in) return "";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(meta.string() + ": malformed JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw std::runtime_error(meta.string() + ": missing \"type\" (char, byte_bpe or wordpiece)");
  return j["type"].get<std::string>();
}

}  // namespace

Tokenizer Tokenizer::open(const std::string& spec) {
  if (starts_with(spec, "gpt2:")) {
    const fs::path dir = spec.substr(5);
    if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + ": not a directory (gpt2:DIR)");
    if (fs::exists(dir / "encoder.json") || fs::exists(dir / "vocab.bpe"))
      return ByteBPE::load_gpt2((dir / "encoder.json").string(), (dir / "vocab.bpe").string());
    if (fs::exists(dir / "vocab.json") || fs::exists(dir / "merges.txt"))
      return ByteBPE::load_gpt2((dir / "vocab.json").string(), (dir / "merges.txt").string());
    throw std::runtime_error(dir.string() + ": neither encoder.json + vocab.bpe (GPT-2) nor vocab.json + merges.txt "
                                            "(Hugging Face) found");
  }
  if (starts_with(spec, "tiktoken:")) return ByteBPE::load_tiktoken(spec.substr(9));
  if (starts_with(spec, "wordpiece:")) return WordPiece::from_vocab_file(spec.substr(10));
  if (!fs::is_directory(spec)) {
    if (fs::exists(spec))
      throw std::invalid_argument("tokenizer '" + spec + "': a file; name its kind: gpt2:DIR, tiktoken:FILE or wordpiece:FILE");
    throw std::invalid_argument("tokenizer '" + spec + "': no such directory (expected a saved tokenizer DIR, gpt2:DIR, "
                                "tiktoken:FILE or wordpiece:FILE)");
  }
  const std::string type = saved_type(spec);
  if (type == "byte_bpe") return ByteBPE::load(spec);
  if (type == "wordpiece") return WordPiece::load(spec);
  if (type == "char") {
    std::ifstream in(fs::path(spec) / "tokenizer.json", std::ios::binary);
    try {
      return CharTokenizer::from_json(nlohmann::json::parse(in));
    } catch (const std::exception& e) {
      throw std::runtime_error((fs::path(spec) / "tokenizer.json").string() + ": " + e.what());
    }
  }
  if (type.empty()) {
    if (fs::exists(fs::path(spec) / "vocab.txt")) return WordPiece::load(spec);
    throw std::runtime_error((fs::path(spec) / "tokenizer.json").string() + ": cannot open (not a saved tokenizer)");
  }
  throw std::runtime_error((fs::path(spec) / "tokenizer.json").string() + ": unknown tokenizer type '" + type + "'");
}

Tokenizer Tokenizer::from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw std::invalid_argument("tokenizer JSON: expected an object with a \"type\"");
  const std::string type = j["type"].get<std::string>();
  if (type == "char") return CharTokenizer::from_json(j);
  if (type == "byte_bpe") return ByteBPE::from_json(j);
  if (type == "wordpiece") return WordPiece::from_json(j);
  throw std::invalid_argument("tokenizer JSON: unknown type '" + type + "' (char, byte_bpe or wordpiece)");
}

nlohmann::json Tokenizer::to_json() const {
  return std::visit([](const auto& t) -> nlohmann::json { return t.to_json(); }, impl_);
}

void Tokenizer::save(const std::string& dir) const {
  std::visit(Overload{[&](const CharTokenizer& t) {
                        fs::create_directories(dir);
                        write_file((fs::path(dir) / "tokenizer.json").string(), t.to_json().dump(2) + "\n");
                      },
                      [&](const auto& t) { t.save(dir); }},
             impl_);
}

std::string Tokenizer::type() const {
  return std::visit(Overload{[](const CharTokenizer&) { return std::string("char"); },
                             [](const ByteBPE&) { return std::string("byte_bpe"); },
                             [](const WordPiece&) { return std::string("wordpiece"); }},
                    impl_);
}

int64_t Tokenizer::vocab_size() const {
  return std::visit([](const auto& t) -> int64_t { return t.vocab_size(); }, impl_);
}

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool specials) const {
  return std::visit(Overload{[&](const CharTokenizer& t) { return t.encode(text); },
                             [&](const ByteBPE& t) {
                               const auto ids = t.encode(text, specials ? SpecialMode::all : SpecialMode::none);
                               return std::vector<int64_t>(ids.begin(), ids.end());
                             },
                             [&](const WordPiece& t) {
                               const auto ids = specials ? t.encode(text).ids : t.encode_ids(text);
                               return std::vector<int64_t>(ids.begin(), ids.end());
                             }},
                    impl_);
}

std::vector<int64_t> Tokenizer::encode_parallel(std::string_view text, int64_t threads, std::size_t min_piece) const {
  const bool splittable = chars() || (bpe() && bpe()->pattern() != "none");
  const auto n = static_cast<std::size_t>(std::max<int64_t>(1, threads));
  min_piece = std::max<std::size_t>(1, min_piece);
  if (!splittable || n == 1 || text.size() < 2 * min_piece) return encode(text);
  std::vector<std::size_t> cuts{0};
  for (std::size_t i = 1; i < n; ++i) {
    std::size_t c = std::max(cuts.back() + min_piece, text.size() * i / n);
    while (c < text.size() && !(text[c - 1] == '\n' && std::isalnum(static_cast<unsigned char>(text[c])))) ++c;
    if (c >= text.size()) break;
    cuts.push_back(c);
  }
  cuts.push_back(text.size());
  std::vector<std::future<std::vector<int64_t>>> parts;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
    parts.push_back(std::async(std::launch::async, [this, piece = text.substr(cuts[i], cuts[i + 1] - cuts[i])] {
      return encode(piece);
    }));
  std::vector<int64_t> ids;
  for (auto& p : parts) {
    auto part = p.get();
    ids.insert(ids.end(), part.begin(), part.end());
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  const auto narrow = [&](int64_t limit) {
    std::vector<int> out;
    out.reserve(ids.size());
    for (const int64_t id : ids) {
      if (id < 0 || id >= limit)
        throw std::invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary of " +
                                    std::to_string(limit));
      out.push_back(static_cast<int>(id));
    }
    return out;
  };
  return std::visit(Overload{[&](const CharTokenizer& t) { return t.decode(ids); },
                             [&](const ByteBPE& t) { return t.decode(narrow(t.vocab_size())); },
                             [&](const WordPiece& t) { return t.decode(narrow(t.vocab_size()), false); }},
                    impl_);
}

std::vector<std::pair<std::string, int64_t>> Tokenizer::special_tokens() const {
  std::vector<std::pair<std::string, int64_t>> out;
  std::visit(Overload{[&](const CharTokenizer&) {},
                      [&](const ByteBPE& t) {
                        for (const auto& [token, id] : t.specials()) out.emplace_back(token, id);
                      },
                      [&](const WordPiece& t) {
                        const auto& o = t.options();
                        for (const auto* token : {&o.pad_token, &o.unk_token, &o.cls_token, &o.sep_token, &o.mask_token}) {
                          const int id = t.token_to_id(*token);
                          if (id >= 0) out.emplace_back(*token, id);
                        }
                      }},
             impl_);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  return out;
}

nlohmann::json Tokenizer::info() const {
  nlohmann::json j = {{"type", type()}, {"vocab_size", vocab_size()}};
  nlohmann::json specials = nlohmann::json::object();
  for (const auto& [token, id] : special_tokens()) specials[token] = id;
  j["specials"] = specials;
  std::visit(Overload{[&](const CharTokenizer&) {},
                      [&](const ByteBPE& t) {
                        j["mode"] = t.ranks_mode() ? "ranks" : "merges";
                        j["pattern"] = t.pattern();
                        if (t.ranks_mode()) {
                          int n = 0;
                          for (int id = 0; id < t.vocab_size(); ++id) n += t.has_id(id) ? 1 : 0;
                          j["tokens"] = n - static_cast<int>(t.specials().size());
                        } else {
                          j["merges"] = t.merges().size();
                        }
                      },
                      [&](const WordPiece& t) {
                        const auto& o = t.options();
                        j["lowercase"] = o.lowercase;
                        j["strip_accents"] = o.strips_accents();
                        j["max_input_chars_per_word"] = o.max_input_chars_per_word;
                      }},
             impl_);
  return j;
}

}  // namespace attnzoo::tokenizers
