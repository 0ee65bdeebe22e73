#include "weights/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace attnzoo::weights {

void write_all(int fd, const void* data, uint64_t n, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    // Linux writes at most ~2 GiB per call; the loop also covers short writes before ENOSPC/EFBIG.
    ssize_t put = ::write(fd, p, std::min<uint64_t>(n, 1ull << 30));
    if (put < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
    }
    p += put;
    n -= static_cast<uint64_t>(put);
  }
}

void write_file(const std::string& path, const void* data, size_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
  try {
    write_all(fd, data, size, path);
    if (::fsync(fd) != 0) throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(path.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    throw std::runtime_error(path + ": write failed: " + std::strerror(e));
  }
}

void fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_directory(const std::filesystem::path& dir, bool force,
                     const std::function<void(const std::filesystem::path&)>& fill) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir)) {
    if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + ": exists and is not a directory");
    if (!fs::is_empty(dir) && !force)
      throw std::runtime_error(dir.string() + ": exists and is not empty (pass --force to replace it)");
  }
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec) throw std::runtime_error(parent.string() + ": cannot create directory: " + ec.message());
  const fs::path name = dir.filename().empty() ? dir.parent_path().filename() : dir.filename();
  const fs::path tmp = parent / ("." + name.string() + ".tmp-" + std::to_string(::getpid()));
  const fs::path old = parent / ("." + name.string() + ".old-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec)) throw std::runtime_error(tmp.string() + ": cannot create directory: " + ec.message());
  try {
    fill(tmp);
    fsync_directory(tmp.string());
    // The old directory moves aside only once the new one is complete; a crash between the two
    // renames leaves it as .NAME.old-PID.
    const bool replace = fs::exists(dir);
    if (replace) fs::rename(dir, old);
    fs::rename(tmp, dir);
    if (replace) fs::remove_all(old, ec);
    fsync_directory(parent.string());
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    throw std::runtime_error(dir.string() + ": not written: " + e.what());
  }
}

}  // namespace attnzoo::weights
