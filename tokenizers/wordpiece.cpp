// WordPiece: the BERT basic tokenizer (one pass over the bytes, an ASCII fast path, utf8proc for
// everything else), greedy longest-match-first lookup in an open-addressing table, the HF
// truncation/decoding rules, vocab.txt I/O and the trainer. See wordpiece.h for the contract.
#include "tokenizers/wordpiece.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "tokenizers/files.h"
#include "tokenizers/utf8.h"

namespace attnzoo::tokenizers {
namespace {

namespace fs = std::filesystem;

// ---- Unicode classes, as HF's BertNormalizer / BertPreTokenizer define them -------------------

bool is_control_category(int category) {
  // Rust's unicode_categories is_other(): Cc, Cf, Co (not Cn: unassigned code points stay).
  return category == UTF8PROC_CATEGORY_CC || category == UTF8PROC_CATEGORY_CF || category == UTF8PROC_CATEGORY_CO;
}

// Rust's char::is_whitespace (the White_Space property): \t..\r, U+0085 and categories Zs Zl Zp.
bool is_space(char32_t c, int category) {
  return c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || category == UTF8PROC_CATEGORY_ZS ||
         category == UTF8PROC_CATEGORY_ZL || category == UTF8PROC_CATEGORY_ZP;
}

bool is_ascii_punct(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

bool is_punct(char32_t c, int category) {
  return is_ascii_punct(c) || (category >= UTF8PROC_CATEGORY_PC && category <= UTF8PROC_CATEGORY_PO);
}

// The blocks of HF tokenizers' is_chinese_char (BERT's, except that the Rust crate starts the
// fifth supplementary range at U+2B920 where BERT's Python has U+2B820; we follow the Rust crate).
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// The code point at s[i] (s[i] >= 0x80) and its length; a malformed sequence (overlong,
// surrogate, above U+10FFFF, truncated, stray continuation byte) is U+FFFD of length 1.
char32_t decode_utf8(const unsigned char* s, std::size_t n, std::size_t i, int& len) {
  const unsigned char b = s[i];
  len = 1;
  int need;
  char32_t c;
  char32_t min;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1, c = b & 0x1F, min = 0x80;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2, c = b & 0x0F, min = 0x800;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3, c = b & 0x07, min = 0x10000;
  } else {
    return 0xFFFD;
  }
  if (i + need >= n) return 0xFFFD;
  for (int k = 1; k <= need; ++k) {
    const unsigned char cb = s[i + k];
    if ((cb & 0xC0) != 0x80) return 0xFFFD;
    c = (c << 6) | (cb & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0xFFFD;
  len = need + 1;
  return c;
}

// ---- The basic tokenizer -------------------------------------------------------------------

enum AsciiClass : uint8_t { kWordChar, kSpace, kPunct, kDrop };

// Calls on_word(std::string_view word, int n_chars) for every word and on_special(int index) for
// every special token of `specials` written in the text, in order.
class BasicTokenizer {
 public:
  BasicTokenizer(const WordPieceOptions& options, const std::vector<std::pair<std::string, int>>& specials)
      : options_(options), specials_(specials), strip_(options.strips_accents()) {
    for (int b = 0; b < 128; ++b) {
      const auto* p = utf8proc_get_property(b);
      AsciiClass cls = kWordChar;
      if (options.clean_text && (b == 0 || (b != '\t' && b != '\n' && b != '\r' && is_control_category(p->category)))) {
        cls = kDrop;
      } else if (is_space(b, p->category)) {
        cls = kSpace;
      } else if (is_ascii_punct(b)) {
        cls = kPunct;
      }
      ascii_[b] = cls;
      lower_[b] = static_cast<char>(options.lowercase && b >= 'A' && b <= 'Z' ? b + 32 : b);
    }
    if (options.special_tokens_in_text)
      for (const auto& [token, id] : specials) special_first_[static_cast<unsigned char>(token[0])] = true;
  }

  template <class OnWord, class OnSpecial>
  void run(std::string_view text, OnWord&& on_word, OnSpecial&& on_special) {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    word_.clear();
    n_chars_ = 0;
    run_.clear();
    auto flush = [&] {
      if (!word_.empty()) on_word(std::string_view(word_), n_chars_);
      word_.clear();
      n_chars_ = 0;
      run_.clear();
    };
    for (std::size_t i = 0; i < n;) {
      const unsigned char b = s[i];
      if (special_first_[b]) {
        const int k = match_special(text, i);
        if (k >= 0) {
          flush();
          on_special(specials_[k].second);
          i += specials_[k].first.size();
          continue;
        }
      }
      if (b < 0x80) {
        switch (ascii_[b]) {
          case kWordChar:
            word_.push_back(lower_[b]);
            ++n_chars_;
            if (!run_.empty()) run_.clear();
            break;
          case kSpace:
            flush();
            break;
          case kPunct:
            flush();
            word_.push_back(static_cast<char>(b));
            n_chars_ = 1;
            flush();
            break;
          case kDrop:
            break;
        }
        ++i;
        continue;
      }
      int len;
      const char32_t c = decode_utf8(s, n, i, len);
      i += len;
      const auto* p = utf8proc_get_property(c);
      if (options_.clean_text) {
        if (c == 0xFFFD || is_control_category(p->category)) continue;  // removed before NFD: no run break
        if (is_space(c, p->category)) {
          flush();
          continue;
        }
      }
      if (options_.tokenize_chinese_chars && is_cjk(c)) {
        flush();
        normalize(c, p, flush);
        flush();
        continue;
      }
      normalize(c, p, flush);
    }
    flush();
  }

 private:
  int match_special(std::string_view text, std::size_t i) const {
    int best = -1;
    for (std::size_t k = 0; k < specials_.size(); ++k) {
      const std::string& t = specials_[k].first;
      if (text.compare(i, t.size(), t) == 0 && (best < 0 || t.size() > specials_[best].first.size()))
        best = static_cast<int>(k);
    }
    return best;
  }

  char32_t lower(char32_t c) const { return options_.lowercase ? static_cast<char32_t>(utf8proc_tolower(c)) : c; }

  // Steps 3-5 of the header for one character that survived cleaning.
  template <class Flush>
  void normalize(char32_t c, const utf8proc_property_t* p, Flush& flush) {
    if (!strip_) {
      if (options_.lowercase && c == 0x130) {  // İ: Rust's full lower-case mapping is "i" + U+0307
        emit('i', flush);
        emit(0x307, flush);
      } else {
        emit(lower(c), flush);
      }
      return;
    }
    utf8proc_int32_t buf[8];
    int boundclass = UTF8PROC_BOUNDCLASS_START;
    const auto k = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 8, UTF8PROC_DECOMPOSE, &boundclass);
    for (utf8proc_ssize_t j = 0; j < k && j < 8; ++j) {
      const auto d = static_cast<char32_t>(buf[j]);
      const auto* pd = d == c ? p : utf8proc_get_property(d);
      if (pd->category == UTF8PROC_CATEGORY_MN) {
        if (pd->combining_class == 0) run_.clear();
        continue;
      }
      emit(lower(d), flush);
    }
  }

  // Appends one normalized character to the word, or splits at it (step 5).
  template <class Flush>
  void emit(char32_t d, Flush& flush) {
    const auto* p = utf8proc_get_property(d);
    if (is_space(d, p->category)) {
      flush();
      return;
    }
    if (is_punct(d, p->category)) {
      flush();
      append_utf8(word_, d);
      n_chars_ = 1;
      flush();
      return;
    }
    ++n_chars_;
    if (!strip_ || p->combining_class == 0) {
      run_.clear();
      append_utf8(word_, d);
      return;
    }
    // NFD's canonical ordering: a run of non-starters is stably sorted by combining class. The
    // Mn among them are dropped, which leaves the kept ones (a few Mc) in stable-sorted order too.
    if (run_.empty()) run_start_ = word_.size();
    const uint8_t ccc = static_cast<uint8_t>(p->combining_class);
    auto at = run_.end();
    while (at != run_.begin() && std::prev(at)->second > ccc) --at;
    const bool last = at == run_.end();
    run_.insert(at, {d, ccc});
    if (last) {
      append_utf8(word_, d);
    } else {
      word_.resize(run_start_);
      for (const auto& [cp, cc] : run_) append_utf8(word_, cp);
    }
  }

  const WordPieceOptions& options_;
  const std::vector<std::pair<std::string, int>>& specials_;
  const bool strip_;
  std::array<uint8_t, 128> ascii_{};
  std::array<char, 128> lower_{};
  std::array<bool, 256> special_first_{};
  std::string word_;
  int n_chars_ = 0;
  std::vector<std::pair<char32_t, uint8_t>> run_;  // trailing kept non-starters of word_
  std::size_t run_start_ = 0;
};

// ---- Hashing -------------------------------------------------------------------------------

uint64_t hash_bytes(const char* p, std::size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t v = 0;
    std::memcpy(&v, p, n);
    h = (h ^ v) * 0x94D049BB133111EBull;
    h ^= h >> 32;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

// ---- Decoding ------------------------------------------------------------------------------

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::size_t at = s.find(from);
  if (at == std::string::npos) return;
  std::string out;
  std::size_t last = 0;
  for (; at != std::string::npos; at = s.find(from, last)) {
    out.append(s, last, at - last);
    out.append(to);
    last = at + from.size();
  }
  out.append(s, last, std::string::npos);
  s = std::move(out);
}

// transformers' clean_up_tokenization (also the WordPiece decoder's per-token `cleanup`).
void clean_up_tokenization(std::string& s) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) replace_all(s, from, to);
}

// ---- Files ---------------------------------------------------------------------------------

// Removes trailing White_Space characters (Rust's str::trim_end, as HF's vocab reader does).
// `s` must be valid UTF-8.
std::string_view trim_end(std::string_view s) {
  const auto* u = reinterpret_cast<const unsigned char*>(s.data());
  while (!s.empty()) {
    std::size_t start = s.size() - 1;
    while (start > 0 && (u[start] & 0xC0) == 0x80) --start;
    int len = 1;
    const char32_t c = u[start] < 0x80 ? u[start] : decode_utf8(u, s.size(), start, len);
    if (!is_space(c, utf8proc_get_property(c)->category)) break;
    s.remove_suffix(s.size() - start);
  }
  return s;
}

nlohmann::json options_to_json(const WordPieceOptions& o) {
  nlohmann::json j;
  j["lowercase"] = o.lowercase;
  j["strip_accents"] = o.strip_accents ? nlohmann::json(*o.strip_accents) : nlohmann::json(nullptr);
  j["clean_text"] = o.clean_text;
  j["tokenize_chinese_chars"] = o.tokenize_chinese_chars;
  j["max_input_chars_per_word"] = o.max_input_chars_per_word;
  j["continuing_subword_prefix"] = o.continuing_subword_prefix;
  j["unk_token"] = o.unk_token;
  j["cls_token"] = o.cls_token;
  j["sep_token"] = o.sep_token;
  j["pad_token"] = o.pad_token;
  j["mask_token"] = o.mask_token;
  j["special_tokens_in_text"] = o.special_tokens_in_text;
  return j;
}

WordPieceOptions options_from_json(const nlohmann::json& j, const std::string& file) {
  WordPieceOptions o;
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    try {
      field = j.at(key).get<std::remove_reference_t<decltype(field)>>();
    } catch (const nlohmann::json::exception&) {
      throw std::runtime_error(file + ": \"" + key + "\" has the wrong type (" + j.at(key).type_name() + ")");
    }
  };
  get("lowercase", o.lowercase);
  if (j.contains("strip_accents") && !j.at("strip_accents").is_null()) {
    bool v = false;
    get("strip_accents", v);
    o.strip_accents = v;
  }
  get("clean_text", o.clean_text);
  get("tokenize_chinese_chars", o.tokenize_chinese_chars);
  if (j.contains("max_input_chars_per_word")) {
    // Range-checked here: converting an out-of-range JSON number to int is undefined behaviour.
    const auto& v = j.at("max_input_chars_per_word");
    const bool ok = v.is_number_unsigned() ? v.get<uint64_t>() >= 1 && v.get<uint64_t>() <= INT32_MAX
                    : v.is_number_integer()  ? v.get<int64_t>() >= 1 && v.get<int64_t>() <= INT32_MAX
                                             : false;
    if (!ok)
      throw std::runtime_error(file + ": \"max_input_chars_per_word\" must be an integer in [1, 2^31), got " + v.dump());
    o.max_input_chars_per_word = v.get<int>();
  }
  get("continuing_subword_prefix", o.continuing_subword_prefix);
  get("unk_token", o.unk_token);
  get("cls_token", o.cls_token);
  get("sep_token", o.sep_token);
  get("pad_token", o.pad_token);
  get("mask_token", o.mask_token);
  get("special_tokens_in_text", o.special_tokens_in_text);
  return o;
}

void check_options(const WordPieceOptions& o) {
  if (o.max_input_chars_per_word < 1)
    throw std::invalid_argument("wordpiece: max_input_chars_per_word must be >= 1, got " +
                                std::to_string(o.max_input_chars_per_word));
  if (o.continuing_subword_prefix.empty() || utf8_invalid_offset(o.continuing_subword_prefix) != std::string::npos)
    throw std::invalid_argument("wordpiece: continuing_subword_prefix must be non-empty valid UTF-8");
  for (const auto* t : {&o.unk_token, &o.cls_token, &o.sep_token, &o.pad_token, &o.mask_token}) {
    if (t->empty()) throw std::invalid_argument("wordpiece: a special token option is empty");
    if (utf8_invalid_offset(*t) != std::string::npos)
      throw std::invalid_argument("wordpiece: special token option '" + *t + "' is not valid UTF-8");
  }
}

}  // namespace

// ---- Construction and lookup ---------------------------------------------------------------

WordPiece::WordPiece(std::vector<std::string> vocab, Options options)
    : options_(std::move(options)), vocab_(std::move(vocab)) {
  check_options(options_);
  if (vocab_.empty()) throw std::invalid_argument("wordpiece: empty vocabulary");
  if (vocab_.size() >= (1u << 31) - 1) throw std::invalid_argument("wordpiece: vocabulary too large");
  for (std::size_t i = 0; i < vocab_.size(); ++i) {
    const std::string& t = vocab_[i];
    const std::string where = "wordpiece: token " + std::to_string(i);
    if (t.empty()) throw std::invalid_argument(where + " is empty");
    if (t.find_first_of("\r\n") != std::string::npos) throw std::invalid_argument(where + " contains a line break");
    if (utf8_invalid_offset(t) != std::string::npos) throw std::invalid_argument(where + " is not valid UTF-8");
    if (trim_end(t).size() != t.size())
      throw std::invalid_argument(where + " ends with whitespace (a vocab.txt line cannot keep it)");
  }
  build_index();
  unk_id_ = token_to_id(options_.unk_token);
  if (unk_id_ < 0)
    throw std::invalid_argument("wordpiece: the vocabulary (" + std::to_string(vocab_.size()) +
                                " tokens) has no unk token '" + options_.unk_token + "'");
  cls_id_ = token_to_id(options_.cls_token);
  sep_id_ = token_to_id(options_.sep_token);
  pad_id_ = token_to_id(options_.pad_token);
  mask_id_ = token_to_id(options_.mask_token);
  is_special_.assign(vocab_.size(), false);
  for (const std::string* t :
       {&options_.pad_token, &options_.unk_token, &options_.cls_token, &options_.sep_token, &options_.mask_token}) {
    const int id = token_to_id(*t);
    if (id < 0 || is_special_[id]) continue;
    is_special_[id] = true;
    specials_.emplace_back(*t, id);
  }
}

void WordPiece::insert(Table& table, int id) const {
  const std::string& t = vocab_[id];
  const uint64_t h = hash_bytes(t.data() + table.skip, t.size() - table.skip);
  const auto tag = static_cast<uint32_t>(h >> 32);
  for (uint64_t i = h & table.mask;; i = (i + 1) & table.mask) {
    if (table.slots[i] == 0) {
      table.slots[i] = static_cast<uint32_t>(id) + 1;
      table.tags[i] = tag;
      return;
    }
    const std::string& other = vocab_[table.slots[i] - 1];
    if (table.tags[i] == tag && std::string_view(other).substr(table.skip) == std::string_view(t).substr(table.skip))
      throw std::invalid_argument("wordpiece: duplicate token '" + t + "' (ids " + std::to_string(table.slots[i] - 1) +
                                  " and " + std::to_string(id) + ")");
  }
}

void WordPiece::build_index() {
  const std::string& prefix = options_.continuing_subword_prefix;
  std::size_t n_continuation = 0;
  for (const auto& t : vocab_) n_continuation += t.size() > prefix.size() && t.starts_with(prefix);
  auto init = [](Table& table, std::size_t n, std::size_t skip) {
    std::size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    table.slots.assign(cap, 0);
    table.tags.assign(cap, 0);
    table.mask = cap - 1;
    table.skip = skip;
  };
  init(whole_, vocab_.size(), 0);
  init(continuation_, n_continuation, prefix.size());
  max_whole_bytes_ = max_continuation_bytes_ = 0;
  for (std::size_t id = 0; id < vocab_.size(); ++id) {
    const std::string& t = vocab_[id];
    insert(whole_, static_cast<int>(id));
    max_whole_bytes_ = std::max(max_whole_bytes_, t.size());
    if (t.size() > prefix.size() && t.starts_with(prefix)) {
      insert(continuation_, static_cast<int>(id));
      max_continuation_bytes_ = std::max(max_continuation_bytes_, t.size() - prefix.size());
    }
  }
}

int WordPiece::find(const Table& table, std::string_view key) const {
  const uint64_t h = hash_bytes(key.data(), key.size());
  const auto tag = static_cast<uint32_t>(h >> 32);
  for (uint64_t i = h & table.mask;; i = (i + 1) & table.mask) {
    const uint32_t slot = table.slots[i];
    if (slot == 0) return -1;
    if (table.tags[i] == tag) {
      const std::string& t = vocab_[slot - 1];
      if (t.size() - table.skip == key.size() && std::memcmp(t.data() + table.skip, key.data(), key.size()) == 0)
        return static_cast<int>(slot - 1);
    }
  }
}

int WordPiece::token_to_id(std::string_view token) const { return find(whole_, token); }

const std::string& WordPiece::id_to_token(int id) const {
  if (id < 0 || id >= vocab_size())
    throw std::invalid_argument("wordpiece: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                std::to_string(vocab_size()) + ")");
  return vocab_[id];
}

int WordPiece::special_id(const std::string& token, const char* what) const {
  const int id = token_to_id(token);
  if (id < 0)
    throw std::runtime_error(std::string("wordpiece: the vocabulary has no ") + what + " token '" + token +
                             "' (needed here; set Options::" + what + "_token if it is spelled differently)");
  return id;
}

int WordPiece::cls_id() const { return cls_id_ >= 0 ? cls_id_ : special_id(options_.cls_token, "cls"); }
int WordPiece::sep_id() const { return sep_id_ >= 0 ? sep_id_ : special_id(options_.sep_token, "sep"); }
int WordPiece::pad_id() const { return pad_id_ >= 0 ? pad_id_ : special_id(options_.pad_token, "pad"); }
int WordPiece::mask_id() const { return mask_id_ >= 0 ? mask_id_ : special_id(options_.mask_token, "mask"); }

// ---- Encoding ------------------------------------------------------------------------------

// Greedy longest-match-first (BERT's WordpieceTokenizer): the longest vocabulary entry that starts
// the rest of the word, "##"-prefixed after the first piece; no match anywhere → the word is unk.
void WordPiece::wordpiece(std::string_view word, int n_chars, std::vector<int>& out) const {
  if (n_chars > options_.max_input_chars_per_word) {
    out.push_back(unk_id_);
    return;
  }
  const std::size_t mark = out.size();
  const std::size_t n = word.size();
  std::size_t start = 0;
  while (start < n) {
    const Table& table = start == 0 ? whole_ : continuation_;
    std::size_t end = std::min(n, start + (start == 0 ? max_whole_bytes_ : max_continuation_bytes_));
    while (end < n && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;  // a character boundary
    int id = -1;
    while (end > start) {
      id = find(table, word.substr(start, end - start));
      if (id >= 0) break;
      do --end;
      while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (id < 0) {
      out.resize(mark);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(id);
    start = end;
  }
}

std::vector<std::string> WordPiece::pre_tokenize(std::string_view text) const {
  std::vector<std::string> words;
  BasicTokenizer basic(options_, specials_);
  basic.run(
      text, [&](std::string_view w, int) { words.emplace_back(w); },
      [&](int id) { words.push_back(vocab_[id]); });
  return words;
}

std::vector<int> WordPiece::encode_ids(std::string_view text) const {
  std::vector<int> ids;
  ids.reserve(text.size() / 4 + 4);
  BasicTokenizer basic(options_, specials_);
  basic.run(
      text, [&](std::string_view w, int n_chars) { wordpiece(w, n_chars, ids); }, [&](int id) { ids.push_back(id); });
  return ids;
}

std::vector<std::string> WordPiece::tokenize(std::string_view text) const {
  std::vector<std::string> tokens;
  for (const int id : encode_ids(text)) tokens.push_back(vocab_[id]);
  return tokens;
}

WordPiece::Encoding WordPiece::encode(std::string_view a, std::optional<std::string_view> b, int max_length,
                                      bool pad_to_max) const {
  if (max_length < 0) throw std::invalid_argument("wordpiece: max_length must be >= 0, got " + std::to_string(max_length));
  if (pad_to_max && max_length == 0) throw std::invalid_argument("wordpiece: pad_to_max needs max_length > 0");
  const int n_specials = b ? 3 : 2;
  if (max_length > 0 && max_length < n_specials)
    throw std::invalid_argument("wordpiece: max_length " + std::to_string(max_length) + " cannot hold the " +
                                std::to_string(n_specials) + " special tokens of " + (b ? "a pair" : "one sequence"));
  const int cls = cls_id();
  const int sep = sep_id();
  std::vector<int> ids_a = encode_ids(a);
  std::vector<int> ids_b = b ? encode_ids(*b) : std::vector<int>{};
  if (max_length > 0) {
    const std::size_t budget = static_cast<std::size_t>(max_length - n_specials);
    if (!b) {
      if (ids_a.size() > budget) ids_a.resize(budget);
    } else if (ids_a.size() + ids_b.size() > budget) {
      // HF tokenizers' LongestFirst (utils/truncation.rs): n1 <= n2 after a swap.
      std::size_t n1 = ids_a.size();
      std::size_t n2 = ids_b.size();
      const bool swap = n1 > n2;
      if (swap) std::swap(n1, n2);
      n2 = n1 > budget ? n1 : std::max(n1, budget - n1);
      if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
      }
      if (swap) std::swap(n1, n2);
      ids_a.resize(std::min(ids_a.size(), n1));
      ids_b.resize(std::min(ids_b.size(), n2));
    }
  }
  Encoding e;
  e.ids.reserve(ids_a.size() + ids_b.size() + 3);
  e.ids.push_back(cls);
  e.ids.insert(e.ids.end(), ids_a.begin(), ids_a.end());
  e.ids.push_back(sep);
  e.token_type_ids.assign(e.ids.size(), 0);
  if (b) {
    e.ids.insert(e.ids.end(), ids_b.begin(), ids_b.end());
    e.ids.push_back(sep);
    e.token_type_ids.resize(e.ids.size(), 1);
  }
  e.attention_mask.assign(e.ids.size(), 1);
  if (pad_to_max && static_cast<int>(e.ids.size()) < max_length) {
    const int pad = pad_id();
    e.ids.resize(max_length, pad);
    e.token_type_ids.resize(max_length, 0);
    e.attention_mask.resize(max_length, 0);
  }
  e.tokens.reserve(e.ids.size());
  for (const int id : e.ids) e.tokens.push_back(vocab_[id]);
  return e;
}

std::string WordPiece::decode(const std::vector<int>& ids, bool skip_special) const {
  for (const int id : ids) id_to_token(id);  // throws for the first id outside the vocabulary
  const std::string& prefix = options_.continuing_subword_prefix;
  std::string out;
  std::string piece;
  bool first = true;
  for (const int id : ids) {
    if (skip_special && is_special_[id]) continue;
    const std::string& t = vocab_[id];
    // HF's WordPiece decoder: glue "##x" to the previous token, else prepend a space; then the
    // per-token cleanup (a no-op for most tokens, kept for exactness).
    if (first) {
      piece = t;
    } else if (t.starts_with(prefix)) {
      piece.assign(t, prefix.size());
    } else {
      piece = " " + t;
    }
    first = false;
    clean_up_tokenization(piece);
    out += piece;
  }
  clean_up_tokenization(out);
  return out;
}

// ---- Files ---------------------------------------------------------------------------------

WordPiece WordPiece::from_vocab_file(const std::string& path, Options options) {
  const std::string data = read_file(path);
  if (data.empty()) throw std::runtime_error(path + ": empty vocabulary file");
  std::vector<std::string> vocab;
  std::unordered_map<std::string_view, std::size_t> first_line;
  std::size_t pos = 0;
  std::size_t line = 0;
  while (pos < data.size()) {
    ++line;
    std::size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string_view token(data.data() + pos, end - pos);
    pos = end + 1;
    const std::string where = path + ":" + std::to_string(line) + ": ";
    if (const std::size_t bad = utf8_invalid_offset(token); bad != std::string::npos)
      throw std::runtime_error(where + "invalid UTF-8 at byte " + std::to_string(bad) + " of the line");
    token = trim_end(token);
    if (token.empty()) throw std::runtime_error(where + "empty token");
    if (token.find('\r') != std::string_view::npos) throw std::runtime_error(where + "token contains a carriage return");
    const auto [it, fresh] = first_line.emplace(token, line);
    if (!fresh)
      throw std::runtime_error(where + "duplicate token '" + std::string(token) + "' (first on line " +
                               std::to_string(it->second) + ")");
    vocab.emplace_back(token);
  }
  try {
    return WordPiece(std::move(vocab), std::move(options));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

WordPiece WordPiece::load(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return from_vocab_file(path);
  const std::string vocab_file = (fs::path(path) / "vocab.txt").string();
  const std::string json_file = (fs::path(path) / "tokenizer.json").string();
  Options options;
  long long vocab_size = -1;
  if (fs::exists(json_file, ec)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(json_file));
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 5e600
      throw std::runtime_error(json_file + ": invalid JSON: " + e.what());
    }
    if (!j.is_object()) throw std::runtime_error(json_file + ": expected a JSON object");
    const std::string type = j.contains("type") ? (j["type"].is_string() ? j["type"].get<std::string>() : j["type"].dump())
                                                : std::string("(absent)");
    if (type != "wordpiece")
      throw std::runtime_error(json_file + ": \"type\" is '" + type + "', expected 'wordpiece'");
    options = options_from_json(j, json_file);
    if (j.contains("vocab_size")) {
      const auto& v = j["vocab_size"];
      if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() > INT32_MAX : v.get<int64_t>() < 0))
        throw std::runtime_error(json_file + ": \"vocab_size\" must be an integer in [0, 2^31), got " + v.dump());
      vocab_size = v.get<long long>();
    }
    try {
      check_options(options);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(json_file + ": " + e.what());
    }
  }
  WordPiece wp = from_vocab_file(vocab_file, options);
  if (vocab_size >= 0 && vocab_size != wp.vocab_size())
    throw std::runtime_error(json_file + ": vocab_size " + std::to_string(vocab_size) + " but " + vocab_file + " has " +
                             std::to_string(wp.vocab_size()) + " tokens");
  return wp;
}

void WordPiece::save(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create directory: " + ec.message());
  std::string text;
  for (const auto& t : vocab_) {
    text += t;
    text += '\n';
  }
  write_file((fs::path(dir) / "vocab.txt").string(), text);
  nlohmann::json j = {{"type", "wordpiece"}, {"vocab_size", vocab_size()}};
  j.update(options_to_json(options_));
  write_file((fs::path(dir) / "tokenizer.json").string(), j.dump(2) + "\n");
}

nlohmann::json WordPiece::to_json() const {
  nlohmann::json j = {{"type", "wordpiece"}, {"vocab_size", vocab_size()}};
  j.update(options_to_json(options_));
  j["vocab"] = vocab_;
  return j;
}

WordPiece WordPiece::from_json(const nlohmann::json& j) {
  const std::string what = "WordPiece tokenizer JSON";
  if (!j.is_object() || j.value("type", "") != "wordpiece")
    throw std::invalid_argument(what + ": expected an object with \"type\": \"wordpiece\"");
  if (!j.contains("vocab") || !j["vocab"].is_array()) throw std::invalid_argument(what + ": \"vocab\" must be an array");
  try {
    return WordPiece(j["vocab"].get<std::vector<std::string>>(), options_from_json(j, what));
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(what + ": " + e.what());
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(e.what());
  }
}

// ---- Training ------------------------------------------------------------------------------

namespace {

// A pair of adjacent symbol ids, packed so that comparing keys compares (left, right).
uint64_t pair_key(int a, int b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

struct Candidate {
  int64_t count;
  uint64_t pair;
  // Max-heap order: the higher count first, then the smaller pair (HF's BpeTrainer Merge order).
  bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

}  // namespace

WordPiece WordPiece::train(const std::vector<std::string>& texts, int vocab_size, Options options) {
  check_options(options);
  const std::string& prefix = options.continuing_subword_prefix;
  const std::vector<std::string> special_tokens = {options.pad_token, options.unk_token, options.cls_token,
                                                   options.sep_token, options.mask_token};
  // 1. Word counts from the basic tokenizer; specials written in the text are left out.
  std::vector<std::pair<std::string, int>> specials;
  for (std::size_t k = 0; k < special_tokens.size(); ++k) specials.emplace_back(special_tokens[k], static_cast<int>(k));
  std::unordered_map<std::string, int64_t> counts;
  {
    BasicTokenizer basic(options, specials);
    std::string key;
    for (const auto& text : texts)
      basic.run(
          text,
          [&](std::string_view w, int) {
            key.assign(w);
            ++counts[key];
          },
          [](int) {});
  }
  if (counts.empty())
    throw std::invalid_argument("wordpiece train: empty corpus (" + std::to_string(texts.size()) +
                                " texts without a single word)");
  std::vector<std::pair<std::string, int64_t>> words(counts.begin(), counts.end());
  counts.clear();
  std::sort(words.begin(), words.end());  // determinism: nothing below depends on hash order

  // 2. The vocabulary starts with the specials, the characters, then the "##" characters.
  std::vector<std::string> vocab;
  std::unordered_map<std::string, int> ids;
  auto add = [&](const std::string& t) {
    const auto [it, fresh] = ids.emplace(t, static_cast<int>(vocab.size()));
    if (fresh) vocab.push_back(t);
    return it->second;
  };
  for (const auto& t : special_tokens) add(t);
  std::set<char32_t> chars, inner_chars;
  for (const auto& [w, f] : words) {
    const auto* s = reinterpret_cast<const unsigned char*>(w.data());
    for (std::size_t i = 0; i < w.size();) {
      int len = 1;
      const char32_t c = s[i] < 0x80 ? s[i] : decode_utf8(s, w.size(), i, len);
      chars.insert(c);
      if (i > 0) inner_chars.insert(c);
      i += len;
    }
  }
  const std::size_t minimum = vocab.size() + chars.size() + inner_chars.size();
  if (vocab_size < 0 || static_cast<std::size_t>(vocab_size) < minimum)
    throw std::invalid_argument("wordpiece train: vocab_size " + std::to_string(vocab_size) + " is smaller than the " +
                                std::to_string(vocab.size()) + " special tokens + " + std::to_string(chars.size()) +
                                " characters + " + std::to_string(inner_chars.size()) +
                                " '" + prefix + "' continuations of the corpus = " + std::to_string(minimum));
  std::string buf;
  for (const char32_t c : chars) {
    buf.clear();
    append_utf8(buf, c);
    add(buf);
  }
  for (const char32_t c : inner_chars) {
    buf = prefix;
    append_utf8(buf, c);
    add(buf);
  }

  // 3. Every word as symbol ids; the pair counts and where each pair occurs.
  std::vector<std::vector<int>> symbols(words.size());
  std::vector<int64_t> freq(words.size());
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int>> where;
  for (std::size_t w = 0; w < words.size(); ++w) {
    const std::string& word = words[w].first;
    freq[w] = words[w].second;
    const auto* s = reinterpret_cast<const unsigned char*>(word.data());
    for (std::size_t i = 0; i < word.size();) {
      int len = 1;
      if (s[i] >= 0x80) decode_utf8(s, word.size(), i, len);
      buf = i == 0 ? std::string() : prefix;
      buf.append(word, i, len);
      symbols[w].push_back(ids.at(buf));
      i += len;
    }
    for (std::size_t i = 0; i + 1 < symbols[w].size(); ++i) {
      const uint64_t key = pair_key(symbols[w][i], symbols[w][i + 1]);
      pair_count[key] += freq[w];
      auto& list = where[key];
      if (list.empty() || list.back() != static_cast<int>(w)) list.push_back(static_cast<int>(w));
    }
  }
  words.clear();
  std::priority_queue<Candidate> queue;
  for (const auto& [key, count] : pair_count) queue.push({count, key});

  // 4. Merge the most frequent pair until the vocabulary is full.
  std::vector<int> seen(symbols.size(), -1);
  std::vector<uint64_t> touched;
  for (int step = 0; static_cast<int>(vocab.size()) < vocab_size && !queue.empty(); ++step) {
    const Candidate top = queue.top();
    queue.pop();
    const auto it = pair_count.find(top.pair);
    const int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != top.count) {  // stale entry: counts only fall, so re-queue at the true count
      if (current > 0) queue.push({current, top.pair});
      continue;
    }
    if (current <= 0) continue;
    const int a = static_cast<int>(top.pair >> 32);
    const int b = static_cast<int>(top.pair & 0xFFFFFFFFu);
    std::string merged = vocab[a];
    const std::string& right = vocab[b];
    merged.append(right, right.starts_with(prefix) ? prefix.size() : 0, std::string::npos);
    const int id = add(merged);  // may already exist (another pair spelled the same string)

    std::vector<int> occurrences = std::move(where[top.pair]);
    where.erase(top.pair);
    touched.clear();
    for (const int w : occurrences) {
      if (seen[w] == step) continue;
      seen[w] = step;
      std::vector<int>& sym = symbols[w];
      bool found = false;
      for (std::size_t i = 0; i + 1 < sym.size() && !found; ++i) found = sym[i] == a && sym[i + 1] == b;
      if (!found) continue;
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) pair_count[pair_key(sym[i], sym[i + 1])] -= freq[w];
      std::size_t out = 0;
      for (std::size_t i = 0; i < sym.size(); ++i) {
        if (i + 1 < sym.size() && sym[i] == a && sym[i + 1] == b) {
          sym[out++] = id;
          ++i;
        } else {
          sym[out++] = sym[i];
        }
      }
      sym.resize(out);
      for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
        const uint64_t key = pair_key(sym[i], sym[i + 1]);
        pair_count[key] += freq[w];
        if (sym[i] == id || sym[i + 1] == id) {
          auto& list = where[key];
          if (list.empty() || list.back() != w) list.push_back(w);
          touched.push_back(key);
        }
      }
    }
    pair_count.erase(top.pair);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (const uint64_t key : touched) {
      const int64_t count = pair_count[key];
      if (count > 0) queue.push({count, key});
    }
  }
  return WordPiece(std::move(vocab), std::move(options));
}

}  // namespace attnzoo::tokenizers
