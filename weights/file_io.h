// Writing files so that a failure is loud and leaves nothing half-written behind: every write and
// fsync is checked (ENOSPC, EFBIG, EIO) and a file that could not be completed is removed. Used by
// the safetensors writer, checkpoints and token datasets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
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

// Writes directory DIR atomically: FILL writes the files into a temporary sibling, which is then
// renamed to DIR. A DIR that exists and is not empty is refused unless FORCE, in which case it is
// replaced only once the new one is complete. Throws std::runtime_error "DIR: not written: ..."
// (or "DIR: exists and is not empty (pass --force to replace it)"); nothing is left behind.
void write_directory(const std::filesystem::path& dir, bool force,
                     const std::function<void(const std::filesystem::path&)>& fill);

}  // namespace attnzoo::weights
