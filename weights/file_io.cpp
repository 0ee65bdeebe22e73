#include "weights/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
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

}  // namespace attnzoo::weights
