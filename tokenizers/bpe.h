// Byte-level byte-pair encoding (Sennrich et al. 2016, "Neural Machine Translation of Rare Words
// with Subword Units"; byte-level as in GPT-2, Radford et al. 2019): ids 0..255 are the single
// bytes, merge k creates id 256 + k (its rank), special tokens follow the merges. Text is first
// pre-split with a named regex (GPT-2's or GPT-4's cl100k pattern, as published in OpenAI's
// gpt-2/encoder.py and tiktoken), and merges never cross a piece boundary. Matches minbpe's
// RegexTokenizer in behaviour; training keeps incremental pair counts instead of recounting.
//
// Saved format (readable): DIR/merges.txt, one merge per line "A B ID" (the two parent ids and the
// new id, in rank order), and DIR/tokenizer.json
//   {"type": "byte_bpe", "pattern": "gpt2", "vocab_size": 301, "specials": {"<|endoftext|>": 300}}.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace attnzoo::tokenizers {

// Which special tokens encode() recognises in ordinary text.
enum class SpecialMode {
  all,   // every registered special token
  none,  // none: a special token's text is encoded as ordinary bytes
  set,   // only those in the `allowed` set
};

class ByteBPE {
 public:
  // The pre-split patterns by name: "gpt2", "cl100k", or "none" (the whole text is one piece).
  static const std::vector<std::string>& pattern_names();
  // The regex of a named pattern ("" for "none"); throws std::invalid_argument for an unknown name.
  static const std::string& pattern_regex(const std::string& name);

  // Only the 256 byte tokens, no merges.
  explicit ByteBPE(std::string pattern = "gpt2");
  // MERGES[k] = the parent ids of token 256 + k; each parent must be < 256 + k.
  ByteBPE(std::string pattern, std::vector<std::pair<int, int>> merges);

  // Counts the pre-split pieces of `texts`, then merges the most frequent adjacent pair until the
  // vocabulary (256 bytes + merges + specials) has `vocab_size` tokens, or earlier when every piece
  // has become a single token. Pair counts are kept incrementally (only the pieces holding the
  // merged pair are revisited). Specials are cut out of the texts first, so no merge spans them,
  // and get the ids after the merges, in the order given.
  // Tie-break: among equally frequent pairs the one with the smaller (a, b), compared
  // lexicographically by symbol id, is merged first (for "aaabdaaabac" this picks ab over Za).
  // Throws std::invalid_argument when vocab_size < 256 + specials.size() or the corpus is empty.
  static ByteBPE train(const std::vector<std::string>& texts, int vocab_size, const std::string& pattern,
                       const std::vector<std::string>& specials = {});

  // Registers a special token with the next free id (after every merge and earlier special). It is
  // never merged, and encode() emits it only where its mode allows. Throws std::invalid_argument for an empty or duplicate token.
  int add_special(const std::string& token);

  // Cuts out the special tokens that `mode` allows (the longest at a position wins), pre-splits the
  // text between them and encodes each piece by repeatedly merging its lowest-rank adjacent pair.
  // Throws std::invalid_argument when mode is `set` and `allowed` names a string that is not a
  // registered special token.
  std::vector<int> encode(std::string_view text, SpecialMode mode = SpecialMode::none,
                          const std::set<std::string>& allowed = {}) const;
  // Throws std::invalid_argument naming the first id outside [0, vocab_size()).
  std::string decode(const std::vector<int>& ids) const;

  // The pieces merges stay inside: the regex's matches over each maximal valid-UTF-8 run and every
  // invalid byte alone (with "none": the whole text). Concatenated they give `text` back.
  std::vector<std::string> pre_split(std::string_view text) const;

  // Writes DIR/merges.txt and DIR/tokenizer.json (DIR is created if missing).
  void save(const std::string& dir) const;
  // Throws std::runtime_error "FILE:LINE: ..." for a malformed merges line, a merge with an unknown
  // parent id or out-of-order new id, and "FILE: ..." for bad JSON, an unknown pattern, a duplicate
  // special token or id, or a vocab_size that disagrees with the files.
  static ByteBPE load(const std::string& dir);

  int vocab_size() const { return static_cast<int>(vocab_.size()); }
  const std::string& pattern() const { return pattern_; }
  const std::vector<std::pair<int, int>>& merges() const { return merges_; }
  const std::map<std::string, int>& specials() const { return specials_; }
  // The bytes of token `id` (a special token's text for specials).
  const std::string& token_bytes(int id) const;

  bool operator==(const ByteBPE& other) const {
    return pattern_ == other.pattern_ && merges_ == other.merges_ && specials_ == other.specials_;
  }

 private:
  struct Splitter;  // the compiled PCRE2 pattern (bpe.cpp)

  // Appends the ids of one pre-split piece (repeatedly merging the lowest-rank adjacent pair).
  void encode_piece(std::string_view piece, std::vector<int>& out) const;
  // Pieces already encoded in this encode() call (keys view into its text).
  using PieceCache = std::unordered_map<std::string_view, std::vector<int>>;
  // Appends the ids of ordinary text (no special tokens), pre-split and piece by piece.
  void encode_ordinary(std::string_view text, std::vector<int>& out, PieceCache& cache) const;

  std::string pattern_;
  std::shared_ptr<const Splitter> splitter_;  // null for "none"
  std::vector<std::pair<int, int>> merges_;
  std::unordered_map<uint64_t, int> ranks_;  // (a << 32 | b) -> merge index
  std::vector<std::string> vocab_;           // id -> bytes: 256 bytes, merges, specials
  std::map<std::string, int> specials_;      // text -> id
};

}  // namespace attnzoo::tokenizers
