// safetensors reader and writer. Layout: [u64 LE header length N][N bytes JSON header][data section];
// each header entry's data_offsets [begin, end) are relative to the start of the data section.
// Reading validates the header completely, then memory-maps the file and hands out views into it.
#include "weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "weights/file_io.h"

namespace attnzoo::weights {
namespace {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; big-endian hosts would need byte swaps");

// The reference implementation refuses larger headers; so do we, before allocating one.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DType {
  const char* name;
  torch::ScalarType type;
  uint64_t size;  // bytes per element
};

constexpr DType kDTypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DType* dtype_by_name(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DType* dtype_by_type(torch::ScalarType type) {
  for (const auto& d : kDTypes)
    if (type == d.type) return &d;
  return nullptr;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::string quoted(const std::string& key) { return "\"" + key + "\""; }

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now so that the caller sees close()'s error (NFS and some file systems report write errors there).
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// The whole file mapped MAP_PRIVATE: in-place writes to a tensor land in private copies of pages.
struct Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr != MAP_FAILED) ::munmap(addr, size);
  }
};

void read_exact(int fd, void* buffer, uint64_t n, uint64_t offset, const std::string& path) {
  auto* p = static_cast<char*>(buffer);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail(path, std::string("read failed: ") + std::strerror(errno));
    }
    if (got == 0) fail(path, "unexpected end of file at byte " + std::to_string(offset));
    p += got;
    n -= static_cast<uint64_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

struct Entry {
  std::string key;
  const DType* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // [begin, end) within the data section
};

Entry parse_entry(const std::string& path, const std::string& key, const json& value, uint64_t data_size) {
  const std::string where = "tensor " + quoted(key) + ": ";
  if (!value.is_object()) fail(path, where + "entry is a JSON " + value.type_name() + ", expected an object");
  auto field = [&](const char* name) -> const json& {
    auto it = value.find(name);
    if (it == value.end()) fail(path, where + "missing " + quoted(name));
    return *it;
  };

  Entry e{key, nullptr, {}, 0, 0};
  const json& dtype = field("dtype");
  if (!dtype.is_string()) fail(path, where + "dtype is a JSON " + dtype.type_name() + ", expected a string");
  e.dtype = dtype_by_name(dtype.get<std::string>());
  if (!e.dtype)
    fail(path, where + "unknown dtype " + quoted(dtype.get<std::string>()) +
                   " (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");

  const json& shape = field("shape");
  if (!shape.is_array()) fail(path, where + "shape is a JSON " + shape.type_name() + ", expected an array");
  uint64_t numel = 1;
  for (const json& dim : shape) {
    if (!dim.is_number_integer()) fail(path, where + "shape " + shape.dump() + " has a non-integer entry");
    // nlohmann parses non-negative integers as unsigned and negative ones as signed.
    if (!dim.is_number_unsigned()) fail(path, where + "shape " + shape.dump() + " has a negative entry");
    uint64_t d = dim.get<uint64_t>();
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || __builtin_mul_overflow(numel, d, &numel))
      fail(path, where + "shape " + shape.dump() + " is too large");
    e.shape.push_back(static_cast<int64_t>(d));
  }

  const json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    fail(path, where + "data_offsets " + offsets.dump() + " is not a pair of non-negative integers");
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.begin > e.end) fail(path, where + "data_offsets " + offsets.dump() + " end before they begin");
  if (e.end > data_size)
    fail(path, where + "data_offsets " + offsets.dump() + " outside the data section of " +
                   std::to_string(data_size) + " bytes");

  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, e.dtype->size, &nbytes)) fail(path, where + "shape " + shape.dump() + " is too large");
  if (nbytes != e.end - e.begin)
    fail(path, where + "dtype " + e.dtype->name + " shape " + shape.dump() + " needs " + std::to_string(nbytes) +
                   " bytes, data_offsets " + offsets.dump() + " hold " + std::to_string(e.end - e.begin));
  return e;
}

// Validates the parsed header against a data section of DATA_SIZE bytes; fills METADATA.
std::vector<Entry> parse_header(const std::string& path, const json& header, uint64_t data_size,
                                Metadata& metadata) {
  if (!header.is_object()) fail(path, std::string("header is a JSON ") + header.type_name() + ", expected an object");
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail(path, std::string("__metadata__ is a JSON ") + it->type_name() + ", expected an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          fail(path, "__metadata__ " + quoted(m.key()) + " is a JSON " + m->type_name() + ", expected a string");
        metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), *it, data_size));
  }

  // Two tensors sharing bytes would alias each other's views; empty ranges touch nothing.
  std::vector<const Entry*> by_begin;
  for (const auto& e : entries)
    if (e.begin != e.end) by_begin.push_back(&e);
  std::sort(by_begin.begin(), by_begin.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_begin.size(); ++i) {
    const Entry& a = *by_begin[i - 1];
    const Entry& b = *by_begin[i];
    if (b.begin < a.end)
      fail(path, "tensors " + quoted(a.key) + " [" + std::to_string(a.begin) + ", " + std::to_string(a.end) +
                     ") and " + quoted(b.key) + " [" + std::to_string(b.begin) + ", " + std::to_string(b.end) +
                     ") overlap");
  }
  return entries;
}

}  // namespace

Safetensors load_safetensors(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8)
    fail(path, "file is " + std::to_string(file_size) + " bytes, too short for the 8-byte header length");

  uint64_t header_size = 0;
  read_exact(fd.get(), &header_size, 8, 0, path);  // little-endian on disk and (static_assert) in memory
  if (header_size > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_size) + " exceeds the 100 MB limit");
  if (header_size > file_size - 8)
    fail(path, "header length " + std::to_string(header_size) + " exceeds file size " + std::to_string(file_size));

  std::string text(header_size, '\0');
  read_exact(fd.get(), text.data(), header_size, 8, path);
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    fail(path, std::string("malformed header JSON: ") + e.what());
  }

  Safetensors result;
  const uint64_t data_start = 8 + header_size;
  const std::vector<Entry> entries = parse_header(path, header, file_size - data_start, result.metadata);

  auto mapping = std::make_shared<Mapping>();
  mapping->addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0);
  if (mapping->addr == MAP_FAILED) fail(path, std::string("mmap failed: ") + std::strerror(errno));
  mapping->size = file_size;
  char* data = static_cast<char*>(mapping->addr) + data_start;

  for (const Entry& e : entries) {
    const auto options = torch::TensorOptions().dtype(e.dtype->type);
    char* p = data + e.begin;
    torch::Tensor t;
    if (e.begin == e.end) {
      t = torch::empty(e.shape, options);
    } else if (reinterpret_cast<uintptr_t>(p) % e.dtype->size != 0) {
      // Vectorised kernels may assume element alignment, which a hand-made header need not give.
      t = torch::empty(e.shape, options);
      std::memcpy(t.data_ptr(), p, e.end - e.begin);
    } else {
      t = torch::from_blob(p, e.shape, [mapping](void*) {}, options);
    }
    result.tensors.emplace(e.key, std::move(t));
  }
  return result;
}

void save_safetensors(const std::string& path, const TensorMap& tensors, const Metadata& metadata) {
  struct Item {
    const std::string* key;
    const DType* dtype;
    torch::Tensor tensor;  // contiguous, on CPU
  };
  std::vector<Item> items;
  items.reserve(tensors.size());
  for (const auto& [key, tensor] : tensors) {
    if (key == "__metadata__") fail(path, "tensor name \"__metadata__\" is reserved for the metadata");
    if (!tensor.defined()) fail(path, "tensor " + quoted(key) + ": undefined tensor");
    const DType* dtype = dtype_by_type(tensor.scalar_type());
    if (!dtype)
      fail(path, "tensor " + quoted(key) + ": unsupported dtype " + std::string(c10::toString(tensor.scalar_type())));
    items.push_back({&key, dtype, tensor.detach().to(torch::kCPU).contiguous()});
  }
  // Widest elements first (the reference writer's order): with the header padded to 8 bytes,
  // every tensor then starts aligned for its type, so readers can map it without copying.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.dtype->size > b.dtype->size; });

  std::string text;
  try {
    json header = json::object();  // std::map-backed: keys come out sorted
    uint64_t offset = 0;
    for (const Item& item : items) {
      const uint64_t nbytes = static_cast<uint64_t>(item.tensor.numel()) * item.dtype->size;
      header[*item.key] = {{"dtype", item.dtype->name},
                           {"shape", item.tensor.sizes().vec()},
                           {"data_offsets", json::array({offset, offset + nbytes})}};
      offset += nbytes;
    }
    if (!metadata.empty()) header["__metadata__"] = metadata;
    text = header.dump();
  } catch (const json::exception& e) {
    fail(path, std::string("cannot encode header: ") + e.what());  // e.g. a name that is not UTF-8
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_size = text.size();

  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail(path, std::string("cannot create: ") + std::strerror(errno));
  try {
    write_all(fd.get(), &header_size, 8, path);
    write_all(fd.get(), text.data(), header_size, path);
    for (const Item& item : items)
      write_all(fd.get(), item.tensor.data_ptr(), static_cast<uint64_t>(item.tensor.numel()) * item.dtype->size, path);
    if (::fsync(fd.get()) != 0) fail(path, std::string("write failed: ") + std::strerror(errno));
    if (fd.close() != 0) fail(path, std::string("write failed: ") + std::strerror(errno));
  } catch (...) {
    // A torn file must not be mistaken for weights later.
    ::unlink(path.c_str());
    throw;
  }
}

}  // namespace attnzoo::weights
