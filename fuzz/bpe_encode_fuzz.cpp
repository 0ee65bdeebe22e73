// libFuzzer target: ByteBPE encode / decode / pre_split on arbitrary bytes, with tokenizers of
// every kind: trained on a fixed multilingual text (merges mode, each pre-split pattern), the same
// vocabulary in ranks mode, and GPT-2 (encoder.json + vocab.bpe) and cl100k_base (npm tiktoken
// bundle) when scripts/setup.sh data has fetched them. For each input and tokenizer:
//   - encode with SpecialMode none, all and a subset chosen by the first byte gives only ids of the
//     vocabulary, only the special ids the mode allows, the brute-force reference's ids, and
//     decode(encode(x)) == x byte for byte;
//   - pre_split's pieces are non-empty and concatenate to x;
//   - `set` naming an unregistered token throws std::invalid_argument;
//   - decode of ids made from the input bytes (mostly near the vocabulary, some far outside)
//     returns the tokens' bytes when every id is in the vocabulary, else throws
//     std::invalid_argument.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/bpe_reference.h"
#include "fuzz/fuzz_util.h"
#include "tokenizers/bpe.h"

namespace {

using attnzoo::fuzz::ReferenceBPE;
using attnzoo::fuzz::succeeds_or_throws;
using attnzoo::tokenizers::ByteBPE;
using attnzoo::tokenizers::SpecialMode;

// Training text: several scripts, digits, contractions, whitespace runs and the special tokens.
constexpr const char* kTrainText[] = {
    "The quick brown fox jumps over the lazy dog. It's 2024; we'll see 12345 foxes, don't we? I'M SURE.\n",
    "Der Fuchs springt über den faulen Hund — schön, größer, Straße. Ça va? Déjà vu, naïve café.\n",
    "Быстрая коричневая лиса прыгает через ленивую собаку. Съешь же ещё этих мягких булок.\n",
    "敏捷的棕色狐狸跳过了懒狗。 素早い茶色の狐がのろまな犬を飛び越える。 빠른 갈색 여우가 게으른 개를 뛰어넘는다.\n",
    "الثعلب البني السريع يقفز فوق الكلب الكسول. ὁ ταχὺς καφετὶ ἀλώπηξ. 🦊🐕 👍🏽 🇩🇪\n",
    "def f(x):\n    return x ** 2  # square\n\n\n\tif (a != b) { c += d[0]; }\r\n   \n",
    "<|endoftext|>A new document.<|endoftext|><s>hello</s> <|end|> <mask> [SEP]\n",
};
const std::vector<std::string> kSpecials = {"<|endoftext|>", "<|end|>", "<|endofprompt|>", "<s>", "</s>", "<mask>"};

struct Subject {
  std::string name;
  std::unique_ptr<const ByteBPE> bpe;
  std::unique_ptr<const ReferenceBPE> ref;
};

void add(std::vector<Subject>& out, std::string name, ByteBPE bpe) {
  auto owned = std::make_unique<const ByteBPE>(std::move(bpe));
  auto ref = std::make_unique<const ReferenceBPE>(*owned);
  out.push_back({std::move(name), std::move(owned), std::move(ref)});
}

const std::vector<Subject>& subjects() {
  static const std::vector<Subject> all = [] {
    std::vector<Subject> s;
    const std::vector<std::string> texts(std::begin(kTrainText), std::end(kTrainText));
    for (const char* pattern : {"gpt2", "cl100k", "o200k", "none"})
      add(s, std::string("trained/") + pattern, ByteBPE::train(texts, 256 + 400 + static_cast<int>(kSpecials.size()), pattern, kSpecials));
    // The gpt2-pattern vocabulary as tiktoken ranks (rank = id).
    const ByteBPE& merges = *s[0].bpe;
    std::vector<std::pair<std::string, int>> tokens;
    for (int id = 0; id < merges.vocab_size(); ++id)
      if (merges.has_id(id) && !s[0].ref->is_special(id)) tokens.emplace_back(merges.token_bytes(id), id);
    add(s, "ranks/gpt2", ByteBPE::from_ranks("gpt2", tokens, merges.specials()));

    const std::filesystem::path data = ATTNZOO_DATA_DIR;
    if (std::filesystem::exists(data / "gpt2/encoder.json") && std::filesystem::exists(data / "gpt2/vocab.bpe"))
      add(s, "gpt2", ByteBPE::load_gpt2((data / "gpt2/encoder.json").string(), (data / "gpt2/vocab.bpe").string()));
    if (std::filesystem::exists(data / "tiktoken/cl100k_base.json"))
      add(s, "cl100k_base", ByteBPE::load_tiktoken((data / "tiktoken/cl100k_base.json").string()));
    return s;
  }();
  return all;
}

// Ids from the input bytes: three bytes each, mostly within a few ids of the vocabulary (so that
// some decodes succeed), every eighth a raw 32-bit value (negative and huge ids).
std::vector<int> ids_from(const uint8_t* data, std::size_t size, int vocab_size) {
  std::vector<int> ids;
  for (std::size_t i = 0; i + 3 <= size && ids.size() < 256; i += 3) {
    const uint32_t v = data[i] | (uint32_t{data[i + 1]} << 8) | (uint32_t{data[i + 2]} << 16);
    if (ids.size() % 8 == 7) {
      ids.push_back(static_cast<int>(v * 2654435761u));
    } else {
      ids.push_back(static_cast<int>(v % static_cast<uint32_t>(vocab_size + 16)) - 8);
    }
  }
  return ids;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  subjects();  // load before the first input, so that the first run's time is not counted against it
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  // The view ends exactly where libFuzzer's copy of the input does, so ASan sees any over-read.
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const unsigned select = size ? data[0] : 0u;
  for (const auto& s : subjects()) {
    const ByteBPE& bpe = *s.bpe;
    attnzoo::fuzz::check_round_trip(bpe, *s.ref, text, select, s.name.c_str());

    const bool threw = !succeeds_or_throws<std::invalid_argument>(
        [&] { (void)bpe.encode(text, SpecialMode::set, {"<|not a special token|>"}); });
    FUZZ_CHECK(threw, s.name + ": encode with an unregistered allowed token did not throw");

    const std::vector<int> ids = ids_from(data, size, bpe.vocab_size());
    bool all_known = true;
    std::string expected;
    for (const int id : ids) {
      all_known = all_known && bpe.has_id(id);
      if (all_known) expected += bpe.token_bytes(id);
    }
    std::string decoded;
    const bool ok = succeeds_or_throws<std::invalid_argument>([&] { decoded = bpe.decode(ids); });
    FUZZ_CHECK(ok == all_known, s.name + ": decode of " + attnzoo::fuzz::ids_text(ids) +
                                    (ok ? " accepted an unknown id" : " rejected known ids"));
    FUZZ_CHECK(!ok || decoded == expected, s.name + ": decode is not the concatenation of token_bytes");
  }
  return 0;
}
