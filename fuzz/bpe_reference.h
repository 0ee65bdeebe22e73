// Brute-force byte BPE, written from the definitions in tokenizers/bpe.h rather than from bpe.cpp,
// to compare ByteBPE against: encoding rescans every adjacent pair after each merge, and training
// recounts every pair before each merge. Slow (quadratic) and obviously right; the fuzz targets
// only feed it short inputs. Also the checks every BPE target runs on a tokenizer it has built.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_util.h"
#include "tokenizers/bpe.h"
#include "tokenizers/utf8.h"

namespace attnzoo::fuzz {

using tokenizers::ByteBPE;
using tokenizers::SpecialMode;

// Splits TEXT at the special tokens of ACTIVE: the earliest occurrence first, the longest of those
// starting there. Returns the segments and tokens in order, tokens flagged.
inline std::vector<std::pair<std::string_view, bool>> cut_specials(std::string_view text,
                                                                   const std::vector<std::string>& active) {
  std::vector<std::pair<std::string_view, bool>> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t best = std::string_view::npos, len = 0;
    for (const auto& s : active) {
      const std::size_t at = text.find(s, pos);
      if (at < best || (at == best && at != std::string_view::npos && s.size() > len)) {
        best = at;
        len = s.size();
      }
    }
    if (best == std::string_view::npos) break;
    out.emplace_back(text.substr(pos, best - pos), false);
    out.emplace_back(text.substr(best, len), true);
    pos = best + len;
  }
  out.emplace_back(text.substr(pos), false);
  return out;
}

class ReferenceBPE {
 public:
  explicit ReferenceBPE(const ByteBPE& bpe) : bpe_(bpe) {
    for (const auto& [token, id] : bpe.specials()) special_ids_.insert(id);
    if (bpe.ranks_mode()) {
      for (int id = 0; id < bpe.vocab_size(); ++id)
        if (bpe.has_id(id) && !special_ids_.count(id)) token_of_bytes_.emplace(bpe.token_bytes(id), id);
    } else {
      for (std::size_t k = 0; k < bpe.merges().size(); ++k)
        merge_.emplace(static_cast<uint64_t>(static_cast<uint32_t>(bpe.merges()[k].first)) << 32 |
                           static_cast<uint32_t>(bpe.merges()[k].second),
                       std::pair(static_cast<int>(k), bpe.merge_ids()[k]));
    }
  }

  // Pieces longer than this are left out of the comparison (the brute force is cubic in the
  // length); they are still checked by the round trip.
  static constexpr std::size_t kMaxPiece = 512;
  // The reference's ids of each piece already seen, within one check_round_trip.
  using Cache = std::unordered_map<std::string, std::vector<int>>;

  // What ENCODE must give; nullopt when TEXT has a piece longer than kMaxPiece.
  std::optional<std::vector<int>> encode(std::string_view text, SpecialMode mode, const std::set<std::string>& allowed,
                                         Cache& cache) const {
    std::vector<std::string> active;
    if (mode == SpecialMode::all)
      for (const auto& [token, id] : bpe_.specials()) active.push_back(token);
    if (mode == SpecialMode::set) active.assign(allowed.begin(), allowed.end());
    std::vector<int> out;
    for (const auto& [part, special] : cut_specials(text, active)) {
      if (special) {
        out.push_back(bpe_.specials().at(std::string(part)));
        continue;
      }
      for (const auto& piece : bpe_.pre_split(part)) {
        if (piece.size() > kMaxPiece) return std::nullopt;
        auto it = cache.find(piece);
        if (it == cache.end()) it = cache.emplace(piece, encode_piece(piece)).first;
        out.insert(out.end(), it->second.begin(), it->second.end());
      }
    }
    return out;
  }

  std::vector<int> encode_piece(std::string_view piece) const {
    if (bpe_.ranks_mode()) {
      const auto it = token_of_bytes_.find(std::string(piece));
      if (it != token_of_bytes_.end()) return {it->second};
    }
    std::vector<int> ids;
    for (const char c : piece) ids.push_back(bpe_.byte_id(static_cast<unsigned char>(c)));
    while (true) {
      int best_rank = INT_MAX, best_id = -1;
      std::size_t best_at = 0;
      for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
        const auto [rank, id] = lookup(ids[i], ids[i + 1]);
        if (rank < best_rank) {
          best_rank = rank;
          best_id = id;
          best_at = i;
        }
      }
      if (best_id < 0) return ids;
      ids[best_at] = best_id;
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
    }
  }

  bool is_special(int id) const { return special_ids_.count(id) != 0; }

 private:
  // (rank, id) of the token that A then B merge into; (INT_MAX, -1) when they do not.
  std::pair<int, int> lookup(int a, int b) const {
    if (bpe_.ranks_mode()) {
      const auto it = token_of_bytes_.find(bpe_.token_bytes(a) + bpe_.token_bytes(b));
      return it == token_of_bytes_.end() ? std::pair(INT_MAX, -1) : std::pair(it->second, it->second);
    }
    const auto it = merge_.find(static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32 | static_cast<uint32_t>(b));
    return it == merge_.end() ? std::pair(INT_MAX, -1) : it->second;
  }

  const ByteBPE& bpe_;
  std::set<int> special_ids_;
  std::unordered_map<std::string, int> token_of_bytes_;  // ranks mode: non-special tokens
  std::unordered_map<uint64_t, std::pair<int, int>> merge_;  // merges mode: a << 32 | b -> (rank, id)
};

// The merges ByteBPE::train must produce: before each merge, count every adjacent pair of every
// pre-split piece (weighted by the piece's frequency, overlapping pairs counted), take the most
// frequent, ties to the smaller (a, b), and replace its occurrences left to right.
inline std::vector<std::pair<int, int>> reference_train(const std::vector<std::string>& texts, int vocab_size,
                                                        const std::string& pattern,
                                                        const std::vector<std::string>& specials) {
  const ByteBPE splitter(pattern);
  std::map<std::string, int64_t> counts;
  for (const auto& text : texts)
    for (const auto& [part, special] : cut_specials(text, specials))
      if (!special)
        for (const auto& piece : splitter.pre_split(part)) ++counts[piece];
  std::vector<std::pair<std::vector<int>, int64_t>> words;
  for (const auto& [piece, n] : counts) {
    std::vector<int> w;
    for (const char c : piece) w.push_back(static_cast<unsigned char>(c));
    words.emplace_back(std::move(w), n);
  }
  const int n_merges = vocab_size - 256 - static_cast<int>(specials.size());
  std::vector<std::pair<int, int>> merges;
  while (static_cast<int>(merges.size()) < n_merges) {
    std::map<std::pair<int, int>, int64_t> stats;
    for (const auto& [w, n] : words)
      for (std::size_t i = 0; i + 1 < w.size(); ++i) stats[{w[i], w[i + 1]}] += n;
    if (stats.empty()) break;
    auto best = stats.begin();  // ascending pairs: the first of the highest count is the smallest
    for (auto it = stats.begin(); it != stats.end(); ++it)
      if (it->second > best->second) best = it;
    const auto [a, b] = best->first;
    const int id = 256 + static_cast<int>(merges.size());
    merges.emplace_back(a, b);
    for (auto& [w, n] : words) {
      std::vector<int> merged;
      for (std::size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && w[i] == a && w[i + 1] == b) {
          merged.push_back(id);
          i += 2;
        } else {
          merged.push_back(w[i++]);
        }
      }
      w.swap(merged);
    }
  }
  return merges;
}

inline std::string ids_text(const std::vector<int>& ids, std::size_t max = 40) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size() && i < max; ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s + (ids.size() > max ? " ...]" : "]");
}

// encode() with MODE agrees with the reference, uses only ids of the vocabulary and the special
// tokens MODE allows, and decode() gives TEXT back.
inline void check_encode(const ByteBPE& bpe, const ReferenceBPE& ref, std::string_view text, SpecialMode mode,
                         const std::set<std::string>& allowed, ReferenceBPE::Cache& cache, const char* name) {
  const std::vector<int> ids = bpe.encode(text, mode, allowed);
  std::set<int> allowed_ids;
  if (mode == SpecialMode::all)
    for (const auto& [token, id] : bpe.specials()) allowed_ids.insert(id);
  if (mode == SpecialMode::set)
    for (const auto& token : allowed) allowed_ids.insert(bpe.specials().at(token));
  for (const int id : ids) {
    FUZZ_CHECK(bpe.has_id(id), std::string(name) + ": encode gave id " + std::to_string(id) + " outside the vocabulary");
    FUZZ_CHECK(!ref.is_special(id) || allowed_ids.count(id),
               std::string(name) + ": encode gave special id " + std::to_string(id) + " that the mode does not allow");
  }
  const std::string back = bpe.decode(ids);
  FUZZ_CHECK(back == text, std::string(name) + ": decode(encode(x)) != x\n  x    = '" + escaped(text) +
                               "'\n  back = '" + escaped(back) + "'");
  const auto expected = ref.encode(text, mode, allowed, cache);
  FUZZ_CHECK(!expected || ids == *expected, std::string(name) + ": encode disagrees with the brute-force reference on '" +
                                                escaped(text) + "'\n  encode    " + ids_text(ids) + "\n  reference " +
                                                ids_text(*expected));
}

// pre_split's pieces are non-empty, concatenate to TEXT, and are valid UTF-8 or a single byte
// (with pattern "none": the one piece is the whole text).
inline void check_pre_split(const ByteBPE& bpe, std::string_view text, const char* name) {
  const auto pieces = bpe.pre_split(text);
  std::string joined;
  for (const auto& p : pieces) {
    FUZZ_CHECK(!p.empty(), std::string(name) + ": pre_split gave an empty piece of '" + escaped(text) + "'");
    FUZZ_CHECK(bpe.pattern() == "none" || p.size() == 1 || tokenizers::utf8_invalid_offset(p) == std::string::npos,
               std::string(name) + ": pre_split piece '" + escaped(p) + "' is neither valid UTF-8 nor one byte");
    joined += p;
  }
  FUZZ_CHECK(joined == text, std::string(name) + ": pre_split pieces do not concatenate to '" + escaped(text) + "'");
  if (bpe.pattern() == "none")
    FUZZ_CHECK(pieces.size() == (text.empty() ? 0u : 1u), std::string(name) + ": pattern none split the text");
}


// The checks of check_encode with every mode, and one `set` subset of the specials (chosen by SELECT).
inline void check_round_trip(const ByteBPE& bpe, const ReferenceBPE& ref, std::string_view text, unsigned select,
                             const char* name) {
  std::set<std::string> allowed;
  unsigned bit = 0;
  for (const auto& [token, id] : bpe.specials())
    if (select >> (bit++ % 8) & 1u) allowed.insert(token);
  ReferenceBPE::Cache cache;
  check_encode(bpe, ref, text, SpecialMode::none, {}, cache, name);
  check_encode(bpe, ref, text, SpecialMode::all, {}, cache, name);
  check_encode(bpe, ref, text, SpecialMode::set, allowed, cache, name);
  check_pre_split(bpe, text, name);
}

// save() then load(), and to_json() then from_json(), give an equal tokenizer.
inline void check_save_load(const ByteBPE& bpe, const ScratchDir& scratch, std::string_view text, const char* name) {
  const std::string dir = scratch.subdir("saved");
  bpe.save(dir);
  const ByteBPE loaded = ByteBPE::load(dir);
  FUZZ_CHECK(loaded == bpe, std::string(name) + ": load(save(t)) != t (pattern '" + escaped(bpe.pattern()) +
                                "', vocab_size " + std::to_string(bpe.vocab_size()) + " vs " +
                                std::to_string(loaded.vocab_size()) + ")");
  FUZZ_CHECK(loaded.encode(text, SpecialMode::all) == bpe.encode(text, SpecialMode::all),
             std::string(name) + ": the reloaded tokenizer encodes differently");
  FUZZ_CHECK(ByteBPE::from_json(bpe.to_json()) == bpe, std::string(name) + ": from_json(to_json(t)) != t");
}

// What the loader targets check on a tokenizer they managed to load: a short multilingual text
// with every special token (and an invalid byte) in it round-trips and matches the reference in
// every mode, and save + load gives the tokenizer back.
inline void check_loaded(const ByteBPE& bpe, const ScratchDir& scratch, unsigned select, const char* name) {
  std::string text = "Hello world, it's 2024!\n\t  Grüße, 世界 🦊 x\xff";
  for (const auto& [token, id] : bpe.specials()) text += token + " ";
  text += "end";  // valid UTF-8 up to the last byte, so that the last pre-split run ends the buffer
  // An exact-size heap copy, so that ASan sees a read past the end of the text.
  const auto buffer = std::make_unique<char[]>(text.size());
  std::copy(text.begin(), text.end(), buffer.get());
  const std::string_view view(buffer.get(), text.size());
  const ReferenceBPE ref(bpe);
  check_round_trip(bpe, ref, view, select, name);
  check_save_load(bpe, scratch, view, name);
}

}  // namespace attnzoo::fuzz
