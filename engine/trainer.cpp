#include "engine/trainer.h"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <stdexcept>

#include "engine/adamw.h"
#include "engine/checkpoint.h"
#include "engine/metrics.h"
#include "engine/plot.h"
#include "engine/progress.h"
#include "engine/runtime.h"
#include "engine/signals.h"
#include "weights/state_dict.h"

namespace attnzoo::engine {
namespace fs = std::filesystem;
namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const uint8_t* data, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = uint32_t(data[i]) << 16;
    if (i + 1 < n) v |= uint32_t(data[i + 1]) << 8;
    if (i + 2 < n) v |= data[i + 2];
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kB64[v & 63] : '=';
  }
  return out;
}

std::vector<uint8_t> base64_decode(const std::string& s) {
  std::vector<uint8_t> out;
  uint32_t v = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const char* p = std::strchr(kB64, c);
    if (!p || c == '\0') throw std::runtime_error("invalid base64 in RNG state");
    v = (v << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((v >> bits) & 0xFF));
    }
  }
  return out;
}

// The default generators (dropout, sampling) as base64 byte strings, per device type.
nlohmann::json rng_state(torch::Device device) {
  nlohmann::json j;
  auto save = [&](const std::string& key, at::Generator gen) {
    auto t = gen.get_state().contiguous();
    j[key] = base64_encode(t.data_ptr<uint8_t>(), static_cast<size_t>(t.numel()));
  };
  save("cpu", at::detail::getDefaultCPUGenerator());
  if (device.is_cuda()) save("cuda", at::globalContext().defaultGenerator(device));
  return j;
}

void restore_rng(const nlohmann::json& j, torch::Device device) {
  auto load = [&](const std::string& key, at::Generator gen) {
    if (!j.contains(key)) return;
    auto bytes = base64_decode(j[key].get<std::string>());
    auto t = torch::from_blob(bytes.data(), {static_cast<int64_t>(bytes.size())}, torch::kUInt8).clone();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(t);
  };
  load("cpu", at::detail::getDefaultCPUGenerator());
  if (device.is_cuda()) load("cuda", at::globalContext().defaultGenerator(device));
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double json_double(const nlohmann::json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

}  // namespace

StepOutput evaluate(torch::nn::Module& model, const Task& task, const TrainConfig& cfg, torch::Device device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  double loss = 0;
  std::map<std::string, double> metrics;
  for (int64_t b = 0; b < cfg.eval_iters; ++b) {
    StepOutput out;
    {
      AutocastGuard autocast(cfg.dtype, device);
      out = task.eval_step(b);
    }
    loss += out.loss.item<double>();
    for (const auto& [k, v] : out.metrics) metrics[k] += v;
  }
  model.train(was_training);
  StepOutput mean{torch::tensor(loss / static_cast<double>(cfg.eval_iters)), {}};
  for (const auto& [k, v] : metrics) mean.metrics[k] = v / static_cast<double>(cfg.eval_iters);
  return mean;
}

TrainResult train(torch::nn::Module& model, const Task& task, const TrainConfig& cfg, const fs::path& run_dir,
                  bool resume, torch::Device device) {
  cfg.validate();
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec || ::access(run_dir.c_str(), W_OK) != 0)
    throw std::runtime_error(run_dir.string() + ": cannot write the run directory" +
                             (ec ? " (" + ec.message() + ")" : ""));

  auto [decay, no_decay] = weight_decay_groups(model);
  AdamW opt(decay, no_decay, {cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay});
  if (task.lr_scale) opt.set_lr_scales(task.lr_scale);
  std::vector<torch::Tensor> params;
  for (const auto* group : {&decay, &no_decay})
    for (const auto& p : *group) params.push_back(p.param);

  CheckpointStore store(run_dir);
  int64_t start = 0;
  double best = std::numeric_limits<double>::infinity();
  if (resume) {
    auto latest = store.latest();
    if (!latest)
      throw std::runtime_error(run_dir.string() + ": --resume, but there is no checkpoint in " +
                               store.root().string());
    auto ckpt = read_checkpoint(*latest);
    weights::load_state_dict(model, ckpt.model, /*strict=*/true, (*latest / "model.safetensors").string());
    try {
      opt.load_state_dict(ckpt.optimizer);
    } catch (const std::exception& e) {
      throw std::runtime_error((*latest / "optimizer.safetensors").string() + ": " + e.what());
    }
    start = ckpt.state.value("step", int64_t{0});
    best = json_double(ckpt.state, "best_val_loss", best);
    if (ckpt.state.contains("rng")) restore_rng(ckpt.state["rng"], device);
    std::cout << "resuming from " << latest->string() << " at step " << start << std::endl;
  } else if (store.latest()) {
    throw std::runtime_error(run_dir.string() +
                             ": already holds checkpoints; pass --resume to continue it, or choose another --out");
  }

  MetricsLog log(run_dir / "metrics.jsonl", resume ? start : 0);
  const int64_t tokens_per_step = task.tokens_per_micro_batch * cfg.grad_accum;

  auto make_checkpoint = [&](int64_t done) {
    nlohmann::json state = task.extra_state.is_object() ? task.extra_state : nlohmann::json::object();
    state["step"] = done;
    state["best_val_loss"] = std::isfinite(best) ? nlohmann::json(best) : nlohmann::json(nullptr);
    state["rng"] = rng_state(device);
    state["data_position"] = {{"step", done}, {"tokens", done * tokens_per_step}, {"seed", cfg.seed}};
    return Checkpoint{task.config, weights::state_dict(model), opt.state_dict(), state};
  };

  StopSignal stop;
  Progress progress(cfg.max_iters, start, cfg.log_interval);
  TrainResult result;
  result.best_val_loss = best;
  result.last_val_loss = std::numeric_limits<double>::quiet_NaN();
  const auto t_start = std::chrono::steady_clock::now();

  auto run_eval = [&](int64_t step) {
    auto out = evaluate(model, task, cfg, device);
    const double val = out.loss.item<double>();
    nlohmann::json row = {{"step", step}, {"split", "val"}, {"loss", val}, {"lr", learning_rate(cfg, step)}};
    for (const auto& [k, v] : out.metrics) row[k] = v;
    log.write(row);
    result.last_val_loss = val;
    std::string line = "step " + std::to_string(step) + ": val loss " + fmt("%.4f", val);
    if (val < best) {
      best = val;
      result.best_val_loss = best;
      if (step > 0) {
        store.save_best(make_checkpoint(step));
        line += " (best, saved)";
      }
    }
    progress.message(line);
  };

  auto write_plot = [&] {
    try {
      plot_loss_curves(log.path(), run_dir / "loss.png");
    } catch (const std::exception& e) {
      std::cerr << "warning: " << e.what() << "\n";
    }
  };

  int64_t step = start;
  model.train();
  for (; step < cfg.max_iters; ++step) {
    if (step % cfg.eval_interval == 0 && !log.has("val", step)) run_eval(step);

    const double lr = learning_rate(cfg, step);
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    std::map<std::string, double> metric_sums;
    for (int64_t micro = 0; micro < cfg.grad_accum; ++micro) {
      StepOutput out;
      {
        AutocastGuard autocast(cfg.dtype, device);
        out = task.train_step(step, micro);
      }
      (out.loss / static_cast<double>(cfg.grad_accum)).backward();
      loss_sum += out.loss.item<double>();
      for (const auto& [k, v] : out.metrics) metric_sums[k] += v;
    }
    const double loss = loss_sum / static_cast<double>(cfg.grad_accum);
    double grad_norm = std::numeric_limits<double>::quiet_NaN();
    if (cfg.grad_clip > 0) grad_norm = torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
    if (!std::isfinite(loss) || (cfg.grad_clip > 0 && !std::isfinite(grad_norm))) {
      progress.finish();
      write_plot();
      auto last = store.latest();
      throw std::runtime_error(std::string("non-finite ") + (std::isfinite(loss) ? "gradient norm" : "loss") +
                               " at step " + std::to_string(step) + "; stopped without saving. " +
                               (last ? "The last good checkpoint is " + last->string() +
                                           " (continue with --resume, perhaps with a lower --lr)"
                                     : std::string("No checkpoint was written yet; try a lower --lr")));
    }
    opt.step(lr);
    opt.zero_grad();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    nlohmann::json row = {{"step", step}, {"split", "train"}, {"loss", loss}, {"lr", lr}, {"ms_per_iter", ms}};
    if (tokens_per_step > 0) row["tokens_per_s"] = static_cast<double>(tokens_per_step) / (ms / 1000.0);
    if (cfg.grad_clip > 0) row["grad_norm"] = grad_norm;
    for (const auto& [k, v] : metric_sums) row[k] = v / static_cast<double>(cfg.grad_accum);
    log.write(row);
    std::string detail = "loss " + fmt("%.4f", loss) + " | lr " + fmt("%.2e", lr) + " | " + fmt("%.1f", ms) + " ms";
    if (tokens_per_step > 0) detail += " | " + fmt("%.0f", row["tokens_per_s"].get<double>()) + " tok/s";
    progress.update(step + 1, detail);

    const int64_t done = step + 1;
    if (stop.requested()) {
      progress.finish();
      store.save_step(done, make_checkpoint(done), cfg.keep_last);
      write_plot();
      result.steps_done = done;
      result.interrupted = true;
      result.signal = stop.signal();
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      std::cout << (stop.signal() == SIGTERM ? "SIGTERM" : "SIGINT") << ": saved " << store.step_dir(done).string()
                << " after step " << done << "; continue with the same command plus --resume" << std::endl;
      return result;
    }
    if (done % cfg.ckpt_interval() == 0 || done == cfg.max_iters)
      store.save_step(done, make_checkpoint(done), cfg.keep_last);
  }
  progress.finish();
  if (!log.has("val", step)) run_eval(step);
  write_plot();
  result.steps_done = step;
  result.best_val_loss = best;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return result;
}

}  // namespace attnzoo::engine
