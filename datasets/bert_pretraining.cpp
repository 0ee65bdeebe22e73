#include "datasets/bert_pretraining.h"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "datasets/token_files.h"
#include "weights/file_io.h"
#include "weights/safetensors.h"

namespace attnzoo::datasets {
namespace fs = std::filesystem;
namespace {

double uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Uniform in [lo, hi] (the modulo bias is below 2^-40 for the sizes used here).
int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
}

void append(std::vector<int32_t>& to, const std::vector<int32_t>& from) { to.insert(to.end(), from.begin(), from.end()); }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// BERT's create_instances_from_document for document DOC_INDEX of DOCS (all with >= 2 sentences).
// SURPLUS counts random pairs minus true ones made so far: where the choice is free it goes to the
// label in deficit (a coin when even), so that few pairs need dropping to make exactly half random.
void pairs_of_document(const std::vector<const Document*>& docs, const std::vector<int32_t>& doc_ids, size_t doc_index,
                       const PairOptions& opt, std::mt19937_64& rng, std::vector<SentencePair>& out, PairStats& stats,
                       int64_t& surplus) {
  const Document& doc = *docs[doc_index];
  const int64_t max_tokens = opt.max_seq_len - 3;  // [CLS], [SEP], [SEP]
  // Usually fill the whole sequence; sometimes aim shorter, so that fine-tuning on short inputs
  // does not meet a length never seen in pretraining.
  int64_t target = max_tokens;
  if (uniform(rng) < opt.short_seq_prob) target = uniform_int(rng, 2, max_tokens);

  std::vector<const std::vector<int32_t>*> chunk;
  int64_t chunk_length = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(doc.size()); ++i) {
    chunk.push_back(&doc[i]);
    chunk_length += static_cast<int64_t>(doc[i].size());
    if (i + 1 != static_cast<int64_t>(doc.size()) && chunk_length < target) continue;
    // A = the first a_end sentences of the chunk.
    const int64_t a_end = chunk.size() >= 2 ? uniform_int(rng, 1, static_cast<int64_t>(chunk.size()) - 1) : 1;
    SentencePair p;
    p.doc_a = p.doc_b = doc_ids[doc_index];
    for (int64_t j = 0; j < a_end; ++j) append(p.a, *chunk[j]);
    // One sentence cannot be split into A and B: its B must be random (as in BERT).
    p.next_random = chunk.size() == 1 || (surplus == 0 ? uniform(rng) < 0.5 : surplus < 0);
    surplus += p.next_random ? 1 : -1;
    if (p.next_random) {
      // B: from a random start in another document, up to the rest of the target length.
      const int64_t target_b = std::max<int64_t>(1, target - static_cast<int64_t>(p.a.size()));
      auto other = static_cast<size_t>(uniform_int(rng, 0, static_cast<int64_t>(docs.size()) - 2));
      if (other >= doc_index) ++other;
      const Document& rdoc = *docs[other];
      p.doc_b = doc_ids[other];
      for (auto j = static_cast<size_t>(uniform_int(rng, 0, static_cast<int64_t>(rdoc.size()) - 1));
           j < rdoc.size() && static_cast<int64_t>(p.b.size()) < target_b; ++j)
        append(p.b, rdoc[j]);
      // The sentences of the chunk not used go back to the document for the next pair.
      i -= static_cast<int64_t>(chunk.size()) - a_end;
    } else {
      for (size_t j = static_cast<size_t>(a_end); j < chunk.size(); ++j) append(p.b, *chunk[j]);
    }
    if (truncate_pair(p.a, p.b, max_tokens, rng)) ++stats.truncated;
    out.push_back(std::move(p));
    chunk.clear();
    chunk_length = 0;
  }
}

template <typename T>
torch::Tensor to_tensor(const std::vector<T>& v, torch::ScalarType dtype) {
  return torch::from_blob(const_cast<T*>(v.data()), {static_cast<int64_t>(v.size())}, dtype).clone();
}

[[noreturn]] void fail(const fs::path& path, const std::string& what) { throw std::runtime_error(path.string() + ": " + what); }

tokenizers::WordPiece tokenizer_of(const nlohmann::json& meta, const fs::path& meta_path) {
  if (!meta.contains("tokenizer")) fail(meta_path, "no \"tokenizer\" entry (not a `bert-pretrain prepare` directory)");
  try {
    auto tok = tokenizers::WordPiece::from_json(meta["tokenizer"]);
    require_bert_specials(tok, meta_path.string());
    return tok;
  } catch (const std::invalid_argument& e) {
    fail(meta_path, std::string("tokenizer: ") + e.what());
  }
}

nlohmann::json read_meta(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail(path, "missing or unreadable (not a `bert-pretrain prepare` directory)");
  try {
    auto j = nlohmann::json::parse(in);
    if (!j.is_object()) fail(path, "expected a JSON object");
    return j;
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace

std::vector<Document> read_documents(const std::string& text, const tokenizers::WordPiece& tokenizer) {
  std::vector<Document> docs(1);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    size_t b = start, e = end;
    while (b < e && is_space(text[b])) ++b;
    while (e > b && is_space(text[e - 1])) --e;
    if (b == e) {
      if (!docs.back().empty()) docs.emplace_back();
    } else {
      const auto ids = tokenizer.encode_ids(std::string_view(text).substr(b, e - b));
      if (!ids.empty()) docs.back().emplace_back(ids.begin(), ids.end());
    }
    start = end + 1;
  }
  if (docs.back().empty()) docs.pop_back();
  return docs;
}

void PairOptions::validate() const {
  if (max_seq_len < 5)
    throw std::invalid_argument("max_seq_len must be at least 5 ([CLS] A [SEP] B [SEP] with a token each), got " +
                                std::to_string(max_seq_len));
  if (!(short_seq_prob >= 0.0 && short_seq_prob <= 1.0))
    throw std::invalid_argument("short_seq_prob must be in [0, 1], got " + std::to_string(short_seq_prob));
  if (dupe_factor < 1) throw std::invalid_argument("dupe_factor must be positive, got " + std::to_string(dupe_factor));
}

bool truncate_pair(std::vector<int32_t>& a, std::vector<int32_t>& b, int64_t max_tokens, std::mt19937_64& rng) {
  bool changed = false;
  while (static_cast<int64_t>(a.size() + b.size()) > max_tokens) {
    auto& longer = a.size() > b.size() ? a : b;
    if (longer.size() <= 1) break;  // max_tokens < 2: cannot happen with a valid max_seq_len
    // From the front or the back at random, to add noise and avoid biasing towards one end.
    if (uniform(rng) < 0.5) longer.erase(longer.begin());
    else longer.pop_back();
    changed = true;
  }
  return changed;
}

std::vector<SentencePair> make_sentence_pairs(const std::vector<Document>& docs, const PairOptions& opt,
                                              PairStats& stats) {
  opt.validate();
  stats = {};
  stats.documents = static_cast<int64_t>(docs.size());
  std::vector<const Document*> used;
  std::vector<int32_t> ids;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (docs[i].size() < 2) {
      ++stats.skipped_short_docs;
      continue;
    }
    used.push_back(&docs[i]);
    ids.push_back(static_cast<int32_t>(i));
    stats.sentences += static_cast<int64_t>(docs[i].size());
  }
  if (used.size() < 2)
    throw std::invalid_argument("need at least 2 documents of 2 or more sentences for next-sentence pairs, got " +
                                std::to_string(used.size()) + " (" + std::to_string(stats.skipped_short_docs) +
                                " shorter ones skipped; documents are separated by blank lines)");
  std::mt19937_64 rng(opt.seed);
  std::vector<SentencePair> pairs;
  int64_t surplus = 0;
  for (int64_t d = 0; d < opt.dupe_factor; ++d)
    for (size_t i = 0; i < used.size(); ++i) pairs_of_document(used, ids, i, opt, rng, pairs, stats, surplus);

  // Exactly half random: drop random members of the majority label (forced random pairs can
  // outnumber the free choices).
  std::vector<size_t> random, follows;
  for (size_t i = 0; i < pairs.size(); ++i) (pairs[i].next_random ? random : follows).push_back(i);
  auto& majority = random.size() > follows.size() ? random : follows;
  const size_t excess = std::max(random.size(), follows.size()) - std::min(random.size(), follows.size());
  for (size_t i = 0; i < excess; ++i)  // a partial Fisher-Yates: the first `excess` of a shuffle
    std::swap(majority[i], majority[static_cast<size_t>(uniform_int(rng, static_cast<int64_t>(i),
                                                                    static_cast<int64_t>(majority.size()) - 1))]);
  std::vector<uint8_t> drop(pairs.size(), 0);
  for (size_t i = 0; i < excess; ++i) drop[majority[i]] = 1;
  std::vector<SentencePair> kept;
  kept.reserve(pairs.size() - excess);
  for (size_t i = 0; i < pairs.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(pairs[i]));
  stats.dropped_to_balance = static_cast<int64_t>(excess);
  stats.pairs = static_cast<int64_t>(kept.size());
  stats.random_next = stats.pairs / 2;
  return kept;
}

void require_bert_specials(const tokenizers::WordPiece& tokenizer, const std::string& source) {
  const auto& o = tokenizer.options();
  for (const std::string* t : {&o.pad_token, &o.unk_token, &o.cls_token, &o.sep_token, &o.mask_token})
    if (tokenizer.token_to_id(*t) < 0)
      throw std::invalid_argument(source + ": no " + *t + " token (a BERT vocabulary needs " + o.pad_token + ", " +
                                  o.unk_token + ", " + o.cls_token + ", " + o.sep_token + " and " + o.mask_token + ")");
}

losses::MlmVocab mlm_vocab(const tokenizers::WordPiece& tokenizer) {
  require_bert_specials(tokenizer, "vocabulary");
  const int V = tokenizer.vocab_size();
  losses::MlmVocab v;
  v.mask_id = tokenizer.mask_id();
  v.never_select.assign(V, 0);
  v.continuation.assign(V, 0);
  const std::vector<int> specials = {tokenizer.pad_id(), tokenizer.unk_id(), tokenizer.cls_id(), tokenizer.sep_id(),
                                     tokenizer.mask_id()};
  for (int id : {tokenizer.cls_id(), tokenizer.sep_id(), tokenizer.pad_id()}) v.never_select[id] = 1;
  const auto& prefix = tokenizer.options().continuing_subword_prefix;
  for (int id = 0; id < V; ++id) {
    const auto& t = tokenizer.id_to_token(id);
    v.continuation[id] = !prefix.empty() && t.size() > prefix.size() && t.compare(0, prefix.size(), prefix) == 0;
    if (std::find(specials.begin(), specials.end(), id) == specials.end()) v.random_ids.push_back(id);
  }
  v.validate();
  return v;
}

void write_pair_split(const fs::path& file, const std::vector<SentencePair>& pairs, int32_t cls, int32_t sep) {
  std::vector<int32_t> tokens, a_length, next_random, doc_a, doc_b;
  std::vector<int64_t> offsets = {0};
  for (const auto& p : pairs) {
    tokens.push_back(cls);
    append(tokens, p.a);
    tokens.push_back(sep);
    append(tokens, p.b);
    tokens.push_back(sep);
    offsets.push_back(static_cast<int64_t>(tokens.size()));
    a_length.push_back(static_cast<int32_t>(p.a.size()));
    next_random.push_back(p.next_random ? 1 : 0);
    doc_a.push_back(p.doc_a);
    doc_b.push_back(p.doc_b);
  }
  weights::save_safetensors(file.string(),
                            {{"tokens", to_tensor(tokens, torch::kInt)},
                             {"offsets", to_tensor(offsets, torch::kLong)},
                             {"a_length", to_tensor(a_length, torch::kInt)},
                             {"next_random", to_tensor(next_random, torch::kInt)},
                             {"doc_a", to_tensor(doc_a, torch::kInt)},
                             {"doc_b", to_tensor(doc_b, torch::kInt)}},
                            {{"format", "attnzoo-bert-pairs"}});
}

nlohmann::json prepare_pretraining_data(const std::vector<std::string>& inputs, const tokenizers::WordPiece& tokenizer,
                                        const PairOptions& opt, double val_fraction, const fs::path& out, bool force) {
  opt.validate();
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    throw std::invalid_argument("val_fraction must be in [0, 1), got " + std::to_string(val_fraction));
  require_bert_specials(tokenizer, "the tokenizer");
  if (inputs.empty()) throw std::invalid_argument("no input files");
  std::vector<Document> docs;
  std::string sources;
  for (const auto& path : inputs) {
    const auto text = read_text_file(path);
    auto file_docs = read_documents(text, tokenizer);
    if (file_docs.empty()) throw std::runtime_error(path + ": no sentences (expected one sentence per line, a blank "
                                                           "line between documents)");
    for (auto& d : file_docs) docs.push_back(std::move(d));
    sources += (sources.empty() ? "" : ", ") + path;
  }
  const auto n_val = static_cast<size_t>(static_cast<double>(docs.size()) * val_fraction);
  const std::vector<Document> train_docs(docs.begin(), docs.end() - static_cast<std::ptrdiff_t>(n_val));
  const std::vector<Document> val_docs(docs.end() - static_cast<std::ptrdiff_t>(n_val), docs.end());
  PairStats train_stats, val_stats;
  std::vector<SentencePair> train, val;
  try {
    train = make_sentence_pairs(train_docs, opt, train_stats);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(sources + ": " + e.what());
  }
  int64_t usable_val = 0;
  for (const auto& d : val_docs) usable_val += d.size() >= 2;
  if (usable_val >= 2) {
    PairOptions val_opt = opt;
    val_opt.seed = mix_seed(opt.seed, 0x7a1);
    val = make_sentence_pairs(val_docs, val_opt, val_stats);
  } else {
    val_stats.documents = static_cast<int64_t>(val_docs.size());
    val_stats.skipped_short_docs = static_cast<int64_t>(val_docs.size());
  }
  nlohmann::json meta = {{"tokenizer", tokenizer.to_json()},
                         {"vocab_size", tokenizer.vocab_size()},
                         {"max_seq_len", opt.max_seq_len},
                         {"short_seq_prob", opt.short_seq_prob},
                         {"dupe_factor", opt.dupe_factor},
                         {"seed", opt.seed},
                         {"val_fraction", val_fraction},
                         {"sources", inputs},
                         {"stats", {{"train", train_stats}, {"val", val_stats}}}};
  weights::write_directory(out, force, [&](const fs::path& tmp) {
    write_pair_split(tmp / "train.safetensors", train, tokenizer.cls_id(), tokenizer.sep_id());
    write_pair_split(tmp / "val.safetensors", val, tokenizer.cls_id(), tokenizer.sep_id());
    const std::string text = meta.dump(2) + "\n";
    weights::write_file((tmp / "meta.json").string(), text.data(), text.size());
  });
  return meta;
}

PairSplit::PairSplit(const fs::path& file) {
  if (!fs::exists(file)) fail(file, "missing (run `bert-pretrain prepare`)");
  tensors_ = weights::load_safetensors(file.string()).tensors;
  auto get = [&](const char* name, torch::ScalarType dtype) -> const torch::Tensor& {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail(file, std::string("no tensor \"") + name + "\" (not a `bert-pretrain prepare` split)");
    if (it->second.scalar_type() != dtype || it->second.dim() != 1)
      fail(file, std::string("\"") + name + "\" must be a 1-D " + c10::toString(dtype) + " tensor");
    it->second = it->second.contiguous();
    return it->second;
  };
  const auto& offsets = get("offsets", torch::kLong);
  const auto& tokens = get("tokens", torch::kInt);
  n_ = offsets.numel() - 1;
  if (n_ < 0) fail(file, "\"offsets\" is empty");
  for (const char* name : {"a_length", "next_random", "doc_a", "doc_b"})
    if (get(name, torch::kInt).numel() != n_)
      fail(file, std::string("\"") + name + "\" has " + std::to_string(tensors_[name].numel()) + " entries, expected " +
                     std::to_string(n_));
  offsets_ = offsets.data_ptr<int64_t>();
  tokens_ = tokens.data_ptr<int32_t>();
  a_length_ = tensors_["a_length"].data_ptr<int32_t>();
  next_random_ = tensors_["next_random"].data_ptr<int32_t>();
  doc_a_ = tensors_["doc_a"].data_ptr<int32_t>();
  doc_b_ = tensors_["doc_b"].data_ptr<int32_t>();
  if (offsets_[0] != 0 || offsets_[n_] != tokens.numel()) fail(file, "\"offsets\" do not span \"tokens\"");
  for (int64_t i = 0; i < n_; ++i) {
    const int64_t len = offsets_[i + 1] - offsets_[i];
    if (len < 5 || a_length_[i] < 1 || a_length_[i] + 4 > len)
      fail(file, "pair " + std::to_string(i) + " is malformed (length " + std::to_string(len) + ", A " +
                     std::to_string(a_length_[i]) + ")");
  }
  if (tokens.numel() > 0) max_token_ = tokens.max().item<int32_t>();
  if (tokens.numel() > 0 && tokens.min().item<int32_t>() < 0) fail(file, "negative token id");
}

BertPretrainingData::BertPretrainingData(const fs::path& dir)
    : dir_(dir),
      meta_(read_meta(dir / "meta.json")),
      tokenizer_(tokenizer_of(meta_, dir / "meta.json")),
      vocab_(mlm_vocab(tokenizer_)),
      train_(dir / "train.safetensors"),
      val_(dir / "val.safetensors") {
  max_seq_len_ = meta_.value("max_seq_len", int64_t{0});
  if (max_seq_len_ < 5) fail(dir / "meta.json", "\"max_seq_len\" missing or below 5");
  for (const auto* s : {&train_, &val_}) {
    if (s->max_token() >= tokenizer_.vocab_size())
      fail(dir, "token id " + std::to_string(s->max_token()) + " outside the tokenizer's " +
                    std::to_string(tokenizer_.vocab_size()) + " tokens (files of different preparations?)");
    for (int64_t i = 0; i < s->size(); ++i)
      if (s->seq_len(i) > max_seq_len_)
        fail(dir, "a pair of " + std::to_string(s->seq_len(i)) + " tokens, longer than max_seq_len " +
                      std::to_string(max_seq_len_));
  }
  if (train_.size() == 0) fail(dir / "train.safetensors", "no training pairs");
}

BertBatch BertPretrainingData::make_batch(const PairSplit& split, const std::vector<int64_t>& pairs,
                                          const std::vector<uint64_t>& seeds,
                                          const losses::MlmMaskingOptions& opt) const {
  const auto B = static_cast<int64_t>(pairs.size());
  int64_t T = 0;
  for (int64_t p : pairs) T = std::max(T, split.seq_len(p));
  const int32_t pad = tokenizer_.pad_id();
  auto ids = torch::full({B, T}, pad, torch::kLong);
  auto types = torch::zeros({B, T}, torch::kLong);
  auto mask = torch::zeros({B, T}, torch::kLong);
  auto positions = torch::zeros({B, T}, torch::kBool);
  auto nsp = torch::empty({B}, torch::kLong);
  auto* id = ids.data_ptr<int64_t>();
  auto* type = types.data_ptr<int64_t>();
  auto* att = mask.data_ptr<int64_t>();
  auto* pos = positions.data_ptr<bool>();
  std::vector<int64_t> labels;
  for (int64_t r = 0; r < B; ++r) {
    const int64_t p = pairs[r], len = split.seq_len(p);
    std::mt19937_64 rng(seeds[r]);
    const auto masked = losses::mask_tokens({split.tokens(p), static_cast<size_t>(len)}, vocab_, opt, rng);
    const int64_t b_start = split.a_length(p) + 2;  // after [CLS] A [SEP]
    for (int64_t t = 0; t < len; ++t) {
      id[r * T + t] = masked.input_ids[t];
      type[r * T + t] = t >= b_start ? 1 : 0;
      att[r * T + t] = 1;
      if (masked.labels[t] != losses::kNoLabel) {
        pos[r * T + t] = true;
        labels.push_back(masked.labels[t]);
      }
    }
    nsp.data_ptr<int64_t>()[r] = split.next_random(p) ? 1 : 0;
  }
  return {ids, types, mask, positions, torch::tensor(labels, torch::kLong), nsp};
}

BertBatch BertPretrainingData::train_batch(int64_t first_example, int64_t batch_size, uint64_t seed,
                                           const losses::MlmMaskingOptions& opt) const {
  TORCH_CHECK(first_example >= 0 && batch_size > 0, "train_batch: bad example range");
  const int64_t n = train_.size();
  int64_t perm_epoch = -1;
  std::vector<int64_t> perm;
  std::vector<int64_t> pairs;
  std::vector<uint64_t> seeds;
  for (int64_t k = first_example; k < first_example + batch_size; ++k) {
    const int64_t epoch = k / n;
    if (epoch != perm_epoch) {
      perm = epoch_permutation(n, seed, epoch);
      perm_epoch = epoch;
    }
    const int64_t p = perm[static_cast<size_t>(k % n)];
    pairs.push_back(p);
    seeds.push_back(mix_seed(seed, static_cast<uint64_t>(p), opt.dynamic ? static_cast<uint64_t>(epoch) + 1 : 0));
  }
  return make_batch(train_, pairs, seeds, opt);
}

BertBatch BertPretrainingData::eval_batch(bool train, int64_t first, int64_t batch_size, uint64_t seed,
                                          const losses::MlmMaskingOptions& opt) const {
  const PairSplit& s = split(train);
  TORCH_CHECK(s.size() > 0, dir_.string(), ": the ", train ? "training" : "validation", " split has no pairs");
  std::vector<int64_t> pairs;
  std::vector<uint64_t> seeds;
  for (int64_t k = first; k < first + batch_size; ++k) {
    const int64_t p = k % s.size();
    pairs.push_back(p);
    seeds.push_back(mix_seed(seed ^ 0xe7a1, static_cast<uint64_t>(p), train ? 1 : 2));
  }
  return make_batch(s, pairs, seeds, opt);
}

}  // namespace attnzoo::datasets
