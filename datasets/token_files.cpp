#include "datasets/token_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "weights/file_io.h"

namespace attnzoo::datasets {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

// splitmix64 (Steele et al. 2014): a counter-based generator, so batches need no saved state.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Through a temporary file and a rename, so a reader never sees half a file.
void write_file_atomic(const fs::path& path, const char* data, size_t size) {
  const fs::path tmp = path.string() + ".tmp";
  weights::write_file(tmp.string(), data, size);
  fs::rename(tmp, path);
}

}  // namespace

TokenFile::TokenFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, std::string("cannot stat: ") + std::strerror(errno));
  }
  const auto bytes = static_cast<size_t>(st.st_size);
  if (bytes % 2 != 0) {
    ::close(fd);
    fail(path, "size " + std::to_string(bytes) + " is odd; expected uint16 tokens (2 bytes each)");
  }
  n_ = static_cast<int64_t>(bytes / 2);
  if (bytes > 0) {
    void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(path, std::string("cannot map: ") + std::strerror(errno));
    }
    mapping_ = std::shared_ptr<void>(p, [bytes](void* q) { ::munmap(q, bytes); });
    data_ = static_cast<const uint16_t*>(p);
  }
  ::close(fd);
}

torch::Tensor TokenFile::slice(int64_t start, int64_t len) const {
  TORCH_CHECK(start >= 0 && len >= 0 && start + len <= n_, path_, ": window [", start, ", ", start + len,
              ") outside ", n_, " tokens");
  auto out = torch::empty({len}, torch::kLong);
  auto* dst = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < len; ++i) dst[i] = data_[start + i];
  return out;
}

TokenDataset::TokenDataset(const std::string& dir)
    : dir_(dir), train_((fs::path(dir) / "train.bin").string()), val_((fs::path(dir) / "val.bin").string()) {
  const auto meta_path = (fs::path(dir) / "meta.json").string();
  std::ifstream in(meta_path);
  if (!in) fail(meta_path, "cannot open (run `gpt-train prepare` first)");
  try {
    meta_ = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(meta_path, std::string("malformed JSON: ") + e.what());
  }
  if (!meta_.is_object() || !meta_.contains("vocab_size") || !meta_["vocab_size"].is_number_integer() ||
      meta_["vocab_size"].get<int64_t>() <= 0)
    fail(meta_path, "expected an object with a positive integer \"vocab_size\"");
}

void TokenDataset::require_block(int64_t block_size) const {
  for (const TokenFile* f : {&train_, &val_}) {
    if (f->size() < block_size + 1)
      fail(f->path(), "holds " + std::to_string(f->size()) + " tokens, fewer than block_size + 1 = " +
                          std::to_string(block_size + 1) + " (use a longer corpus or a smaller --block-size)");
  }
}

Batch TokenDataset::random_batch(bool train, int64_t batch_size, int64_t block_size, uint64_t seed,
                                 int64_t step, int64_t micro) const {
  const TokenFile& f = split(train);
  const uint64_t range = static_cast<uint64_t>(f.size() - block_size);  // valid starts: [0, range)
  TORCH_CHECK(f.size() > block_size, f.path(), ": holds ", f.size(), " tokens, fewer than block_size + 1 = ",
              block_size + 1);
  // Hash (seed, split, step, micro) into the generator's starting state, one input at a time.
  uint64_t state = seed;
  for (uint64_t v : {uint64_t(train ? 1 : 2), static_cast<uint64_t>(step), static_cast<uint64_t>(micro)}) {
    state ^= v;
    state = splitmix64(state);
  }
  auto x = torch::empty({batch_size, block_size}, torch::kLong);
  auto y = torch::empty({batch_size, block_size}, torch::kLong);
  auto* xp = x.data_ptr<int64_t>();
  auto* yp = y.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch_size; ++b) {
    const auto start = static_cast<int64_t>(splitmix64(state) % range);
    for (int64_t t = 0; t < block_size; ++t) {
      xp[b * block_size + t] = f[start + t];
      yp[b * block_size + t] = f[start + t + 1];
    }
  }
  return {x, y};
}

int64_t TokenDataset::num_windows(bool train, int64_t block_size) const {
  return (split(train).size() - 1) / block_size;
}

Batch TokenDataset::window_batch(bool train, int64_t batch_size, int64_t block_size, int64_t first_window) const {
  const TokenFile& f = split(train);
  const int64_t n = std::min(batch_size, num_windows(train, block_size) - first_window);
  TORCH_CHECK(n > 0, f.path(), ": no window ", first_window);
  std::vector<torch::Tensor> xs, ys;
  for (int64_t b = 0; b < n; ++b) {
    auto w = f.slice((first_window + b) * block_size, block_size + 1);
    xs.push_back(w.narrow(0, 0, block_size));
    ys.push_back(w.narrow(0, 1, block_size));
  }
  return {torch::stack(xs), torch::stack(ys)};
}

void write_token_dataset(const std::string& dir, const std::vector<int64_t>& train_ids,
                         const std::vector<int64_t>& val_ids, const nlohmann::json& meta) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir, "cannot create directory: " + ec.message());
  auto write_bin = [&](const std::string& name, const std::vector<int64_t>& ids) {
    std::vector<uint16_t> buf(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] > 65535)
        fail((fs::path(dir) / name).string(), "token id " + std::to_string(ids[i]) +
                                                  " does not fit uint16 (vocabulary larger than 65536)");
      buf[i] = static_cast<uint16_t>(ids[i]);
    }
    write_file_atomic(fs::path(dir) / name, reinterpret_cast<const char*>(buf.data()), buf.size() * 2);
  };
  write_bin("train.bin", train_ids);
  write_bin("val.bin", val_ids);
  const std::string text = meta.dump(2) + "\n";
  write_file_atomic(fs::path(dir) / "meta.json", text.data(), text.size());
}

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail(path, "is a directory, expected a text file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, "read error");
  return ss.str();
}

}  // namespace attnzoo::datasets
