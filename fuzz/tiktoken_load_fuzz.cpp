// libFuzzer target: ByteBPE::load_tiktoken on arbitrary files. Byte 0 picks the file name, and
// with it the form: a rank file named after a known encoding (gpt2, r50k_base, p50k_base,
// p50k_edit, cl100k_base, o200k_base; ".tiktoken"), one named after none (which must be refused),
// or a name ending in ".json" for npm tiktoken's bundle (load_tiktoken itself tells the forms apart
// by the first byte of the content). The rest is the file. load_tiktoken must succeed or throw
// std::runtime_error / std::invalid_argument; a loaded tokenizer must pass check_loaded.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz/bpe_reference.h"
#include "fuzz/fuzz_util.h"
#include "tokenizers/bpe.h"

namespace {

constexpr const char* kNames[] = {"gpt2.tiktoken",        "r50k_base.tiktoken",  "p50k_base.tiktoken",
                                  "p50k_edit.tiktoken",   "cl100k_base.tiktoken", "o200k_base.tiktoken",
                                  "unknown_enc.tiktoken", "bundle.json"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const attnzoo::fuzz::ScratchDir scratch;
  if (size == 0) return 0;
  const std::string name = kNames[data[0] % std::size(kNames)];
  scratch.put(name, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));

  std::optional<attnzoo::tokenizers::ByteBPE> bpe;
  const bool ok = attnzoo::fuzz::succeeds_or_throws<std::runtime_error, std::invalid_argument>(
      [&] { bpe.emplace(attnzoo::tokenizers::ByteBPE::load_tiktoken(scratch.file(name))); });
  scratch.put(name, std::nullopt);
  if (!ok) return 0;
  attnzoo::fuzz::check_loaded(*bpe, scratch, data[0], "load_tiktoken");
  return 0;
}
