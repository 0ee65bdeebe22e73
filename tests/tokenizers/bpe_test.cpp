// Tests for tokenizers/bpe: the lecture's "aaabdaaabac" example, the tie-break rule, the incremental
// trainer against a brute-force one (full recount per merge), decode(encode(x)) == x over random
// bytes (invalid UTF-8 included) and multilingual text, special-token modes, the GPT-2 and cl100k
// pre-split pieces, save/load round trip and every load error naming its file and line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_util.h"
#include "tokenizers/bpe.h"

using attnzoo::testing::error_of;
using attnzoo::testing::write_bytes;
using attnzoo::tokenizers::ByteBPE;
using attnzoo::tokenizers::SpecialMode;

namespace {

using Merges = std::vector<std::pair<int, int>>;

// Brute force: recount every pair of every word before each merge (minbpe's loop), with the same
// tie-break (most frequent, then the lexicographically smallest pair).
Merges brute_force_merges(const std::vector<std::string>& texts, int n_merges, const ByteBPE& splitter) {
  std::map<std::string, int64_t> counts;
  for (const auto& t : texts)
    for (const auto& piece : splitter.pre_split(t)) ++counts[piece];
  std::vector<std::vector<int>> words;
  std::vector<int64_t> freq;
  for (const auto& [piece, f] : counts) {
    words.emplace_back();
    for (const char c : piece) words.back().push_back(static_cast<unsigned char>(c));
    freq.push_back(f);
  }
  Merges merges;
  for (int k = 0; k < n_merges; ++k) {
    std::map<std::pair<int, int>, int64_t> stats;
    for (std::size_t w = 0; w < words.size(); ++w)
      for (std::size_t i = 0; i + 1 < words[w].size(); ++i) stats[{words[w][i], words[w][i + 1]}] += freq[w];
    if (stats.empty()) break;
    auto best = stats.begin();
    for (auto it = stats.begin(); it != stats.end(); ++it)
      if (it->second > best->second) best = it;  // map order: the first maximum is the smallest pair
    const auto [a, b] = best->first;
    const int id = 256 + k;
    for (auto& word : words) {
      std::vector<int> merged;
      for (std::size_t r = 0; r < word.size();) {
        if (r + 1 < word.size() && word[r] == a && word[r + 1] == b) {
          merged.push_back(id);
          r += 2;
        } else {
          merged.push_back(word[r++]);
        }
      }
      word = merged;
    }
    merges.emplace_back(a, b);
  }
  return merges;
}

// Reference encoding of one piece: apply every merge in rank order, each at all its occurrences, left to right.
std::vector<int> apply_merges_in_order(const std::string& piece, const Merges& merges) {
  std::vector<int> ids;
  for (const char c : piece) ids.push_back(static_cast<unsigned char>(c));
  for (std::size_t k = 0; k < merges.size(); ++k) {
    std::vector<int> merged;
    for (std::size_t r = 0; r < ids.size();) {
      if (r + 1 < ids.size() && ids[r] == merges[k].first && ids[r + 1] == merges[k].second) {
        merged.push_back(256 + static_cast<int>(k));
        r += 2;
      } else {
        merged.push_back(ids[r++]);
      }
    }
    ids = merged;
  }
  return ids;
}

std::string random_bytes(std::mt19937& rng, std::size_t max_len) {
  std::uniform_int_distribution<std::size_t> len(0, max_len);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(len(rng), '\0');
  for (auto& c : s) c = static_cast<char>(byte(rng));
  return s;
}

// Text over a small alphabet, so that pairs repeat and ties are common.
std::string random_text(std::mt19937& rng, std::size_t len) {
  static const std::string alphabet = "aab bc d\n'1 2e!";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string s;
  for (std::size_t i = 0; i < len; ++i) s += alphabet[pick(rng)];
  return s;
}

const std::vector<std::string> kMultilingual = {
    "Hello, world! It's 2024; we've 3 cats & 12345 dogs.",
    "  leading spaces, trailing spaces   \n\n\ttabs\r\nCRLF",
    "Ça va? Déjà vu, naïve façade — «guillemets»",
    "日本語のテキストと中文文本，한국어 텍스트",
    "emoji: 👍🏽 👨‍👩‍👧 🇫🇷 and math ∑∫√",
    "Ελληνικά, русский, עברית, العربية, हिन्दी",
    "'s 't 're 've 'm 'll 'd 'S 'LL",
};

std::vector<std::string> corpus() {
  std::vector<std::string> texts = kMultilingual;
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) texts.push_back(random_text(rng, 200));
  return texts;
}

}  // namespace

TEST(ByteBPE, LectureExampleAaabdaaabac) {
  const auto bpe = ByteBPE::train({"aaabdaaabac"}, 259, "none");
  ASSERT_EQ(bpe.merges(), (Merges{{'a', 'a'}, {'a', 'b'}, {256, 257}}));
  EXPECT_EQ(bpe.token_bytes(256), "aa");   // Z
  EXPECT_EQ(bpe.token_bytes(257), "ab");   // Y
  EXPECT_EQ(bpe.token_bytes(258), "aaab"); // X = ZY
  EXPECT_EQ(bpe.encode("aaabdaaabac"), (std::vector<int>{258, 'd', 258, 'a', 'c'}));
  EXPECT_EQ(bpe.decode({258, 'd', 258, 'a', 'c'}), "aaabdaaabac");
}

TEST(ByteBPE, TieBreakPrefersLexicographicallySmallerPair) {
  // After aa -> 256, "Za" = (256, 97) and "ab" = (97, 98) both occur twice: (97, 98) is smaller.
  // Here every pair of "cdab" occurs once: (97, 98) "ab" is the smallest, then (99, 100) "cd".
  const auto bpe = ByteBPE::train({"cdab"}, 258, "none");
  EXPECT_EQ(bpe.merges(), (Merges{{'a', 'b'}, {'c', 'd'}}));
  // Across words (pieces "zy", " ba", " zy", " ba"): "zy", " b" and "ba" occur twice each, and
  // (32, 98) " b" is the smallest of (32, 98), (98, 97), (122, 121).
  const auto two = ByteBPE::train({"zy ba zy ba"}, 257, "gpt2");
  EXPECT_EQ(two.merges(), (Merges{{' ', 'b'}}));
}

TEST(ByteBPE, StopsWhenNoPairIsLeft) {
  const auto bpe = ByteBPE::train({"ab"}, 1000, "none");
  EXPECT_EQ(bpe.merges(), (Merges{{'a', 'b'}}));
  EXPECT_EQ(bpe.vocab_size(), 257);
}

TEST(ByteBPE, IncrementalTrainerMatchesBruteForce) {
  const auto texts = corpus();
  for (const std::string pattern : {"gpt2", "cl100k", "none"}) {
    const auto bpe = ByteBPE::train(texts, 256 + 120, pattern);
    const auto expected = brute_force_merges(texts, 120, ByteBPE(pattern));
    EXPECT_EQ(bpe.merges(), expected) << pattern;
    EXPECT_EQ(ByteBPE::train(texts, 256 + 120, pattern), bpe) << pattern << ": training is deterministic";
  }
}

TEST(ByteBPE, RoundTripsRandomBytesAndMultilingualText) {
  const auto texts = corpus();
  std::mt19937 rng(1234);
  for (const std::string pattern : {"gpt2", "cl100k", "none"}) {
    const auto bpe = ByteBPE::train(texts, 400, pattern, {"<|endoftext|>"});
    std::size_t n_bytes = 0, n_ids = 0;
    for (const auto& t : kMultilingual) {
      EXPECT_EQ(bpe.decode(bpe.encode(t)), t) << pattern;
      n_bytes += t.size();
      n_ids += bpe.encode(t).size();
    }
    EXPECT_LT(n_ids, n_bytes) << pattern << ": merges apply";
    for (int i = 0; i < 300; ++i) {
      std::string s = random_bytes(rng, 64);
      if (i % 3 == 0) s = kMultilingual[static_cast<std::size_t>(i) % kMultilingual.size()] + s;
      for (const auto mode : {SpecialMode::none, SpecialMode::all}) {
        const auto ids = bpe.encode(s, mode);
        ASSERT_EQ(bpe.decode(ids), s) << pattern << " case " << i;
      }
      std::string joined;
      for (const auto& piece : bpe.pre_split(s)) joined += piece;
      ASSERT_EQ(joined, s) << pattern << " case " << i;
    }
  }
}

TEST(ByteBPE, EncodeAppliesMergesInRankOrder) {
  // Short pieces and long ones (> 64 bytes, the heap path) against the reference, with "none"
  // (one piece per text) and gpt2 (runs of spaces and long words).
  const auto texts = corpus();
  std::mt19937 rng(99);
  for (const std::string pattern : {"none", "gpt2"}) {
    const auto bpe = ByteBPE::train(texts, 256 + 200, pattern);
    for (int i = 0; i < 60; ++i) {
      std::string s = random_text(rng, static_cast<std::size_t>(1 + i * 7));
      if (i % 4 == 0) s += std::string(static_cast<std::size_t>(i * 3), ' ') + std::string(100, 'a') + "\n";
      std::vector<int> expected;
      for (const auto& piece : bpe.pre_split(s)) {
        const auto ids = apply_merges_in_order(piece, bpe.merges());
        expected.insert(expected.end(), ids.begin(), ids.end());
      }
      ASSERT_EQ(bpe.encode(s), expected) << pattern << " case " << i;
    }
  }
}

TEST(ByteBPE, InvalidUtf8BytesArePiecesOfTheirOwn) {
  const ByteBPE bpe("gpt2");
  EXPECT_EQ(bpe.pre_split("ab\xff" "cd \xc3(x"),
            (std::vector<std::string>{"ab", "\xff", "cd", " ", "\xc3", "(", "x"}));
}

TEST(ByteBPE, Gpt2PatternSplitsAsGpt2) {
  const ByteBPE bpe("gpt2");
  EXPECT_EQ(bpe.pre_split("Hello world's  123!!\n\n"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " 123", "!!", "\n\n"}));
  EXPECT_EQ(bpe.pre_split("I'LL don't"), (std::vector<std::string>{"I", "'", "LL", " don", "'t"}));
}

TEST(ByteBPE, Cl100kPatternSplitsAsCl100k) {
  const ByteBPE bpe("cl100k");
  // Digits in groups of at most three; punctuation takes the newlines after it; case-insensitive
  // contractions; a letter run takes one leading non-letter, non-digit character.
  EXPECT_EQ(bpe.pre_split("Hello world's  123!!\n\n"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " ", "123", "!!\n\n"}));
  EXPECT_EQ(bpe.pre_split("I'LL 12345 $x"), (std::vector<std::string>{"I", "'LL", " ", "123", "45", " $", "x"}));
}

TEST(ByteBPE, SpecialTokens) {
  auto bpe = ByteBPE::train({"<|a|> hello <|a|> hello <|b|>"}, 300, "gpt2", {"<|a|>", "<|b|>"});
  const int a = bpe.specials().at("<|a|>"), b = bpe.specials().at("<|b|>");
  EXPECT_EQ(a, bpe.vocab_size() - 2);
  EXPECT_EQ(b, bpe.vocab_size() - 1);
  // Never merged: no merge produces bytes containing "<|" + letter + "|>".
  for (int id = 256; id < a; ++id) EXPECT_EQ(bpe.token_bytes(id).find("|>"), std::string::npos) << id;

  const std::string text = "x<|a|>y<|b|>";
  const auto all = bpe.encode(text, SpecialMode::all);
  EXPECT_EQ(std::count(all.begin(), all.end(), a), 1);
  EXPECT_EQ(std::count(all.begin(), all.end(), b), 1);
  const auto none = bpe.encode(text, SpecialMode::none);
  EXPECT_EQ(std::count(none.begin(), none.end(), a) + std::count(none.begin(), none.end(), b), 0);
  EXPECT_EQ(none, bpe.encode(text));
  const auto only_b = bpe.encode(text, SpecialMode::set, {"<|b|>"});
  EXPECT_EQ(std::count(only_b.begin(), only_b.end(), a), 0);
  EXPECT_EQ(only_b.back(), b);
  for (const auto& ids : {all, none, only_b}) EXPECT_EQ(bpe.decode(ids), text);
  EXPECT_EQ(bpe.encode("<|a|><|a|>", SpecialMode::all), (std::vector<int>{a, a}));

  // The longest special token wins at one position.
  bpe.add_special("<|a|>!");
  EXPECT_EQ(bpe.encode("<|a|>!", SpecialMode::all), (std::vector<int>{bpe.vocab_size() - 1}));

  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bpe.encode("x", SpecialMode::set, {"<|zz|>"}); }), "<|zz|>");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bpe.add_special("<|a|>"); }), "duplicate special token");
}

TEST(ByteBPE, DecodeRejectsIdsOutsideTheVocabulary) {
  const ByteBPE bpe("gpt2");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bpe.decode({1, 256}); }), "token id 256");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bpe.decode({-1}); }), "token id -1");
}

TEST(ByteBPE, TrainingErrors) {
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { ByteBPE::train({"abc"}, 257, "gpt2", {"<a>", "<b>"}); }),
                  "vocab_size 257 is smaller than the 256 byte tokens + 2 special tokens = 258");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { ByteBPE::train({}, 300, "gpt2"); }), "empty training corpus");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { ByteBPE::train({"", "<s>"}, 300, "gpt2", {"<s>"}); }),
                  "empty training corpus");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { ByteBPE::train({"abc"}, 300, "gpt3"); }),
                  "unknown pre-split pattern 'gpt3'");
}

class ByteBPEFiles : public attnzoo::testing::TempDirTest {
 protected:
  // A saved tokenizer in DIR/good, and DIR/bad with merges.txt / tokenizer.json replaced.
  std::string save_with(const std::string& merges, const std::string& meta) {
    const auto bad = path("bad");
    std::filesystem::create_directories(bad);
    write_bytes(bad + "/merges.txt", merges);
    write_bytes(bad + "/tokenizer.json", meta);
    return bad;
  }
  static std::string meta(int vocab_size, const std::string& specials = "{}") {
    return R"({"type": "byte_bpe", "pattern": "gpt2", "vocab_size": )" + std::to_string(vocab_size) +
           R"(, "specials": )" + specials + "}";
  }
};

TEST_F(ByteBPEFiles, SaveLoadRoundTrip) {
  const auto bpe = ByteBPE::train(corpus(), 350, "cl100k", {"<|endoftext|>", "<|pad|>"});
  bpe.save(path("tok"));
  const auto loaded = ByteBPE::load(path("tok"));
  EXPECT_EQ(loaded, bpe);
  EXPECT_EQ(loaded.vocab_size(), 350);
  EXPECT_EQ(loaded.pattern(), "cl100k");
  for (const auto& t : kMultilingual) EXPECT_EQ(loaded.encode(t, SpecialMode::all), bpe.encode(t, SpecialMode::all));
  // Readable: the first line is the first merge, with its new id.
  std::ifstream in(path("tok") + "/merges.txt");
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, std::to_string(bpe.merges()[0].first) + " " + std::to_string(bpe.merges()[0].second) + " 256");
}

TEST_F(ByteBPEFiles, LoadErrorsNameFileAndLine) {
  const auto load_error = [&](const std::string& merges, const std::string& meta_json) {
    const auto dir = save_with(merges, meta_json);
    return error_of<std::runtime_error>([&] { ByteBPE::load(dir); });
  };
  const std::string merges_file = path("bad") + "/merges.txt";
  const std::string meta_file = path("bad") + "/tokenizer.json";

  EXPECT_STARTS_WITH(load_error("97 97 256\n97 x 257\n", meta(258)), merges_file + ":2: expected three integers");
  EXPECT_STARTS_WITH(load_error("97 97 256\n97 97\n", meta(258)), merges_file + ":2: expected three integers");
  EXPECT_STARTS_WITH(load_error("97 97 256\n\n", meta(258)), merges_file + ":2: expected three integers");
  EXPECT_STARTS_WITH(load_error("97 97 256\n97 257 257\n", meta(258)),
                     merges_file + ":2: merge references unknown id 257");
  EXPECT_STARTS_WITH(load_error("97 -1 256\n", meta(257)), merges_file + ":1: merge references unknown id -1");
  EXPECT_STARTS_WITH(load_error("97 97 256\n97 256 256\n", meta(257)), merges_file + ":2: new id 256 is already used");
  EXPECT_STARTS_WITH(load_error("97 97 97\n", meta(257)), merges_file + ":1: new id 97 is already used");
  // Published vocabularies leave gaps: a merge may make any unused id.
  EXPECT_EQ(ByteBPE::load(save_with("97 97 300\n", meta(301))).encode("aa"), std::vector<int>{300});
  EXPECT_STARTS_WITH(load_error("97 97 256\n97 97 257\n", meta(258)), merges_file + ":2: duplicate merge 97 97");

  EXPECT_STARTS_WITH(load_error("97 97 256\n", "{\"type\": "), meta_file + ": ");
  EXPECT_CONTAINS(load_error("97 97 256\n", meta(258, R"({"<s>": 257, "<s>": 258})")),
                  "duplicate token '<s>'");
  EXPECT_CONTAINS(load_error("97 97 256\n", meta(259, R"({"<s>": 257, "<t>": 257})")), "share id 257");
  EXPECT_CONTAINS(load_error("97 97 256\n", meta(258, R"({"<s>": 256})")), ":1: new id 256 is already used");
  EXPECT_CONTAINS(load_error("97 97 256\n", meta(258, R"({"<s>": 97})")), "reuses id 97");
  EXPECT_CONTAINS(load_error("97 97 256\n", meta(999)), "vocab_size 999 disagrees");
  EXPECT_CONTAINS(load_error("", R"({"type": "char", "pattern": "gpt2", "vocab_size": 256, "specials": {}})"),
                  "\"type\" is \"char\"");
  EXPECT_CONTAINS(load_error("", R"({"type": "byte_bpe", "pattern": "x", "vocab_size": 256, "specials": {}})"),
                  "unknown pre-split pattern 'x'");
  EXPECT_STARTS_WITH(error_of<std::runtime_error>([&] { ByteBPE::load(path("missing")); }),
                     path("missing") + "/tokenizer.json: cannot open");
  // Found by fuzzing (fuzz/corpus/bpe_load_fuzz/regress-*).
  EXPECT_CONTAINS(load_error("97 97 256\n", R"({"type": "byte_bpe", "mode": {}, "pattern": "gpt2", "vocab_size": 257, "specials": {}})"),
                  "\"mode\" must be");
  EXPECT_CONTAINS(load_error("97 97 256\n", meta(258, R"({"<s>": 1000000000})")), "has id 1000000000, outside");
  EXPECT_THROW(ByteBPE("regex:(").pre_split("x"), std::logic_error);
  EXPECT_EQ(ByteBPE("regex:$").pre_split("ab"), (std::vector<std::string>{"ab"}));  // an empty match at the end
  EXPECT_THROW(ByteBPE("regex:\\C"), std::logic_error);  // \C may split a UTF-8 character: refused
  ByteBPE plain;
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { plain.add_special("\xff<s>"); }), "not valid UTF-8");
  // The good case of the same helpers loads.
  EXPECT_EQ(ByteBPE::load(save_with("97 97 256\n", meta(258, R"({"<s>": 257})"))).vocab_size(), 258);
}
