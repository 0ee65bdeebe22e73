// Test helper, loaded with LD_PRELOAD by checkpoint_replace_e2e.sh: renameat2 fails with errno
// $RENAMEAT2_ERRNO (EINVAL when unset), as it does on filesystems and sandboxes without
// RENAME_EXCHANGE (gVisor, NFS), and each call appends a line to $RENAMEAT2_LOG when that is set.
#include <cerrno>
#include <cstdio>
#include <cstdlib>

extern "C" int renameat2(int, const char*, int, const char* to, unsigned int) {
  if (const char* log = std::getenv("RENAMEAT2_LOG")) {
    if (FILE* f = std::fopen(log, "a")) {
      std::fprintf(f, "renameat2 -> %s\n", to);
      std::fclose(f);
    }
  }
  const char* e = std::getenv("RENAMEAT2_ERRNO");
  errno = e ? std::atoi(e) : EINVAL;
  return -1;
}
