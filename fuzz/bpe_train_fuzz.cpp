// libFuzzer target: ByteBPE::train on arbitrary bytes. Input layout:
//   byte 0: the pre-split pattern (gpt2, cl100k, o200k, none, or one of two regex: patterns);
//   byte 1: the number of merges asked for (0..63) and, in its top bit, whether the special tokens
//           <|endoftext|> and <s> are registered;
//   the rest: the training texts, separated by blank lines ("\n\n").
// Checks: training gives exactly the merges of the brute-force trainer (recount every pair before
// each merge) and the vocabulary size it promises; the trained tokenizer round-trips every text and
// the whole input (and agrees with the brute-force encoder); save + load gives an equal tokenizer,
// in merges mode and as tiktoken ranks. An empty corpus must throw std::invalid_argument.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz/bpe_reference.h"
#include "fuzz/fuzz_util.h"
#include "tokenizers/bpe.h"

namespace {

using attnzoo::fuzz::escaped;
using attnzoo::fuzz::ReferenceBPE;
using attnzoo::tokenizers::ByteBPE;
using attnzoo::tokenizers::SpecialMode;

constexpr const char* kPatterns[] = {
    "gpt2", "cl100k", "o200k", "none", R"(regex:\S+|\s+)", R"(regex:\p{L}+|\p{N}|[^\p{L}\p{N}])",
};

std::string merges_text(const std::vector<std::pair<int, int>>& m) {
  std::string s;
  for (std::size_t k = 0; k < m.size() && k < 16; ++k)
    s += " (" + std::to_string(m[k].first) + "," + std::to_string(m[k].second) + ")";
  return s + (m.size() > 16 ? " ..." : "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const attnzoo::fuzz::ScratchDir scratch;
  if (size < 2) return 0;
  const std::string pattern = kPatterns[data[0] % std::size(kPatterns)];
  const int n_merges = data[1] & 63;
  std::vector<std::string> specials;
  if (data[1] & 128) specials = {"<|endoftext|>", "<s>"};
  const int vocab_size = 256 + n_merges + static_cast<int>(specials.size());
  const std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  std::vector<std::string> texts;
  for (const auto part : attnzoo::fuzz::split_parts(body, "\n\n", 8)) texts.emplace_back(part);

  // An empty corpus (nothing outside the special tokens) is the one documented failure.
  bool empty = true;
  for (const auto& t : texts)
    for (const auto& [part, special] : attnzoo::fuzz::cut_specials(t, specials)) empty = empty && (special || part.empty());
  std::optional<ByteBPE> trained;
  const bool ok = attnzoo::fuzz::succeeds_or_throws<std::invalid_argument>(
      [&] { trained.emplace(ByteBPE::train(texts, vocab_size, pattern, specials)); });
  FUZZ_CHECK(ok == !empty, std::string(ok ? "trained on an empty corpus" : "refused a non-empty corpus") +
                               " '" + escaped(body) + "'");
  if (!ok) return 0;
  const ByteBPE& bpe = *trained;

  const auto expected = attnzoo::fuzz::reference_train(texts, vocab_size, pattern, specials);
  FUZZ_CHECK(bpe.merges() == expected, "pattern " + pattern + ": train gave merges" + merges_text(bpe.merges()) +
                                           "\n  brute force gives" + merges_text(expected));
  FUZZ_CHECK(bpe.vocab_size() == 256 + static_cast<int>(expected.size() + specials.size()),
             "vocab_size " + std::to_string(bpe.vocab_size()) + " for " + std::to_string(expected.size()) + " merges");
  for (std::size_t i = 0; i < specials.size(); ++i)
    FUZZ_CHECK(bpe.specials().at(specials[i]) == 256 + static_cast<int>(expected.size() + i),
               "special '" + specials[i] + "' does not follow the merges");

  const ReferenceBPE ref(bpe);
  for (const auto& t : texts) attnzoo::fuzz::check_round_trip(bpe, ref, t, data[1], "trained");
  attnzoo::fuzz::check_round_trip(bpe, ref, body, data[0], "trained");
  attnzoo::fuzz::check_save_load(bpe, scratch, body, "trained");

  // The same vocabulary as tiktoken ranks (rank = id) must survive ranks.txt too; ranks need
  // distinct byte strings, which two merges of a trained vocabulary need not have.
  std::vector<std::pair<std::string, int>> tokens;
  std::set<std::string> seen;
  for (int id = 0; id < bpe.vocab_size(); ++id)
    if (bpe.has_id(id) && !ref.is_special(id)) {
      if (!seen.insert(bpe.token_bytes(id)).second) return 0;
      tokens.emplace_back(bpe.token_bytes(id), id);
    }
  const ByteBPE ranks = ByteBPE::from_ranks(pattern, tokens, bpe.specials());
  const ReferenceBPE ranks_ref(ranks);
  attnzoo::fuzz::check_round_trip(ranks, ranks_ref, body, data[0], "ranks");
  attnzoo::fuzz::check_save_load(ranks, scratch, body, "ranks");
  return 0;
}
