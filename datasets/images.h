// Image classification data: readers for MNIST-style idx files (Fashion-MNIST, plain or .gz),
// CIFAR-10's binary batches and ImageFolder trees (one folder per class, JPEG/PNG via OpenCV);
// the transforms ViTs train with (resize, random resized crop, horizontal flip, normalisation);
// and a batcher that builds batches in background threads.
//
// Reproducibility: the order of training samples is a seeded permutation per epoch, and every
// random choice of an augmentation is drawn from a generator seeded by (seed, epoch, position),
// so batch n is a pure function of (seed, n) and a resumed run sees exactly the batches an
// uninterrupted run would.
//
// Shape letters: N samples, B batch, C channels, H, W height and width.
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace attnzoo::datasets {

// A labelled image set, held in memory (idx, CIFAR: `pixels`) or as files decoded on demand
// (ImageFolder: `files`).
struct ImageDataset {
  std::string source;                // the directory or file it came from, for messages
  std::string format;                // "idx", "cifar10", "imagefolder" or "digits"
  std::vector<std::string> classes;  // class names; a label is an index into this
  torch::Tensor pixels;              // (N, C, H, W) uint8, or undefined for files
  std::vector<std::string> files;    // ImageFolder: one path per sample
  std::vector<int64_t> labels;       // (N)
  std::vector<std::string> skipped;  // ImageFolder: unreadable files left out, "PATH: reason"

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  // Sample i as a (C, H, W) uint8 tensor (C = 1 or 3, RGB order). Throws std::runtime_error naming
  // the file when an ImageFolder file cannot be decoded.
  torch::Tensor image(int64_t i) const;
};

// MNIST idx files: images (magic 0x00000803, N × rows × cols uint8) and labels (magic 0x00000801,
// N uint8). A ".gz" name is decompressed. Throws std::runtime_error "FILE: ..." for a missing file,
// a wrong magic number, or a size that disagrees with the header.
torch::Tensor read_idx_images(const std::string& path);  // (N, 1, rows, cols) uint8
std::vector<int64_t> read_idx_labels(const std::string& path);

// CIFAR-10 binary batches: records of 1 label byte + 3072 bytes (3 × 32 × 32, RGB planes).
// Appends to `out`; throws "FILE: ..." for a size that is not a whole number of records or a label > 9.
void read_cifar10_batch(const std::string& path, ImageDataset& out);

// scikit-learn's digits (digits.csv[.gz]): one 8×8 image per line, 64 comma-separated pixel values
// in 0..16 then the label 0..9 (1797 lines in the published file). Pixels are scaled to 0..255.
// Throws "FILE: line N: ..." for a line without 65 numbers, a pixel outside 0..16 or a label
// outside 0..9, and "FILE: ..." for an empty file.
ImageDataset read_digits_csv(const std::string& path);
// Reads an image file (JPEG, PNG, ... through OpenCV) as (C, H, W) uint8, C = 1 for grayscale and
// 3 (RGB) otherwise. Throws std::runtime_error "FILE: ..." when it cannot be decoded or a JPEG is
// truncated (no end-of-image marker), and when OpenCV is not built in.
torch::Tensor read_image_file(const std::string& path);

// ImageFolder: DIR/<class>/<image>, classes sorted by name. Unreadable or truncated files are
// skipped and listed in `skipped` (strict: the first one throws). A class folder without images,
// or a DIR without class folders, throws naming the folder.
ImageDataset read_image_folder(const std::string& dir, bool strict = false);

// One split of a data directory, detected by its contents:
//   idx:         DIR/{train,t10k}-images-idx3-ubyte[.gz] + -labels-idx1-ubyte[.gz]
//   cifar10:     DIR[/cifar-10-batches-bin]/data_batch_{1..5}.bin, test_batch.bin
//   imagefolder: DIR/train/<class>/..., DIR/{val,test}/<class>/...
//   digits:      DIR/digits.csv[.gz]; it has no split of its own: the first 80 % of the lines
//                (1437 of 1797) are train, the rest test
// split is "train" or "test" ("val" is a synonym). Throws std::runtime_error naming DIR and what
// was expected when none matches.
ImageDataset open_image_dataset(const std::string& dir, const std::string& split, bool strict = false);

// N samples of DATA chosen by a permutation seeded by SEED (the same N and seed, the same subset),
// e.g. a small labelled subset for transfer experiments. N >= size() returns DATA unchanged.
ImageDataset subset(const ImageDataset& data, int64_t n, uint64_t seed);

// Fashion-MNIST's ten class names (T-shirt/top, Trouser, ... Ankle boot) and CIFAR-10's.
const std::vector<std::string>& fashion_mnist_classes();
const std::vector<std::string>& cifar10_classes();

struct ImageTransform {
  int64_t size = 0;                  // output height = width; 0 = keep each image's size
  int64_t channels = 0;              // output C: 1 (luma) or 3 (gray repeated); 0 = as stored
  std::vector<double> mean{0.5};     // per channel (one value = every channel), on [0, 1] pixels
  std::vector<double> std{0.5};
  std::string interpolation = "bilinear";  // bilinear | bicubic | nearest
  double crop_pct = 1.0;             // eval: resize the short side to size / crop_pct, centre crop size
  // Training augmentation (timm / torchvision RandomResizedCrop + RandomHorizontalFlip):
  bool random_resized_crop = false;
  double scale_min = 0.08, scale_max = 1.0;        // crop area as a fraction of the image
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  bool hflip = false;                // flip with probability 1/2

  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ImageTransform, size, channels, mean, std, interpolation, crop_pct,
                                                random_resized_crop, scale_min, scale_max, ratio_min, ratio_max, hflip)

// A (C, H, W) uint8 image -> (C', size, size) float, normalised. With train, the random crop and
// flip are drawn from a generator seeded by `seed` (the same seed gives the same augmentation);
// without, the deterministic eval path (resize + centre crop by crop_pct).
torch::Tensor transform_image(const torch::Tensor& image, const ImageTransform& tf, bool train, uint64_t seed);

// A normalised (C, H, W) float image back to (H, W, 3) uint8 RGB, for pictures.
torch::Tensor denormalize_to_rgb(const torch::Tensor& image, const ImageTransform& tf);

struct ImageBatch {
  torch::Tensor images;          // (B, C, H, W) float
  torch::Tensor labels;          // (B) int64
  std::vector<int64_t> indices;  // dataset indices of the samples
};

// Batches of a dataset with its transform. train: batch n holds global positions n·B .. n·B+B−1
// of the endless sequence "epoch e = a seeded permutation of 0..N−1", augmented; eval: batch n
// holds samples n·B .. min(N, n·B+B)−1 in order (the last one may be short; n beyond the end
// wraps around). `workers` threads prepare the next batches in the background while the caller
// trains on this one; 0 = build each batch on the calling thread.
class ImageBatcher {
 public:
  ImageBatcher(const ImageDataset& data, ImageTransform tf, int64_t batch_size, bool train, uint64_t seed,
               int workers = 2);
  ~ImageBatcher();
  ImageBatcher(const ImageBatcher&) = delete;
  ImageBatcher& operator=(const ImageBatcher&) = delete;

  // Batch n; calls with n, n+1, n+2, ... are served from the background queue.
  ImageBatch get(int64_t n);
  // Builds batch n on the calling thread (what get returns, without the queue).
  ImageBatch build(int64_t n) const;
  // Eval batches that cover the dataset once.
  int64_t batches_per_epoch() const { return (data_.size() + B_ - 1) / B_; }
  // The dataset index at global training position `pos` (epoch = pos / N).
  int64_t train_index(int64_t pos) const;

 private:
  const ImageDataset& data_;
  ImageTransform tf_;
  int64_t B_;
  bool train_;
  uint64_t seed_;
  int workers_;
  std::deque<std::pair<int64_t, std::future<ImageBatch>>> queue_;
};

}  // namespace attnzoo::datasets
