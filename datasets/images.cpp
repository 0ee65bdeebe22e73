#include "datasets/images.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string_view>

#ifdef ATTNZOO_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace attnzoo::datasets {
namespace fs = std::filesystem;
namespace {

// The whole file; ".gz" files are decompressed (zlib's gzread also passes plain files through).
std::string read_maybe_gz(const std::string& path) {
  if (!fs::exists(path)) throw std::runtime_error(path + ": no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      const std::string msg = gzerror(f, &err);
      gzclose(f);
      throw std::runtime_error(path + ": read failed (" + msg + ")");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

uint32_t big_endian_u32(const std::string& s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// splitmix64: the seeds of permutations and augmentations, mixed from (seed, a, b).
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
uint64_t mix(uint64_t seed, uint64_t a, uint64_t b = 0) { return mix(mix(mix(seed) ^ a) ^ b); }

// A small deterministic generator (splitmix64 stream) with uniform doubles and integers.
struct Rng {
  uint64_t state;
  uint64_t next() { return state = mix(state); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }  // [0, n)
};

bool has_image_extension(const fs::path& p) {
  static const std::set<std::string> exts{".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".webp",
                                          ".tif", ".tiff"};
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return exts.count(e) > 0;
}

torch::Tensor resize(const torch::Tensor& x, int64_t h, int64_t w, const std::string& mode) {
  // x: (1, C, H, W) float
  if (x.size(2) == h && x.size(3) == w) return x;
  namespace F = torch::nn::functional;
  // Antialiased when shrinking, as PIL's resize that timm's and torchvision's transforms use.
  const bool shrink = h < x.size(2) || w < x.size(3);
  auto opt = F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w});
  if (mode == "nearest") return F::interpolate(x, opt.mode(torch::kNearest));
  if (mode == "bicubic") return F::interpolate(x, opt.mode(torch::kBicubic).align_corners(false).antialias(shrink)).clamp(0.0, 1.0);
  return F::interpolate(x, opt.mode(torch::kBilinear).align_corners(false).antialias(shrink));
}

// The order of epoch `epoch`: Fisher-Yates on a generator seeded by (seed, epoch).
std::vector<int64_t> epoch_permutation(uint64_t seed, int64_t epoch, int64_t N) {
  std::vector<int64_t> perm(static_cast<size_t>(N));
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng{mix(seed, 0xe90c, static_cast<uint64_t>(epoch))};
  for (int64_t i = N - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
  return perm;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  return names;
}

const std::vector<std::string>& cifar10_classes() {
  static const std::vector<std::string> names{"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};
  return names;
}

torch::Tensor read_idx_images(const std::string& path) {
  const std::string s = read_maybe_gz(path);
  const uint32_t magic = s.size() >= 4 ? big_endian_u32(s, 0) : 0;
  if (magic != 0x00000803)
    throw std::runtime_error(path + ": wrong magic number " + hex32(magic) +
                             " (an idx image file starts with 0x00000803; labels are 0x00000801)");
  if (s.size() < 16) throw std::runtime_error(path + ": too short for an idx image header (" + std::to_string(s.size()) + " bytes)");
  const int64_t n = big_endian_u32(s, 4), rows = big_endian_u32(s, 8), cols = big_endian_u32(s, 12);
  const int64_t expected = 16 + n * rows * cols;
  if (static_cast<int64_t>(s.size()) != expected)
    throw std::runtime_error(path + ": size " + std::to_string(s.size()) + " bytes, but the header says " +
                             std::to_string(n) + " images of " + std::to_string(rows) + "x" + std::to_string(cols) +
                             " (" + std::to_string(expected) + " bytes)");
  auto t = torch::empty({n, 1, rows, cols}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), s.data() + 16, static_cast<size_t>(n * rows * cols));
  return t;
}

std::vector<int64_t> read_idx_labels(const std::string& path) {
  const std::string s = read_maybe_gz(path);
  const uint32_t magic = s.size() >= 4 ? big_endian_u32(s, 0) : 0;
  if (magic != 0x00000801)
    throw std::runtime_error(path + ": wrong magic number " + hex32(magic) +
                             " (an idx label file starts with 0x00000801; images are 0x00000803)");
  if (s.size() < 8) throw std::runtime_error(path + ": too short for an idx label header (" + std::to_string(s.size()) + " bytes)");
  const int64_t n = big_endian_u32(s, 4);
  if (static_cast<int64_t>(s.size()) != 8 + n)
    throw std::runtime_error(path + ": size " + std::to_string(s.size()) + " bytes, but the header says " +
                             std::to_string(n) + " labels (" + std::to_string(8 + n) + " bytes)");
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<unsigned char>(s[8 + i]);
  return labels;
}

void read_cifar10_batch(const std::string& path, ImageDataset& out) {
  const std::string s = read_maybe_gz(path);
  constexpr int64_t rec = 1 + 3 * 32 * 32;
  if (s.empty() || s.size() % rec != 0)
    throw std::runtime_error(path + ": size " + std::to_string(s.size()) + " bytes is not a whole number of CIFAR-10 records (" +
                             std::to_string(rec) + " bytes each)");
  const int64_t n = static_cast<int64_t>(s.size()) / rec;
  auto px = torch::empty({n, 3, 32, 32}, torch::kUInt8);
  auto* dst = px.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = static_cast<unsigned char>(s[i * rec]);
    if (label > 9) throw std::runtime_error(path + ": record " + std::to_string(i) + " has label " + std::to_string(label) + " (CIFAR-10 labels are 0..9)");
    out.labels.push_back(label);
    std::memcpy(dst + i * (rec - 1), s.data() + i * rec + 1, rec - 1);
  }
  out.pixels = out.pixels.defined() ? torch::cat({out.pixels, px}) : px;
}

ImageDataset read_digits_csv(const std::string& path) {
  const std::string s = read_maybe_gz(path);
  ImageDataset out;
  out.source = path;
  out.format = "digits";
  for (int c = 0; c < 10; ++c) out.classes.push_back(std::to_string(c));
  std::vector<uint8_t> px;
  std::size_t line_no = 0;
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t end = s.find('\n', pos);
    if (end == std::string::npos) end = s.size();
    std::string_view line(s.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const std::string where = path + ": line " + std::to_string(line_no) + ": ";
    std::vector<double> v;
    for (std::size_t f = 0; f <= line.size();) {
      std::size_t comma = line.find(',', f);
      if (comma == std::string_view::npos) comma = line.size();
      const std::string field(line.substr(f, comma - f));
      char* stop = nullptr;
      const double x = std::strtod(field.c_str(), &stop);
      if (field.empty() || stop != field.c_str() + field.size() || !std::isfinite(x))
        throw std::runtime_error(where + "'" + field + "' is not a number");
      v.push_back(x);
      f = comma + 1;
    }
    if (v.size() != 65)
      throw std::runtime_error(where + std::to_string(v.size()) + " values (a digits line has 64 pixels and a label)");
    for (int i = 0; i < 64; ++i) {
      if (v[i] < 0 || v[i] > 16) throw std::runtime_error(where + "pixel " + std::to_string(i) + " is outside 0..16");
      px.push_back(static_cast<uint8_t>(std::lround(v[i] * 255.0 / 16.0)));
    }
    if (v[64] != std::floor(v[64]) || v[64] < 0 || v[64] > 9)
      throw std::runtime_error(where + "label must be 0..9");
    out.labels.push_back(static_cast<int64_t>(v[64]));
  }
  if (out.labels.empty()) throw std::runtime_error(path + ": no digits (an empty file)");
  out.pixels = torch::from_blob(px.data(), {out.size(), 1, 8, 8}, torch::kUInt8).clone();
  return out;
}

torch::Tensor read_image_file(const std::string& path) {
#ifndef ATTNZOO_HAVE_OPENCV
  throw std::runtime_error(path + ": reading image files needs OpenCV (built with ATTNZOO_WITH_OPENCV=OFF)");
#else
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (bytes.empty()) throw std::runtime_error(path + ": empty file");
  // libjpeg decodes a truncated JPEG into a partly grey image with only a warning: require the
  // end-of-image marker (FF D9) near the end instead.
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0xFF && static_cast<unsigned char>(bytes[1]) == 0xD8) {
    const size_t tail = std::min<size_t>(bytes.size(), 64);
    if (bytes.substr(bytes.size() - tail).find("\xFF\xD9") == std::string::npos)
      throw std::runtime_error(path + ": truncated JPEG (no end-of-image marker)");
  }
  cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat img;
  try {
    img = cv::imdecode(raw, cv::IMREAD_ANYCOLOR);
  } catch (const cv::Exception& e) {
    throw std::runtime_error(path + ": cannot decode image (" + e.msg + ")");
  }
  if (img.empty()) throw std::runtime_error(path + ": cannot decode image (not an image, or truncated)");
  if (img.depth() != CV_8U) img.convertTo(img, CV_8U, img.depth() == CV_16U ? 1.0 / 257.0 : 1.0);
  if (img.channels() == 4) cv::cvtColor(img, img, cv::COLOR_BGRA2RGB);
  else if (img.channels() == 3) cv::cvtColor(img, img, cv::COLOR_BGR2RGB);
  const int64_t C = img.channels(), H = img.rows, W = img.cols;
  // (H, W, C) -> (C, H, W), a copy that owns its memory
  return torch::from_blob(img.data, {H, W, C}, torch::kUInt8).permute({2, 0, 1}).contiguous();
#endif
}

torch::Tensor ImageDataset::image(int64_t i) const {
  TORCH_CHECK(i >= 0 && i < size(), "image index ", i, " out of range for ", size(), " images of ", source);
  if (pixels.defined()) return pixels[i];
  return read_image_file(files[static_cast<size_t>(i)]);
}

ImageDataset read_image_folder(const std::string& dir, bool strict) {
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": no such directory");
  ImageDataset out;
  out.source = dir;
  out.format = "imagefolder";
  std::vector<fs::path> class_dirs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) class_dirs.push_back(e.path());
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.empty())
    throw std::runtime_error(dir + ": no class folders (ImageFolder expects DIR/<class>/<image files>)");
  for (const auto& cdir : class_dirs) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(cdir))
      if (e.is_regular_file() && has_image_extension(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw std::runtime_error(cdir.string() + ": class folder without images (.jpg, .jpeg, .png, .bmp, .ppm, .pgm, .webp, .tif)");
    const int64_t label = static_cast<int64_t>(out.classes.size());
    out.classes.push_back(cdir.filename().string());
    for (const auto& f : files) {
      try {
        (void)read_image_file(f.string());
      } catch (const std::runtime_error& e) {
        if (strict) throw std::runtime_error(std::string(e.what()) + " (--strict-data)");
        out.skipped.push_back(e.what());
        continue;
      }
      out.files.push_back(f.string());
      out.labels.push_back(label);
    }
  }
  if (out.files.empty()) throw std::runtime_error(dir + ": no readable images (" + std::to_string(out.skipped.size()) + " skipped)");
  return out;
}

ImageDataset open_image_dataset(const std::string& dir, const std::string& split, bool strict) {
  if (split != "train" && split != "test" && split != "val")
    throw std::invalid_argument("split must be train, test or val, got '" + split + "'");
  if (!fs::is_directory(dir)) throw std::runtime_error(dir + ": no such data directory");
  const fs::path d(dir);
  const bool train = split == "train";
  auto find = [&](const std::string& name) -> std::string {
    for (const auto& cand : {d / name, d / (name + ".gz")})
      if (fs::exists(cand)) return cand.string();
    return {};
  };
  // idx (MNIST, Fashion-MNIST)
  const std::string prefix = train ? "train" : "t10k";
  const std::string img = find(prefix + "-images-idx3-ubyte"), lab = find(prefix + "-labels-idx1-ubyte");
  if (!img.empty() || !lab.empty()) {
    if (img.empty() || lab.empty())
      throw std::runtime_error(dir + ": has " + (img.empty() ? lab : img) + " but not its " +
                               (img.empty() ? "images" : "labels") + " file");
    ImageDataset out;
    out.source = dir;
    out.format = "idx";
    out.pixels = read_idx_images(img);
    out.labels = read_idx_labels(lab);
    if (static_cast<int64_t>(out.labels.size()) != out.pixels.size(0))
      throw std::runtime_error(lab + ": " + std::to_string(out.labels.size()) + " labels for " +
                               std::to_string(out.pixels.size(0)) + " images in " + img);
    const int64_t n_classes = out.labels.empty() ? 0 : *std::max_element(out.labels.begin(), out.labels.end()) + 1;
    std::string lower = fs::absolute(d).string();
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.find("fashion") != std::string::npos && n_classes <= 10) {
      out.classes = fashion_mnist_classes();
    } else {
      for (int64_t c = 0; c < std::max<int64_t>(n_classes, 10); ++c) out.classes.push_back(std::to_string(c));
    }
    return out;
  }
  // CIFAR-10 binary
  for (const auto& cd : {d, d / "cifar-10-batches-bin"}) {
    if (!fs::exists(cd / "test_batch.bin") && !fs::exists(cd / "data_batch_1.bin")) continue;
    ImageDataset out;
    out.source = cd.string();
    out.format = "cifar10";
    if (train) {
      for (int b = 1; b <= 5; ++b)
        if (fs::exists(cd / ("data_batch_" + std::to_string(b) + ".bin")))
          read_cifar10_batch((cd / ("data_batch_" + std::to_string(b) + ".bin")).string(), out);
      if (out.labels.empty()) throw std::runtime_error(cd.string() + ": no data_batch_N.bin (CIFAR-10 training batches)");
    } else {
      read_cifar10_batch((cd / "test_batch.bin").string(), out);
    }
    out.classes = cifar10_classes();
    if (std::ifstream meta(cd / "batches.meta.txt"); meta) {
      std::vector<std::string> names;
      for (std::string line; std::getline(meta, line);)
        if (!line.empty()) names.push_back(line);
      if (names.size() == 10) out.classes = names;
    }
    return out;
  }
  // scikit-learn's digits: the first 80 % train, the rest test
  if (const std::string csv = find("digits.csv"); !csv.empty()) {
    auto all = read_digits_csv(csv);
    const int64_t n_train = all.size() * 4 / 5, first = train ? 0 : n_train, n = train ? n_train : all.size() - n_train;
    all.pixels = all.pixels.narrow(0, first, n).clone();
    all.labels = std::vector<int64_t>(all.labels.begin() + first, all.labels.begin() + first + n);
    return all;
  }
  // ImageFolder
  std::vector<fs::path> cands = train ? std::vector<fs::path>{d / "train"} : std::vector<fs::path>{d / "val", d / "test"};
  for (const auto& c : cands)
    if (fs::is_directory(c)) return read_image_folder(c.string(), strict);
  throw std::runtime_error(dir + ": no " + split + " data found (expected idx files " + prefix +
                           "-images-idx3-ubyte[.gz] + " + prefix + "-labels-idx1-ubyte[.gz], CIFAR-10 " +
                           (train ? "data_batch_N.bin" : "test_batch.bin") + ", or an ImageFolder " +
                           (train ? "train/<class>/" : "val/<class>/ or test/<class>/") + ", or digits.csv[.gz])");
}

ImageDataset subset(const ImageDataset& data, int64_t n, uint64_t seed) {
  if (n <= 0 || n >= data.size()) return data;
  auto order = epoch_permutation(seed, -1, data.size());
  order.resize(static_cast<size_t>(n));
  std::sort(order.begin(), order.end());
  ImageDataset out = data;
  out.labels.clear();
  out.files.clear();
  for (int64_t i : order) {
    out.labels.push_back(data.labels[static_cast<size_t>(i)]);
    if (!data.files.empty()) out.files.push_back(data.files[static_cast<size_t>(i)]);
  }
  if (data.pixels.defined()) out.pixels = data.pixels.index_select(0, torch::tensor(order)).contiguous();
  return out;
}

void ImageTransform::validate() const {
  if (size < 0) throw std::invalid_argument("size must be >= 0, got " + std::to_string(size));
  if (channels != 0 && channels != 1 && channels != 3)
    throw std::invalid_argument("channels must be 0, 1 or 3, got " + std::to_string(channels));
  if (mean.empty() || std.empty()) throw std::invalid_argument("mean and std need at least one value");
  for (double s : std)
    if (!(s > 0)) throw std::invalid_argument("std values must be positive, got " + std::to_string(s));
  if (interpolation != "bilinear" && interpolation != "bicubic" && interpolation != "nearest")
    throw std::invalid_argument("interpolation must be bilinear, bicubic or nearest, got '" + interpolation + "'");
  if (!(crop_pct > 0 && crop_pct <= 1)) throw std::invalid_argument("crop_pct must be in (0, 1], got " + std::to_string(crop_pct));
  if (!(scale_min > 0 && scale_min <= scale_max && scale_max <= 1))
    throw std::invalid_argument("need 0 < scale_min <= scale_max <= 1");
  if (!(ratio_min > 0 && ratio_min <= ratio_max)) throw std::invalid_argument("need 0 < ratio_min <= ratio_max");
}

torch::Tensor transform_image(const torch::Tensor& image, const ImageTransform& tf, bool train, uint64_t seed) {
  TORCH_CHECK(image.dim() == 3, "expected a (C, H, W) image, got shape ", image.sizes());
  auto x = image.to(torch::kFloat).div(255.0).unsqueeze(0);  // (1, C, H, W) in [0, 1]
  if (tf.channels == 3 && x.size(1) == 1) x = x.expand({1, 3, x.size(2), x.size(3)});
  if (tf.channels == 1 && x.size(1) == 3) {
    auto w = torch::tensor({0.299, 0.587, 0.114}, torch::kFloat).view({1, 3, 1, 1});
    x = (x * w).sum(1, /*keepdim=*/true);
  }
  const int64_t H = x.size(2), W = x.size(3);
  Rng rng{mix(seed, 0x51ed)};
  if (train && tf.random_resized_crop) {
    // torchvision's RandomResizedCrop.get_params: 10 tries at a random area and aspect ratio, then
    // a centre crop with the ratio clamped.
    const double area = static_cast<double>(H * W);
    int64_t top = 0, left = 0, h = H, w = W;
    bool found = false;
    for (int attempt = 0; attempt < 10 && !found; ++attempt) {
      const double target = area * rng.uniform(tf.scale_min, tf.scale_max);
      const double ratio = std::exp(rng.uniform(std::log(tf.ratio_min), std::log(tf.ratio_max)));
      const auto cw = static_cast<int64_t>(std::lround(std::sqrt(target * ratio)));
      const auto ch = static_cast<int64_t>(std::lround(std::sqrt(target / ratio)));
      if (cw > 0 && cw <= W && ch > 0 && ch <= H) {
        top = rng.below(H - ch + 1), left = rng.below(W - cw + 1), h = ch, w = cw;
        found = true;
      }
    }
    if (!found) {
      const double r = static_cast<double>(W) / static_cast<double>(H);
      if (r < tf.ratio_min) w = W, h = std::lround(W / tf.ratio_min);
      else if (r > tf.ratio_max) h = H, w = std::lround(H * tf.ratio_max);
      top = (H - h) / 2, left = (W - w) / 2;
    }
    x = x.narrow(2, top, h).narrow(3, left, w);
    if (tf.size > 0) x = resize(x, tf.size, tf.size, tf.interpolation);
  } else if (tf.size > 0) {
    // timm's eval transform: resize the short side to size / crop_pct, then a centre crop.
    const auto scale = static_cast<int64_t>(std::floor(static_cast<double>(tf.size) / tf.crop_pct));
    int64_t nh = scale, nw = scale;
    if (H != W) {
      if (H < W) nw = std::lround(static_cast<double>(W) * scale / H);
      else nh = std::lround(static_cast<double>(H) * scale / W);
    }
    x = resize(x, nh, nw, tf.interpolation);
    x = x.narrow(2, (nh - tf.size) / 2, tf.size).narrow(3, (nw - tf.size) / 2, tf.size);
  }
  if (train && tf.hflip && (rng.next() & 1)) x = x.flip(3);
  const int64_t C = x.size(1);
  auto per_channel = [C](const std::vector<double>& v) {
    std::vector<float> out(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) out[c] = static_cast<float>(v.size() == 1 ? v[0] : v.at(std::min<size_t>(c, v.size() - 1)));
    return torch::tensor(out).view({1, C, 1, 1});
  };
  TORCH_CHECK(tf.mean.size() == 1 || static_cast<int64_t>(tf.mean.size()) == C, "mean has ", tf.mean.size(),
              " values for ", C, " channels");
  TORCH_CHECK(tf.std.size() == 1 || static_cast<int64_t>(tf.std.size()) == C, "std has ", tf.std.size(),
              " values for ", C, " channels");
  return ((x - per_channel(tf.mean)) / per_channel(tf.std)).squeeze(0).contiguous();  // (C, S, S)
}

torch::Tensor denormalize_to_rgb(const torch::Tensor& image, const ImageTransform& tf) {
  TORCH_CHECK(image.dim() == 3, "expected a (C, H, W) image, got shape ", image.sizes());
  const int64_t C = image.size(0);
  auto x = image.detach().to(torch::kCPU, torch::kFloat);
  std::vector<float> m(C), s(C);
  for (int64_t c = 0; c < C; ++c) {
    m[c] = static_cast<float>(tf.mean.size() == 1 ? tf.mean[0] : tf.mean.at(c));
    s[c] = static_cast<float>(tf.std.size() == 1 ? tf.std[0] : tf.std.at(c));
  }
  x = x * torch::tensor(s).view({C, 1, 1}) + torch::tensor(m).view({C, 1, 1});
  if (C == 1) x = x.expand({3, x.size(1), x.size(2)});
  return x.clamp(0.0, 1.0).mul(255.0).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();  // (H, W, 3)
}

ImageBatcher::ImageBatcher(const ImageDataset& data, ImageTransform tf, int64_t batch_size, bool train, uint64_t seed,
                           int workers)
    : data_(data), tf_(std::move(tf)), B_(batch_size), train_(train), seed_(seed), workers_(std::max(0, workers)) {
  if (B_ <= 0) throw std::invalid_argument("batch size must be positive, got " + std::to_string(B_));
  if (data_.size() == 0) throw std::invalid_argument(data_.source + ": no images");
  tf_.validate();
}

ImageBatcher::~ImageBatcher() {
  for (auto& [n, f] : queue_) f.wait();
}

int64_t ImageBatcher::train_index(int64_t pos) const {
  const int64_t N = data_.size();
  return epoch_permutation(seed_, pos / N, N)[static_cast<size_t>(pos % N)];
}

ImageBatch ImageBatcher::build(int64_t n) const {
  const int64_t N = data_.size();
  ImageBatch b;
  if (train_) {
    // At most two epochs meet in one batch: one permutation each.
    std::vector<int64_t> perm;
    int64_t perm_epoch = -1;
    for (int64_t i = 0; i < B_; ++i) {
      const int64_t pos = n * B_ + i, epoch = pos / N;
      if (epoch != perm_epoch) perm = epoch_permutation(seed_, epoch, N), perm_epoch = epoch;
      b.indices.push_back(perm[static_cast<size_t>(pos % N)]);
    }
  } else {
    const int64_t per_epoch = (N + B_ - 1) / B_, start = (n % per_epoch) * B_;
    for (int64_t i = start; i < std::min(N, start + B_); ++i) b.indices.push_back(i);
  }
  std::vector<torch::Tensor> imgs;
  std::vector<int64_t> labels;
  for (size_t i = 0; i < b.indices.size(); ++i) {
    const int64_t idx = b.indices[i];
    const uint64_t aug_seed = mix(seed_, 0xa06, static_cast<uint64_t>(n * B_ + static_cast<int64_t>(i)));
    imgs.push_back(transform_image(data_.image(idx), tf_, train_, aug_seed));
    labels.push_back(data_.labels[static_cast<size_t>(idx)]);
  }
  for (const auto& im : imgs)
    if (im.sizes() != imgs[0].sizes())
      throw std::runtime_error(data_.source + ": images of different sizes in one batch (" +
                               std::to_string(im.size(1)) + "x" + std::to_string(im.size(2)) + " and " +
                               std::to_string(imgs[0].size(1)) + "x" + std::to_string(imgs[0].size(2)) +
                               "); give the transform a size");
  b.images = torch::stack(imgs);       // (B, C, H, W)
  b.labels = torch::tensor(labels);  // (B)
  return b;
}

ImageBatch ImageBatcher::get(int64_t n) {
  ImageBatch out;
  if (!queue_.empty() && queue_.front().first == n) {
    out = queue_.front().second.get();
    queue_.pop_front();
  } else {
    for (auto& [k, f] : queue_) f.wait();
    queue_.clear();
    out = build(n);
  }
  // Keep `workers` batches in flight: n+1, n+2, ...
  int64_t next = queue_.empty() ? n + 1 : queue_.back().first + 1;
  while (static_cast<int>(queue_.size()) < workers_) {
    const int64_t k = next++;
    queue_.emplace_back(k, std::async(std::launch::async, [this, k] { return build(k); }));
  }
  return out;
}

}  // namespace attnzoo::datasets
