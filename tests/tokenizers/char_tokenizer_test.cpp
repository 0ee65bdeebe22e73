// Tests for tokenizers/: the character tokenizer (training order against a brute force, encode/decode
// round trips over multi-byte UTF-8, error messages, JSON) and the strict UTF-8 splitter, checked
// exhaustively against an independent encoder over every code point and every 2- and 3-byte string.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/test_util.h"
#include "tokenizers/char_tokenizer.h"
#include "tokenizers/utf8.h"

using attnzoo::testing::error_of;
using attnzoo::tokenizers::CharTokenizer;
using attnzoo::tokenizers::utf8_chars;
using attnzoo::tokenizers::utf8_invalid_offset;

namespace {

constexpr auto npos = std::string_view::npos;

// Reference encoder (RFC 3629, table in section 3), written independently of tokenizers/utf8.cpp.
std::string encode_cp(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Reference decoder for one well-formed character (no validation: inputs come from encode_cp).
char32_t decode_cp(const std::string& s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  if (s.size() == 1) return b(0);
  if (s.size() == 2) return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  if (s.size() == 3) return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

bool is_surrogate(char32_t cp) { return cp >= 0xD800 && cp <= 0xDFFF; }

// Every byte string that is exactly one valid UTF-8 character.
const std::set<std::string>& all_valid_characters() {
  static const std::set<std::string> all = [] {
    std::set<std::string> s;
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp)
      if (!is_surrogate(cp)) s.insert(encode_cp(cp));
    return s;
  }();
  return all;
}

const std::string kMixed = "Héllo, 日本! 😀 naïve café\n\tÅ𝄞 ~ 日";

TEST(Utf8, EveryCodePointIsOneCharacterAndSurrogatesAreRejected) {
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const std::string s = encode_cp(cp);
    if (is_surrogate(cp)) {
      ASSERT_EQ(utf8_invalid_offset(s), 0u) << std::hex << static_cast<uint32_t>(cp);
      ASSERT_THROW(utf8_chars(s), std::invalid_argument);
    } else {
      ASSERT_EQ(utf8_invalid_offset(s), npos) << std::hex << static_cast<uint32_t>(cp);
      const auto chars = utf8_chars(s);
      ASSERT_EQ(chars.size(), 1u) << std::hex << static_cast<uint32_t>(cp);
      ASSERT_EQ(chars[0], s);
    }
  }
}

TEST(Utf8, EveryTwoAndThreeByteStringAgreesWithTheReference) {
  const auto& valid = all_valid_characters();
  // Two bytes: valid iff both are ASCII or the pair is one character.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string s = {static_cast<char>(a), static_cast<char>(b)};
      const bool ok = (a < 0x80 && b < 0x80) || valid.count(s);
      const size_t want = ok ? npos : (a < 0x80 ? 1u : 0u);
      ASSERT_EQ(utf8_invalid_offset(s), want) << std::hex << a << " " << b;
    }
  }
  // Three bytes behind a three-byte lead: valid iff the triple is one character (overlong forms
  // E0 80..9F xx and surrogates ED A0..BF xx included in the invalid set).
  for (int a = 0xE0; a <= 0xEF; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        const std::string s = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
        ASSERT_EQ(utf8_invalid_offset(s), valid.count(s) ? npos : 0u) << std::hex << a << " " << b << " " << c;
      }
    }
  }
}

TEST(Utf8, MalformedSequencesReportTheirByteOffset) {
  struct Case {
    const char* what;
    std::string text;
    size_t offset;
  };
  const std::vector<Case> cases = {
      {"overlong 2-byte NUL", "\xC0\x80", 0},
      {"overlong 2-byte '/'", "ab\xC1\xAF", 2},
      {"overlong 3-byte", "a\xE0\x80\x80", 1},
      {"overlong 4-byte", "xyz\xF0\x80\x80\x80", 3},
      {"surrogate high", "\xED\xA0\x80", 0},
      {"surrogate low", "ok\xED\xBF\xBF", 2},
      {"truncated 2-byte at end", "abc\xC3", 3},
      {"truncated 3-byte at end", "ab\xE6\x97", 2},
      {"truncated 4-byte at end", "\xF0\x9F\x98", 0},
      {"truncated then ASCII", "\xE6\x97" "a", 0},
      {"lone continuation byte", "é\x80", 2},
      {"above U+10FFFF", "\xF4\x90\x80\x80", 0},
      {"F5 lead", "\xF5\x80\x80\x80", 0},
      {"5-byte lead", "\xF8\x88\x80\x80\x80", 0},
      {"FF byte", "日本\xFF", 6},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(utf8_invalid_offset(c.text), c.offset);
    const std::string msg = error_of<std::invalid_argument>([&] { utf8_chars(c.text); });
    EXPECT_EQ(msg, "invalid UTF-8 at byte " + std::to_string(c.offset));
  }
  EXPECT_EQ(utf8_invalid_offset(""), npos);
  EXPECT_TRUE(utf8_chars("").empty());
  EXPECT_EQ(utf8_invalid_offset(kMixed), npos);
  EXPECT_EQ(utf8_invalid_offset("\xF4\x8F\xBF\xBF"), npos) << "U+10FFFF is the last valid code point";
}

TEST(Utf8, SplitsMixedTextIntoCharacters) {
  const auto chars = utf8_chars("aé日😀");
  EXPECT_EQ(chars, (std::vector<std::string>{"a", "é", "日", "😀"}));
  EXPECT_EQ(chars[1].size(), 2u);
  EXPECT_EQ(chars[2].size(), 3u);
  EXPECT_EQ(chars[3].size(), 4u);
}

TEST(CharTokenizer, TrainSortsByCodePointAsABruteForce) {
  const CharTokenizer tok = CharTokenizer::train(kMixed);

  // Brute force: decode every character to its code point, deduplicate, sort numerically.
  std::vector<char32_t> want;
  for (const auto& ch : utf8_chars(kMixed)) want.push_back(decode_cp(ch));
  std::sort(want.begin(), want.end());
  want.erase(std::unique(want.begin(), want.end()), want.end());

  ASSERT_EQ(tok.vocab_size(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(decode_cp(tok.vocab()[i]), want[i]) << "entry " << i;
    EXPECT_EQ(tok.vocab()[i], encode_cp(want[i])) << "entry " << i;
  }
  EXPECT_EQ(tok.vocab().front(), "\t");
  EXPECT_EQ(tok.vocab().back(), "😀") << "U+1F600 sorts after U+1D11E (𝄞) and after 日 (U+65E5)";
}

TEST(CharTokenizer, TrainOnEveryCodePointOrderMatchesBruteForce) {
  // Code points spread over all encoding lengths, given in a scrambled order.
  std::vector<char32_t> cps;
  for (char32_t cp = 1; cp <= 0x10FFFF; cp += 4099)
    if (!is_surrogate(cp)) cps.push_back(cp);
  std::vector<char32_t> scrambled = cps;
  std::reverse(scrambled.begin(), scrambled.end());
  std::rotate(scrambled.begin(), scrambled.begin() + static_cast<long>(scrambled.size() / 3), scrambled.end());
  std::string text;
  for (char32_t cp : scrambled) text += encode_cp(cp) + encode_cp(cp);  // duplicates too

  const CharTokenizer tok = CharTokenizer::train(text);
  ASSERT_EQ(tok.vocab_size(), static_cast<int64_t>(cps.size()));
  for (size_t i = 0; i < cps.size(); ++i) ASSERT_EQ(tok.vocab()[i], encode_cp(cps[i])) << i;
}

TEST(CharTokenizer, EncodeDecodeRoundTripAscii) {
  const std::string text = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
  const CharTokenizer tok = CharTokenizer::train(text);
  const auto ids = tok.encode(text);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_GE(ids[i], 0);
    ASSERT_LT(ids[i], tok.vocab_size());
    EXPECT_EQ(tok.vocab()[static_cast<size_t>(ids[i])], std::string(1, text[i]));
  }
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.encode("\n"), std::vector<int64_t>{0}) << "newline is the smallest code point here";
}

TEST(CharTokenizer, EncodeDecodeRoundTripMultiByte) {
  const CharTokenizer tok = CharTokenizer::train(kMixed);
  const auto ids = tok.encode(kMixed);
  EXPECT_EQ(ids.size(), utf8_chars(kMixed).size()) << "one token per character, not per byte";
  EXPECT_EQ(tok.decode(ids), kMixed);

  const std::string sub = "日本😀é";
  const auto sub_ids = tok.encode(sub);
  ASSERT_EQ(sub_ids.size(), 4u);
  EXPECT_EQ(tok.vocab()[static_cast<size_t>(sub_ids[0])], "日");
  EXPECT_EQ(tok.vocab()[static_cast<size_t>(sub_ids[3])], "é");
  EXPECT_EQ(tok.decode(sub_ids), sub);
  EXPECT_TRUE(tok.covers(sub));
  EXPECT_FALSE(tok.covers("日本語"));
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_EQ(tok.decode({}), "");
}

TEST(CharTokenizer, UnknownCharacterErrorNamesItAndItsByteOffset) {
  const CharTokenizer tok = CharTokenizer::train("abc日");
  std::string msg = error_of<std::invalid_argument>([&] { tok.encode("ab日x"); });
  EXPECT_CONTAINS(msg, "'x'");
  EXPECT_CONTAINS(msg, "at byte 5");
  EXPECT_CONTAINS(msg, "vocabulary of 4 characters");

  msg = error_of<std::invalid_argument>([&] { tok.encode("a😀"); });
  EXPECT_CONTAINS(msg, "'😀'");
  EXPECT_CONTAINS(msg, "at byte 1");

  msg = error_of<std::invalid_argument>([&] { tok.encode("a\nb"); });
  EXPECT_CONTAINS(msg, "'\\n'");
}

TEST(CharTokenizer, InvalidUtf8IsRejectedWithTheByteOffset) {
  const CharTokenizer tok = CharTokenizer::train("abc");
  EXPECT_EQ(error_of<std::invalid_argument>([&] { tok.encode("ab\xFF"); }), "invalid UTF-8 at byte 2");
  EXPECT_EQ(error_of<std::invalid_argument>([&] { CharTokenizer::train("abc\xED\xA0\x80"); }),
            "invalid UTF-8 at byte 3");
  EXPECT_EQ(error_of<std::invalid_argument>([&] { tok.covers("a\xC0\x80"); }), "invalid UTF-8 at byte 1");
}

TEST(CharTokenizer, DecodeRejectsIdsOutsideTheVocabulary) {
  const CharTokenizer tok = CharTokenizer::train("abc");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { tok.decode({0, 3}); }), "token id 3");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { tok.decode({-1}); }), "token id -1");
}

TEST(CharTokenizer, JsonRoundTrip) {
  const CharTokenizer tok = CharTokenizer::train(kMixed);
  const nlohmann::json j = tok.to_json();
  EXPECT_EQ(j["type"], "char");
  ASSERT_TRUE(j["vocab"].is_array());
  EXPECT_EQ(j["vocab"].size(), static_cast<size_t>(tok.vocab_size()));

  // Through text, as meta.json and checkpoints store it.
  const CharTokenizer back = CharTokenizer::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_TRUE(back == tok);
  EXPECT_EQ(back.vocab(), tok.vocab());
  EXPECT_EQ(back.encode(kMixed), tok.encode(kMixed));
  EXPECT_EQ(back.decode(back.encode(kMixed)), kMixed);

  const CharTokenizer empty = CharTokenizer::from_json(CharTokenizer().to_json());
  EXPECT_EQ(empty.vocab_size(), 0);
}

TEST(CharTokenizer, FromJsonRejectsBadInput) {
  using nlohmann::json;
  const std::vector<std::pair<const char*, json>> bad = {
      {"array", json::array({"a", "b"})},
      {"string", json("char")},
      {"no type", json{{"vocab", {"a"}}}},
      {"other type", json{{"type", "bpe"}, {"vocab", {"a"}}}},
      {"no vocab", json{{"type", "char"}}},
      {"vocab not an array", json{{"type", "char"}, {"vocab", "abc"}}},
      {"number entry", json{{"type", "char"}, {"vocab", {"a", 5}}}},
      {"two characters", json{{"type", "char"}, {"vocab", {"a", "bc"}}}},
      {"empty entry", json{{"type", "char"}, {"vocab", {"a", ""}}}},
      {"duplicate", json{{"type", "char"}, {"vocab", {"a", "b", "a"}}}},
      {"invalid UTF-8", json{{"type", "char"}, {"vocab", {"a", std::string("\xC0\x80")}}}},
  };
  for (const auto& [what, j] : bad) {
    SCOPED_TRACE(what);
    EXPECT_THROW(CharTokenizer::from_json(j), std::invalid_argument);
  }
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] {
                    CharTokenizer::from_json(json{{"type", "char"}, {"vocab", {"a", "b", "a"}}});
                  }),
                  "duplicate vocabulary entry 2");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([] {
                    CharTokenizer::from_json(json{{"type", "char"}, {"vocab", {"a", "bc"}}});
                  }),
                  "vocabulary entry 1 is not a single character");
}

// The header promises std::invalid_argument for any JSON that is not a char tokenizer description;
// a "type" that is not a string must not escape as nlohmann::json::type_error.
TEST(CharTokenizer, FromJsonRejectsNonStringTypeAsInvalidArgument) {
  EXPECT_THROW(CharTokenizer::from_json(nlohmann::json{{"type", 5}, {"vocab", {"a"}}}), std::invalid_argument);
}

}  // namespace
