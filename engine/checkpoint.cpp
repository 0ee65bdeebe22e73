#include "engine/checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "weights/file_io.h"

namespace attnzoo::engine {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw std::runtime_error(path.string() + ": " + what);
}

void write_text(const fs::path& path, const std::string& text) {
  weights::write_file(path.string(), text.data(), text.size());
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail(path, "missing or unreadable");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace

void write_checkpoint(const fs::path& dir, const Checkpoint& ckpt) {
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) fail(parent, "cannot create directory: " + ec.message());
  const fs::path tmp = parent / ("." + dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec)) fail(tmp, "cannot create directory: " + ec.message());
  try {
    write_text(tmp / "config.json", ckpt.config.dump(2) + "\n");
    weights::save_safetensors((tmp / "model.safetensors").string(), ckpt.model);
    weights::save_safetensors((tmp / "optimizer.safetensors").string(), ckpt.optimizer);
    write_text(tmp / "state.json", ckpt.state.dump(2) + "\n");
    weights::fsync_directory(tmp.string());
    if (fs::exists(dir)) {
      // Swap old and new in one step (Linux renameat2), then drop the old one.
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
        fs::remove_all(tmp, ec);
      } else if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
        // A filesystem or sandbox without RENAME_EXCHANGE (NFS, gVisor): move the old one aside
        // first. Every moment one complete copy exists, as DIR or as DIR.old.
        const fs::path old = parent / (dir.filename().string() + ".old");
        fs::remove_all(old, ec);
        fs::rename(dir, old);
        fs::rename(tmp, dir);
        fs::remove_all(old, ec);
      } else {
        fail(dir, std::string("cannot replace checkpoint: ") + std::strerror(errno));
      }
    } else {
      fs::rename(tmp, dir);
    }
    weights::fsync_directory(parent.string());
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    throw std::runtime_error("checkpoint " + dir.string() + " not written (earlier checkpoints are intact): " +
                             e.what());
  }
}

Checkpoint read_checkpoint(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail(dir, "is not a checkpoint directory");
  for (const char* name : {"config.json", "model.safetensors", "optimizer.safetensors", "state.json"})
    if (!fs::exists(dir / name)) fail(dir / name, "missing from the checkpoint");
  Checkpoint ckpt;
  ckpt.config = read_json(dir / "config.json");
  ckpt.state = read_json(dir / "state.json");
  if (!ckpt.config.is_object()) fail(dir / "config.json", "expected a JSON object");
  if (!ckpt.state.is_object()) fail(dir / "state.json", "expected a JSON object");
  ckpt.model = weights::load_safetensors((dir / "model.safetensors").string()).tensors;
  ckpt.optimizer = weights::load_safetensors((dir / "optimizer.safetensors").string()).tensors;
  return ckpt;
}

CheckpointStore::CheckpointStore(fs::path run_dir) : root_(std::move(run_dir) / "checkpoints") {}

fs::path CheckpointStore::step_dir(int64_t step) const {
  char name[32];
  std::snprintf(name, sizeof name, "step-%06lld", static_cast<long long>(step));
  return root_ / name;
}

void CheckpointStore::save_step(int64_t step, const Checkpoint& ckpt, int64_t keep_last) const {
  write_checkpoint(step_dir(step), ckpt);
  auto all = steps();
  std::error_code ec;
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) fs::remove_all(step_dir(all[i]), ec);
}

void CheckpointStore::save_best(const Checkpoint& ckpt) const { write_checkpoint(root_ / "best", ckpt); }

std::vector<int64_t> CheckpointStore::steps() const {
  std::vector<int64_t> out;
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return out;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || !entry.is_directory()) continue;
    try {
      size_t used = 0;
      const auto n = std::stoll(name.substr(5), &used);
      if (used == name.size() - 5) out.push_back(n);
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<fs::path> CheckpointStore::latest() const {
  auto all = steps();
  if (!all.empty()) return step_dir(all.back());
  if (fs::is_directory(root_ / "best")) return root_ / "best";
  return std::nullopt;
}

fs::path CheckpointStore::resolve(const std::string& which) const {
  if (which == "latest") {
    if (auto p = latest()) return *p;
    fail(root_.parent_path(), "no checkpoint found (expected " + root_.string() + "/step-N or best)");
  }
  fs::path p;
  if (which == "best") {
    p = root_ / "best";
  } else {
    std::string num = which.rfind("step-", 0) == 0 ? which.substr(5) : which;
    try {
      size_t used = 0;
      const auto n = std::stoll(num, &used);
      if (used != num.size()) throw std::invalid_argument(num);
      p = step_dir(n);
    } catch (const std::exception&) {
      throw std::invalid_argument("--checkpoint: expected best, latest or step-N, got '" + which + "'");
    }
  }
  if (!fs::is_directory(p)) {
    std::string have;
    for (auto step : steps()) have += (have.empty() ? "" : ", ") + step_dir(step).filename().string();
    if (fs::is_directory(root_ / "best")) have += have.empty() ? "best" : ", best";
    throw std::invalid_argument("--checkpoint " + which + ": no such checkpoint in " + root_.string() +
                                " (available: " + (have.empty() ? "none" : have) + ")");
  }
  return p;
}

}  // namespace attnzoo::engine
