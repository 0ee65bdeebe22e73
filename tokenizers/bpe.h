// Byte-level byte-pair encoding (Sennrich et al. 2016, "Neural Machine Translation of Rare Words
// with Subword Units"; byte-level as in GPT-2, Radford et al. 2019). Text is first pre-split with a
// regex (GPT-2's or GPT-4's cl100k pattern, as published in OpenAI's gpt-2/encoder.py and tiktoken,
// or any PCRE2 regex), and merges never cross a piece boundary.
//
// Two ways to say which adjacent pair merges next, both "the pair of lowest rank, leftmost first":
//  - merges (minbpe, GPT-2's vocab.bpe, Hugging Face merges.txt): an ordered list of (A, B) -> ID;
//    the rank of a pair is its line. Trained tokenizers use ids 0..255 for the bytes and 256 + k for
//    merge k; loaded ones keep the published ids (GPT-2's bytes are not 0..255 in byte order).
//  - ranks (tiktoken): a token list with ranks; two adjacent tokens merge when their concatenated
//    bytes are a token, the lowest rank first; the id of a token is its rank, and a piece that is a
//    token as a whole is that token.
//
// Saved format (readable text plus JSON), in a directory:
//   merges mode: merges.txt, one "A B ID" line per merge in rank order;
//   ranks mode:  ranks.txt, one "BASE64 RANK" line per token (tiktoken's own rank-file format);
//   both:        tokenizer.json {"type": "byte_bpe", "mode": "merges"|"ranks", "pattern": "gpt2",
//                "vocab_size": 50257, "specials": {"<|endoftext|>": 50256}[, "byte_ids": [256 ids]]}
//   ("byte_ids" only when byte b is not token b; "pattern" is a name or "regex:<PCRE2 pattern>").
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace attnzoo::tokenizers {

// Which special tokens encode() recognises in ordinary text.
enum class SpecialMode {
  all,   // every registered special token
  none,  // none: a special token's text is encoded as ordinary bytes
  set,   // only those in the `allowed` set
};

class ByteBPE {
 public:
  // The pre-split patterns by name: "gpt2", "cl100k", "o200k", or "none" (the whole text is one
  // piece). A pattern may also be given as "regex:<PCRE2 pattern>".
  static const std::vector<std::string>& pattern_names();
  // The regex of a pattern: a name's ("" for "none"), or what follows "regex:"; throws
  // std::invalid_argument for an unknown name.
  static std::string pattern_regex(const std::string& pattern);

  // One merge of a published merges list: parents A and B make token ID.
  struct Merge {
    int a, b, id;
    bool operator==(const Merge&) const = default;
  };

  // Only the 256 byte tokens, no merges.
  explicit ByteBPE(std::string pattern = "gpt2");
  // MERGES[k] = the parent ids of token 256 + k; each parent must be < 256 + k.
  ByteBPE(std::string pattern, std::vector<std::pair<int, int>> merges);

  // Merges mode with published ids: BYTE_IDS[b] is the token of byte b; each merge's parents must be
  // defined before it (a byte or an earlier merge) and its id must be new; SPECIALS take ids no
  // token uses. Throws std::invalid_argument naming the offending merge or token.
  static ByteBPE from_merges(std::string pattern, const std::vector<int>& byte_ids, const std::vector<Merge>& merges,
                             const std::map<std::string, int>& specials = {});
  // Ranks mode (tiktoken): TOKENS[i] = (bytes, rank); every single byte must be a token, ranks and
  // byte strings distinct. Throws std::invalid_argument naming the offending token.
  static ByteBPE from_ranks(std::string pattern, const std::vector<std::pair<std::string, int>>& tokens,
                            const std::map<std::string, int>& specials = {});

  // GPT-2's encoder.json + vocab.bpe, or the same pair as Hugging Face names them (vocab.json +
  // merges.txt): token strings in GPT-2's byte-to-unicode alphabet, merges as "A B" lines ranked by
  // position after an optional "#version" line. Entries of the vocabulary that are neither a byte
  // nor made by a merge (GPT-2's <|endoftext|>, RoBERTa's <s> ...) become special tokens.
  // Errors: std::runtime_error "FILE:LINE: ..." (merges) or "FILE: ..." (vocabulary).
  static ByteBPE load_gpt2(const std::string& vocab_json, const std::string& merges_txt,
                           const std::string& pattern = "gpt2");
  // The inverse of load_gpt2 for merges mode: DIR/vocab.json (token string in GPT-2's byte-to-unicode
  // alphabet -> id, specials as their text) and DIR/merges.txt ("#version: 0.2", then "A B" per
  // merge in rank order), the files Hugging Face's GPT2Tokenizer reads. Throws std::logic_error in
  // ranks mode (tiktoken vocabularies have no merge list) or when a special token's text equals an
  // ordinary token's string.
  void save_gpt2(const std::string& dir) const;
  // A tiktoken rank file ("BASE64 RANK" lines; the pattern and specials of the encoding its file name
  // names: r50k_base/gpt2, p50k_base, cl100k_base, o200k_base) or a JSON bundle of npm tiktoken
  // ({"pat_str", "special_tokens", "bpe_ranks"}), told apart by the first byte.
  static ByteBPE load_tiktoken(const std::string& file);

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

  // Writes DIR/merges.txt or DIR/ranks.txt and DIR/tokenizer.json (DIR is created if missing).
  void save(const std::string& dir) const;
  // Throws std::runtime_error "FILE:LINE: ..." for a malformed merges/ranks line, a merge with an
  // unknown parent id or a reused id, and "FILE: ..." for bad JSON, an unknown pattern, a duplicate
  // special token or id, or a vocab_size that disagrees with the files.
  static ByteBPE load(const std::string& dir);

  // The whole tokenizer as one JSON value (what save() writes, with the merges or ranks inline), for
  // embedding in a dataset's meta.json or a checkpoint's state.json; from_json() throws
  // std::invalid_argument naming what is wrong.
  nlohmann::json to_json() const;
  static ByteBPE from_json(const nlohmann::json& j);

  // One more than the largest id (published vocabularies may leave ids unused, as cl100k does).
  int vocab_size() const { return static_cast<int>(vocab_.size()); }
  const std::string& pattern() const { return pattern_; }
  bool ranks_mode() const { return ranks_mode_; }
  // Merges mode: the parents of each merge in rank order (empty in ranks mode).
  const std::vector<std::pair<int, int>>& merges() const { return merges_; }
  // Merges mode: the id each merge makes (256 + k for trained tokenizers).
  const std::vector<int>& merge_ids() const { return merge_ids_; }
  const std::map<std::string, int>& specials() const { return specials_; }
  // The token of byte b.
  int byte_id(unsigned char b) const { return byte_ids_[b]; }
  bool has_id(int id) const { return id >= 0 && id < vocab_size() && defined_[static_cast<std::size_t>(id)]; }
  // The bytes of token `id` (a special token's text for specials); throws std::invalid_argument for
  // an id outside the vocabulary or unused.
  const std::string& token_bytes(int id) const;

  bool operator==(const ByteBPE& other) const {
    return pattern_ == other.pattern_ && ranks_mode_ == other.ranks_mode_ && merges_ == other.merges_ &&
           merge_ids_ == other.merge_ids_ && byte_ids_ == other.byte_ids_ && specials_ == other.specials_ &&
           vocab_ == other.vocab_;
  }

 private:
  struct Splitter;  // the compiled PCRE2 pattern (bpe.cpp)

  // What a pair of adjacent tokens merges into, and the rank that orders the merges.
  struct PairMerge {
    int rank, id;
  };
  struct Blank {};
  explicit ByteBPE(Blank) {}  // no tokens at all, for the builders
  // Sizes the vocabulary to hold `id` and records its bytes; throws when `id` is taken.
  void define(int id, std::string bytes, const std::string& what);
  void set_pattern(std::string pattern);
  void register_specials(const std::map<std::string, int>& specials);
  // Calls each(check) where check(id, what) throws std::invalid_argument for an id that is negative
  // or more than kMaxUnusedIds past the vocabulary (its tokens so far plus `added`).
  static constexpr int kMaxUnusedIds = 65536;
  template <typename Each>
  void check_ids(std::size_t added, Each each) const;

  // Appends the ids of one pre-split piece (repeatedly merging the lowest-rank adjacent pair).
  void encode_piece(std::string_view piece, std::vector<int>& out) const;
  // Pieces already encoded in this encode() call (keys view into its text).
  using PieceCache = std::unordered_map<std::string_view, std::vector<int>>;
  // Appends the ids of ordinary text (no special tokens), pre-split and piece by piece.
  void encode_ordinary(std::string_view text, std::vector<int>& out, PieceCache& cache) const;

  std::string pattern_;
  std::shared_ptr<const Splitter> splitter_;  // null for "none"
  bool ranks_mode_ = false;
  std::array<int, 256> byte_ids_{};
  std::vector<std::pair<int, int>> merges_;  // merges mode: parents, in rank order
  std::vector<int> merge_ids_;               // merges mode: the id each merge makes
  std::unordered_map<uint64_t, PairMerge> pairs_;         // (a << 32 | b) -> what they merge into
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> whole_;  // ranks mode: token bytes -> id
  std::vector<std::string> vocab_;                        // id -> bytes ("" where unused)
  std::vector<char> defined_;                             // id -> used
  std::map<std::string, int> specials_;                   // text -> id
};

}  // namespace attnzoo::tokenizers
