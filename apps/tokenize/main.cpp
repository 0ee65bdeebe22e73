// tokenize: train, apply and inspect tokenizers (byte-level BPE and WordPiece) from the terminal.
//   tokenize train --type bpe|wordpiece --input FILE... --vocab-size N --out DIR [--pattern gpt2|cl100k] [--special TOKEN...]
//   tokenize encode --tokenizer SPEC --input FILE [--json] [--no-special]
//   tokenize decode --tokenizer SPEC --input FILE
//   tokenize info --tokenizer SPEC [--json]
// SPEC: a saved tokenizer DIR, gpt2:DIR (GPT-2 or Hugging Face files), tiktoken:FILE, wordpiece:VOCAB.txt.
// No torch here: this app links only the tokenizer library.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "apps/common/cli_errors.h"
#include "tokenizers/files.h"
#include "tokenizers/tokenizer.h"

namespace fs = std::filesystem;
using namespace attnzoo::tokenizers;

namespace {

struct TrainArgs {
  std::string type, out, pattern = "gpt2";
  std::vector<std::string> inputs, specials;
  int vocab_size = 0;
  bool cased = false, force = false;
};

struct EncodeArgs {
  std::string tokenizer, input;
  bool json = false, no_special = false;
};

struct InfoArgs {
  std::string tokenizer;
  bool json = false;
};

// The whole file ("-" = standard input), as bytes.
std::string read_input(const std::string& path) {
  if (path != "-") return read_file(path);
  std::ostringstream buf;
  buf << std::cin.rdbuf();
  return buf.str();
}

// Writes the tokenizer next to DIR, then renames it into place: an interrupted or failed run
// leaves no half-written DIR, and an existing DIR is replaced only with --force.
void save_tokenizer(const Tokenizer& tok, const std::string& out, bool force) {
  const fs::path dir = fs::path(out).lexically_normal();
  if (fs::exists(dir) && !(fs::is_directory(dir) && fs::is_empty(dir)) && !force)
    throw std::runtime_error(out + ": exists and is not empty (pass --force to replace it)");
  const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  try {
    tok.save(tmp.string());
    if (fs::exists(dir)) fs::remove_all(dir);
    fs::rename(tmp, dir);
  } catch (...) {
    fs::remove_all(tmp);
    throw;
  }
}

void train(const TrainArgs& a) {
  if (a.vocab_size <= 0) throw std::invalid_argument("--vocab-size must be positive, got " + std::to_string(a.vocab_size));
  std::vector<std::string> texts;
  std::size_t bytes = 0;
  for (const auto& path : a.inputs) {
    texts.push_back(read_input(path));
    bytes += texts.back().size();
  }
  if (bytes == 0) throw std::runtime_error("--input: empty corpus (" + std::to_string(a.inputs.size()) + " empty file(s))");
  const auto start = std::chrono::steady_clock::now();
  std::optional<Tokenizer> tok;
  if (a.type == "bpe") {
    try {
      (void)ByteBPE::pattern_regex(a.pattern);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--pattern: ") + e.what());
    }
    tok.emplace(ByteBPE::train(texts, a.vocab_size, a.pattern, a.specials));
  } else if (a.type == "wordpiece") {
    if (!a.specials.empty())
      throw std::invalid_argument("--special: WordPiece has its own [PAD] [UNK] [CLS] [SEP] [MASK]");
    WordPieceOptions options;
    options.lowercase = !a.cased;
    tok.emplace(WordPiece::train(texts, a.vocab_size, options));
  } else {
    throw std::invalid_argument("--type must be bpe or wordpiece, got '" + a.type + "'");
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  save_tokenizer(*tok, a.out, a.force);
  std::cout << "trained " << a.type << " tokenizer: " << tok->vocab_size() << " tokens";
  if (tok->vocab_size() < a.vocab_size) std::cout << " (fewer than " << a.vocab_size << ": every word of the corpus is one token)";
  std::cout << " from " << bytes << " bytes in " << seconds << " s -> " << a.out << std::endl;
}

void encode(const EncodeArgs& a) {
  const Tokenizer tok = Tokenizer::open(a.tokenizer);
  const std::string text = read_input(a.input);
  const auto ids = tok.encode(text, !a.no_special);
  if (a.json) {
    std::cout << nlohmann::json(ids).dump() << '\n';
  } else {
    std::string line;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ' ';
      line += std::to_string(ids[i]);
    }
    std::cout << line << '\n';
  }
}

// Ids from a file: a JSON array, or integers separated by whitespace.
std::vector<int64_t> read_ids(const std::string& path) {
  const std::string text = read_input(path);
  const auto first = text.find_first_not_of(" \t\r\n");
  std::vector<int64_t> ids;
  if (first != std::string::npos && text[first] == '[') {
    try {
      const auto j = nlohmann::json::parse(text);
      for (std::size_t i = 0; i < j.size(); ++i) {
        if (!j[i].is_number_integer())
          throw std::runtime_error(path + ": element " + std::to_string(i) + " (" + j[i].dump() + ") is not an integer id");
        ids.push_back(j[i].get<int64_t>());
      }
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(path + ": malformed JSON: " + e.what());
    }
    return ids;
  }
  std::istringstream in(text);
  std::string word;
  for (std::size_t n = 1; in >> word; ++n) {
    std::size_t used = 0;
    int64_t id = 0;
    try {
      id = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size())
      throw std::runtime_error(path + ": token " + std::to_string(n) + " ('" + word.substr(0, 20) + "') is not an integer id");
    ids.push_back(id);
  }
  return ids;
}

void decode(const EncodeArgs& a) {
  const Tokenizer tok = Tokenizer::open(a.tokenizer);
  const auto ids = read_ids(a.input);
  std::string text;
  try {
    text = tok.decode(ids);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(a.input + ": " + e.what());
  }
  std::cout << text << std::flush;
}

void info(const InfoArgs& a) {
  const Tokenizer tok = Tokenizer::open(a.tokenizer);
  auto j = tok.info();
  j["spec"] = a.tokenizer;
  if (a.json) {
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << a.tokenizer << ": " << j["type"].get<std::string>() << ", " << j["vocab_size"] << " tokens\n";
  for (const auto& [key, value] : j.items()) {
    if (key == "type" || key == "vocab_size" || key == "spec" || key == "specials") continue;
    std::cout << "  " << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << '\n';
  }
  std::cout << "  special tokens:";
  if (j["specials"].empty()) std::cout << " none";
  for (const auto& [token, id] : j["specials"].items()) std::cout << ' ' << token << '=' << id;
  std::cout << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tokenize: train, apply and inspect byte-level BPE and WordPiece tokenizers"};
  attnzoo::apps::one_line_parse_errors(app, "tokenize");
  app.require_subcommand(1);
  const std::string spec_help =
      "Tokenizer: a saved DIR, gpt2:DIR (encoder.json + vocab.bpe, or vocab.json + merges.txt), tiktoken:FILE "
      "(rank file or npm bundle), wordpiece:VOCAB.txt";

  TrainArgs ta;
  auto* tr = app.add_subcommand("train", "Train a tokenizer on text files and save it to DIR");
  tr->add_option("--type", ta.type, "bpe (byte-level BPE) or wordpiece")->required();
  tr->add_option("--input", ta.inputs, "Text files ('-' = standard input)")->required();
  tr->add_option("--vocab-size", ta.vocab_size, "Tokens in the vocabulary, specials included")->required();
  tr->add_option("--out", ta.out, "Directory to write (tokenizer.json + merges.txt or vocab.txt)")->required();
  tr->add_option("--pattern", ta.pattern, "BPE pre-split: gpt2, cl100k, o200k, none, or regex:<PCRE2>")
      ->capture_default_str();
  tr->add_option("--special", ta.specials, "BPE special tokens, never merged (e.g. '<|endoftext|>')");
  tr->add_flag("--cased", ta.cased, "WordPiece: keep case and accents (default: uncased, as bert-base-uncased)");
  tr->add_flag("--force", ta.force, "Replace --out if it exists");

  EncodeArgs ea;
  auto* en = app.add_subcommand("encode", "Encode a whole file as one text; print the ids");
  en->add_option("--tokenizer", ea.tokenizer, spec_help)->required();
  en->add_option("--input", ea.input, "Text file ('-' = standard input)")->required();
  en->add_flag("--json", ea.json, "Print one JSON array instead of space-separated ids");
  en->add_flag("--no-special", ea.no_special,
               "BPE: encode special-token text as ordinary text; WordPiece: no [CLS]/[SEP] around the ids");

  EncodeArgs da;
  auto* de = app.add_subcommand("decode", "Decode ids (space-separated or a JSON array) back to text");
  de->add_option("--tokenizer", da.tokenizer, spec_help)->required();
  de->add_option("--input", da.input, "File of ids ('-' = standard input)")->required();

  InfoArgs ia;
  auto* in = app.add_subcommand("info", "Describe a tokenizer: type, size, pattern, special tokens");
  in->add_option("--tokenizer", ia.tokenizer, spec_help)->required();
  in->add_flag("--json", ia.json, "Print JSON");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*tr) train(ta);
    if (*en) encode(ea);
    if (*de) decode(da);
    if (*in) info(ia);
  } catch (const std::exception& e) {
    std::cerr << "tokenize: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
