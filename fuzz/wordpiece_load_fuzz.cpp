// libFuzzer target: WordPiece's file loaders on arbitrary files. Without a "\n%%%%\n" separator the
// input is a vocab.txt, loaded with WordPiece::load(file); with one, the part before it is
// DIR/tokenizer.json and the part after it DIR/vocab.txt, loaded with WordPiece::load(DIR). Loading
// must succeed or throw std::runtime_error / std::invalid_argument (anything else, a crash, a leak
// or a sanitizer report is a bug). A loaded tokenizer must hold: every token maps back to its id,
// the unk token is in the vocabulary, encoding a fixed text gives ids in range, and save + load
// gives the same vocabulary and options.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz/fuzz_util.h"
#include "tokenizers/wordpiece.h"

namespace {

using attnzoo::fuzz::escaped;
using attnzoo::tokenizers::WordPiece;

constexpr std::string_view kText =
    "Hello, WORLD! unaffable Caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 [MASK] [SEP] ## a##b \xf0\x9f\x98\x80 \xff x\ty\n";

bool same_options(const WordPiece::Options& a, const WordPiece::Options& b) {
  return a.lowercase == b.lowercase && a.strip_accents == b.strip_accents && a.clean_text == b.clean_text &&
         a.tokenize_chinese_chars == b.tokenize_chinese_chars &&
         a.max_input_chars_per_word == b.max_input_chars_per_word &&
         a.continuing_subword_prefix == b.continuing_subword_prefix && a.unk_token == b.unk_token &&
         a.cls_token == b.cls_token && a.sep_token == b.sep_token && a.pad_token == b.pad_token &&
         a.mask_token == b.mask_token && a.special_tokens_in_text == b.special_tokens_in_text;
}

void check_loaded(const WordPiece& wp, const attnzoo::fuzz::ScratchDir& scratch, std::string_view input) {
  auto where = [&] { return "loaded from \"" + escaped(input) + "\""; };
  const int V = wp.vocab_size();
  FUZZ_CHECK(V > 0 && static_cast<std::size_t>(V) == wp.vocab().size(), where());
  for (int id = 0; id < V; ++id)
    FUZZ_CHECK(wp.token_to_id(wp.vocab()[id]) == id, where() + ": token " + std::to_string(id) + " maps elsewhere");
  FUZZ_CHECK(wp.unk_id() >= 0 && wp.vocab()[wp.unk_id()] == wp.options().unk_token, where());
  for (const int id : wp.encode_ids(kText)) FUZZ_CHECK(id >= 0 && id < V, where() + ": id out of range");
  wp.decode(wp.encode_ids(kText));

  const std::string out = scratch.subdir("saved");
  wp.save(out);
  const WordPiece back = WordPiece::load(out);
  FUZZ_CHECK(back.vocab() == wp.vocab(), where() + ": save/load changed the vocabulary");
  FUZZ_CHECK(same_options(back.options(), wp.options()), where() + ": save/load changed the options");
  FUZZ_CHECK(back.encode_ids(kText) == wp.encode_ids(kText), where() + ": save/load changed the encoding");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const attnzoo::fuzz::ScratchDir scratch;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parts = attnzoo::fuzz::split_parts(input, attnzoo::fuzz::kFileSeparator, 2);
  std::string path;
  if (parts.size() == 1) {
    path = scratch.file("vocab.txt");
    scratch.put("vocab.txt", parts[0]);
  } else {
    path = scratch.subdir("in");
    scratch.put("in/tokenizer.json", parts[0]);
    scratch.put("in/vocab.txt", parts[1]);
  }
  std::optional<WordPiece> wp;
  if (!attnzoo::fuzz::succeeds_or_throws<std::runtime_error, std::invalid_argument>(
          [&] { wp.emplace(WordPiece::load(path)); }))
    return 0;
  check_loaded(*wp, scratch, input);
  return 0;
}
