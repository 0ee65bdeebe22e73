// Helpers shared by the unit tests: a fixture with a fresh temporary directory per test, a guard
// that lowers the file-size limit for one scope, the message of a thrown exception, the
// EXPECT_CONTAINS / EXPECT_STARTS_WITH assertions, and small file, tensor and RNG helpers.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <map>
#include <string>

#include <torch/torch.h>

namespace attnzoo::testing {

// Predicate formatters for the two macros below; each argument is evaluated once.
inline ::testing::AssertionResult text_contains(const char* text_expr, const char* /*part_expr*/,
                                                const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "Value of: " << text_expr << "\n  Actual: " << text
                                       << "\nExpected: contains \"" << part << "\"";
}

inline ::testing::AssertionResult text_starts_with(const char* text_expr, const char* /*prefix_expr*/,
                                                   const std::string& text, const std::string& prefix) {
  if (text.starts_with(prefix)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "Value of: " << text_expr << "\n  Actual: " << text
                                       << "\nExpected: starts with \"" << prefix << "\"";
}

// A fresh directory under the system temporary directory for each test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "attnzoo_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // NAME inside the test's directory.
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

// Lowers the file-size limit for one scope so that a write hits EFBIG, as on a full disk.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = ::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the process
    rlimit lowered = saved_;
    lowered.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &lowered) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, previous_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  sighandler_t previous_handler_;
  bool ok_ = false;
};

// The message of the E that F throws; a failure if F throws another type or nothing.
template <typename E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception type: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

// The message of whatever std::exception F throws; a failure if it throws nothing.
inline std::string any_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

// Replaces the file at P with BYTES.
inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A CPU generator with its own seed, independent of the global one.
// A file that scripts/setup.sh fetches into data/ (published vocabularies, corpora). Missing is an
// error, not a skipped test: the README's test command runs the set-up first.
inline std::string fetched_data(const std::string& relative) {
  const std::string path = std::string(ATTNZOO_DATA_DIR) + "/" + relative;
  if (!std::filesystem::exists(path)) throw std::runtime_error(path + " is missing: run scripts/setup.sh data");
  return path;
}

// Reads a whole file as bytes.
inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error(p.string() + ": cannot open");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline torch::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// A deep copy of named tensors (a state dict, optimizer state).
inline std::map<std::string, torch::Tensor> clone_tensors(const std::map<std::string, torch::Tensor>& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, v] : m) out[k] = v.clone();
  return out;
}

// The same names with equal tensors (torch::equal: same shape and values).
inline void expect_same_tensors(const std::map<std::string, torch::Tensor>& a,
                                const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) {
    ASSERT_EQ(b.count(k), 1u) << k;
    EXPECT_TRUE(torch::equal(v, b.at(k))) << k;
  }
}

}  // namespace attnzoo::testing

// Expects the string TEXT to contain PART; prints TEXT if not.
#define EXPECT_CONTAINS(text, part) EXPECT_PRED_FORMAT2(::attnzoo::testing::text_contains, text, part)
// Expects the string TEXT to start with PREFIX; prints TEXT if not.
#define EXPECT_STARTS_WITH(text, prefix) EXPECT_PRED_FORMAT2(::attnzoo::testing::text_starts_with, text, prefix)
