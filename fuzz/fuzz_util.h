// Helpers shared by the fuzz targets: invariant checks that abort (so that libFuzzer keeps the
// input as a crash), a per-process scratch directory for the file loaders, and input splitting.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

namespace attnzoo::fuzz {

// Separates the files of a loader target's input ("tokenizer.json" SEP "merges.txt").
inline constexpr std::string_view kFileSeparator = "\n%%%%\n";

// Escapes control and non-ASCII bytes, for messages about binary inputs.
inline std::string escaped(std::string_view s, std::size_t max = 200) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

[[noreturn]] inline void fail(const char* cond, const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n  %s\n", file, line, cond, what.c_str());
  std::abort();
}

}  // namespace attnzoo::fuzz

// WHAT is only evaluated on failure.
#define FUZZ_CHECK(cond, what)                                                   \
  do {                                                                           \
    if (!(cond)) ::attnzoo::fuzz::fail(#cond, __FILE__, __LINE__, (what));       \
  } while (0)

namespace attnzoo::fuzz {

// A directory under $TMPDIR (or /tmp) that lives as long as the process; the loader targets
// rewrite their files in it for every input.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/attnzoo-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("attnzoo fuzz: mkdtemp");
      std::abort();
    }
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes NAME, or removes it when CONTENT is absent (so that a loader sees the file missing).
  void put(const std::string& name, std::optional<std::string_view> content) const {
    const std::string p = file(name);
    if (!content) {
      std::error_code ec;
      std::filesystem::remove(p, ec);
      return;
    }
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(content->data(), static_cast<std::streamsize>(content->size()));
    out.close();
    if (!out) fail("write", __FILE__, __LINE__, "cannot write " + p);
  }
  // A fresh, empty subdirectory NAME.
  std::string subdir(const std::string& name) const {
    const std::string p = file(name);
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    std::filesystem::create_directories(p);
    return p;
  }

 private:
  std::string path_;
};

// The parts of DATA between separators, at most MAX_PARTS (the last keeps any further separators).
inline std::vector<std::string_view> split_parts(std::string_view data, std::string_view sep, std::size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const std::size_t at = data.find(sep);
    if (at == std::string_view::npos) break;
    parts.push_back(data.substr(0, at));
    data.remove_prefix(at + sep.size());
  }
  parts.push_back(data);
  return parts;
}

// Calls F() and returns true, or returns false when it throws one of the EXPECTED exception
// types; anything else escapes, and libFuzzer reports the uncaught exception as a crash.
template <typename... Expected, typename F>
bool succeeds_or_throws(F&& f) {
  try {
    std::forward<F>(f)();
    return true;
  } catch (const std::exception& e) {
    if ((dynamic_cast<const Expected*>(&e) || ...)) return false;
    fail("expected exception type", __FILE__, __LINE__,
         std::string("unexpected exception (") + typeid(e).name() + "): " + e.what());
  }
}

}  // namespace attnzoo::fuzz
