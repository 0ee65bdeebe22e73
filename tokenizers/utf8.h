// UTF-8 decoding into code points and back, for the character-level tokenizer.
// Strict: overlong forms, surrogates and truncated sequences are errors, reported with a byte offset.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace attnzoo::tokenizers {

// Splits `text` into its UTF-8 characters (each element is the bytes of one code point).
// Throws std::invalid_argument "invalid UTF-8 at byte N" on malformed input.
std::vector<std::string> utf8_chars(std::string_view text);

// Byte offset of the first malformed sequence, or npos when `text` is valid UTF-8.
std::size_t utf8_invalid_offset(std::string_view text);

}  // namespace attnzoo::tokenizers
