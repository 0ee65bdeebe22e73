// Whole-file reads and writes for the tokenizer files (vocabularies, merges, ranks, metadata),
// with errors that name the file. The tokenizers stay free of the rest of the tree.
#pragma once

#include <string>

namespace attnzoo::tokenizers {

// The file's bytes. Throws std::runtime_error "PATH: ..." for a directory, a missing or unreadable file.
std::string read_file(const std::string& path);
// Creates or replaces PATH with DATA. Throws std::runtime_error "PATH: ..." when it cannot.
void write_file(const std::string& path, const std::string& data);

}  // namespace attnzoo::tokenizers
