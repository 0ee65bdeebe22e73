// Tests for tokenizers/wordpiece: parity with Hugging Face (npm @huggingface/tokenizers 0.2.0) for
// bert-base-uncased on the committed golden strings and pairs, the documented points where the JS
// port and the Rust crate differ (we follow the Rust crate), HF's longest-first truncation against a
// restatement of its rule, padding, decode, the greedy longest-match and [UNK] rules on hand-made
// vocabularies, the options, NFD's canonical ordering, invalid UTF-8, vocab.txt errors naming file
// and line, and the trainer (against a brute-force trainer, determinism, alphabet, save/load).
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

#include <nlohmann/json.hpp>

#include "tests/test_util.h"
#include "tokenizers/wordpiece.h"

using attnzoo::testing::error_of;
using attnzoo::testing::fetched_data;
using attnzoo::testing::read_bytes;
using attnzoo::testing::write_bytes;
using attnzoo::tokenizers::WordPiece;
using attnzoo::tokenizers::WordPieceOptions;
using Strings = std::vector<std::string>;
using namespace std::string_literals;
using namespace std::string_view_literals;

namespace {

// bert-base-uncased, loaded once (setup fetches it; missing is a failure, not a skip).
const WordPiece& bert() {
  static const WordPiece wp = WordPiece::load(fetched_data("bert-base-uncased/vocab.txt"));
  return wp;
}

Strings specials() { return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}; }

// Specials plus TOKENS.
WordPiece tiny(const Strings& tokens, WordPieceOptions options = {}) {
  Strings vocab = specials();
  vocab.insert(vocab.end(), tokens.begin(), tokens.end());
  return WordPiece(vocab, options);
}

// "a".."z" and "##a".."##z": every lower-case ASCII word is one token per letter.
WordPiece letters() {
  Strings tokens;
  for (char c = 'a'; c <= 'z'; ++c) tokens.push_back(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) tokens.push_back("##" + std::string(1, c));
  return tiny(tokens);
}

// N one-letter words.
std::string words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::string(i ? " " : "") + static_cast<char>('a' + i % 26);
  return s;
}

}  // namespace

// ---- Parity with Hugging Face ------------------------------------------------------------------

TEST(WordPieceGolden, BertBaseUncasedVocabulary) {
  const WordPiece& wp = bert();
  EXPECT_EQ(wp.vocab_size(), 30522);
  EXPECT_EQ(wp.pad_id(), 0);
  EXPECT_EQ(wp.unk_id(), 100);
  EXPECT_EQ(wp.cls_id(), 101);
  EXPECT_EQ(wp.sep_id(), 102);
  EXPECT_EQ(wp.mask_id(), 103);
  EXPECT_EQ(wp.token_to_id("hello"), 7592);
  EXPECT_EQ(wp.token_to_id("world"), 2088);
  EXPECT_EQ(wp.id_to_token(wp.token_to_id("##ing")), "##ing");
  EXPECT_EQ(wp.token_to_id("not-a-token"), -1);
}

TEST(WordPieceGolden, EveryStringMatchesHuggingFace) {
  const WordPiece& wp = bert();
  const auto golden = nlohmann::json::parse(read_bytes(std::string(ATTNZOO_TEST_DATA) + "/wordpiece_golden.json"));
  ASSERT_GE(golden.at("cases").size(), 50u);
  for (const auto& c : golden.at("cases")) {
    const std::string text = c.at("text");
    SCOPED_TRACE("text: " + c.at("text").dump());
    const WordPiece::Encoding e = wp.encode(text);
    EXPECT_EQ(e.tokens, c.at("tokens").get<Strings>());
    EXPECT_EQ(e.ids, c.at("ids").get<std::vector<int>>());
    EXPECT_EQ(e.token_type_ids, c.at("type_ids").get<std::vector<int>>());
    EXPECT_EQ(e.attention_mask, std::vector<int>(e.ids.size(), 1));
    EXPECT_EQ(wp.decode(e.ids), c.at("decoded").get<std::string>());
    // tokenize/encode_ids are the same tokens without [CLS]/[SEP].
    const Strings inner(e.tokens.begin() + 1, e.tokens.end() - 1);
    EXPECT_EQ(wp.tokenize(text), inner);
    EXPECT_EQ(wp.encode_ids(text), std::vector<int>(e.ids.begin() + 1, e.ids.end() - 1));
  }
  ASSERT_GE(golden.at("pairs").size(), 4u);
  for (const auto& c : golden.at("pairs")) {
    SCOPED_TRACE("pair: " + c.at("a").dump() + " / " + c.at("b").dump());
    const WordPiece::Encoding e = wp.encode(c.at("a").get<std::string>(), c.at("b").get<std::string>());
    EXPECT_EQ(e.tokens, c.at("tokens").get<Strings>());
    EXPECT_EQ(e.ids, c.at("ids").get<std::vector<int>>());
    EXPECT_EQ(e.token_type_ids, c.at("type_ids").get<std::vector<int>>());
    EXPECT_EQ(wp.decode(e.ids), c.at("decoded").get<std::string>());
  }
}

// Where the JS port differs from the Rust crate (transformers' BertTokenizerFast), we follow Rust.
TEST(WordPieceGolden, FollowsTheRustCrateWhereTheJsPortDiffers) {
  const WordPiece& wp = bert();
  // Rust lower-cases per character: a final capital sigma becomes σ, not ς.
  EXPECT_EQ(wp.tokenize("\u039f\u0394\u039f\u03a3"), wp.tokenize("\u03bf\u03b4\u03bf\u03c3"));
  EXPECT_NE(wp.tokenize("\u03bf\u03b4\u03bf\u03c3"), wp.tokenize("\u03bf\u03b4\u03bf\u03c2"));  // the check has teeth
  // CJK outside the BMP is split off (the JS port walks UTF-16 units and misses it) ...
  EXPECT_EQ(wp.pre_tokenize("a\U00020000b"), (Strings{"a", "\U00020000", "b"}));
  // ... but U+2B820..U+2B91F are not: the Rust crate's range starts at U+2B920 (BERT's at U+2B820).
  EXPECT_EQ(wp.pre_tokenize("a\U0002B820b"), (Strings{"a\U0002B820b"}));
  EXPECT_EQ(wp.pre_tokenize("a\U0002B920b"), (Strings{"a", "\U0002B920", "b"}));
  // An empty second text is still a pair: [CLS] A [SEP] [SEP].
  const auto e = wp.encode("only first", "");
  EXPECT_EQ(e.tokens, (Strings{"[CLS]", "only", "first", "[SEP]", "[SEP]"}));
  EXPECT_EQ(e.token_type_ids, (std::vector<int>{0, 0, 0, 0, 1}));
  // Unassigned code points (Cn) are kept, as in Rust and the JS port (Python's slow tokenizer drops them).
  EXPECT_EQ(wp.pre_tokenize("x\u0378y"), (Strings{"x\u0378y"}));
}

TEST(WordPieceGolden, DecodeCleansUpLikeBertTokenizer) {
  const WordPiece& wp = bert();
  EXPECT_EQ(wp.decode(wp.encode_ids("Hello, world! It's nice. Isn't it? They're here.")),
            "hello, world! it's nice. isn't it? they're here.");
  const auto ids = wp.encode("Hello world").ids;
  EXPECT_EQ(wp.decode(ids, /*skip_special=*/false), "[CLS] hello world [SEP]");
  EXPECT_EQ(wp.decode({}), "");
  EXPECT_EQ(wp.decode({wp.unk_id()}), "");  // [UNK] is a special token for skip_special, as in HF
  EXPECT_EQ(wp.decode({wp.unk_id()}, false), "[UNK]");
  EXPECT_EQ(wp.decode({wp.token_to_id("##ing"), wp.token_to_id("run")}), "##ing run");  // a leading ## stays
}

TEST(WordPieceGolden, DecodeRejectsIdsOutsideTheVocabulary) {
  const WordPiece& wp = bert();
  auto msg = error_of<std::invalid_argument>([&] { wp.decode({101, 30522, 102}); });
  EXPECT_CONTAINS(msg, "30522");
  EXPECT_CONTAINS(msg, "[0, 30522)");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { wp.decode({-1}); }), "-1");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { wp.id_to_token(99999); }), "99999");
}

// ---- Greedy longest-match and [UNK] ----------------------------------------------------------------

TEST(WordPiece, UnaffableAsInTheBertDocstring) {
  const WordPiece wp = tiny({"un", "##aff", "##able", "runn", "##ing", ","});
  EXPECT_EQ(wp.tokenize("unaffable"), (Strings{"un", "##aff", "##able"}));
  EXPECT_EQ(wp.tokenize("UNAFFABLE, running"), (Strings{"un", "##aff", "##able", ",", "runn", "##ing"}));
  EXPECT_EQ(wp.decode(wp.encode_ids("unaffable running")), "unaffable running");
}

TEST(WordPiece, GreedyLongestMatchDoesNotBacktrack) {
  // The longest prefix wins even when it leaves an unmatchable rest: the whole word is [UNK].
  EXPECT_EQ(tiny({"un", "una", "##ffable"}).tokenize("unaffable"), (Strings{"una", "##ffable"}));
  EXPECT_EQ(tiny({"un", "una", "##ff", "##able"}).tokenize("unaffable"), (Strings{"una", "##ff", "##able"}));
  EXPECT_EQ(tiny({"un", "una", "##aff", "##able"}).tokenize("unaffable"), (Strings{"[UNK]"}));
  // Without a match for some piece, the word is one [UNK] (no partial pieces), the others are kept.
  EXPECT_EQ(tiny({"un", "##aff"}).tokenize("unaffable un"), (Strings{"[UNK]", "un"}));
  // Continuations need the ## form; a word-initial token does not match inside a word.
  EXPECT_EQ(tiny({"a", "b"}).tokenize("ab"), (Strings{"[UNK]"}));
  EXPECT_EQ(tiny({"a", "##b"}).tokenize("ab ba"), (Strings{"a", "##b", "[UNK]"}));
}

TEST(WordPiece, WordsLongerThanMaxInputCharsAreUnknown) {
  const WordPiece wp = tiny({"a", "##a", "é", "##é", "e", "##e"});
  EXPECT_EQ(wp.tokenize(std::string(100, 'a')).size(), 100u);
  EXPECT_EQ(wp.tokenize(std::string(101, 'a')), (Strings{"[UNK]"}));
  EXPECT_EQ(wp.tokenize(std::string(101, 'a') + " a"), (Strings{"[UNK]", "a"}));
  // Counted in code points after normalization: 60 × "e" + U+0301 is 120 code points before, 60 after.
  std::string decomposed;
  for (int i = 0; i < 60; ++i) decomposed += "e\u0301";
  EXPECT_EQ(wp.tokenize(decomposed).size(), 60u);
  std::string accented;
  for (int i = 0; i < 101; ++i) accented += "\u00e9";
  EXPECT_EQ(wp.tokenize(accented), (Strings{"[UNK]"}));
  // Cased without stripping: 100 two-byte characters are 100, not 200.
  WordPieceOptions cased;
  cased.lowercase = false;
  std::string e100;
  for (int i = 0; i < 100; ++i) e100 += "\u00e9";
  EXPECT_EQ(tiny({"é", "##é"}, cased).tokenize(e100).size(), 100u);
  WordPieceOptions short_words;
  short_words.max_input_chars_per_word = 3;
  EXPECT_EQ(tiny({"a", "##a"}, short_words).tokenize("aaa aaaa"), (Strings{"a", "##a", "##a", "[UNK]"}));
}

// ---- The basic tokenizer and its options -------------------------------------------------------

TEST(WordPiece, BasicTokenizerSplitsLikeBert) {
  const WordPiece wp = letters();
  EXPECT_EQ(wp.pre_tokenize("  Hello,  WORLD!!\tfoo\r\nbar  "),
            (Strings{"hello", ",", "world", "!", "!", "foo", "bar"}));
  EXPECT_EQ(wp.pre_tokenize("$3.50 a+b=c ~x `y` ^z |w|"),
            (Strings{"$", "3", ".", "50", "a", "+", "b", "=", "c", "~", "x", "`", "y", "`", "^", "z", "|", "w", "|"}));
  // Unicode punctuation (P*) splits, symbols (S*) do not.
  EXPECT_EQ(wp.pre_tokenize("a\u2014b\u00bfc\u00a7d \u00a9e\u20acf"), (Strings{"a", "\u2014", "b", "\u00bf", "c", "\u00a7",
                                                                       "d", "\u00a9e\u20acf"}));
  EXPECT_EQ(wp.pre_tokenize("\u4e2d\u6587abc\u5b57"), (Strings{"\u4e2d", "\u6587", "abc", "\u5b57"}));
  EXPECT_EQ(wp.pre_tokenize("\u00c5ngstr\u00f6m \u0130stanbul Stra\u00dfe"), (Strings{"angstrom", "istanbul", "stra\u00dfe"}));
  EXPECT_EQ(wp.pre_tokenize("a\u0000b\u0007c\u200bd\u00ade\ufffdf"sv), (Strings{"abcdef"}));
  EXPECT_EQ(wp.pre_tokenize("a\u00a0b\u3000c\u2028d\u0085e\u000bf"), (Strings{"a", "b", "c", "def"}));
  EXPECT_EQ(wp.pre_tokenize("x[MASK]y [mask]"), (Strings{"x", "[MASK]", "y", "[", "mask", "]"}));
  EXPECT_EQ(wp.pre_tokenize(" \t\n "), Strings{});
  EXPECT_EQ(wp.pre_tokenize(""), Strings{});
}

TEST(WordPiece, OptionsChangeTheBasicTokenizer) {
  WordPieceOptions cased;
  cased.lowercase = false;  // strip_accents follows: off
  EXPECT_EQ(tiny({}, cased).pre_tokenize("Caf\u00e9 HeLLo"), (Strings{"Caf\u00e9", "HeLLo"}));
  WordPieceOptions cased_stripped = cased;
  cased_stripped.strip_accents = true;
  EXPECT_EQ(tiny({}, cased_stripped).pre_tokenize("Caf\u00e9 \u00c5"), (Strings{"Cafe", "A"}));
  WordPieceOptions lower_only;
  lower_only.strip_accents = false;
  // Full lower-case mapping of İ (Rust's char::to_lowercase): "i" + U+0307, two characters.
  EXPECT_EQ(tiny({}, lower_only).pre_tokenize("Caf\u00c9 \u0130"), (Strings{"caf\u00e9", "i\u0307"}));
  WordPieceOptions no_cjk;
  no_cjk.tokenize_chinese_chars = false;
  EXPECT_EQ(tiny({}, no_cjk).pre_tokenize("a\u4e2d\u6587b"), (Strings{"a\u4e2d\u6587b"}));
  WordPieceOptions dirty;
  dirty.clean_text = false;
  // Controls stay in the word; \v and U+0085 are still whitespace (Rust's char::is_whitespace).
  EXPECT_EQ(tiny({}, dirty).pre_tokenize("a\u0007b\u000bc\u0085d\u200be\0f"sv),
            (Strings{"a\u0007b", "c", "d\u200be\0f"s}));
  WordPieceOptions literal;
  literal.special_tokens_in_text = false;
  EXPECT_EQ(tiny({}, literal).pre_tokenize("[MASK]"), (Strings{"[", "mask", "]"}));
  EXPECT_EQ(tiny({}, literal).encode_ids("[MASK]").size(), 3u);
  EXPECT_EQ(tiny({}).encode_ids("[MASK]"), (std::vector<int>{4}));
}

TEST(WordPiece, StripAccentsKeepsNfdCanonicalOrder) {
  const WordPiece wp = letters();
  // U+1D165 (ccc 216) and U+1D16D (ccc 226) are spacing marks (Mc): kept, and NFD sorts them by class.
  EXPECT_EQ(wp.pre_tokenize("a\U0001D16D\U0001D165"), (Strings{"a\U0001D165\U0001D16D"}));
  // A dropped Mn (U+0301, ccc 230) inside the run does not change the order of the others.
  EXPECT_EQ(wp.pre_tokenize("a\U0001D16D\u0301\U0001D165"), (Strings{"a\U0001D165\U0001D16D"}));
  // Characters removed by clean text are gone before NFD: the run continues across them.
  EXPECT_EQ(wp.pre_tokenize("a\U0001D16D\u200b\U0001D165"), (Strings{"a\U0001D165\U0001D16D"}));
  // A starter (U+034F, Mn with class 0) ends the run, even though it is dropped.
  EXPECT_EQ(wp.pre_tokenize("a\U0001D16D\u034f\U0001D165"), (Strings{"a\U0001D16D\U0001D165"}));
  // Hangul syllables decompose to jamo.
  EXPECT_EQ(wp.pre_tokenize("\ud55c"), (Strings{"\u1112\u1161\u11ab"}));
}

TEST(WordPiece, InvalidUtf8BytesAreReplacementCharacters) {
  const WordPiece& wp = bert();
  EXPECT_EQ(wp.tokenize("ab\xff" "cd"), wp.tokenize("abcd"));  // U+FFFD is dropped by clean text
  EXPECT_EQ(wp.tokenize("hello \xe2\x82"), wp.tokenize("hello"));
  EXPECT_EQ(wp.tokenize("\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 x"), wp.tokenize("x"));  // overlong, surrogate, > U+10FFFF
  WordPieceOptions dirty;
  dirty.clean_text = false;
  EXPECT_EQ(tiny({}, dirty).pre_tokenize("a\xff\xfe"), (Strings{"a\ufffd\ufffd"}));
}

// ---- encode: pairs, truncation, padding ----------------------------------------------------------

TEST(WordPiece, EncodesSinglesAndPairs) {
  const WordPiece wp = letters();
  auto e = wp.encode("a b", std::string_view("c"));
  EXPECT_EQ(e.tokens, (Strings{"[CLS]", "a", "b", "[SEP]", "c", "[SEP]"}));
  EXPECT_EQ(e.ids, (std::vector<int>{2, 5, 6, 3, 7, 3}));
  EXPECT_EQ(e.token_type_ids, (std::vector<int>{0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(e.attention_mask, (std::vector<int>{1, 1, 1, 1, 1, 1}));
  e = wp.encode("");
  EXPECT_EQ(e.tokens, (Strings{"[CLS]", "[SEP]"}));
}

TEST(WordPiece, TruncatesLongestFirstAsHuggingFace) {
  const WordPiece wp = letters();
  auto lengths = [&](int na, int nb, int max_length) {
    const auto e = wp.encode(words(na), std::string_view(words(nb)), max_length);
    EXPECT_LE(static_cast<int>(e.ids.size()), max_length);
    const auto a = std::count(e.token_type_ids.begin(), e.token_type_ids.end(), 0) - 2;
    const auto b = std::count(e.token_type_ids.begin(), e.token_type_ids.end(), 1) - 1;
    return std::pair<int, int>(static_cast<int>(a), static_cast<int>(b));
  };
  // Budget = max_length - 3.
  EXPECT_EQ(lengths(5, 2, 8), std::make_pair(3, 2));   // only the longer one is cut
  EXPECT_EQ(lengths(2, 5, 8), std::make_pair(2, 3));
  EXPECT_EQ(lengths(4, 4, 8), std::make_pair(2, 3));   // equal lengths: B gets the odd one
  EXPECT_EQ(lengths(5, 4, 10), std::make_pair(4, 3));  // both cut: the longer gets the odd one
  EXPECT_EQ(lengths(4, 5, 10), std::make_pair(3, 4));
  EXPECT_EQ(lengths(10, 1, 6), std::make_pair(2, 1));
  EXPECT_EQ(lengths(6, 5, 6), std::make_pair(2, 1));   // even the shorter is over the budget
  EXPECT_EQ(lengths(3, 2, 8), std::make_pair(3, 2));   // fits: untouched
  EXPECT_EQ(lengths(3, 2, 3), std::make_pair(0, 0));
  // The rule restated: if both fit, keep them; if the shorter fits in half the budget, keep it and
  // give the longer the rest; else split the budget in halves, the longer (B on a tie) gets the odd one.
  for (int na = 0; na <= 7; ++na)
    for (int nb = 0; nb <= 7; ++nb)
      for (int max_length = 3; max_length <= 16; ++max_length) {
        const int budget = max_length - 3;
        const bool a_longer = na > nb;
        const int shorter = std::min(na, nb), longer = std::max(na, nb);
        int s = shorter, l = longer;
        if (shorter + longer > budget) {
          if (2 * shorter <= budget) {
            l = budget - shorter;
          } else {
            s = budget / 2;
            l = budget - s;
          }
        }
        const auto expected = a_longer ? std::make_pair(l, s) : std::make_pair(s, l);
        EXPECT_EQ(lengths(na, nb, max_length), expected) << na << " " << nb << " " << max_length;
      }
  // A single sequence keeps its first max_length - 2 tokens.
  EXPECT_EQ(wp.encode(words(6), std::nullopt, 5).tokens, (Strings{"[CLS]", "a", "b", "c", "[SEP]"}));
  EXPECT_EQ(wp.encode(words(6), std::nullopt, 2).tokens, (Strings{"[CLS]", "[SEP]"}));
  // Truncation counts WordPiece tokens, not words.
  EXPECT_EQ(wp.encode("abc de", std::nullopt, 5).tokens, (Strings{"[CLS]", "a", "##b", "##c", "[SEP]"}));
}

TEST(WordPiece, PadsToMaxLength) {
  const WordPiece wp = letters();
  const auto e = wp.encode("a", std::string_view("b"), 8, /*pad_to_max=*/true);
  EXPECT_EQ(e.tokens, (Strings{"[CLS]", "a", "[SEP]", "b", "[SEP]", "[PAD]", "[PAD]", "[PAD]"}));
  EXPECT_EQ(e.token_type_ids, (std::vector<int>{0, 0, 0, 1, 1, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (std::vector<int>{1, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(wp.encode(words(9), std::nullopt, 4, true).ids.size(), 4u);
}

TEST(WordPiece, EncodeRejectsBadLengths) {
  const WordPiece wp = letters();
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { wp.encode("a", std::string_view("b"), 2); }), "max_length 2");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { wp.encode("a", std::nullopt, 1); }), "max_length 1");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { wp.encode("a", std::nullopt, -1); }), "-1");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { wp.encode("a", std::nullopt, 0, true); }), "pad_to_max");
}

TEST(WordPiece, MissingSpecialTokensFailWhereNeeded) {
  const WordPiece wp(Strings{"[UNK]", "a"});
  EXPECT_EQ(wp.tokenize("a b"), (Strings{"a", "[UNK]"}));  // no [CLS]/[SEP] needed
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { wp.encode("a"); }), "'[CLS]'");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { wp.mask_id(); }), "'[MASK]'");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece(Strings{"a", "b"}); }), "no unk token '[UNK]'");
  WordPieceOptions renamed;
  renamed.unk_token = "<unk>";
  EXPECT_EQ(WordPiece(Strings{"<unk>", "a"}, renamed).tokenize("b"), (Strings{"<unk>"}));
}

// ---- vocab.txt and saved tokenizers ----------------------------------------------------------------

class WordPieceFiles : public attnzoo::testing::TempDirTest {};

TEST_F(WordPieceFiles, ReadsVocabTxt) {
  write_bytes(path("vocab.txt"), "[UNK]\r\n[CLS]\n[SEP]  \nhello\nworld");  // CRLF, trailing blanks, no final newline
  const WordPiece wp = WordPiece::load(path("vocab.txt"));
  EXPECT_EQ(wp.vocab(), (Strings{"[UNK]", "[CLS]", "[SEP]", "hello", "world"}));
  EXPECT_EQ(wp.encode("Hello world").ids, (std::vector<int>{1, 3, 4, 2}));
}

TEST_F(WordPieceFiles, VocabErrorsNameFileAndLine) {
  auto load_error = [&](const std::string& bytes) {
    write_bytes(path("vocab.txt"), bytes);
    return error_of<std::runtime_error>([&] { WordPiece::load(path("vocab.txt")); });
  };
  const std::string file = path("vocab.txt");
  auto msg = load_error("[UNK]\nb\nc\nb\n");
  EXPECT_STARTS_WITH(msg, file + ":4: ");
  EXPECT_CONTAINS(msg, "duplicate token 'b' (first on line 2)");
  EXPECT_STARTS_WITH(load_error("[UNK]\n\nx\n"), file + ":2: empty token");
  EXPECT_STARTS_WITH(load_error("[UNK]\nx\n \n"), file + ":3: empty token");
  EXPECT_STARTS_WITH(load_error("[UNK]\nx\xff\n"), file + ":2: invalid UTF-8");
  EXPECT_STARTS_WITH(load_error(""), file + ": empty vocabulary file");
  msg = load_error("a\nb\n");
  EXPECT_STARTS_WITH(msg, file + ": ");
  EXPECT_CONTAINS(msg, "no unk token '[UNK]'");
  msg = error_of<std::runtime_error>([&] { WordPiece::load(path("absent.txt")); });
  EXPECT_STARTS_WITH(msg, path("absent.txt") + ": cannot open");
  msg = error_of<std::runtime_error>([&] { WordPiece::from_vocab_file(dir_.string()); });
  EXPECT_CONTAINS(msg, "is a directory");
  std::filesystem::create_directory(path("empty"));
  msg = error_of<std::runtime_error>([&] { WordPiece::load(path("empty")); });  // a directory without vocab.txt
  EXPECT_STARTS_WITH(msg, path("empty/vocab.txt") + ": cannot open");
}

TEST_F(WordPieceFiles, SavesAndLoadsWithOptions) {
  WordPieceOptions options;
  options.lowercase = false;
  options.strip_accents = true;
  options.max_input_chars_per_word = 7;
  const WordPiece wp = tiny({"Cafe", "##s", "x"}, options);
  wp.save(path("tok"));
  EXPECT_EQ(read_bytes(path("tok/vocab.txt")), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nCafe\n##s\nx\n");
  const auto json = nlohmann::json::parse(read_bytes(path("tok/tokenizer.json")));
  EXPECT_EQ(json.at("type"), "wordpiece");
  EXPECT_EQ(json.at("vocab_size"), 8);
  const WordPiece back = WordPiece::load(path("tok"));
  EXPECT_EQ(back.vocab(), wp.vocab());
  EXPECT_EQ(back.options().lowercase, false);
  EXPECT_EQ(back.options().strip_accents, std::optional<bool>(true));
  EXPECT_EQ(back.options().max_input_chars_per_word, 7);
  EXPECT_EQ(back.tokenize("Caf\u00e9s xxxxxxxx"), (Strings{"Cafe", "##s", "[UNK]"}));
  // Default options leave strip_accents unset (null in the JSON).
  tiny({}).save(path("plain"));
  EXPECT_TRUE(nlohmann::json::parse(read_bytes(path("plain/tokenizer.json"))).at("strip_accents").is_null());
  EXPECT_FALSE(WordPiece::load(path("plain")).options().strip_accents.has_value());
}

TEST_F(WordPieceFiles, BadTokenizerJsonNamesTheFile) {
  tiny({"a"}).save(path("tok"));
  const std::string json_file = path("tok/tokenizer.json");
  auto load_error = [&](const std::string& json) {
    write_bytes(json_file, json);
    return error_of<std::runtime_error>([&] { WordPiece::load(path("tok")); });
  };
  EXPECT_STARTS_WITH(load_error("{"), json_file + ": invalid JSON");
  EXPECT_STARTS_WITH(load_error(R"({"type": "byte_bpe"})"), json_file + ": \"type\" is 'byte_bpe'");
  EXPECT_STARTS_WITH(load_error(R"({"type": "wordpiece", "vocab_size": 7})"), json_file + ": vocab_size 7 but");
  EXPECT_STARTS_WITH(load_error(R"({"type": "wordpiece", "lowercase": "yes"})"), json_file + ": \"lowercase\"");
  EXPECT_STARTS_WITH(load_error(R"({"type": "wordpiece", "max_input_chars_per_word": 0})"), json_file + ": ");
  write_bytes(json_file, R"({"type": "wordpiece"})");  // options may be left out
  EXPECT_EQ(WordPiece::load(path("tok")).vocab_size(), 6);
}

TEST(WordPiece, ConstructorRejectsBadVocabularies) {
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece(Strings{}); }), "empty vocabulary");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece(Strings{"[UNK]", "a", "a"}); }),
                  "duplicate token 'a' (ids 1 and 2)");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece(Strings{"[UNK]", ""}); }), "token 1 is empty");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece(Strings{"[UNK]", "a\nb"}); }), "line break");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece(Strings{"[UNK]", "a "}); }), "whitespace");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece(Strings{"[UNK]", "\xff"}); }), "UTF-8");
}

// ---- Trainer ---------------------------------------------------------------------------------------

class WordPieceTrain : public attnzoo::testing::TempDirTest {};

namespace {

// Brute force: the same merges with a full recount of every pair before each merge.
Strings brute_force_train(const Strings& texts, int vocab_size) {
  const WordPiece splitter(Strings{"[UNK]"});
  std::map<std::string, int64_t> counts;
  for (const auto& t : texts)
    for (const auto& w : splitter.pre_tokenize(t)) ++counts[w];
  Strings vocab = specials();
  std::map<std::string, int> ids;
  auto add = [&](const std::string& t) {
    if (!ids.count(t)) {
      ids[t] = static_cast<int>(vocab.size());
      vocab.push_back(t);
    }
    return ids[t];
  };
  for (const auto& t : vocab) ids[t] = static_cast<int>(&t - vocab.data());
  std::set<std::string> chars, inner;  // UTF-8 byte order is code point order
  std::vector<Strings> pieces;
  for (const auto& [w, f] : counts) {
    pieces.emplace_back();
    for (std::size_t i = 0; i < w.size();) {
      std::size_t len = 1;
      while (i + len < w.size() && (static_cast<unsigned char>(w[i + len]) & 0xC0) == 0x80) ++len;
      const std::string c = w.substr(i, len);
      chars.insert(c);
      if (i > 0) inner.insert(c);
      pieces.back().push_back(i > 0 ? "##" + c : c);
      i += len;
    }
  }
  for (const auto& c : chars) add(c);
  for (const auto& c : inner) add("##" + c);
  std::vector<std::vector<int>> words;
  std::vector<int64_t> freq;
  for (const auto& p : pieces) {
    words.emplace_back();
    for (const auto& s : p) words.back().push_back(ids.at(s));
  }
  for (const auto& [w, f] : counts) freq.push_back(f);
  while (static_cast<int>(vocab.size()) < vocab_size) {
    std::map<std::pair<int, int>, int64_t> stats;
    for (std::size_t w = 0; w < words.size(); ++w)
      for (std::size_t i = 0; i + 1 < words[w].size(); ++i) stats[{words[w][i], words[w][i + 1]}] += freq[w];
    if (stats.empty()) break;
    auto best = stats.begin();
    for (auto it = stats.begin(); it != stats.end(); ++it)
      if (it->second > best->second) best = it;  // the first maximum in map order is the smallest pair
    const auto [a, b] = best->first;
    std::string right = vocab[b];
    if (right.starts_with("##")) right = right.substr(2);
    const int id = add(vocab[a] + right);
    for (auto& word : words) {
      std::vector<int> merged;
      for (std::size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] == a && word[i + 1] == b) {
          merged.push_back(id);
          ++i;
        } else {
          merged.push_back(word[i]);
        }
      }
      word = merged;
    }
  }
  return vocab;
}

// A corpus with a skewed word distribution over a small mixed-script alphabet.
Strings synthetic_corpus(int n_lines, uint32_t seed) {
  const Strings alphabet = {"a", "b", "c", "d", "e", "n", "r", "s", "t", "\u00e9", "\u00df", "\u03b1", "\u0436"};
  std::mt19937 rng(seed);
  Strings vocabulary;
  for (int i = 0; i < 60; ++i) {
    std::string w;
    const int len = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < len; ++k) w += alphabet[rng() % alphabet.size()];
    vocabulary.push_back(w);
  }
  Strings lines;
  for (int l = 0; l < n_lines; ++l) {
    std::string line;
    const int n = 3 + static_cast<int>(rng() % 10);
    for (int k = 0; k < n; ++k) {
      const uint32_t r = rng() % 1000;
      line += vocabulary[(r * r / 1000) % vocabulary.size()];  // skewed towards small indices
      line += (rng() % 7 == 0) ? ", " : " ";
    }
    lines.push_back(line);
  }
  return lines;
}

}  // namespace

TEST_F(WordPieceTrain, MatchesABruteForceTrainer) {
  const Strings corpus = synthetic_corpus(300, 7);
  for (const int size : {60, 120, 200}) {
    const WordPiece wp = WordPiece::train(corpus, size);
    EXPECT_EQ(wp.vocab(), brute_force_train(corpus, size)) << "vocab_size " << size;
  }
}

TEST_F(WordPieceTrain, SizeSpecialsAlphabetAndDeterminism) {
  Strings corpus = {"The quick brown fox jumps over the lazy dog.", "Caf\u00e9 na\u00efve \u4e2d\u6587 d\u00e9j\u00e0 vu!",
                    "the the the quick quick brown", "[MASK] is cut out of the corpus"};
  const WordPiece wp = WordPiece::train(corpus, 90);
  EXPECT_EQ(wp.vocab_size(), 90);
  EXPECT_EQ(Strings(wp.vocab().begin(), wp.vocab().begin() + 5), specials());
  EXPECT_EQ(wp.pad_id(), 0);
  EXPECT_EQ(wp.mask_id(), 4);
  // Every character, and "##c" for every character seen inside a word; no "[" from "[MASK]".
  for (const std::string c : {"t", "h", "e", "q", ".", "!", "\u4e2d", "\u6587"}) EXPECT_GE(wp.token_to_id(c), 0) << c;
  for (const std::string c : {"##h", "##e", "##u", "##j", "##a"}) EXPECT_GE(wp.token_to_id(c), 0) << c;
  EXPECT_EQ(wp.token_to_id("##q"), -1);  // q only starts words
  EXPECT_EQ(wp.token_to_id("["), -1);
  EXPECT_EQ(wp.token_to_id("\u00e9"), -1);  // accents are stripped before training (uncased)
  EXPECT_GE(wp.token_to_id("the"), 0);
  // Its own corpus encodes without [UNK].
  for (const auto& text : corpus) {
    const auto ids = wp.encode_ids(text);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), wp.unk_id()), 0) << text;
  }
  // Deterministic, also under a different order of the texts.
  EXPECT_EQ(WordPiece::train(corpus, 90).vocab(), wp.vocab());
  std::reverse(corpus.begin(), corpus.end());
  EXPECT_EQ(WordPiece::train(corpus, 90).vocab(), wp.vocab());
}

TEST_F(WordPieceTrain, StopsWhenEveryWordIsOneToken) {
  const WordPiece wp = WordPiece::train({"abc abc ab"}, 1000);
  EXPECT_EQ(wp.vocab(), (Strings{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##b", "##c", "ab", "abc"}));
}

TEST_F(WordPieceTrain, RejectsEmptyCorpusAndTooSmallVocab) {
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece::train({}, 100); }), "empty corpus");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] { WordPiece::train({"", " \n\t", "\u200b"}, 100); }),
                  "empty corpus");
  // "abc": a b c + ##b ##c = 5, + 5 specials = 10.
  const auto msg = error_of<std::invalid_argument>([] { WordPiece::train({"abc"}, 9); });
  EXPECT_CONTAINS(msg, "vocab_size 9");
  EXPECT_CONTAINS(msg, "= 10");
  EXPECT_EQ(WordPiece::train({"abc"}, 10).vocab_size(), 10);
}

TEST_F(WordPieceTrain, CasedOptionsCarryOverAndRoundTrip) {
  WordPieceOptions cased;
  cased.lowercase = false;
  const Strings corpus = synthetic_corpus(200, 11);
  Strings upper = corpus;
  for (auto& line : upper) line += " Zebra ZEBRA";
  const WordPiece wp = WordPiece::train(upper, 150, cased);
  EXPECT_FALSE(wp.options().lowercase);
  EXPECT_GE(wp.token_to_id("Z"), 0);
  EXPECT_GE(wp.token_to_id("\u00e9"), 0);  // kept: strip_accents follows lowercase
  wp.save(path("trained"));
  const WordPiece back = WordPiece::load(path("trained"));
  EXPECT_EQ(back.vocab(), wp.vocab());
  for (const auto& line : upper) {
    EXPECT_EQ(back.encode_ids(line), wp.encode_ids(line));
    const auto ids = back.encode_ids(line);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), back.unk_id()), 0) << line;
  }
}

TEST_F(WordPieceTrain, TrainsOnTheKjvAndEncodesIt) {
  const std::string text = read_bytes(fetched_data("kjv.txt"));
  Strings lines;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  const WordPiece wp = WordPiece::train(lines, 8000);
  EXPECT_EQ(wp.vocab_size(), 8000);
  std::size_t n_tokens = 0;
  for (std::size_t i = 0; i < lines.size(); i += 97) {
    const auto ids = wp.encode_ids(lines[i]);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), wp.unk_id()), 0) << lines[i];
    n_tokens += ids.size();
  }
  EXPECT_GT(n_tokens, 0u);
  EXPECT_EQ(wp.tokenize("In the beginning God created the heaven and the earth."),
            (Strings{"in", "the", "beginning", "god", "created", "the", "heaven", "and", "the", "earth", "."}));
}

// ---- Random input: invariants --------------------------------------------------------------------

TEST(WordPiece, RandomInputKeepsInvariants) {
  const WordPiece& wp = bert();
  std::mt19937 rng(1234);
  const Strings pieces = {"a", "Z", " ", "\t", "\n", ".", "'", "##", "[MASK]", "[", "\u00e9", "e\u0301", "\u4e2d",
                          "\U00020000", "\u200b", "\ufffd", "\u0130", "\u03a3", "\U0001F600", "\xff", "\xe2\x82",
                          "\xc0", "\0"s, "unaffable", "telecommunications"};
  for (int iter = 0; iter < 2000; ++iter) {
    std::string a, b;
    const int na = static_cast<int>(rng() % 40), nb = static_cast<int>(rng() % 40);
    for (int k = 0; k < na; ++k) a += pieces[rng() % pieces.size()];
    for (int k = 0; k < nb; ++k) b += pieces[rng() % pieces.size()];
    if (rng() % 5 == 0) a += std::string(1 + rng() % 150, 'x');
    const int max_length = 3 + static_cast<int>(rng() % 30);
    const auto e = wp.encode(a, std::string_view(b), max_length, rng() % 2 == 0);
    ASSERT_LE(static_cast<int>(e.ids.size()), max_length);
    ASSERT_EQ(e.token_type_ids.size(), e.ids.size());
    ASSERT_EQ(e.attention_mask.size(), e.ids.size());
    ASSERT_EQ(e.tokens.size(), e.ids.size());
    for (std::size_t i = 0; i < e.ids.size(); ++i) {
      ASSERT_GE(e.ids[i], 0);
      ASSERT_LT(e.ids[i], wp.vocab_size());
      ASSERT_EQ(e.tokens[i], wp.id_to_token(e.ids[i]));
    }
    // Tokens of the whole text are the tokens of its words, one by one.
    std::vector<int> by_word;
    for (const auto& w : wp.pre_tokenize(a)) {
      const auto ids = wp.encode_ids(w);
      by_word.insert(by_word.end(), ids.begin(), ids.end());
    }
    ASSERT_EQ(wp.encode_ids(a), by_word) << a;
    wp.decode(e.ids);
  }
}
