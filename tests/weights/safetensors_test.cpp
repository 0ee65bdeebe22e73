// Tests for weights/: safetensors round trips, zero-copy loading, one test per malformed-file case
// (files built byte by byte), a write that hits the file-size limit, and state-dict loading.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <torch/torch.h>

#include "tests/test_util.h"
#include "weights/safetensors.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;
using attnzoo::testing::clone_tensors;
using attnzoo::testing::error_of;
using attnzoo::testing::expect_same_tensors;
using attnzoo::testing::FileSizeLimit;
using attnzoo::testing::write_bytes;
using attnzoo::weights::load_safetensors;
using attnzoo::weights::load_state_dict;
using attnzoo::weights::LoadReport;
using attnzoo::weights::Metadata;
using attnzoo::weights::save_safetensors;
using attnzoo::weights::state_dict;
using attnzoo::weights::TensorMap;

namespace {

using SafetensorsTest = attnzoo::testing::TempDirTest;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A safetensors file by hand: 8-byte little-endian header length, HEADER as given, then DATA.
void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  uint64_t n = header.size();
  std::string bytes(reinterpret_cast<const char*>(&n), 8);
  write_bytes(path, bytes + header + data);
}

// The error that loading PATH throws; it must name the file first.
std::string load_error(const std::string& path) {
  const std::string what = error_of<std::runtime_error>([&] { load_safetensors(path); });
  EXPECT_STARTS_WITH(what, path + ": ");
  return what;
}

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

  const std::string file = path("all.safetensors");
  save_safetensors(file, saved);
  const auto loaded = load_safetensors(file);

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
  const std::string file = path("layout.safetensors");
  save_safetensors(file, {{"b", torch::ones({3}, torch::kUInt8)}, {"a", torch::zeros({2}, torch::kFloat32)}});
  const std::string bytes = read_bytes(file);
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
  const std::string file = path("meta.safetensors");
  const Metadata metadata = {{"format", "pt"}, {"step", "1200"}, {"note", "quotes \" and ünïcode"}};
  save_safetensors(file, {{"w", torch::ones({2})}}, metadata);
  const auto loaded = load_safetensors(file);
  EXPECT_EQ(loaded.metadata, metadata);
  EXPECT_TRUE(torch::equal(loaded.tensors.at("w"), torch::ones({2})));
}

TEST_F(SafetensorsTest, ReadsAFileLaidOutByTheReferenceWriter) {
  // The Python library's layout: fields in dtype/shape/data_offsets order, metadata first.
  const std::string file = path("reference.safetensors");
  const float f[2] = {1.5f, -2.0f};
  const int32_t i[2] = {7, -9};
  std::string data(reinterpret_cast<const char*>(f), 8);
  data += std::string(reinterpret_cast<const char*>(i), 8);
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I32","shape":[1,2],"data_offsets":[8,16]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  write_raw(file, header, data);

  const auto loaded = load_safetensors(file);
  EXPECT_EQ(loaded.metadata, (Metadata{{"format", "pt"}}));
  EXPECT_TRUE(torch::equal(loaded.tensors.at("a"), torch::tensor({1.5f, -2.0f})));
  EXPECT_TRUE(torch::equal(loaded.tensors.at("b"), torch::tensor({{7, -9}}, torch::kInt32)));
}

TEST_F(SafetensorsTest, LoadsUnalignedDataByCopying) {
  // A 3-byte header puts the F32 data at file offset 11: not 4-byte aligned in the mapping.
  const std::string file = path("unaligned.safetensors");
  std::string header = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  if ((8 + header.size()) % 4 == 0) header += ' ';
  const float values[3] = {1.0f, 2.0f, 3.0f};
  write_raw(file, header, std::string(reinterpret_cast<const char*>(values), 12));
  const auto loaded = load_safetensors(file);
  const torch::Tensor& x = loaded.tensors.at("x");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data_ptr()) % 4, 0u);
  EXPECT_TRUE(torch::equal(x, torch::tensor({1.0f, 2.0f, 3.0f})));
}

TEST_F(SafetensorsTest, LoadIsZeroCopyAndWritesDoNotReachTheFile) {
  const std::string file = path("cow.safetensors");
  save_safetensors(file, {{"a", torch::arange(16, torch::kFloat32)}, {"b", torch::arange(8, torch::kFloat32)}});
  const std::string before = read_bytes(file);

  torch::Tensor a, b;
  {
    auto loaded = load_safetensors(file);
    a = loaded.tensors.at("a");
    b = loaded.tensors.at("b");
  }  // the tensors alone keep the mapping alive
  // Views into one mapping sit exactly as far apart as their data offsets ("a" [0, 64), "b" [64, 96)).
  EXPECT_EQ(static_cast<char*>(b.data_ptr()) - static_cast<char*>(a.data_ptr()), 64);
  EXPECT_TRUE(torch::equal(a, torch::arange(16, torch::kFloat32)));

  a.fill_(42.0f);
  a.add_(1.0f);
  EXPECT_EQ(a[3].item<float>(), 43.0f);
  EXPECT_EQ(read_bytes(file), before);
  EXPECT_TRUE(torch::equal(load_safetensors(file).tensors.at("a"), torch::arange(16, torch::kFloat32)));
}

TEST_F(SafetensorsTest, SaveRejectsUnsupportedDtypeNamingTheKey) {
  const std::string file = path("complex.safetensors");
  const std::string what = error_of<std::runtime_error>([&] {
    save_safetensors(file, {{"ok", torch::ones({2})}, {"z", torch::ones({2}, torch::kComplexFloat)}});
  });
  EXPECT_STARTS_WITH(what, file + ": ");
  EXPECT_CONTAINS(what, "\"z\"");
  EXPECT_CONTAINS(what, "unsupported dtype");
}

TEST_F(SafetensorsTest, MissingFile) {
  const std::string error = load_error(path("absent.safetensors"));
  EXPECT_CONTAINS(error, "cannot open: No such file or directory");
}

TEST_F(SafetensorsTest, FileShorterThanEightBytes) {
  const std::string file = path("short.safetensors");
  write_bytes(file, "abc");
  EXPECT_CONTAINS(load_error(file), "3 bytes, too short");
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFile) {
  const std::string file = path("long.safetensors");
  uint64_t n = 1000;
  write_bytes(file, std::string(reinterpret_cast<const char*>(&n), 8) + "{}");
  EXPECT_CONTAINS(load_error(file), "header length 1000 exceeds file size 10");
}

TEST_F(SafetensorsTest, HeaderLengthBeyondLimit) {
  const std::string file = path("huge.safetensors");
  uint64_t n = 1ull << 40;
  write_bytes(file, std::string(reinterpret_cast<const char*>(&n), 8) + "{}");
  EXPECT_CONTAINS(load_error(file), "exceeds the 100 MB limit");
}

TEST_F(SafetensorsTest, HeaderNotJson) {
  const std::string file = path("notjson.safetensors");
  write_raw(file, R"({"a": {"dtype": "F32",)", "");
  EXPECT_CONTAINS(load_error(file), "malformed header JSON");
}

TEST_F(SafetensorsTest, HeaderJsonNotAnObject) {
  const std::string file = path("array.safetensors");
  write_raw(file, "[1, 2, 3]", "");
  EXPECT_CONTAINS(load_error(file), "header is a JSON array, expected an object");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  const std::string file = path("dtype.safetensors");
  write_raw(file, R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "ab");
  const std::string error = load_error(file);
  EXPECT_CONTAINS(error, "tensor \"w\"");
  EXPECT_CONTAINS(error, "unknown dtype \"F8_E4M3\"");
}

TEST_F(SafetensorsTest, MissingDataOffsets) {
  const std::string file = path("nooffsets.safetensors");
  write_raw(file, R"({"w":{"dtype":"F32","shape":[1]}})", "abcd");
  EXPECT_CONTAINS(load_error(file), "tensor \"w\": missing \"data_offsets\"");
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  const std::string file = path("range.safetensors");
  write_raw(file, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0'));
  const std::string error = load_error(file);
  EXPECT_CONTAINS(error, "tensor \"w\"");
  EXPECT_CONTAINS(error, "outside the data section of 8 bytes");
}

TEST_F(SafetensorsTest, OffsetsReversed) {
  const std::string file = path("reversed.safetensors");
  write_raw(file, R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", std::string(8, '\0'));
  EXPECT_CONTAINS(load_error(file), "data_offsets [4,2] end before they begin");
}

TEST_F(SafetensorsTest, OverlappingOffsets) {
  const std::string file = path("overlap.safetensors");
  write_raw(file,
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            std::string(12, '\0'));
  EXPECT_CONTAINS(load_error(file), "tensors \"a\" [0, 8) and \"b\" [4, 12) overlap");
}

TEST_F(SafetensorsTest, ByteCountNotMatchingDtypeAndShape) {
  const std::string file = path("count.safetensors");
  write_raw(file, R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'));
  const std::string error = load_error(file);
  EXPECT_CONTAINS(error, "tensor \"w\"");
  EXPECT_CONTAINS(error, "needs 12 bytes");
}

TEST_F(SafetensorsTest, MetadataNotStringToString) {
  const std::string file = path("meta.safetensors");
  write_raw(file, R"({"__metadata__":{"format":"pt","step":1200}})", "");
  EXPECT_CONTAINS(load_error(file), "__metadata__ \"step\" is a JSON number, expected a string");
  write_raw(file, R"({"__metadata__":["pt"]})", "");
  EXPECT_CONTAINS(load_error(file), "__metadata__ is a JSON array, expected an object");
}

TEST_F(SafetensorsTest, NegativeShape) {
  const std::string file = path("negative.safetensors");
  write_raw(file, R"({"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,0]}})", "");
  const std::string error = load_error(file);
  EXPECT_CONTAINS(error, "tensor \"w\"");
  EXPECT_CONTAINS(error, "negative");
}

TEST_F(SafetensorsTest, WriteBeyondFileSizeLimitFailsCleanly) {
  const std::string file = path("big.safetensors");
  const torch::Tensor big = torch::ones({1 << 20});  // 4 MiB
  std::string error;
  {
    FileSizeLimit limit(1 << 20);
    ASSERT_TRUE(limit.ok()) << std::strerror(errno);
    error = error_of<std::runtime_error>([&] { save_safetensors(file, {{"big", big}}); });
  }
  EXPECT_CONTAINS(error, file + ": write failed: File too large");
  EXPECT_FALSE(fs::exists(file)) << "a partial file is removed";
  save_safetensors(file, {{"big", big}});  // the limit is restored
  EXPECT_TRUE(torch::equal(load_safetensors(file).tensors.at("big"), big));
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
  const std::string file = path("model.safetensors");
  save_safetensors(file, state_dict(a));
  const LoadReport report = load_state_dict(b, load_safetensors(file).tensors, true, file);
  EXPECT_TRUE(report.ok()) << report.summary();
  expect_same_tensors(state_dict(a), state_dict(b));
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
  TensorMap sd = clone_tensors(state_dict(source));
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
  const TensorMap before = clone_tensors(state_dict(b));
  const std::string what = error_of<std::runtime_error>(
      [&] { load_state_dict(b, faulty_state_dict(a), /*strict=*/true, "ckpt/model.safetensors"); });
  EXPECT_STARTS_WITH(what, "ckpt/model.safetensors: missing key(s): fc2.bias");
  EXPECT_CONTAINS(what, "unexpected key(s): extra");
  EXPECT_CONTAINS(what, "fc1.weight: expected [4, 3], got [3, 4]");
  expect_same_tensors(state_dict(b), before);
}

TEST(StateDict, NonStrictLoadsMatchingKeys) {
  TinyNet a, b;
  const TensorMap before = clone_tensors(state_dict(b));
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
  EXPECT_STARTS_WITH(s, "missing key(s): h.0.w, h.1.w");
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
  const LoadReport report = load_state_dict(b, clone_tensors(sd));
  EXPECT_TRUE(report.ok()) << report.summary();
  EXPECT_TRUE(torch::equal(b.lm_head->weight, a.wte->weight));

  // A file that lists both names (as some exporters do) loads too.
  TensorMap both = clone_tensors(sd);
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
