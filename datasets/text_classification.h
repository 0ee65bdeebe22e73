// Sentence (pair) classification data for fine-tuning BERT (Devlin et al. 2019, §4.1: GLUE-style
// tasks): a TSV file with one example per line, `text<TAB>label` or `text_a<TAB>text_b<TAB>label`.
// A first line whose last field is "label" is a header and skipped. Every line must have the same
// number of fields as the first example; blank lines are skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tokenizers/wordpiece.h"

namespace attnzoo::datasets {

struct TextExample {
  std::string text_a, text_b;  // text_b empty for single sentences
  std::string label;
  int64_t line = 0;            // 1-based line in the file, for error messages
};

struct TextClassificationFile {
  std::string path;
  bool pairs = false;  // three fields per line
  std::vector<TextExample> examples;
};

// Reads PATH. Throws std::runtime_error "PATH:LINE: ..." for a line with another number of
// fields than 2 or 3 (or than the first example's), an empty text or an empty label, and
// "PATH: no examples" for a file without any.
TextClassificationFile read_classification_tsv(const std::string& path);

// The sorted distinct labels of FILE.
std::vector<std::string> label_set(const TextClassificationFile& file);

// Examples tokenized as [CLS] A [SEP] (B [SEP]), truncated to max_seq_len (longest first).
class TextClassificationSet {
 public:
  // Throws std::runtime_error "PATH:LINE: label 'x' is not one of the training labels (a, b)" for a
  // label outside LABELS.
  TextClassificationSet(const TextClassificationFile& file, const tokenizers::WordPiece& tokenizer,
                        const std::vector<std::string>& labels, int64_t max_seq_len);

  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  int64_t truncated() const { return truncated_; }  // examples cut to max_seq_len

  struct Batch {
    torch::Tensor input_ids, token_type_ids, attention_mask;  // (B, T) int64, padded to the longest
    torch::Tensor labels;                                     // (B) int64
  };
  // Examples EXAMPLES (indices), padded with pad_id.
  Batch batch(const std::vector<int64_t>& examples) const;
  // Training examples first .. first + batch_size - 1 of the shuffled endless stream (epoch_order.h).
  Batch train_batch(int64_t first, int64_t batch_size, uint64_t seed) const;
  // Examples first .. min(first + batch_size, size()) - 1 in file order.
  Batch range_batch(int64_t first, int64_t batch_size) const;

 private:
  std::vector<std::vector<int>> ids_, types_;
  std::vector<int64_t> labels_;
  int pad_id_ = 0;
  int64_t truncated_ = 0;
};

}  // namespace attnzoo::datasets
