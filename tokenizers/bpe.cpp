#include "tokenizers/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <filesystem>
#include <functional>
#include <fstream>
#include <optional>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "tokenizers/utf8.h"

namespace attnzoo::tokenizers {
namespace {

constexpr int kBytes = 256;

// A pair of symbol ids as one key; ordering the keys orders the pairs lexicographically.
uint64_t pair_key(int a, int b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }
int key_first(uint64_t key) { return static_cast<int>(key >> 32); }
int key_second(uint64_t key) { return static_cast<int>(key & 0xFFFFFFFFu); }

const std::vector<std::pair<std::string, std::string>>& patterns() {
  // GPT-2: openai/gpt-2 src/encoder.py. cl100k: tiktoken_ext/openai_public.py (cl100k_base), the
  // form with possessive quantifiers that tiktoken 0.5 published; later releases rewrote it with
  // more possessives for speed, splitting text the same way.
  static const std::vector<std::pair<std::string, std::string>> p = {
      {"gpt2", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"},
      {"cl100k",
       R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"},
      {"none", ""},
  };
  return p;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// Length of the UTF-8 character whose lead byte is `c` (the text is known to be valid).
std::size_t utf8_length(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

}  // namespace

struct ByteBPE::Splitter {
  pcre2_code* code = nullptr;

  explicit Splitter(const std::string& regex) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(), PCRE2_UTF | PCRE2_UCP, &error,
                         &offset, nullptr);
    if (code == nullptr)
      throw std::logic_error("byte BPE: pre-split pattern does not compile at offset " + std::to_string(offset) +
                             ": " + pcre2_message(error));
    // Without JIT support (some architectures) PCRE2 falls back to its interpreter: slower, same pieces.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  }
  ~Splitter() { pcre2_code_free(code); }
  Splitter(const Splitter&) = delete;
  Splitter& operator=(const Splitter&) = delete;
};

namespace {

// Per-call match state (match data and a JIT stack), so that a shared ByteBPE stays thread-safe.
class PieceSplitter {
 public:
  explicit PieceSplitter(const pcre2_code* code) : code_(code) {
    if (code_ == nullptr) return;
    data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
    context_ = pcre2_match_context_create(nullptr);
    stack_ = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (data_ == nullptr || context_ == nullptr || stack_ == nullptr) {
      release();
      throw std::bad_alloc();
    }
    pcre2_jit_stack_assign(context_, nullptr, stack_);
  }
  ~PieceSplitter() { release(); }
  PieceSplitter(const PieceSplitter&) = delete;
  PieceSplitter& operator=(const PieceSplitter&) = delete;

  // Appends the pieces of `text` to `out`: without a pattern the whole text; otherwise the regex
  // matches over each maximal valid-UTF-8 run, and each invalid byte as a piece of its own.
  void split(std::string_view text, std::vector<std::string_view>& out) {
    if (text.empty()) return;
    if (code_ == nullptr) {
      out.push_back(text);
      return;
    }
    while (!text.empty()) {
      const std::size_t bad = utf8_invalid_offset(text);
      if (bad == std::string_view::npos) {
        split_valid(text, out);
        return;
      }
      split_valid(text.substr(0, bad), out);
      out.push_back(text.substr(bad, 1));
      text.remove_prefix(bad + 1);
    }
  }

 private:
  void split_valid(std::string_view run, std::vector<std::string_view>& out) {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(run.data());
    std::size_t offset = 0;
    while (offset < run.size()) {
      const int rc = pcre2_match(code_, subject, run.size(), offset, PCRE2_NO_UTF_CHECK, data_, context_);
      if (rc == PCRE2_ERROR_NOMATCH) {
        out.push_back(run.substr(offset));  // unreachable with the built-in patterns, which cover every character
        return;
      }
      if (rc < 0) throw std::runtime_error("byte BPE: pre-split regex failed: " + pcre2_message(rc));
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data_);
      const std::size_t start = ovector[0];
      std::size_t end = ovector[1];
      if (start > offset) out.push_back(run.substr(offset, start - offset));
      if (end == start) end = start + utf8_length(static_cast<unsigned char>(run[start]));
      out.push_back(run.substr(start, end - start));
      offset = end;
    }
  }

  void release() {
    if (stack_) pcre2_jit_stack_free(stack_);
    if (context_) pcre2_match_context_free(context_);
    if (data_) pcre2_match_data_free(data_);
    stack_ = nullptr;
    context_ = nullptr;
    data_ = nullptr;
  }

  const pcre2_code* code_;
  pcre2_match_data* data_ = nullptr;
  pcre2_match_context* context_ = nullptr;
  pcre2_jit_stack* stack_ = nullptr;
};

// Calls on_text(segment) for the ordinary text between special tokens and on_special(token) for
// each special token, left to right; at one position the longest special token wins.
template <typename OnText, typename OnSpecial>
void cut_specials(std::string_view text, const std::vector<std::string>& specials, OnText on_text,
                  OnSpecial on_special) {
  if (specials.empty()) {
    on_text(text);
    return;
  }
  std::vector<std::size_t> next(specials.size(), 0);
  for (std::size_t i = 0; i < specials.size(); ++i) next[i] = text.find(specials[i]);
  std::size_t pos = 0;
  while (true) {
    std::size_t best = std::string_view::npos;
    std::size_t which = 0;
    for (std::size_t i = 0; i < specials.size(); ++i) {
      if (next[i] != std::string_view::npos && next[i] < pos) next[i] = text.find(specials[i], pos);
      if (next[i] < best || (next[i] == best && best != std::string_view::npos &&
                             specials[i].size() > specials[which].size())) {
        best = next[i];
        which = i;
      }
    }
    if (best == std::string_view::npos) break;
    on_text(text.substr(pos, best - pos));
    on_special(specials[which]);
    pos = best + specials[which].size();
  }
  on_text(text.substr(pos));
}

}  // namespace

const std::vector<std::string>& ByteBPE::pattern_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, regex] : patterns()) n.push_back(name);
    return n;
  }();
  return names;
}

const std::string& ByteBPE::pattern_regex(const std::string& name) {
  for (const auto& [n, regex] : patterns())
    if (n == name) return regex;
  std::string known;
  for (const auto& n : pattern_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("byte BPE: unknown pre-split pattern '" + name + "' (expected one of " + known + ")");
}

ByteBPE::ByteBPE(std::string pattern) : ByteBPE(std::move(pattern), {}) {}

ByteBPE::ByteBPE(std::string pattern, std::vector<std::pair<int, int>> merges)
    : pattern_(std::move(pattern)), merges_(std::move(merges)) {
  const std::string& regex = pattern_regex(pattern_);
  if (!regex.empty()) splitter_ = std::make_shared<const Splitter>(regex);
  vocab_.reserve(kBytes + merges_.size());
  for (int b = 0; b < kBytes; ++b) vocab_.emplace_back(1, static_cast<char>(b));
  ranks_.reserve(merges_.size());
  for (std::size_t k = 0; k < merges_.size(); ++k) {
    const auto [a, b] = merges_[k];
    const int id = kBytes + static_cast<int>(k);
    if (a < 0 || a >= id || b < 0 || b >= id)
      throw std::invalid_argument("byte BPE: merge " + std::to_string(k) + " (" + std::to_string(a) + ", " +
                                  std::to_string(b) + ") references an id not below its own id " + std::to_string(id));
    if (!ranks_.emplace(pair_key(a, b), static_cast<int>(k)).second)
      throw std::invalid_argument("byte BPE: merge " + std::to_string(k) + " (" + std::to_string(a) + ", " +
                                  std::to_string(b) + ") repeats an earlier merge");
    vocab_.push_back(vocab_[static_cast<std::size_t>(a)] + vocab_[static_cast<std::size_t>(b)]);
  }
}

int ByteBPE::add_special(const std::string& token) {
  if (token.empty()) throw std::invalid_argument("byte BPE: a special token cannot be empty");
  const int id = vocab_size();
  if (!specials_.emplace(token, id).second)
    throw std::invalid_argument("byte BPE: duplicate special token '" + token + "'");
  vocab_.push_back(token);
  return id;
}

const std::string& ByteBPE::token_bytes(int id) const {
  if (id < 0 || id >= vocab_size())
    throw std::invalid_argument("byte BPE: token id " + std::to_string(id) + " is outside the vocabulary of " +
                                std::to_string(vocab_size()));
  return vocab_[static_cast<std::size_t>(id)];
}

std::vector<std::string> ByteBPE::pre_split(std::string_view text) const {
  PieceSplitter splitter(splitter_ ? splitter_->code : nullptr);
  std::vector<std::string_view> pieces;
  splitter.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

void ByteBPE::encode_piece(std::string_view piece, std::vector<int>& out) const {
  // Apply the lowest-rank merge present, at every (non-overlapping, leftmost-first) occurrence, one
  // rank at a time: what tiktoken and minbpe do. A merge never creates a pair of lower rank than its
  // own (any merge using id 256 + r has rank > r), so this equals applying the merges in rank order.
  constexpr std::size_t kShort = 64;
  if (piece.size() <= kShort) {
    // Short pieces (nearly all of them after a pre-split): rescan the few pairs after each merge.
    int ids[kShort];
    std::size_t n = piece.size();
    for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<unsigned char>(piece[i]);
    while (n >= 2) {
      int best = INT_MAX;
      for (std::size_t i = 0; i + 1 < n; ++i) {
        const auto it = ranks_.find(pair_key(ids[i], ids[i + 1]));
        if (it != ranks_.end() && it->second < best) best = it->second;
      }
      if (best == INT_MAX) break;
      const auto [a, b] = merges_[static_cast<std::size_t>(best)];
      const int id = kBytes + best;
      std::size_t w = 0;
      for (std::size_t r = 0; r < n;) {
        if (r + 1 < n && ids[r] == a && ids[r + 1] == b) {
          ids[w++] = id;
          r += 2;
        } else {
          ids[w++] = ids[r++];
        }
      }
      n = w;
    }
    out.insert(out.end(), ids, ids + n);
    return;
  }
  // Long pieces (runs of spaces, unsplit text): a linked list of symbols and a min-heap of
  // (rank, position) candidates, checked when popped; O(n log n) instead of O(n^2).
  const std::size_t n = piece.size();
  std::vector<int> sym(n), prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    sym[i] = static_cast<unsigned char>(piece[i]);
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i) + 1 : -1;
  }
  using Candidate = std::pair<int, int>;  // (rank, position of the left symbol)
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto push = [&](int i) {
    if (i < 0 || next[i] < 0) return;
    const auto it = ranks_.find(pair_key(sym[i], sym[next[i]]));
    if (it != ranks_.end()) heap.push({it->second, i});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<int>(i));
  while (!heap.empty()) {
    const auto [rank, i] = heap.top();
    heap.pop();
    const int j = next[i];
    // Stale when the left symbol was absorbed (sym = -1), has no right neighbour any more, or either
    // side changed since the candidate was pushed.
    if (sym[i] < 0 || j < 0) continue;
    const auto [a, b] = merges_[static_cast<std::size_t>(rank)];
    if (sym[i] != a || sym[j] != b) continue;
    sym[i] = kBytes + rank;
    sym[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    push(prev[i]);
    push(i);
  }
  for (int i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
}

void ByteBPE::encode_ordinary(std::string_view text, std::vector<int>& out, PieceCache& cache) const {
  PieceSplitter splitter(splitter_ ? splitter_->code : nullptr);
  std::vector<std::string_view> pieces;
  splitter.split(text, pieces);
  for (const auto piece : pieces) {
    if (piece.size() == 1) {
      out.push_back(static_cast<unsigned char>(piece[0]));
      continue;
    }
    auto it = cache.find(piece);
    if (it == cache.end()) {
      std::vector<int> ids;
      encode_piece(piece, ids);
      it = cache.emplace(piece, std::move(ids)).first;
    }
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
}

std::vector<int> ByteBPE::encode(std::string_view text, SpecialMode mode, const std::set<std::string>& allowed) const {
  std::vector<std::string> active;
  if (mode == SpecialMode::all) {
    for (const auto& [token, id] : specials_) active.push_back(token);
  } else if (mode == SpecialMode::set) {
    for (const auto& token : allowed) {
      if (!specials_.count(token))
        throw std::invalid_argument("byte BPE: allowed special token '" + token + "' is not registered (" +
                                    std::to_string(specials_.size()) + " special tokens known)");
      active.push_back(token);
    }
  }
  std::vector<int> out;
  out.reserve(text.size() / 3);
  PieceCache cache;
  cut_specials(
      text, active, [&](std::string_view segment) { encode_ordinary(segment, out, cache); },
      [&](const std::string& token) { out.push_back(specials_.at(token)); });
  return out;
}

std::string ByteBPE::decode(const std::vector<int>& ids) const {
  std::string out;
  for (const int id : ids) out += token_bytes(id);
  return out;
}

ByteBPE ByteBPE::train(const std::vector<std::string>& texts, int vocab_size, const std::string& pattern,
                       const std::vector<std::string>& specials) {
  ByteBPE base(pattern);
  const int n_specials = static_cast<int>(specials.size());
  if (vocab_size < kBytes + n_specials)
    throw std::invalid_argument("byte BPE: vocab_size " + std::to_string(vocab_size) +
                                " is smaller than the 256 byte tokens + " + std::to_string(n_specials) +
                                " special tokens = " + std::to_string(kBytes + n_specials));
  for (const auto& s : specials) base.add_special(s);  // validates: non-empty, distinct

  // Word (pre-split piece) -> frequency; special tokens are cut out so that no merge spans them.
  std::unordered_map<std::string_view, int64_t> counts;
  {
    PieceSplitter splitter(base.splitter_ ? base.splitter_->code : nullptr);
    std::vector<std::string_view> pieces;
    for (const auto& text : texts) {
      pieces.clear();
      cut_specials(
          text, specials, [&](std::string_view segment) { splitter.split(segment, pieces); },
          [](const std::string&) {});
      for (const auto piece : pieces) ++counts[piece];
    }
  }
  if (counts.empty())
    throw std::invalid_argument("byte BPE: empty training corpus (" + std::to_string(texts.size()) +
                                " texts, no bytes outside special tokens)");

  // Words in byte order, so that the internal layout does not depend on hashing.
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  for (std::size_t w = 0; w < sorted.size(); ++w) {
    for (const char c : sorted[w].first) words[w].push_back(static_cast<unsigned char>(c));
    freq[w] = sorted[w].second;
  }

  // Incremental state: pair -> count (weighted by word frequency, overlapping occurrences counted as
  // minbpe's get_stats does), pair -> the words it occurs in, and a max-heap of (count, pair) with
  // lazy deletion: an entry whose count no longer matches pair_count is stale and skipped. A merge
  // updates only the words in its pair's set. The sets may keep a word that has since lost the pair
  // (removing it would mean rescanning the word); such a word is skipped when its turn comes.
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::unordered_set<int>> pair_words;
  for (std::size_t w = 0; w < words.size(); ++w)
    for (std::size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t key = pair_key(words[w][i], words[w][i + 1]);
      pair_count[key] += freq[w];
      pair_words[key].insert(static_cast<int>(w));
    }
  struct Entry {
    int64_t count;
    uint64_t key;
    // Lower priority: fewer occurrences, or as many and a lexicographically larger pair.
    bool operator<(const Entry& o) const { return count < o.count || (count == o.count && key > o.key); }
  };
  std::priority_queue<Entry> heap;
  for (const auto& [key, count] : pair_count) heap.push({count, key});

  const int n_merges = vocab_size - kBytes - n_specials;
  std::vector<std::pair<int, int>> merges;
  merges.reserve(static_cast<std::size_t>(n_merges));
  std::vector<uint64_t> touched;
  std::vector<int> merged;
  std::vector<char> consumed, fresh;
  while (static_cast<int>(merges.size()) < n_merges) {
    uint64_t best = 0;
    bool found = false;
    while (!heap.empty()) {
      const Entry top = heap.top();
      heap.pop();
      const auto it = pair_count.find(top.key);
      if (it != pair_count.end() && it->second == top.count) {
        best = top.key;
        found = true;
        break;
      }
    }
    if (!found) break;  // every word is a single symbol
    const int a = key_first(best), b = key_second(best);
    const int id = kBytes + static_cast<int>(merges.size());
    merges.emplace_back(a, b);

    const auto node = pair_words.extract(best);
    touched.clear();
    for (const int w : node.mapped()) {
      auto& word = words[static_cast<std::size_t>(w)];
      merged.clear();
      fresh.clear();
      consumed.assign(word.size(), 0);
      for (std::size_t r = 0; r < word.size();) {
        if (r + 1 < word.size() && word[r] == a && word[r + 1] == b) {
          consumed[r] = consumed[r + 1] = 1;
          merged.push_back(id);
          fresh.push_back(1);
          r += 2;
        } else {
          merged.push_back(word[r++]);
          fresh.push_back(0);
        }
      }
      if (merged.size() == word.size()) continue;  // a stale member of the set (see above)
      // Only pairs next to a merge change: the old ones touching a consumed symbol go, the new ones
      // touching the new symbol come; every other adjacency is the same in both.
      const int64_t f = freq[static_cast<std::size_t>(w)];
      for (std::size_t i = 0; i + 1 < word.size(); ++i)
        if (consumed[i] || consumed[i + 1]) {
          const uint64_t p = pair_key(word[i], word[i + 1]);
          pair_count[p] -= f;
          touched.push_back(p);
        }
      for (std::size_t i = 0; i + 1 < merged.size(); ++i)
        if (fresh[i] || fresh[i + 1]) {
          const uint64_t p = pair_key(merged[i], merged[i + 1]);
          pair_count[p] += f;
          touched.push_back(p);
          pair_words[p].insert(w);
        }
      word.swap(merged);
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (const uint64_t p : touched) {
      const auto it = pair_count.find(p);
      if (it->second > 0) {
        heap.push({it->second, p});
      } else {
        pair_count.erase(it);
        pair_words.erase(p);
      }
    }
  }

  ByteBPE bpe(pattern, std::move(merges));
  for (const auto& s : specials) bpe.add_special(s);
  return bpe;
}

void ByteBPE::save(const std::string& dir) const {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const std::string merges_path = (fs::path(dir) / "merges.txt").string();
  {
    std::ofstream out(merges_path, std::ios::binary);
    for (std::size_t k = 0; k < merges_.size(); ++k)
      out << merges_[k].first << ' ' << merges_[k].second << ' ' << kBytes + static_cast<int>(k) << '\n';
    out.flush();
    if (!out) throw std::runtime_error(merges_path + ": cannot write (is the disk full or the directory read-only?)");
  }
  nlohmann::json specials = nlohmann::json::object();
  for (const auto& [token, id] : specials_) specials[token] = id;
  const nlohmann::json meta = {
      {"type", "byte_bpe"}, {"pattern", pattern_}, {"vocab_size", vocab_size()}, {"specials", specials}};
  const std::string meta_path = (fs::path(dir) / "tokenizer.json").string();
  std::ofstream out(meta_path, std::ios::binary);
  out << meta.dump(2) << '\n';
  out.flush();
  if (!out) throw std::runtime_error(meta_path + ": cannot write (is the disk full or the directory read-only?)");
}

ByteBPE ByteBPE::load(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string merges_path = (fs::path(dir) / "merges.txt").string();
  const std::string meta_path = (fs::path(dir) / "tokenizer.json").string();

  std::ifstream in(merges_path, std::ios::binary);
  if (!in) throw std::runtime_error(merges_path + ": cannot open (expected a tokenizer saved by ByteBPE::save)");
  std::vector<std::pair<int, int>> merges;
  std::unordered_set<uint64_t> seen_pairs;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto where = merges_path + ":" + std::to_string(lineno) + ": ";
    std::istringstream fields(line);
    std::vector<std::string> tokens;
    for (std::string t; fields >> t;) tokens.push_back(t);
    int v[3] = {0, 0, 0};
    bool ok = tokens.size() == 3;
    for (std::size_t i = 0; ok && i < 3; ++i) {
      const auto& t = tokens[i];
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v[i]);
      ok = ec == std::errc() && end == t.data() + t.size();
    }
    if (!ok) throw std::runtime_error(where + "expected three integers 'A B ID', got '" + line + "'");
    const int expected = kBytes + static_cast<int>(merges.size());
    if (v[2] != expected)
      throw std::runtime_error(where + "new id " + std::to_string(v[2]) + ", expected " + std::to_string(expected) +
                               " (merges are listed in rank order, the first creating 256)");
    for (int i = 0; i < 2; ++i)
      if (v[i] < 0 || v[i] >= expected)
        throw std::runtime_error(where + "merge references unknown id " + std::to_string(v[i]) +
                                 " (ids defined so far: 0.." + std::to_string(expected - 1) + ")");
    if (!seen_pairs.insert(pair_key(v[0], v[1])).second)
      throw std::runtime_error(where + "duplicate merge " + std::to_string(v[0]) + " " + std::to_string(v[1]));
    merges.emplace_back(v[0], v[1]);
  }

  std::ifstream meta_in(meta_path, std::ios::binary);
  if (!meta_in) throw std::runtime_error(meta_path + ": cannot open (expected a tokenizer saved by ByteBPE::save)");
  // nlohmann::json keeps the last of duplicate keys; a parser callback catches duplicate specials.
  std::string top_key, duplicate;
  std::set<std::string> seen;
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(meta_in, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      if (event == nlohmann::json::parse_event_t::key) {
        if (depth == 1) top_key = parsed.get<std::string>();
        if (depth == 2 && top_key == "specials" && !seen.insert(parsed.get<std::string>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
      }
      return true;
    });
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(meta_path + ": " + e.what());
  }
  if (!duplicate.empty()) throw std::runtime_error(meta_path + ": duplicate special token '" + duplicate + "'");
  const auto field = [&](const char* name) -> const nlohmann::json& {
    if (!meta.is_object() || !meta.contains(name))
      throw std::runtime_error(meta_path + ": missing field \"" + name + "\"");
    return meta.at(name);
  };
  if (field("type") != "byte_bpe")
    throw std::runtime_error(meta_path + ": \"type\" is " + field("type").dump() + ", expected \"byte_bpe\"");
  if (!field("pattern").is_string()) throw std::runtime_error(meta_path + ": \"pattern\" must be a string");
  if (!field("vocab_size").is_number_integer())
    throw std::runtime_error(meta_path + ": \"vocab_size\" must be an integer");
  if (!field("specials").is_object())
    throw std::runtime_error(meta_path + ": \"specials\" must be an object {token: id}");

  std::optional<ByteBPE> bpe;
  try {
    bpe.emplace(field("pattern").get<std::string>(), std::move(merges));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(meta_path + ": " + e.what());
  }
  std::map<int, std::string> by_id;
  for (const auto& [token, id] : field("specials").items()) {
    if (!id.is_number_integer())
      throw std::runtime_error(meta_path + ": special token '" + token + "' has id " + id.dump() + ", not an integer");
    const int i = id.get<int>();
    if (!by_id.emplace(i, token).second)
      throw std::runtime_error(meta_path + ": special tokens '" + by_id[i] + "' and '" + token + "' share id " +
                               std::to_string(i));
  }
  for (const auto& [id, token] : by_id) {
    if (id != bpe->vocab_size())
      throw std::runtime_error(meta_path + ": special token '" + token + "' has id " + std::to_string(id) +
                               ", expected " + std::to_string(bpe->vocab_size()) +
                               " (specials follow the merges, with consecutive ids)");
    if (token.empty()) throw std::runtime_error(meta_path + ": a special token cannot be empty");
    bpe->add_special(token);
  }
  const int declared = field("vocab_size").get<int>();
  if (declared != bpe->vocab_size())
    throw std::runtime_error(meta_path + ": vocab_size " + std::to_string(declared) + " disagrees with the files: 256 + " +
                             std::to_string(bpe->merges().size()) + " merges + " + std::to_string(by_id.size()) +
                             " specials = " + std::to_string(bpe->vocab_size()));
  return std::move(*bpe);
}

}  // namespace attnzoo::tokenizers
