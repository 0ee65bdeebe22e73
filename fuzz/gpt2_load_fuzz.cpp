// libFuzzer target: ByteBPE::load_gpt2 (GPT-2 encoder.json + vocab.bpe, or Hugging Face
// vocab.json + merges.txt) on arbitrary files. The input is vocab.json, then "\n%%%%\n" and
// merges.txt; without a separator merges.txt does not exist. load_gpt2 must succeed or throw
// std::runtime_error / std::invalid_argument; a loaded tokenizer must pass check_loaded.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "fuzz/bpe_reference.h"
#include "fuzz/fuzz_util.h"
#include "tokenizers/bpe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const attnzoo::fuzz::ScratchDir scratch;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parts = attnzoo::fuzz::split_parts(input, attnzoo::fuzz::kFileSeparator, 2);
  scratch.put("vocab.json", parts[0]);
  scratch.put("merges.txt", parts.size() > 1 ? std::optional(parts[1]) : std::nullopt);

  std::optional<attnzoo::tokenizers::ByteBPE> bpe;
  if (!attnzoo::fuzz::succeeds_or_throws<std::runtime_error, std::invalid_argument>([&] {
        bpe.emplace(attnzoo::tokenizers::ByteBPE::load_gpt2(scratch.file("vocab.json"), scratch.file("merges.txt")));
      }))
    return 0;
  attnzoo::fuzz::check_loaded(*bpe, scratch, size ? data[size - 1] : 0u, "load_gpt2");
  return 0;
}
