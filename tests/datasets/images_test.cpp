// Tests for datasets/images: idx, CIFAR-10 and ImageFolder readers on fixtures written here (and
// their bad-input messages), the transforms, and the batcher's reproducible, resumable order.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <set>

#include <torch/torch.h>

#include "datasets/images.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using attnzoo::testing::error_of;
using attnzoo::testing::write_bytes;
using namespace attnzoo::datasets;

namespace {

using ImagesTest = attnzoo::testing::TempDirTest;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// N images of r × c with pixel value (i * 10 + k) % 256, and labels i % 3.
std::string idx_images(int n, int r, int c) {
  std::string s = be32(0x803) + be32(n) + be32(r) + be32(c);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < r * c; ++k) s += static_cast<char>((i * 10 + k) % 256);
  return s;
}
std::string idx_labels(int n) {
  std::string s = be32(0x801) + be32(n);
  for (int i = 0; i < n; ++i) s += static_cast<char>(i % 3);
  return s;
}

void write_gz(const fs::path& p, const std::string& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

// A binary PPM (P6) of w × h filled with one RGB colour: OpenCV reads it without a codec library.
std::string ppm(int w, int h, unsigned char r, unsigned char g, unsigned char b) {
  std::string s = "P6\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
  for (int i = 0; i < w * h; ++i) s += std::string{static_cast<char>(r), static_cast<char>(g), static_cast<char>(b)};
  return s;
}

TEST_F(ImagesTest, IdxRoundTripPlainAndGzip) {
  write_bytes(path("train-images-idx3-ubyte"), idx_images(5, 2, 3));
  write_gz(path("train-labels-idx1-ubyte.gz"), idx_labels(5));
  auto px = read_idx_images(path("train-images-idx3-ubyte"));
  EXPECT_EQ(px.sizes(), (std::vector<int64_t>{5, 1, 2, 3}));
  EXPECT_EQ(px[4][0][1][2].item<int>(), (4 * 10 + 5) % 256);
  EXPECT_EQ(read_idx_labels(path("train-labels-idx1-ubyte.gz")), (std::vector<int64_t>{0, 1, 2, 0, 1}));
  auto ds = open_image_dataset(dir_.string(), "train");
  EXPECT_EQ(ds.format, "idx");
  EXPECT_EQ(ds.size(), 5);
  EXPECT_EQ(ds.classes.size(), 10u);
  EXPECT_TRUE(torch::equal(ds.image(2), px[2]));
  // A seeded subset: the same images and labels for the same seed.
  auto sub = subset(ds, 3, 11), again = subset(ds, 3, 11);
  ASSERT_EQ(sub.size(), 3);
  EXPECT_EQ(sub.labels, again.labels);
  EXPECT_TRUE(torch::equal(sub.pixels, again.pixels));
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(sub.image(i)[0][0][0].item<int>() / 10 % 3, sub.labels[i]);
  EXPECT_EQ(subset(ds, 0, 11).size(), 5);
}

TEST_F(ImagesTest, IdxBadInputNamesTheFile) {
  write_bytes(path("labels-as-images"), idx_labels(4));
  auto e = error_of<std::runtime_error>([&] { read_idx_images(path("labels-as-images")); });
  EXPECT_CONTAINS(e, path("labels-as-images"));
  EXPECT_CONTAINS(e, "wrong magic number 0x00000801");
  auto short_file = idx_images(3, 4, 4);
  short_file.resize(short_file.size() - 5);
  write_bytes(path("short"), short_file);
  e = error_of<std::runtime_error>([&] { read_idx_images(path("short")); });
  EXPECT_CONTAINS(e, path("short"));
  EXPECT_CONTAINS(e, "header says 3 images of 4x4");
  e = error_of<std::runtime_error>([&] { read_idx_labels(path("missing")); });
  EXPECT_CONTAINS(e, "no such file");
  // Images and labels that disagree in count.
  write_bytes(path("t10k-images-idx3-ubyte"), idx_images(3, 2, 2));
  write_bytes(path("t10k-labels-idx1-ubyte"), idx_labels(4));
  e = error_of<std::runtime_error>([&] { open_image_dataset(dir_.string(), "test"); });
  EXPECT_CONTAINS(e, "4 labels for 3 images");
  e = error_of<std::runtime_error>([&] { open_image_dataset(dir_.string(), "train"); });
  EXPECT_CONTAINS(e, "no train data found");
}

// scikit-learn's digits lines: 64 pixels 0..16, then the label.
std::string digits_line(int i) {
  std::string s;
  for (int k = 0; k < 64; ++k) s += std::to_string((i + k) % 17) + ",";
  return s + std::to_string(i % 10) + "\n";
}

TEST_F(ImagesTest, DigitsCsvReadsScalesAndSplits) {
  std::string csv;
  for (int i = 0; i < 10; ++i) csv += digits_line(i);
  write_gz(path("digits.csv.gz"), csv);
  auto all = read_digits_csv(path("digits.csv.gz"));
  EXPECT_EQ(all.format, "digits");
  ASSERT_EQ(all.size(), 10);
  EXPECT_EQ(all.pixels.sizes(), (std::vector<int64_t>{10, 1, 8, 8}));
  EXPECT_EQ(all.classes.size(), 10u);
  EXPECT_EQ(all.labels[7], 7);
  // Pixel k of image i is (i + k) % 17 on 0..16, scaled to 0..255.
  EXPECT_EQ(all.pixels[3][0][1][2].item<int>(), static_cast<int>(std::lround(((3 + 10) % 17) * 255.0 / 16.0)));
  EXPECT_EQ(all.pixels[0][0][2][0].item<int>(), 255);  // k = 16: value 16
  // The data directory's split: the first 80 % train, the rest test, in file order.
  auto train = open_image_dataset(dir_.string(), "train"), test = open_image_dataset(dir_.string(), "test");
  EXPECT_EQ(train.size(), 8);
  ASSERT_EQ(test.size(), 2);
  EXPECT_EQ(test.labels, (std::vector<int64_t>{8, 9}));
  EXPECT_TRUE(torch::equal(test.image(1), all.pixels[9]));
}

TEST_F(ImagesTest, DigitsCsvBadLinesNameFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {digits_line(0) + "1,2,3\n", "line 2: 3 values"},
      {digits_line(0).replace(0, 1, "x"), "line 1: 'x' is not a number"},
      {digits_line(0).replace(0, 1, "17"), "pixel 0 is outside 0..16"},
      {digits_line(3).substr(0, digits_line(3).size() - 2) + "12\n", "label must be 0..9"},
      {"", "no digits"},
  };
  for (const auto& [text, message] : cases) {
    write_bytes(path("bad.csv"), text);
    const auto e = error_of<std::runtime_error>([&] { read_digits_csv(path("bad.csv")); });
    EXPECT_CONTAINS(e, path("bad.csv"));
    EXPECT_CONTAINS(e, message);
  }
}

TEST_F(ImagesTest, Cifar10Batches) {
  std::string rec;
  for (int i = 0; i < 2; ++i) {
    rec += static_cast<char>(7 + i);
    for (int k = 0; k < 3072; ++k) rec += static_cast<char>(k / 1024 * 100 + i);  // R, G, B planes
  }
  write_bytes(path("test_batch.bin"), rec);
  auto ds = open_image_dataset(dir_.string(), "test");
  EXPECT_EQ(ds.format, "cifar10");
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.labels, (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(ds.image(1)[2][5][5].item<int>(), 201);
  EXPECT_EQ(ds.classes[7], "horse");
  write_bytes(path("test_batch.bin"), rec.substr(0, 3000));
  EXPECT_CONTAINS(error_of<std::runtime_error>([&] { open_image_dataset(dir_.string(), "test"); }),
                  "not a whole number of CIFAR-10 records");
}

TEST_F(ImagesTest, ImageFolderSkipsBadFilesAndRefusesEmptyClasses) {
  fs::create_directories(dir_ / "train" / "cat");
  fs::create_directories(dir_ / "train" / "dog");
  write_bytes(dir_ / "train" / "cat" / "a.ppm", ppm(6, 4, 255, 0, 0));
  write_bytes(dir_ / "train" / "cat" / "notes.txt", "not an image, ignored by extension");
  write_bytes(dir_ / "train" / "dog" / "b.ppm", ppm(6, 4, 0, 0, 255));
  write_bytes(dir_ / "train" / "dog" / "broken.png", "garbage");
  write_bytes(dir_ / "train" / "dog" / "cut.jpg", std::string("\xFF\xD8\xFF\xE0", 4) + std::string(100, 'x'));
  auto ds = open_image_dataset(dir_.string(), "train");
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds.size(), 2);
  ASSERT_EQ(ds.skipped.size(), 2u);
  EXPECT_CONTAINS(ds.skipped[0] + ds.skipped[1], "broken.png");
  EXPECT_CONTAINS(ds.skipped[0] + ds.skipped[1], "cut.jpg: truncated JPEG");
  auto red = ds.image(0);
  EXPECT_EQ(red.sizes(), (std::vector<int64_t>{3, 4, 6}));
  EXPECT_EQ(red[0][0][0].item<int>(), 255);  // RGB order, not OpenCV's BGR
  EXPECT_EQ(red[2][0][0].item<int>(), 0);
  auto e = error_of<std::runtime_error>([&] { open_image_dataset(dir_.string(), "train", /*strict=*/true); });
  EXPECT_CONTAINS(e, "broken.png");
  EXPECT_CONTAINS(e, "--strict-data");
  fs::create_directories(dir_ / "train" / "empty");
  e = error_of<std::runtime_error>([&] { open_image_dataset(dir_.string(), "train"); });
  EXPECT_CONTAINS(e, (dir_ / "train" / "empty").string() + ": class folder without images");
}

TEST(ImageTransform, NormalisesResizesAndAugmentsReproducibly) {
  auto img = torch::arange(0, 2 * 16 * 16, torch::kInt).remainder(256).to(torch::kUInt8).view({2, 16, 16}).narrow(0, 0, 1);
  ImageTransform tf;
  tf.mean = {0.5}, tf.std = {0.25};
  auto x = transform_image(img, tf, false, 0);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{1, 16, 16}));
  EXPECT_NEAR(x[0][0][0].item<float>(), (0.0 - 0.5) / 0.25, 1e-6);
  EXPECT_NEAR(x[0][1][3].item<float>(), (19 / 255.0 - 0.5) / 0.25, 1e-6);
  tf.size = 8, tf.channels = 3;
  EXPECT_EQ(transform_image(img, tf, false, 0).sizes(), (std::vector<int64_t>{3, 8, 8}));
  tf.random_resized_crop = true, tf.hflip = true;
  auto a = transform_image(img, tf, true, 42), b = transform_image(img, tf, true, 42);
  EXPECT_TRUE(torch::equal(a, b));
  bool any_differs = false;
  for (uint64_t s = 1; s < 6; ++s) any_differs |= !torch::equal(a, transform_image(img, tf, true, s));
  EXPECT_TRUE(any_differs);
  tf.std = {0.0};
  EXPECT_CONTAINS(error_of<std::invalid_argument>([&] { tf.validate(); }), "std values must be positive");
}

TEST(ImageBatcher, EpochsArePermutationsAndBatchesArePureFunctionsOfTheStep) {
  ImageDataset ds;
  ds.source = "synthetic";
  ds.pixels = torch::arange(10, torch::kInt).to(torch::kUInt8).view({10, 1, 1, 1}).expand({10, 1, 4, 4}).contiguous();
  for (int i = 0; i < 10; ++i) ds.labels.push_back(i);
  ImageTransform tf;
  tf.size = 4, tf.random_resized_crop = true, tf.hflip = true;
  ImageBatcher a(ds, tf, 4, /*train=*/true, 7, /*workers=*/2);
  std::vector<ImageBatch> seq;
  for (int n = 0; n < 6; ++n) seq.push_back(a.get(n));
  // Each epoch (10 positions) visits every sample once.
  std::multiset<int64_t> epoch0;
  for (int pos = 0; pos < 10; ++pos) epoch0.insert(a.train_index(pos));
  EXPECT_EQ(epoch0, (std::multiset<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(seq[0].indices[0], a.train_index(0));
  EXPECT_EQ(seq[2].indices[2], a.train_index(10));  // batch 2 crosses into epoch 1
  EXPECT_NE(a.train_index(10) * 100 + a.train_index(11), a.train_index(0) * 100 + a.train_index(1));
  // A fresh batcher (a resumed run) starting at batch 4 sees exactly what the first one saw.
  ImageBatcher b(ds, tf, 4, true, 7, 2);
  for (int n = 4; n < 6; ++n) {
    auto x = b.get(n);
    EXPECT_EQ(x.indices, seq[n].indices);
    EXPECT_TRUE(torch::equal(x.images, seq[n].images));
    EXPECT_TRUE(torch::equal(x.labels, seq[n].labels));
  }
  // Eval: in order, the last batch short, then wrapping around.
  ImageBatcher e(ds, tf, 4, false, 7, 0);
  EXPECT_EQ(e.batches_per_epoch(), 3);
  EXPECT_EQ(e.get(2).indices, (std::vector<int64_t>{8, 9}));
  EXPECT_EQ(e.get(3).indices, (std::vector<int64_t>{0, 1, 2, 3}));
}

}  // namespace
