// Tests for tokenizers/tokenizer: every SPEC form opens the right kind of tokenizer, and every kind
// survives to_json() / from_json() and save() / open(DIR) unchanged (the forms datasets and
// checkpoints store).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tests/test_util.h"
#include "tokenizers/tokenizer.h"

using attnzoo::testing::error_of;
using attnzoo::testing::fetched_data;
using attnzoo::tokenizers::ByteBPE;
using attnzoo::tokenizers::CharTokenizer;
using attnzoo::tokenizers::Tokenizer;
using attnzoo::tokenizers::WordPiece;

namespace {

class TokenizerSpec : public attnzoo::testing::TempDirTest {};

void expect_round_trips(const Tokenizer& tok, const std::string& dir, const std::string& text) {
  const auto again = Tokenizer::from_json(tok.to_json());
  EXPECT_EQ(again, tok);
  EXPECT_EQ(again.encode(text), tok.encode(text));
  tok.save(dir);
  const auto reopened = Tokenizer::open(dir);
  EXPECT_EQ(reopened.type(), tok.type());
  EXPECT_EQ(reopened, tok);
  EXPECT_EQ(reopened.encode(text), tok.encode(text));
}

}  // namespace

TEST_F(TokenizerSpec, OpensEveryForm) {
  const std::string gpt2_dir = std::filesystem::path(fetched_data("gpt2/vocab.bpe")).parent_path().string();
  const auto gpt2 = Tokenizer::open("gpt2:" + gpt2_dir);
  ASSERT_NE(gpt2.bpe(), nullptr);
  EXPECT_EQ(gpt2.encode("hello world"), (std::vector<int64_t>{31373, 995}));
  const auto cl = Tokenizer::open("tiktoken:" + fetched_data("tiktoken/cl100k_base.json"));
  EXPECT_EQ(cl.encode("hello world"), (std::vector<int64_t>{15339, 1917}));
  const auto wp = Tokenizer::open("wordpiece:" + fetched_data("bert-base-uncased/vocab.txt"));
  ASSERT_NE(wp.wordpiece(), nullptr);
  EXPECT_EQ(wp.encode("hello world"), (std::vector<int64_t>{101, 7592, 2088, 102}));
  EXPECT_EQ(wp.encode("hello world", false), (std::vector<int64_t>{7592, 2088}));
  EXPECT_EQ(wp.info()["specials"]["[MASK]"], 103);
  EXPECT_EQ(gpt2.info()["merges"], 50000);

  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { Tokenizer::open(path("nothing")); }), "no such directory");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { Tokenizer::open(fetched_data("gpt2/vocab.bpe")); }),
                  "name its kind");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { Tokenizer::open("gpt2:" + dir_.string()); }),
                  "neither encoder.json");
  std::filesystem::create_directories(path("empty"));
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { Tokenizer::open(path("empty")); }), "not a saved tokenizer");
}

TEST_F(TokenizerSpec, EveryKindRoundTripsThroughJsonAndDisk) {
  const std::string text = "Hello, world! naïve café <|endoftext|> 中文";
  expect_round_trips(Tokenizer(CharTokenizer::train(text)), path("char"), text);
  expect_round_trips(Tokenizer(ByteBPE::train({text, text}, 280, "gpt2", {"<|endoftext|>"})), path("bpe"), text);
  expect_round_trips(Tokenizer::open("tiktoken:" + fetched_data("tiktoken/gpt2.json")), path("ranks"), text);
  const std::string gpt2_dir = std::filesystem::path(fetched_data("gpt2/vocab.bpe")).parent_path().string();
  expect_round_trips(Tokenizer::open("gpt2:" + gpt2_dir), path("gpt2"), text);
  expect_round_trips(Tokenizer(WordPiece::train({text, "more words here"}, 60)), path("wp"), text);
  // Different tokenizers compare unequal.
  EXPECT_FALSE(Tokenizer(CharTokenizer::train("ab")) == Tokenizer(CharTokenizer::train("abc")));
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { Tokenizer::from_json({{"type", "unigram"}}); }),
                  "unknown type 'unigram'");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { Tokenizer::from_json({{"type", "byte_bpe"}}); }), "missing \"merges\"");
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { Tokenizer::from_json({{"type", "byte_bpe"}, {"merges", ""}}); }),
                  "missing field \"pattern\"");
}

TEST(TokenizerParallel, EncodeParallelGivesTheIdsOfOneEncode) {
  // The first 40 KB of the KJV cut into pieces of at least 2 KB: every cut must fall where no
  // pre-tokenization piece continues, so the ids are those of one encode().
  std::string text = attnzoo::testing::read_bytes(fetched_data("kjv.txt")).substr(0, 40000);
  text += "\n  indented line\n\nend";  // a newline followed by spaces or a newline is not a cut
  const std::string gpt2_dir = std::filesystem::path(fetched_data("gpt2/vocab.bpe")).parent_path().string();
  const auto gpt2 = Tokenizer::open("gpt2:" + gpt2_dir);
  const auto chars = Tokenizer(CharTokenizer::train(text));
  const auto bpe_none = Tokenizer(ByteBPE::train({text.substr(0, 4000)}, 300, "none", {}));
  const auto wp = Tokenizer::open("wordpiece:" + fetched_data("bert-base-uncased/vocab.txt"));
  for (const auto* tok : {&gpt2, &chars, &bpe_none, &wp}) {
    const auto one = tok->encode(text);
    for (int64_t threads : {1, 2, 3, 7}) EXPECT_EQ(tok->encode_parallel(text, threads, 2048), one) << tok->type() << " " << threads;
  }
  // A cut in the middle of a line would split a word: guard that the test text would catch it.
  const std::size_t mid = text.find("gathering") + 3;
  const auto split = gpt2.encode(std::string_view(text).substr(0, mid));
  auto rest = gpt2.encode(std::string_view(text).substr(mid));
  auto joined = split;
  joined.insert(joined.end(), rest.begin(), rest.end());
  EXPECT_NE(joined, gpt2.encode(text));
}
