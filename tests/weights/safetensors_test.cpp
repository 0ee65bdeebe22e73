// Tests for weights/: safetensors round trips, zero-copy loading, one test per malformed-file case
// (files built byte by byte), a write that hits the file-size limit, and state-dict loading.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include <torch/torch.h>

#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;
using attnzoo::weights::load_safetensors;
using attnzoo::weights::load_state_dict;
using attnzoo::weights::LoadReport;
using attnzoo::weights::Metadata;
using attnzoo::weights::save_safetensors;
using attnzoo::weights::state_dict;
using attnzoo::weights::TensorMap;

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "attnzoo_weights_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file by hand: 8-byte little-endian header length, HEADER as given, then DATA.
void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  uint64_t n = header.size();
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  write_bytes(path, bytes + header + data);
}

// The error that loading PATH throws; it must name the file first.
std::string load_error(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind(path + ": ", 0), 0u) << what;
    return what;
  }
  ADD_FAILURE() << "loading " << path << " did not throw";
  return {};
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

std::string bytes_of(const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  return {static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel() * c.element_size())};
}

// Random bit patterns (NaN payloads, denormals, infinities included) for every element type.
torch::Tensor random_bits(torch::IntArrayRef shape, torch::ScalarType type) {
  torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(type));
  const int64_t nbytes = t.numel() * t.element_size();
  torch::Tensor bytes = type == torch::kBool ? torch::randint(0, 2, {nbytes}, torch::kUInt8)
                                             : torch::randint(0, 256, {nbytes}, torch::kUInt8);
  if (nbytes > 0) std::memcpy(t.data_ptr(), bytes.data_ptr(), static_cast<size_t>(nbytes));
  return t;
}

TEST_F(SafetensorsTest, RoundTripsEveryDtypeBitExactly) {
  torch::manual_seed(0);
  const std::pair<const char*, torch::ScalarType> dtypes[] = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  const std::vector<std::vector<int64_t>> shapes = {{2, 3}, {}, {0, 4}, {7}, {3, 1, 5}};
  TensorMap saved;
  for (const auto& [name, type] : dtypes)
    for (size_t i = 0; i < shapes.size(); ++i)
      saved[std::string(name) + "." + std::to_string(i)] = random_bits(shapes[i], type);
  saved["transposed"] = torch::arange(12, torch::kFloat32).reshape({3, 4}).t();  // non-contiguous

  const std::string path = file("all.safetensors");
  save_safetensors(path, saved);
  const auto loaded = load_safetensors(path);

  ASSERT_EQ(loaded.tensors.size(), saved.size());
  EXPECT_TRUE(loaded.metadata.empty());
  for (const auto& [key, want] : saved) {
    SCOPED_TRACE(key);
    ASSERT_EQ(loaded.tensors.count(key), 1u);
    const torch::Tensor& got = loaded.tensors.at(key);
    EXPECT_EQ(got.scalar_type(), want.scalar_type());
    EXPECT_EQ(got.sizes(), want.sizes());
    EXPECT_EQ(got.device(), torch::Device(torch::kCPU));
    EXPECT_EQ(bytes_of(got), bytes_of(want));
    // The writer orders data so that every tensor is aligned and can be mapped, not copied.
    if (got.numel() > 0) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(got.data_ptr()) % got.element_size(), 0u);
    }
  }
  EXPECT_EQ(loaded.tensors.at("F32.1").dim(), 0) << "0-d scalar";
  EXPECT_EQ(loaded.tensors.at("F32.2").numel(), 0) << "zero-size tensor";
}

TEST_F(SafetensorsTest, WritesPaddedHeaderWithSortedKeys) {
  const std::string path = file("layout.safetensors");
  save_safetensors(path, {{"b", torch::ones({3}, torch::kUInt8)}, {"a", torch::zeros({2}, torch::kFloat32)}});
  const std::string bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 2 * 4 + 3);
  const std::string header = bytes.substr(8, n);
  EXPECT_LT(header.find("\"a\""), header.find("\"b\"")) << header;
  EXPECT_EQ(header.find("__metadata__"), std::string::npos) << "no metadata given, none written";
  EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}')) << "padding is spaces after the JSON";
}

TEST_F(SafetensorsTest, RoundTripsMetadata) {
  const std::string path = file("meta.safetensors");
  const Metadata metadata = {{"format", "pt"}, {"step", "1200"}, {"note", "quotes \" and ünïcode"}};
  save_safetensors(path, {{"w", torch::ones({2})}}, metadata);
  const auto loaded = load_safetensors(path);
  EXPECT_EQ(loaded.metadata, metadata);
  EXPECT_TRUE(torch::equal(loaded.tensors.at("w"), torch::ones({2})));
}

TEST_F(SafetensorsTest, ReadsAFileLaidOutByTheReferenceWriter) {
  // The Python library's layout: fields in dtype/shape/data_offsets order, metadata first.
  const std::string path = file("reference.safetensors");
  const float f[2] = {1.5f, -2.0f};
  const int32_t i[2] = {7, -9};
  std::string data(reinterpret_cast<const char*>(f), 8);
  data += std::string(reinterpret_cast<const char*>(i), 8);
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I32","shape":[1,2],"data_offsets":[8,16]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  write_raw(path, header, data);

  const auto loaded = load_safetensors(path);
  EXPECT_EQ(loaded.metadata, (Metadata{{"format", "pt"}}));
  EXPECT_TRUE(torch::equal(loaded.tensors.at("a"), torch::tensor({1.5f, -2.0f})));
  EXPECT_TRUE(torch::equal(loaded.tensors.at("b"), torch::tensor({{7, -9}}, torch::kInt32)));
}

TEST_F(SafetensorsTest, LoadsUnalignedDataByCopying) {
  // A 3-byte header puts the F32 data at file offset 11: not 4-byte aligned in the mapping.
  const std::string path = file("unaligned.safetensors");
  std::string header = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  if ((8 + header.size()) % 4 == 0) header += ' ';
  const float values[3] = {1.0f, 2.0f, 3.0f};
  write_raw(path, header, std::string(reinterpret_cast<const char*>(values), 12));
  const auto loaded = load_safetensors(path);
  const torch::Tensor& x = loaded.tensors.at("x");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data_ptr()) % 4, 0u);
  EXPECT_TRUE(torch::equal(x, torch::tensor({1.0f, 2.0f, 3.0f})));
}

TEST_F(SafetensorsTest, LoadIsZeroCopyAndWritesDoNotReachTheFile) {
  const std::string path = file("cow.safetensors");
  save_safetensors(path, {{"a", torch::arange(16, torch::kFloat32)}, {"b", torch::arange(8, torch::kFloat32)}});
  const std::string before = read_bytes(path);

  torch::Tensor a, b;
  {
    auto loaded = load_safetensors(path);
    a = loaded.tensors.at("a");
    b = loaded.tensors.at("b");
  }  // the tensors alone keep the mapping alive
  // Views into one mapping sit exactly as far apart as their data offsets ("a" [0, 64), "b" [64, 96)).
  EXPECT_EQ(static_cast<char*>(b.data_ptr()) - static_cast<char*>(a.data_ptr()), 64);
  EXPECT_TRUE(torch::equal(a, torch::arange(16, torch::kFloat32)));

  a.fill_(42.0f);
  a.add_(1.0f);
  EXPECT_EQ(a[3].item<float>(), 43.0f);
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_TRUE(torch::equal(load_safetensors(path).tensors.at("a"), torch::arange(16, torch::kFloat32)));
}

TEST_F(SafetensorsTest, SaveRejectsUnsupportedDtypeNamingTheKey) {
  const std::string path = file("complex.safetensors");
  try {
    save_safetensors(path, {{"ok", torch::ones({2})}, {"z", torch::ones({2}, torch::kComplexFloat)}});
    FAIL() << "no throw";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind(path + ": ", 0), 0u) << what;
    EXPECT_CONTAINS(what, "\"z\"");
    EXPECT_CONTAINS(what, "unsupported dtype");
  }
}

TEST_F(SafetensorsTest, MissingFile) {
  const std::string error = load_error(file("absent.safetensors"));
  EXPECT_CONTAINS(error, "cannot open: No such file or directory");
}

TEST_F(SafetensorsTest, FileShorterThanEightBytes) {
  const std::string path = file("short.safetensors");
  write_bytes(path, "abc");
  EXPECT_CONTAINS(load_error(path), "3 bytes, too short");
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFile) {
  const std::string path = file("long.safetensors");
  uint64_t n = 1000;
  write_bytes(path, std::string(reinterpret_cast<const char*>(&n), 8) + "{}");
  EXPECT_CONTAINS(load_error(path), "header length 1000 exceeds file size 10");
}

TEST_F(SafetensorsTest, HeaderLengthBeyondLimit) {
  const std::string path = file("huge.safetensors");
  uint64_t n = 1ull << 40;
  write_bytes(path, std::string(reinterpret_cast<const char*>(&n), 8) + "{}");
  EXPECT_CONTAINS(load_error(path), "exceeds the 100 MB limit");
}

TEST_F(SafetensorsTest, HeaderNotJson) {
  const std::string path = file("notjson.safetensors");
  write_raw(path, R"({"a": {"dtype": "F32",)", "");
  EXPECT_CONTAINS(load_error(path), "malformed header JSON");
}

TEST_F(SafetensorsTest, HeaderJsonNotAnObject) {
  const std::string path = file("array.safetensors");
  write_raw(path, "[1, 2, 3]", "");
  EXPECT_CONTAINS(load_error(path), "header is a JSON array, expected an object");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  const std::string path = file("dtype.safetensors");
  write_raw(path, R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab");
  const std::string error = load_error(path);
  EXPECT_CONTAINS(error, "tensor \"w\"");
  EXPECT_CONTAINS(error, "unknown dtype \"F8_E4M3\"");
}

TEST_F(SafetensorsTest, MissingDataOffsets) {
  const std::string path = file("nooffsets.safetensors");
  write_raw(path, R"({"w":{"dtype":"F32","shape":[1]}})", "abcd");
  EXPECT_CONTAINS(load_error(path), "tensor \"w\": missing \"data_offsets\"");
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  const std::string path = file("range.safetensors");
  write_raw(path, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0'));
  const std::string error = load_error(path);
  EXPECT_CONTAINS(error, "tensor \"w\"");
  EXPECT_CONTAINS(error, "outside the data section of 8 bytes");
}

TEST_F(SafetensorsTest, OffsetsReversed) {
  const std::string path = file("reversed.safetensors");
  write_raw(path, R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", std::string(8, '\0'));
  EXPECT_CONTAINS(load_error(path), "data_offsets [4,2] end before they begin");
}

TEST_F(SafetensorsTest, OverlappingOffsets) {
  const std::string path = file("overlap.safetensors");
  write_raw(path,
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            std::string(12, '\0'));
  EXPECT_CONTAINS(load_error(path), "tensors \"a\" [0, 8) and \"b\" [4, 12) overlap");
}

TEST_F(SafetensorsTest, ByteCountNotMatchingDtypeAndShape) {
  const std::string path = file("count.safetensors");
  write_raw(path, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'));
  const std::string error = load_error(path);
  EXPECT_CONTAINS(error, "tensor \"w\"");
  EXPECT_CONTAINS(error, "needs 12 bytes");
}

TEST_F(SafetensorsTest, MetadataNotStringToString) {
  const std::string path = file("meta.safetensors");
  write_raw(path, R"({"__metadata__":{"format":"pt","step":1200}})", "");
  EXPECT_CONTAINS(load_error(path), "__metadata__ \"step\" is a JSON number, expected a string");
  write_raw(path, R"({"__metadata__":["pt"]})", "");
  EXPECT_CONTAINS(load_error(path), "__metadata__ is a JSON array, expected an object");
}

TEST_F(SafetensorsTest, NegativeShape) {
  const std::string path = file("negative.safetensors");
  write_raw(path, R"({"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,0]}})", "");
  const std::string error = load_error(path);
  EXPECT_CONTAINS(error, "tensor \"w\"");
  EXPECT_CONTAINS(error, "negative");
}

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
  bool ok() const { return ok_; }

 private:
  rlimit saved_{};
  sighandler_t previous_handler_;
  bool ok_ = false;
};

TEST_F(SafetensorsTest, WriteBeyondFileSizeLimitFailsCleanly) {
  const std::string path = file("big.safetensors");
  const torch::Tensor big = torch::ones({1 << 20});  // 4 MiB
  std::string error;
  {
    FileSizeLimit limit(1 << 20);
    ASSERT_TRUE(limit.ok()) << std::strerror(errno);
    try {
      save_safetensors(path, {{"big", big}});
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
  }
  EXPECT_CONTAINS(error, path + ": write failed: File too large");
  EXPECT_FALSE(fs::exists(path)) << "a partial file is removed";
  save_safetensors(path, {{"big", big}});  // the limit is restored
  EXPECT_TRUE(torch::equal(load_safetensors(path).tensors.at("big"), big));
}

// fc1 (3 -> 4), fc2 (4 -> 2) and a buffer: keys fc1.weight, fc1.bias, fc2.weight, fc2.bias, running.
struct TinyNet : torch::nn::Module {
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::Tensor running;
  TinyNet() {
    fc1 = register_module("fc1", torch::nn::Linear(3, 4));
    fc2 = register_module("fc2", torch::nn::Linear(4, 2));
    running = register_buffer("running", torch::zeros({2}));
  }
};

struct HeadImpl : torch::nn::Module {
  torch::Tensor weight;
  explicit HeadImpl(torch::Tensor w) { weight = register_parameter("weight", std::move(w)); }
};

// GPT-style weight tying: lm_head.weight is wte.weight under a second name.
struct TiedNet : torch::nn::Module {
  torch::nn::Embedding wte{nullptr};
  std::shared_ptr<HeadImpl> lm_head;
  TiedNet() {
    wte = register_module("wte", torch::nn::Embedding(5, 3));
    lm_head = register_module("lm_head", std::make_shared<HeadImpl>(wte->weight));
  }
};

TensorMap clone_all(const TensorMap& m) {
  TensorMap out;
  for (const auto& [k, v] : m) out[k] = v.clone();
  return out;
}

void expect_same(const TensorMap& a, const TensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, v] : a) {
    ASSERT_EQ(b.count(k), 1u) << k;
    EXPECT_TRUE(torch::equal(v, b.at(k))) << k;
  }
}

TEST(StateDict, NamesParametersAndBuffers) {
  TinyNet net;
  const TensorMap sd = state_dict(net);
  std::vector<std::string> keys;
  for (const auto& [k, v] : sd) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight", "running"}));
  EXPECT_FALSE(sd.at("fc1.weight").requires_grad());
  EXPECT_EQ(sd.at("fc1.weight").data_ptr(), net.fc1->weight.data_ptr()) << "shares storage";
}

TEST_F(SafetensorsTest, StateDictRoundTripsThroughAFile) {
  torch::manual_seed(1);
  TinyNet a, b;
  a.running.fill_(3.0f);
  const std::string path = file("model.safetensors");
  save_safetensors(path, state_dict(a));
  const LoadReport report = load_state_dict(b, load_safetensors(path).tensors, true, path);
  EXPECT_TRUE(report.ok()) << report.summary();
  expect_same(state_dict(a), state_dict(b));
  EXPECT_TRUE(b.fc1->weight.requires_grad()) << "parameters stay trainable";
}

TEST(StateDict, ConvertsDtypeOnLoad) {
  TinyNet a, b;
  TensorMap bf16;
  for (const auto& [k, v] : state_dict(a)) bf16[k] = v.to(torch::kBFloat16);
  EXPECT_TRUE(load_state_dict(b, bf16).ok());
  EXPECT_EQ(b.fc2->weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(b.fc2->weight, bf16.at("fc2.weight").to(torch::kFloat32)));
}

// fc2.bias missing, "extra" unexpected, fc1.weight transposed.
TensorMap faulty_state_dict(const TinyNet& source) {
  TensorMap sd = clone_all(state_dict(source));
  sd.erase("fc2.bias");
  sd["extra"] = torch::ones({1});
  sd["fc1.weight"] = sd["fc1.weight"].t().contiguous();
  return sd;
}

TEST(StateDict, ReportsMissingUnexpectedAndMismatched) {
  TinyNet a, b;
  const LoadReport report = load_state_dict(b, faulty_state_dict(a), /*strict=*/false);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.missing, std::vector<std::string>{"fc2.bias"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"extra"});
  EXPECT_EQ(report.mismatched, std::vector<std::string>{"fc1.weight: expected [4, 3], got [3, 4]"});
  EXPECT_EQ(report.summary(),
            "missing key(s): fc2.bias; unexpected key(s): extra; "
            "size mismatch: fc1.weight: expected [4, 3], got [3, 4]");
}

TEST(StateDict, StrictThrowsAndLeavesModuleUntouched) {
  TinyNet a, b;
  const TensorMap before = clone_all(state_dict(b));
  try {
    load_state_dict(b, faulty_state_dict(a), /*strict=*/true, "ckpt/model.safetensors");
    FAIL() << "no throw";
  } catch (const std::runtime_error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind("ckpt/model.safetensors: missing key(s): fc2.bias", 0), 0u) << what;
    EXPECT_CONTAINS(what, "unexpected key(s): extra");
    EXPECT_CONTAINS(what, "fc1.weight: expected [4, 3], got [3, 4]");
  }
  expect_same(state_dict(b), before);
}

TEST(StateDict, NonStrictLoadsMatchingKeys) {
  TinyNet a, b;
  const TensorMap before = clone_all(state_dict(b));
  load_state_dict(b, faulty_state_dict(a), /*strict=*/false);
  EXPECT_TRUE(torch::equal(b.fc1->bias, a.fc1->bias));
  EXPECT_TRUE(torch::equal(b.fc2->weight, a.fc2->weight));
  EXPECT_TRUE(torch::equal(b.fc1->weight, before.at("fc1.weight"))) << "mismatched key not copied";
  EXPECT_TRUE(torch::equal(b.fc2->bias, before.at("fc2.bias"))) << "missing key kept";
}

TEST(StateDict, SummaryTruncatesLongLists) {
  LoadReport report;
  for (int i = 0; i < 25; ++i) report.missing.push_back("h." + std::to_string(i) + ".w");
  const std::string s = report.summary();
  EXPECT_EQ(s.rfind("missing key(s): h.0.w, h.1.w", 0), 0u) << s;
  EXPECT_CONTAINS(s, ", ... (15 more)");
  EXPECT_EQ(s.find('\n'), std::string::npos);
  EXPECT_EQ(LoadReport{}.summary(), "all keys matched");
}

TEST(StateDict, TiedWeightsAppearOnce) {
  TiedNet a;
  ASSERT_EQ(a.lm_head->weight.data_ptr(), a.wte->weight.data_ptr());
  EXPECT_EQ(a.named_parameters().size(), 2u);
  const TensorMap sd = state_dict(a);
  EXPECT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd.count("wte.weight"), 1u);

  TiedNet b;
  const LoadReport report = load_state_dict(b, clone_all(sd));
  EXPECT_TRUE(report.ok()) << report.summary();
  EXPECT_TRUE(torch::equal(b.lm_head->weight, a.wte->weight));

  // A file that lists both names (as some exporters do) loads too.
  TensorMap both = clone_all(sd);
  both["lm_head.weight"] = both["wte.weight"];
  EXPECT_TRUE(load_state_dict(b, both).ok());
  // Neither name present: reported once, under the first name.
  EXPECT_EQ(load_state_dict(b, {}, /*strict=*/false).missing, std::vector<std::string>{"wte.weight"});
}

TEST(StateDict, EmptyTensorsAreNotMistakenForTiedWeights) {
  struct Empties : torch::nn::Module {
    Empties() {
      register_buffer("a", torch::empty({0}));
      register_buffer("b", torch::empty({0}));
    }
  } m;
  EXPECT_EQ(state_dict(m).size(), 2u);
}

}  // namespace
