// libFuzzer target: ByteBPE::load (attnzoo's own saved format) on arbitrary files. The input is
// tokenizer.json, then "\n%%%%\n" and the rank/merge list, written as both merges.txt and ranks.txt
// (tokenizer.json's "mode" picks which is read); without a separator neither list file exists.
// load must succeed or throw std::runtime_error / std::invalid_argument (anything else, a crash,
// a leak or a sanitizer report is a bug); a loaded tokenizer must pass check_loaded. The same
// files as one JSON value go through ByteBPE::from_json, which must succeed or throw
// std::invalid_argument, and agree with load when both succeed.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/bpe_reference.h"
#include "fuzz/fuzz_util.h"
#include "tokenizers/bpe.h"

using attnzoo::tokenizers::ByteBPE;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const attnzoo::fuzz::ScratchDir scratch;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parts = attnzoo::fuzz::split_parts(input, attnzoo::fuzz::kFileSeparator, 2);
  const std::optional<std::string_view> list = parts.size() > 1 ? std::optional(parts[1]) : std::nullopt;
  const std::string dir = scratch.subdir("in");
  scratch.put("in/tokenizer.json", parts[0]);
  scratch.put("in/merges.txt", list);
  scratch.put("in/ranks.txt", list);

  std::optional<ByteBPE> bpe;
  const bool loaded = attnzoo::fuzz::succeeds_or_throws<std::runtime_error, std::invalid_argument>(
      [&] { bpe.emplace(ByteBPE::load(dir)); });

  // The same tokenizer as one JSON value (the form datasets and checkpoints embed): tokenizer.json
  // with the list inline, under the key its "mode" names.
  const nlohmann::json meta = nlohmann::json::parse(parts[0], nullptr, /*allow_exceptions=*/false);
  if (!meta.is_discarded()) {
    nlohmann::json j = meta;
    if (list && j.is_object()) {
      const auto mode = j.find("mode");
      j[mode != j.end() && *mode == "ranks" ? "ranks" : "merges"] = std::string(*list);
    }
    std::optional<ByteBPE> from_json;
    const bool ok = attnzoo::fuzz::succeeds_or_throws<std::invalid_argument>([&] { from_json.emplace(ByteBPE::from_json(j)); });
    // nlohmann keeps the last of duplicate keys where load() refuses them, so only success is compared.
    if (ok && loaded) FUZZ_CHECK(*from_json == *bpe, "from_json and load disagree");
  }
  if (loaded) attnzoo::fuzz::check_loaded(*bpe, scratch, size ? data[size - 1] : 0u, "load");
  return 0;
}
