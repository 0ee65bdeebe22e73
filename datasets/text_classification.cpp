#include "datasets/text_classification.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include "datasets/epoch_order.h"
#include "datasets/token_files.h"

namespace attnzoo::datasets {
namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \r\n\t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \r\n\t") - b + 1);
}

}  // namespace

TextClassificationFile read_classification_tsv(const std::string& path) {
  const std::string text = read_text_file(path);
  TextClassificationFile file{path, false, {}};
  size_t fields = 0;  // of the first example
  int64_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    auto parts = split_tabs(line);
    for (auto& p : parts) p = trim(p);
    const auto where = path + ":" + std::to_string(line_no) + ": ";
    if (parts.size() != 2 && parts.size() != 3)
      throw std::runtime_error(where + "expected 2 or 3 tab-separated fields (text, [text_b,] label), got " +
                               std::to_string(parts.size()));
    if (file.examples.empty() && fields == 0 && parts.back() == "label") {  // a header
      fields = parts.size();
      continue;
    }
    if (fields == 0) fields = parts.size();
    if (parts.size() != fields)
      throw std::runtime_error(where + std::to_string(parts.size()) + " fields, but the file's first line has " +
                               std::to_string(fields));
    if (parts.back().empty()) throw std::runtime_error(where + "missing label (the last field is empty)");
    if (parts[0].empty() || (fields == 3 && parts[1].empty())) throw std::runtime_error(where + "empty text");
    file.examples.push_back({parts[0], fields == 3 ? parts[1] : std::string(), parts.back(), line_no});
  }
  if (file.examples.empty()) throw std::runtime_error(path + ": no examples (expected lines of text<TAB>label)");
  file.pairs = fields == 3;
  return file;
}

std::vector<std::string> label_set(const TextClassificationFile& file) {
  std::set<std::string> labels;
  for (const auto& e : file.examples) labels.insert(e.label);
  return {labels.begin(), labels.end()};
}

TextClassificationSet::TextClassificationSet(const TextClassificationFile& file, const tokenizers::WordPiece& tokenizer,
                                             const std::vector<std::string>& labels, int64_t max_seq_len)
    : pad_id_(tokenizer.pad_id()) {
  for (const auto& e : file.examples) {
    const auto it = std::find(labels.begin(), labels.end(), e.label);
    if (it == labels.end()) {
      std::string known;
      for (size_t i = 0; i < labels.size() && i < 10; ++i) known += (i ? ", " : "") + labels[i];
      if (labels.size() > 10) known += ", ...";
      throw std::runtime_error(file.path + ":" + std::to_string(e.line) + ": label '" + e.label +
                               "' is not one of the training labels (" + known + ")");
    }
    labels_.push_back(it - labels.begin());
    const auto full = file.pairs ? tokenizer.encode(e.text_a, e.text_b) : tokenizer.encode(e.text_a);
    auto enc = full;
    if (static_cast<int64_t>(full.ids.size()) > max_seq_len) {
      enc = file.pairs ? tokenizer.encode(e.text_a, e.text_b, static_cast<int>(max_seq_len))
                       : tokenizer.encode(e.text_a, std::nullopt, static_cast<int>(max_seq_len));
      ++truncated_;
    }
    ids_.push_back(std::move(enc.ids));
    types_.push_back(std::move(enc.token_type_ids));
  }
}

TextClassificationSet::Batch TextClassificationSet::batch(const std::vector<int64_t>& examples) const {
  const auto B = static_cast<int64_t>(examples.size());
  int64_t T = 0;
  for (int64_t e : examples) T = std::max<int64_t>(T, static_cast<int64_t>(ids_[e].size()));
  Batch b{torch::full({B, T}, pad_id_, torch::kLong), torch::zeros({B, T}, torch::kLong),
          torch::zeros({B, T}, torch::kLong), torch::empty({B}, torch::kLong)};
  auto* id = b.input_ids.data_ptr<int64_t>();
  auto* type = b.token_type_ids.data_ptr<int64_t>();
  auto* mask = b.attention_mask.data_ptr<int64_t>();
  for (int64_t r = 0; r < B; ++r) {
    const auto& x = ids_[examples[r]];
    for (size_t t = 0; t < x.size(); ++t) {
      id[r * T + t] = x[t];
      type[r * T + t] = types_[examples[r]][t];
      mask[r * T + t] = 1;
    }
    b.labels.data_ptr<int64_t>()[r] = labels_[examples[r]];
  }
  return b;
}

TextClassificationSet::Batch TextClassificationSet::train_batch(int64_t first, int64_t batch_size, uint64_t seed) const {
  const int64_t n = size();
  std::vector<int64_t> examples, perm;
  int64_t perm_epoch = -1;
  for (int64_t k = first; k < first + batch_size; ++k) {
    if (k / n != perm_epoch) perm = epoch_permutation(n, seed, perm_epoch = k / n);
    examples.push_back(perm[static_cast<size_t>(k % n)]);
  }
  return batch(examples);
}

TextClassificationSet::Batch TextClassificationSet::range_batch(int64_t first, int64_t batch_size) const {
  std::vector<int64_t> examples;
  for (int64_t k = first; k < std::min(first + batch_size, size()); ++k) examples.push_back(k);
  return batch(examples);
}

}  // namespace attnzoo::datasets
