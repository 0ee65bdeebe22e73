#include "tokenizers/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <queue>
#include <stdexcept>
#include <unordered_set>

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
  // more possessives for speed, splitting text the same way. o200k: as npm tiktoken 1.0.22 ships it.
  static const std::vector<std::pair<std::string, std::string>> p = {
      {"gpt2", R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"},
      {"cl100k",
       R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"},
      {"o200k",
       R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
       R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
       R"(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
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
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(), PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C, &error,
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

// Match state (match data for the whole match only, a match context and a JIT stack), one per
// thread and shared by every pattern: a shared ByteBPE stays thread-safe, and a call costs no
// allocation (which dominated encoding many short texts).
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;

  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (data == nullptr || context == nullptr || stack == nullptr) {
      release();
      throw std::bad_alloc();
    }
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() { release(); }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;

  void release() {
    if (stack) pcre2_jit_stack_free(stack);
    if (context) pcre2_match_context_free(context);
    if (data) pcre2_match_data_free(data);
    stack = nullptr;
    context = nullptr;
    data = nullptr;
  }

  static MatchState& for_this_thread() {
    thread_local MatchState state;
    return state;
  }
};

class PieceSplitter {
 public:
  explicit PieceSplitter(const pcre2_code* code)
      : code_(code), state_(code ? &MatchState::for_this_thread() : nullptr) {}

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
      const int rc =
          pcre2_match(code_, subject, run.size(), offset, PCRE2_NO_UTF_CHECK, state_->data, state_->context);
      if (rc == PCRE2_ERROR_NOMATCH) {
        out.push_back(run.substr(offset));  // unreachable with the built-in patterns, which cover every character
        return;
      }
      if (rc < 0) throw std::runtime_error("byte BPE: pre-split regex failed: " + pcre2_message(rc));
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state_->data);
      const std::size_t start = ovector[0];
      std::size_t end = ovector[1];
      if (start > offset) out.push_back(run.substr(offset, start - offset));
      if (start == run.size()) return;  // an empty match at the very end (a user regex such as "$")
      if (end == start) end = start + utf8_length(static_cast<unsigned char>(run[start]));
      out.push_back(run.substr(start, end - start));
      offset = end;
    }
  }

  const pcre2_code* code_;
  MatchState* state_;
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

std::string ByteBPE::pattern_regex(const std::string& pattern) {
  constexpr std::string_view kRegex = "regex:";
  if (std::string_view(pattern).substr(0, kRegex.size()) == kRegex) {
    if (pattern.size() == kRegex.size()) throw std::invalid_argument("byte BPE: empty pre-split regex after 'regex:'");
    return pattern.substr(kRegex.size());
  }
  for (const auto& [n, regex] : patterns())
    if (n == pattern) return regex;
  std::string known;
  for (const auto& n : pattern_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("byte BPE: unknown pre-split pattern '" + pattern + "' (expected one of " + known +
                              ", or regex:<PCRE2 pattern>)");
}

void ByteBPE::set_pattern(std::string pattern) {
  const std::string regex = pattern_regex(pattern);
  pattern_ = std::move(pattern);
  splitter_ = regex.empty() ? nullptr : std::make_shared<const Splitter>(regex);
}

void ByteBPE::define(int id, std::string bytes, const std::string& what) {
  if (id < 0 || id >= (1 << 30))
    throw std::invalid_argument("byte BPE: " + what + " has id " + std::to_string(id) + ", outside [0, 2^30)");
  const auto i = static_cast<std::size_t>(id);
  if (i >= vocab_.size()) {
    vocab_.resize(i + 1);
    defined_.resize(i + 1, 0);
  }
  if (defined_[i]) throw std::invalid_argument("byte BPE: " + what + " reuses id " + std::to_string(id));
  vocab_[i] = std::move(bytes);
  defined_[i] = 1;
}

void ByteBPE::register_specials(const std::map<std::string, int>& specials) {
  check_ids(specials.size(), [&](const auto& check) {
    for (const auto& [token, id] : specials) check(id, "special token '" + token + "'");
  });
  for (const auto& [token, id] : specials) {
    if (token.empty()) throw std::invalid_argument("byte BPE: a special token cannot be empty");
    if (utf8_invalid_offset(token) != std::string::npos)
      throw std::invalid_argument("byte BPE: special token of " + std::to_string(token.size()) +
                                  " bytes (id " + std::to_string(id) + ") is not valid UTF-8 text");
    define(id, token, "special token '" + token + "'");
    specials_.emplace(token, id);
  }
}

ByteBPE::ByteBPE(std::string pattern) : ByteBPE(std::move(pattern), {}) {}

ByteBPE::ByteBPE(std::string pattern, std::vector<std::pair<int, int>> merges) {
  set_pattern(std::move(pattern));
  vocab_.reserve(kBytes + merges.size());
  for (int b = 0; b < kBytes; ++b) {
    byte_ids_[static_cast<std::size_t>(b)] = b;
    define(b, std::string(1, static_cast<char>(b)), "byte");
  }
  pairs_.reserve(merges.size());
  for (std::size_t k = 0; k < merges.size(); ++k) {
    const auto [a, b] = merges[k];
    const int id = kBytes + static_cast<int>(k);
    if (a < 0 || a >= id || b < 0 || b >= id)
      throw std::invalid_argument("byte BPE: merge " + std::to_string(k) + " (" + std::to_string(a) + ", " +
                                  std::to_string(b) + ") references an id not below its own id " + std::to_string(id));
    if (!pairs_.emplace(pair_key(a, b), PairMerge{static_cast<int>(k), id}).second)
      throw std::invalid_argument("byte BPE: merge " + std::to_string(k) + " (" + std::to_string(a) + ", " +
                                  std::to_string(b) + ") repeats an earlier merge");
    define(id, vocab_[static_cast<std::size_t>(a)] + vocab_[static_cast<std::size_t>(b)], "merge");
    merge_ids_.push_back(id);
  }
  merges_ = std::move(merges);
}

ByteBPE ByteBPE::from_merges(std::string pattern, const std::vector<int>& byte_ids, const std::vector<Merge>& merges,
                             const std::map<std::string, int>& specials) {
  ByteBPE bpe{Blank{}};
  bpe.set_pattern(std::move(pattern));
  if (byte_ids.size() != kBytes)
    throw std::invalid_argument("byte BPE: " + std::to_string(byte_ids.size()) + " byte ids given, expected 256");
  bpe.check_ids(kBytes + merges.size() + specials.size(), [&](const auto& check) {
    for (int b = 0; b < kBytes; ++b) check(byte_ids[static_cast<std::size_t>(b)], "byte " + std::to_string(b));
    for (std::size_t k = 0; k < merges.size(); ++k) check(merges[k].id, "merge " + std::to_string(k));
  });
  for (int b = 0; b < kBytes; ++b) {
    const int id = byte_ids[static_cast<std::size_t>(b)];
    bpe.byte_ids_[static_cast<std::size_t>(b)] = id;
    bpe.define(id, std::string(1, static_cast<char>(b)), "byte " + std::to_string(b));
  }
  bpe.pairs_.reserve(merges.size());
  for (std::size_t k = 0; k < merges.size(); ++k) {
    const auto& m = merges[k];
    const std::string what = "merge " + std::to_string(k) + " (" + std::to_string(m.a) + " " + std::to_string(m.b) +
                             " -> " + std::to_string(m.id) + ")";
    for (const int parent : {m.a, m.b})
      if (!bpe.has_id(parent))
        throw std::invalid_argument("byte BPE: " + what + " references unknown id " + std::to_string(parent));
    if (!bpe.pairs_.emplace(pair_key(m.a, m.b), PairMerge{static_cast<int>(k), m.id}).second)
      throw std::invalid_argument("byte BPE: " + what + " repeats an earlier merge");
    bpe.define(m.id, bpe.vocab_[static_cast<std::size_t>(m.a)] + bpe.vocab_[static_cast<std::size_t>(m.b)], what);
    bpe.merges_.emplace_back(m.a, m.b);
    bpe.merge_ids_.push_back(m.id);
  }
  bpe.register_specials(specials);
  return bpe;
}

ByteBPE ByteBPE::from_ranks(std::string pattern, const std::vector<std::pair<std::string, int>>& tokens,
                            const std::map<std::string, int>& specials) {
  ByteBPE bpe{Blank{}};
  bpe.set_pattern(std::move(pattern));
  bpe.ranks_mode_ = true;
  bpe.byte_ids_.fill(-1);
  bpe.check_ids(tokens.size() + specials.size(), [&](const auto& check) {
    for (const auto& [bytes, rank] : tokens) check(rank, "token of rank " + std::to_string(rank));
  });
  bpe.whole_.reserve(tokens.size());
  for (const auto& [bytes, rank] : tokens) {
    if (bytes.empty()) throw std::invalid_argument("byte BPE: empty token with rank " + std::to_string(rank));
    bpe.define(rank, bytes, "token of rank " + std::to_string(rank));
    const auto [it, inserted] = bpe.whole_.emplace(bytes, rank);
    if (!inserted)
      throw std::invalid_argument("byte BPE: duplicate token (ranks " + std::to_string(it->second) + " and " +
                                  std::to_string(rank) + ")");
    if (bytes.size() == 1) bpe.byte_ids_[static_cast<unsigned char>(bytes[0])] = rank;
  }
  for (int b = 0; b < kBytes; ++b)
    if (bpe.byte_ids_[static_cast<std::size_t>(b)] < 0)
      throw std::invalid_argument("byte BPE: byte " + std::to_string(b) + " is not a token (every byte must be one)");
  // Every split of a token into two tokens is a pair that merges into it, at the token's rank.
  bpe.pairs_.reserve(tokens.size() * 2);
  for (const auto& [bytes, rank] : tokens) {
    const std::string_view t = bytes;
    for (std::size_t cut = 1; cut < t.size(); ++cut) {
      const auto left = bpe.whole_.find(t.substr(0, cut));
      if (left == bpe.whole_.end()) continue;
      const auto right = bpe.whole_.find(t.substr(cut));
      if (right == bpe.whole_.end()) continue;
      bpe.pairs_.emplace(pair_key(left->second, right->second), PairMerge{rank, rank});
    }
  }
  bpe.register_specials(specials);
  return bpe;
}

template <typename Each>
void ByteBPE::check_ids(std::size_t added, Each each) const {
  // Published vocabularies leave a few ids unused (cl100k: 15), never more than a handful; an id
  // far past the number of tokens is a corrupt file, not a reason to allocate gigabytes.
  std::size_t count = added;
  for (const char d : defined_) count += d ? 1 : 0;
  const int64_t limit = static_cast<int64_t>(count) + kMaxUnusedIds;
  each([&](int id, const std::string& what) {
    if (id < 0 || id >= limit)
      throw std::invalid_argument("byte BPE: " + what + " has id " + std::to_string(id) + ", outside [0, " +
                                  std::to_string(limit) + ") for a vocabulary of " + std::to_string(count) + " tokens");
  });
}

int ByteBPE::add_special(const std::string& token) {
  if (token.empty()) throw std::invalid_argument("byte BPE: a special token cannot be empty");
  if (specials_.count(token)) throw std::invalid_argument("byte BPE: duplicate special token '" + token + "'");
  const int id = vocab_size();
  register_specials({{token, id}});
  return id;
}

const std::string& ByteBPE::token_bytes(int id) const {
  if (!has_id(id))
    throw std::invalid_argument("byte BPE: token id " + std::to_string(id) +
                                (id >= 0 && id < vocab_size() ? " is unused in" : " is outside") +
                                " the vocabulary of " + std::to_string(vocab_size()));
  return vocab_[static_cast<std::size_t>(id)];
}

std::vector<std::string> ByteBPE::pre_split(std::string_view text) const {
  PieceSplitter splitter(splitter_ ? splitter_->code : nullptr);
  std::vector<std::string_view> pieces;
  splitter.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

void ByteBPE::encode_piece(std::string_view piece, std::vector<int>& out) const {
  // tiktoken's rule: a piece that is a token as a whole is that token.
  if (ranks_mode_) {
    const auto it = whole_.find(piece);
    if (it != whole_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Merge the adjacent pair of lowest rank, the leftmost of equals, one at a time, until no pair
  // merges: what tiktoken, Hugging Face tokenizers and minbpe do.
  constexpr std::size_t kShort = 64;
  if (piece.size() <= kShort) {
    // Short pieces (nearly all of them after a pre-split): rescan the few pairs after each merge,
    // keeping each pair's rank so that only the two next to a merge are looked up again.
    int ids[kShort];
    PairMerge next[kShort];  // next[i]: what ids[i], ids[i + 1] merge into (rank INT_MAX: nothing)
    const std::size_t n0 = piece.size();
    for (std::size_t i = 0; i < n0; ++i) ids[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
    const auto lookup = [&](std::size_t i) {
      const auto it = pairs_.find(pair_key(ids[i], ids[i + 1]));
      next[i] = it == pairs_.end() ? PairMerge{INT_MAX, -1} : it->second;
    };
    std::size_t n = n0;
    for (std::size_t i = 0; i + 1 < n; ++i) lookup(i);
    while (n >= 2) {
      std::size_t best = 0;
      for (std::size_t i = 1; i + 1 < n; ++i)
        if (next[i].rank < next[best].rank) best = i;
      if (next[best].rank == INT_MAX) break;
      ids[best] = next[best].id;
      for (std::size_t i = best + 1; i + 1 < n; ++i) {
        ids[i] = ids[i + 1];
        next[i] = next[i + 1];
      }
      --n;
      if (best + 1 < n) lookup(best);
      else next[best] = {INT_MAX, -1};
      if (best > 0) lookup(best - 1);
    }
    out.insert(out.end(), ids, ids + n);
    return;
  }
  // Long pieces (runs of spaces, unsplit text): a linked list of symbols and a min-heap of
  // (rank, position) candidates, checked when popped; O(n log n) instead of O(n^2).
  const std::size_t n = piece.size();
  std::vector<int> sym(n), prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    sym[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i) + 1 : -1;
  }
  struct Candidate {
    int rank, pos, left, right;  // the pair (left, right) at pos merges at rank
    bool operator>(const Candidate& o) const { return rank > o.rank || (rank == o.rank && pos > o.pos); }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto push = [&](int i) {
    if (i < 0 || next[i] < 0) return;
    const auto it = pairs_.find(pair_key(sym[i], sym[next[i]]));
    if (it != pairs_.end()) heap.push({it->second.rank, i, sym[i], sym[next[i]]});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<int>(i));
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int i = c.pos, j = next[i];
    // Stale when the left symbol was absorbed (sym = -1), has no right neighbour any more, or either
    // side changed since the candidate was pushed.
    if (sym[i] < 0 || j < 0 || sym[i] != c.left || sym[j] != c.right) continue;
    sym[i] = pairs_.at(pair_key(c.left, c.right)).id;
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
      out.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
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

}  // namespace attnzoo::tokenizers
