// Byte-exact parity with tiktoken (npm tiktoken@1.0.22, golden ids in tests/data/tiktoken_golden.json
// from scripts/reference/tiktoken_golden.mjs) for gpt2 and cl100k_base, through every loader that
// reads these vocabularies: npm tiktoken's JSON bundles, GPT-2's encoder.json + vocab.bpe, plain
// tiktoken rank files, and our own saved format. Also the loaders' errors, each naming file and line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/test_util.h"
#include "tokenizers/bpe.h"

using attnzoo::testing::error_of;
using attnzoo::testing::fetched_data;
using attnzoo::testing::read_bytes;
using attnzoo::testing::write_bytes;
using attnzoo::tokenizers::ByteBPE;
using attnzoo::tokenizers::SpecialMode;

namespace {

struct Case {
  std::string text;
  std::map<std::string, std::vector<int>> ids;  // "gpt2", "gpt2+special", "cl100k_base", ...
};

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

const std::vector<Case>& golden() {
  static const std::vector<Case> cases = [] {
    const auto doc = nlohmann::json::parse(read_bytes(std::string(ATTNZOO_TEST_DATA) + "/tiktoken_golden.json"));
    std::vector<Case> out;
    for (const auto& c : doc.at("cases")) {
      Case k{from_hex(c.at("hex").get<std::string>()), {}};
      for (const auto& [key, value] : c.items())
        if (key != "hex") k.ids[key] = value.get<std::vector<int>>();
      out.push_back(std::move(k));
    }
    return out;
  }();
  return cases;
}

// Loaded once per process: cl100k has 100k tokens.
const ByteBPE& bundle(const std::string& name) {
  static std::map<std::string, ByteBPE> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, ByteBPE::load_tiktoken(fetched_data("tiktoken/" + name + ".json"))).first;
  return it->second;
}

void expect_golden(const ByteBPE& bpe, const std::string& encoding, const std::string& label) {
  ASSERT_GE(golden().size(), 40u);
  int checked = 0;
  for (const auto& c : golden()) {
    EXPECT_EQ(bpe.encode(c.text, SpecialMode::none), c.ids.at(encoding)) << label << ": " << c.text;
    EXPECT_EQ(bpe.encode(c.text, SpecialMode::all), c.ids.at(encoding + "+special")) << label << ": " << c.text;
    EXPECT_EQ(bpe.decode(c.ids.at(encoding + "+special")), c.text) << label;
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(golden().size()));
}

class BpeParity : public attnzoo::testing::TempDirTest {};

}  // namespace

TEST_F(BpeParity, Gpt2BundleMatchesTiktoken) {
  const auto& bpe = bundle("gpt2");
  EXPECT_TRUE(bpe.ranks_mode());
  EXPECT_EQ(bpe.pattern(), "gpt2");
  EXPECT_EQ(bpe.vocab_size(), 50257);
  EXPECT_EQ(bpe.specials().at("<|endoftext|>"), 50256);
  expect_golden(bpe, "gpt2", "tiktoken bundle gpt2.json");
}

TEST_F(BpeParity, Cl100kBundleMatchesTiktoken) {
  const auto& bpe = bundle("cl100k_base");
  EXPECT_EQ(bpe.pattern(), "cl100k");
  EXPECT_EQ(bpe.vocab_size(), 100277);
  EXPECT_FALSE(bpe.has_id(100261));  // cl100k leaves 100261..100275 unused
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { bpe.decode({100261}); }), "100261 is unused");
  expect_golden(bpe, "cl100k_base", "tiktoken bundle cl100k_base.json");
}

TEST_F(BpeParity, Gpt2EncoderJsonAndVocabBpeMatchTiktoken) {
  const auto bpe = ByteBPE::load_gpt2(fetched_data("gpt2/encoder.json"), fetched_data("gpt2/vocab.bpe"));
  EXPECT_FALSE(bpe.ranks_mode());
  EXPECT_EQ(bpe.vocab_size(), 50257);
  EXPECT_EQ(bpe.merges().size(), 50000u);
  EXPECT_EQ(bpe.specials(), (std::map<std::string, int>{{"<|endoftext|>", 50256}}));
  EXPECT_EQ(bpe.byte_id('!'), 0);  // GPT-2's byte tokens are not in byte order
  expect_golden(bpe, "gpt2", "encoder.json + vocab.bpe");
  // The same files under Hugging Face's names, through our saved format and back.
  bpe.save(path("saved"));
  const auto again = ByteBPE::load(path("saved"));
  EXPECT_EQ(again, bpe);
  expect_golden(again, "gpt2", "saved merges format");
}

TEST_F(BpeParity, WritesHuggingFaceFilesThatLoadBackUnchanged) {
  // GPT-2's own files come back byte for byte; a trained tokenizer (specials after the merges) and
  // the GPT-2 vocabulary both round-trip through vocab.json + merges.txt.
  const auto gpt2 = ByteBPE::load_gpt2(fetched_data("gpt2/encoder.json"), fetched_data("gpt2/vocab.bpe"));
  gpt2.save_gpt2(path("hf"));
  EXPECT_EQ(ByteBPE::load_gpt2(path("hf/vocab.json"), path("hf/merges.txt")), gpt2);
  EXPECT_EQ(read_bytes(path("hf/merges.txt")), read_bytes(fetched_data("gpt2/vocab.bpe")));
  EXPECT_EQ(nlohmann::json::parse(read_bytes(path("hf/vocab.json"))),
            nlohmann::json::parse(read_bytes(fetched_data("gpt2/encoder.json"))));
  const auto trained = ByteBPE::train({"hello world, hello there\n\t naïve 中文"}, 300, "gpt2", {"<|endoftext|>"});
  trained.save_gpt2(path("trained"));
  const auto back = ByteBPE::load_gpt2(path("trained/vocab.json"), path("trained/merges.txt"));
  EXPECT_EQ(back, trained);
  EXPECT_THROW(bundle("gpt2").save_gpt2(path("ranks")), std::logic_error);
}

TEST_F(BpeParity, PlainRankFilesAndSavedRanksMatchTiktoken) {
  // A .tiktoken rank file ("BASE64 RANK" lines), as OpenAI publishes them, named after its encoding.
  const auto& bundled = bundle("cl100k_base");
  bundled.save(path("saved"));
  const std::string ranks = read_bytes(path("saved/ranks.txt"));
  EXPECT_STARTS_WITH(ranks, "IQ== 0\nIg== 1\n");
  write_bytes(path("cl100k_base.tiktoken"), ranks);
  const auto plain = ByteBPE::load_tiktoken(path("cl100k_base.tiktoken"));
  EXPECT_EQ(plain, bundled);
  const auto saved = ByteBPE::load(path("saved"));
  EXPECT_EQ(saved, bundled);
  expect_golden(saved, "cl100k_base", "saved ranks format");
}

TEST_F(BpeParity, SpecialTokenModesOnPublishedVocabularies) {
  const auto& bpe = bundle("cl100k_base");
  const std::string text = "a<|endoftext|>b<|fim_prefix|>";
  const auto all = bpe.encode(text, SpecialMode::all);
  EXPECT_NE(std::find(all.begin(), all.end(), 100257), all.end());
  EXPECT_NE(std::find(all.begin(), all.end(), 100258), all.end());
  const auto some = bpe.encode(text, SpecialMode::set, {"<|fim_prefix|>"});
  EXPECT_EQ(std::find(some.begin(), some.end(), 100257), some.end());
  EXPECT_NE(std::find(some.begin(), some.end(), 100258), some.end());
  EXPECT_EQ(bpe.decode(some), text);
  const auto none = bpe.encode(text, SpecialMode::none);
  EXPECT_EQ(std::find(none.begin(), none.end(), 100257), none.end());
  EXPECT_EQ(bpe.decode(none), text);
}

TEST_F(BpeParity, Gpt2FileErrorsNameFileAndLine) {
  const std::string vocab = path("vocab.json"), merges = path("merges.txt");
  // A miniature byte-level vocabulary in GPT-2's alphabet: the 256 bytes, then "ab" and "abc".
  nlohmann::json v = nlohmann::json::parse(read_bytes(fetched_data("gpt2/encoder.json")));
  nlohmann::json small = nlohmann::json::object();
  for (const auto& [token, id] : v.items())
    if (id.get<int>() < 256) small[token] = id;
  small["ab"] = 256;
  small["abc"] = 257;
  write_bytes(vocab, small.dump());
  write_bytes(merges, "#version: 0.2\na b\nab c\n");
  const auto ok = ByteBPE::load_gpt2(vocab, merges);
  EXPECT_EQ(ok.encode("abc"), std::vector<int>{257});
  EXPECT_EQ(ok.vocab_size(), 258);

  write_bytes(merges, "#version: 0.2\na b\nab\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }), merges + ":3: expected 'A B'");
  write_bytes(merges, "#version: 0.2\na b\nzz c\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }),
                  merges + ":3: merge references unknown symbol 'zz'");
  write_bytes(merges, "a b\nb c\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }),
                  merges + ":2: the merged token 'bc' is not in vocab.json");
  write_bytes(merges, "a b\na b\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }), merges + ":2: duplicate merge");
  write_bytes(merges, "");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }), merges + ": no merges");

  write_bytes(merges, "a b\n");
  write_bytes(vocab, "{\"a\": 1, \"a\": 2}");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }), vocab + ": duplicate token 'a'");
  write_bytes(vocab, "{\"a\": 1, ");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }), vocab + ": malformed JSON");
  write_bytes(vocab, "{\"a\": 1}");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }),
                  vocab + ": byte 0 has no token");
  small["dup"] = 256;
  write_bytes(vocab, small.dump());
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(vocab, merges); }), "share id 256");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_gpt2(path("missing.json"), merges); }),
                  path("missing.json") + ": cannot open");
}

TEST_F(BpeParity, TiktokenFileErrorsNameFileAndLine) {
  std::string ranks;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int b = 0; b < 256; ++b) {  // base64 of one byte: two characters and "=="
    ranks += std::string{alphabet[b >> 2], alphabet[(b & 3) << 4], '=', '='} + " " + std::to_string(b) + "\n";
  }
  write_bytes(path("r50k_base.tiktoken"), ranks + "YWI= 256\n");  // "ab"
  const auto ok = ByteBPE::load_tiktoken(path("r50k_base.tiktoken"));
  EXPECT_EQ(ok.encode("ab"), std::vector<int>{256});
  EXPECT_EQ(ok.specials().at("<|endoftext|>"), 50256);

  write_bytes(path("r50k_base.tiktoken"), ranks + "YWI 256\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("r50k_base.tiktoken")); }),
                  path("r50k_base.tiktoken") + ":257: 'YWI' is not base64");
  write_bytes(path("r50k_base.tiktoken"), ranks + "YWI= x\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("r50k_base.tiktoken")); }),
                  path("r50k_base.tiktoken") + ":257: expected 'BASE64 RANK'");
  write_bytes(path("r50k_base.tiktoken"), ranks + "YWI= 255\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("r50k_base.tiktoken")); }),
                  "reuses id 255");
  write_bytes(path("r50k_base.tiktoken"), ranks + "YQ== 300\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("r50k_base.tiktoken")); }),
                  "duplicate token (ranks 97 and 300)");
  write_bytes(path("r50k_base.tiktoken"), ranks.substr(ranks.find('\n') + 1));
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("r50k_base.tiktoken")); }),
                  "byte 0 is not a token");
  // Found by fuzzing (fuzz/corpus/*/regress-*): each a clean error, not an overflow or a huge allocation.
  write_bytes(path("r50k_base.tiktoken"), ranks + "QUI= 1000000000\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("r50k_base.tiktoken")); }),
                  "has id 1000000000, outside");
  write_bytes(path("r50k_base.tiktoken"), "! 2147483647 QUI= QUM=\n");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("r50k_base.tiktoken")); }),
                  "implausibly large");
  write_bytes(path("mine.tiktoken"), ranks);
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("mine.tiktoken")); }),
                  "name it after its encoding");
  write_bytes(path("bundle.json"), "{\"pat_str\": \"x\", \"special_tokens\": {}}");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("bundle.json")); }),
                  path("bundle.json") + ": missing field \"bpe_ranks\"");
  write_bytes(path("bundle.json"), "{\"pat_str\": \"(\", \"special_tokens\": {}, \"bpe_ranks\": \"! 0 AA==\"}");
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { ByteBPE::load_tiktoken(path("bundle.json")); }),
                  path("bundle.json") + ": ");
}
