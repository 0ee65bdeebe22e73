// Token datasets on disk in nanoGPT's layout: DIR/train.bin and DIR/val.bin hold little-endian
// uint16 token ids back to back, DIR/meta.json describes the tokenizer ({"vocab_size": V,
// "tokenizer": {...}}). Files are memory-mapped; a batch copies only its own windows.
//
// Batches are a pure function of (seed, split, step, micro-step): a resumed run draws exactly the
// windows an uninterrupted run would, with no sampler state to save.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace attnzoo::datasets {

// A read-only view of one .bin file.
class TokenFile {
 public:
  // Throws std::runtime_error "FILE: ..." when the file is missing, unreadable or of odd length.
  explicit TokenFile(const std::string& path);
  int64_t size() const { return n_; }
  const std::string& path() const { return path_; }
  uint16_t operator[](int64_t i) const { return data_[i]; }
  // Tokens [start, start + len) as int64.
  torch::Tensor slice(int64_t start, int64_t len) const;

 private:
  std::string path_;
  std::shared_ptr<void> mapping_;
  const uint16_t* data_ = nullptr;
  int64_t n_ = 0;
};

struct Batch {
  torch::Tensor x;  // (B, T) inputs
  torch::Tensor y;  // (B, T) targets, x shifted by one
};

class TokenDataset {
 public:
  // Opens DIR/train.bin, DIR/val.bin and DIR/meta.json. Throws std::runtime_error naming the file.
  explicit TokenDataset(const std::string& dir);

  // Checks that both splits hold at least block_size + 1 tokens; throws naming the file otherwise.
  void require_block(int64_t block_size) const;

  // B random windows of T + 1 tokens; deterministic in (seed, split, step, micro).
  Batch random_batch(bool train, int64_t batch_size, int64_t block_size, uint64_t seed, int64_t step,
                     int64_t micro) const;
  // Number of non-overlapping windows of block_size + 1 tokens in a split, and the b-th batch of them
  // (for a complete, deterministic evaluation of a split).
  int64_t num_windows(bool train, int64_t block_size) const;
  Batch window_batch(bool train, int64_t batch_size, int64_t block_size, int64_t first_window) const;

  const TokenFile& split(bool train) const { return train ? train_ : val_; }
  const nlohmann::json& meta() const { return meta_; }
  int64_t vocab_size() const { return meta_.at("vocab_size").get<int64_t>(); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  TokenFile train_, val_;
  nlohmann::json meta_;
};

// Writes DIR/train.bin, DIR/val.bin and DIR/meta.json (each through a temporary file and a rename).
// Throws std::runtime_error if an id does not fit uint16 or a file cannot be written.
void write_token_dataset(const std::string& dir, const std::vector<int64_t>& train_ids,
                         const std::vector<int64_t>& val_ids, const nlohmann::json& meta);

// Reads a whole text file; throws std::runtime_error "FILE: ..." when missing or unreadable.
std::string read_text_file(const std::string& path);

}  // namespace attnzoo::datasets
