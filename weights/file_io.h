// Writing files so that a failure is loud and leaves nothing half-written behind: every write and
// fsync is checked (ENOSPC, EFBIG, EIO) and a file that could not be completed is removed. Used by
// the safetensors writer, checkpoints and token datasets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace attnzoo::weights {

// Writes all n bytes to fd (retrying short writes and EINTR); throws "PATH: write failed: ...".
void write_all(int fd, const void* data, uint64_t n, const std::string& path);

// Creates or truncates PATH, writes the bytes, fsyncs and closes it. On any failure the file is
// removed and std::runtime_error "PATH: ..." is thrown.
void write_file(const std::string& path, const void* data, size_t size);

// fsync of a directory, so that renames and new entries in it are on disk; errors are ignored
// (some file systems refuse fsync on directories).
void fsync_directory(const std::string& dir);

}  // namespace attnzoo::weights
