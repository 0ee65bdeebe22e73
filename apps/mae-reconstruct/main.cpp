// mae-reconstruct: pretrain a masked autoencoder on images and show its reconstructions.
//   mae-reconstruct train --data DIR --out RUN [--preset small-28] [--mask-ratio 0.75] [--norm-pix-loss] [--resume]
//   mae-reconstruct show --run RUN --images FILE... [--out DIR] [--seed S]
// `show` writes, per image, a 4-panel PNG as the MAE paper's figures: original | masked |
// reconstruction | reconstruction with the visible patches pasted back. A run's encoder
// initialises a classifier with `vit-classify train --init-from mae:RUN`.
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#ifdef ATTNZOO_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include "apps/common/cli.h"
#include "datasets/images.h"
#include "engine/checkpoint.h"
#include "engine/runtime.h"
#include "engine/trainer.h"
#include "models/mae/mae.h"
#include "weights/state_dict.h"

namespace fs = std::filesystem;
using namespace attnzoo;

namespace {

struct MaeRunConfig {
  models::MAEConfig model = models::mae_preset("small-28");
  engine::TrainConfig train;
  std::string data;
  datasets::ImageTransform augment;  // size, channels and normalisation follow the model
};

MaeRunConfig default_config() {
  MaeRunConfig c;
  auto& t = c.train;
  t.batch_size = 128;
  t.max_iters = 2000;
  t.lr = 1.5e-3;
  t.min_lr = 1e-5;
  t.warmup_iters = 100;
  t.weight_decay = 0.05;
  t.beta2 = 0.95;  // MAE's
  t.eval_interval = 250;
  t.eval_iters = 10;
  c.augment.hflip = true;
  return c;
}

nlohmann::json to_json(const MaeRunConfig& c) {
  return {{"model", c.model}, {"train", c.train}, {"data", c.data}, {"augment", c.augment}};
}

void apply_json(MaeRunConfig& c, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::invalid_argument(source + ": expected a JSON object with \"model\" and \"train\"");
  try {
    for (const auto& [key, value] : j.items()) {
      if (key == "model") c.model = value.get<models::MAEConfig>();
      else if (key == "train") engine::merge_json(c.train, value, "train");
      else if (key == "augment") c.augment = value.get<datasets::ImageTransform>();
      else if (key == "data" && value.is_string()) c.data = value.get<std::string>();
      else throw std::invalid_argument("unknown key '" + key + "' (expected model, train, data, augment)");
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(source + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(source + ": " + e.what());
  }
}

// Masking noise for (seed, a, b): a pure function, so that resume is exact.
torch::Tensor noise_for(uint64_t seed, int64_t a, int64_t b, int64_t B, int64_t N) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL + static_cast<uint64_t>(a) * 7919ULL +
                                                      static_cast<uint64_t>(b) + 1);
  return torch::rand({B, N}, gen);
}

struct TrainArgs {
  std::string data, out, config, preset;
  bool resume = false, dump_config = false, strict_data = false, norm_pix_loss = false, resize = false;
  std::optional<int64_t> img_size, patch_size, embed_dim, depth, num_heads, decoder_embed_dim, decoder_depth,
      decoder_num_heads;
  std::optional<double> mask_ratio;
  int workers = 2;
  apps::TrainFlags train;
};

int train(const TrainArgs& a) {
  auto cfg = default_config();
  if (a.resume) {
    if (!a.preset.empty()) throw std::invalid_argument("--preset cannot be combined with --resume (the model comes from the checkpoint)");
    engine::CheckpointStore store(a.out);
    if (!store.latest()) throw std::runtime_error(a.out + ": --resume, but there is no checkpoint to resume from");
    const auto ckpt = engine::read_checkpoint(*store.latest());
    apply_json(cfg, ckpt.config, (*store.latest() / "config.json").string());
  } else if (!a.preset.empty()) {
    cfg.model = models::mae_preset(a.preset);
  }
  if (!a.config.empty()) apply_json(cfg, apps::read_json_file(a.config), a.config);
  auto set = [](auto& field, const auto& flag) {
    if (flag) field = *flag;
  };
  auto& e = cfg.model.encoder;
  set(e.img_size, a.img_size), set(e.patch_size, a.patch_size), set(e.embed_dim, a.embed_dim), set(e.depth, a.depth);
  set(e.num_heads, a.num_heads), set(cfg.model.decoder_embed_dim, a.decoder_embed_dim);
  set(cfg.model.decoder_depth, a.decoder_depth), set(cfg.model.decoder_num_heads, a.decoder_num_heads);
  set(cfg.model.mask_ratio, a.mask_ratio);
  if (a.norm_pix_loss) cfg.model.norm_pix_loss = true;
  apps::apply_train_flags(cfg.train, a.train);
  if (!a.data.empty()) cfg.data = a.data;
  if (cfg.data.empty()) throw std::invalid_argument("--data is required");

  auto train_set = datasets::open_image_dataset(cfg.data, "train", a.strict_data);
  auto test_set = datasets::open_image_dataset(cfg.data, "test", a.strict_data);
  for (const auto* d : {&train_set, &test_set})
    if (!d->skipped.empty())
      std::cerr << "warning: " << d->source << ": skipped " << d->skipped.size() << " unreadable image(s), e.g. "
                << d->skipped[0] << std::endl;
  const auto first = train_set.image(0);
  if (!a.resume && a.config.empty()) e.in_chans = first.size(0);
  if (train_set.format != "imagefolder" && first.size(1) != e.img_size && !a.resize && !a.resume)
    throw std::invalid_argument(train_set.source + ": images are " + std::to_string(first.size(1)) + "x" +
                                std::to_string(first.size(2)) + " but the model takes " + std::to_string(e.img_size) +
                                "x" + std::to_string(e.img_size) + "; pass --resize, or --img-size " +
                                std::to_string(first.size(1)));
  cfg.augment.size = e.img_size;
  cfg.augment.channels = e.in_chans;
  e.num_classes = 0;
  cfg.model.validate();
  cfg.train.validate();
  if (a.dump_config) {
    std::cout << to_json(cfg).dump(2) << std::endl;
    return 0;
  }

  const auto device = engine::setup_runtime({cfg.train.device, cfg.train.threads});
  torch::manual_seed(cfg.train.seed);
  models::MaskedAutoencoder mae(cfg.model);
  mae->to(device);
  const int64_t N = e.num_patches();
  std::cout << "MAE: encoder " << e.depth << " × " << e.embed_dim << ", decoder " << cfg.model.decoder_depth << " × "
            << cfg.model.decoder_embed_dim << ", " << e.img_size << "px / patch " << e.patch_size << " (" << N
            << " patches, " << static_cast<int64_t>(N * (1.0 - cfg.model.mask_ratio)) << " visible), mask ratio "
            << cfg.model.mask_ratio << (cfg.model.norm_pix_loss ? ", norm-pix loss" : "") << "; " << train_set.size()
            << " train images; " << at::get_num_threads() << " threads, " << cfg.train.dtype << std::endl;

  auto eval_tf = cfg.augment;
  eval_tf.random_resized_crop = false, eval_tf.hflip = false;
  datasets::ImageBatcher train_batches(train_set, cfg.augment, cfg.train.batch_size, true, cfg.train.seed, a.workers);
  datasets::ImageBatcher eval_batches(test_set, eval_tf, cfg.train.batch_size, false, cfg.train.seed, a.workers);
  engine::Task task;
  task.train_step = [&](int64_t step, int64_t micro) {
    auto b = train_batches.get(step * cfg.train.grad_accum + micro);
    const int64_t B = b.images.size(0);
    return engine::StepOutput{mae->forward(b.images.to(device), noise_for(cfg.train.seed, step, micro, B, N)).loss, {}};
  };
  task.eval_step = [&](int64_t batch) {
    auto b = eval_batches.get(batch);
    const int64_t B = b.images.size(0);
    return engine::StepOutput{mae->forward(b.images.to(device), noise_for(cfg.train.seed, -1, batch, B, N)).loss, {}};
  };
  task.config = to_json(cfg);
  auto result = engine::train(*mae, task, cfg.train, a.out, a.resume, device);
  if (result.interrupted) return 128 + result.signal;
  std::cout << "done: " << result.steps_done << " steps in " << std::fixed << std::setprecision(1) << result.seconds
            << " s; masked-patch val loss " << std::setprecision(4) << result.last_val_loss << " (best "
            << result.best_val_loss << "); run in " << a.out << std::endl;
  return 0;
}

struct ShowArgs {
  std::string run, checkpoint = "best", out = "mae_show", device = "auto";
  std::vector<std::string> images;
  std::optional<double> mask_ratio;
  uint64_t seed = 0;
  int64_t threads = 0;
};

#ifdef ATTNZOO_HAVE_OPENCV
cv::Mat to_bgr(const torch::Tensor& rgb_hwc, int px) {
  auto t = rgb_hwc.contiguous();
  cv::Mat rgb(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), CV_8UC3, t.data_ptr<uint8_t>());
  cv::Mat bgr, big;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  cv::resize(bgr, big, {px, px}, 0, 0, cv::INTER_NEAREST);
  return big;
}
#endif

void show(const ShowArgs& a) {
  if (a.images.empty()) throw std::invalid_argument("--images: give at least one image file");
  const auto device = engine::setup_runtime({a.device, a.threads});
  if (!fs::is_directory(a.run)) throw std::runtime_error(a.run + ": no such run directory");
  engine::CheckpointStore store(a.run);
  const auto dir = a.checkpoint == "best" && !fs::is_directory(store.root() / "best") ? store.resolve("latest")
                                                                                     : store.resolve(a.checkpoint);
  auto ckpt = engine::read_checkpoint(dir);
  if (!ckpt.model.count("decoder_pred.weight"))
    throw std::invalid_argument((dir / "model.safetensors").string() +
                                ": no MAE decoder in this checkpoint (a classifier?); show needs the run of "
                                "`mae-reconstruct train`");
  auto cfg = default_config();
  apply_json(cfg, ckpt.config, (dir / "config.json").string());
  if (a.mask_ratio) cfg.model.mask_ratio = *a.mask_ratio;
  models::MaskedAutoencoder mae(cfg.model);
  weights::load_state_dict(*mae, ckpt.model, /*strict=*/true, (dir / "model.safetensors").string());
  mae->to(device);
  mae->eval();
  auto tf = cfg.augment;
  tf.random_resized_crop = false, tf.hflip = false;
  const auto& e = cfg.model.encoder;
  const int64_t P = e.patch_size, C = e.in_chans, N = e.num_patches();
  fs::create_directories(a.out);
  torch::NoGradGuard no_grad;
  std::set<std::string> written;
  for (size_t i = 0; i < a.images.size(); ++i) {
    auto x = datasets::transform_image(datasets::read_image_file(a.images[i]), tf, false, 0).unsqueeze(0);  // (1, C, S, S)
    auto out = mae->forward(x.to(device), noise_for(a.seed, -2, static_cast<int64_t>(i), 1, N));
    auto pred = out.pred.cpu().to(torch::kFloat);  // (1, N, Pp)
    auto target = models::patchify(x, P);
    if (cfg.model.norm_pix_loss) {
      // The prediction is in per-patch normalised units: back to pixels with the true patch statistics (MAE's demo).
      auto mean = target.mean(-1, true), var = target.var(-1, true, true);
      pred = pred * (var + 1e-6).sqrt() + mean;
    }
    auto mask = out.mask.cpu().unsqueeze(-1);  // (1, N, 1): 1 = masked
    auto recon = models::unpatchify(pred, P, C)[0];
    auto masked = models::unpatchify(target * (1 - mask) + mask * (-1e3), P, C)[0];  // masked patches far below range -> black
    auto pasted = models::unpatchify(target * (1 - mask) + pred * mask, P, C)[0];
    auto masked_rgb = datasets::denormalize_to_rgb(masked, tf);
    // Masked patches drawn grey, not black, so they read as "missing".
    auto grey = models::unpatchify(mask.expand({1, N, P * P * C}), P, C)[0][0].to(torch::kBool);  // (S, S)
    masked_rgb.index_put_({grey}, torch::tensor({128, 128, 128}, torch::kUInt8));
    const std::vector<std::pair<torch::Tensor, std::string>> panels{
        {datasets::denormalize_to_rgb(x[0], tf), "original"},
        {masked_rgb, "masked " + std::to_string(static_cast<int>(std::lround(100 * cfg.model.mask_ratio))) + "%"},
        {datasets::denormalize_to_rgb(recon, tf), "reconstruction"},
        {datasets::denormalize_to_rgb(pasted, tf), "+ visible"}};
    // NAME_mae.png; a name already written by this call gets the image's index too (a/1.png, b/1.png).
    std::string stem = fs::path(a.images[i]).stem().string();
    if (!written.insert(stem).second) stem += "_" + std::to_string(i);
    const fs::path png = fs::path(a.out) / (stem + "_mae.png");
#ifdef ATTNZOO_HAVE_OPENCV
    const int px = 192, pad = 6, title = 22;
    cv::Mat canvas(px + title + 2 * pad, 4 * (px + pad) + pad, CV_8UC3, cv::Scalar(255, 255, 255));
    for (int k = 0; k < 4; ++k) {
      to_bgr(panels[k].first, px).copyTo(canvas(cv::Rect(pad + k * (px + pad), title + pad, px, px)));
      cv::putText(canvas, panels[k].second, {pad + k * (px + pad), 16}, cv::FONT_HERSHEY_SIMPLEX, 0.45,
                  cv::Scalar(30, 30, 30), 1, cv::LINE_AA);
    }
    if (!cv::imwrite(png.string(), canvas)) throw std::runtime_error(png.string() + ": cannot write PNG");
#else
    throw std::runtime_error("show needs OpenCV to write PNGs (built with ATTNZOO_WITH_OPENCV=OFF)");
#endif
    std::cout << a.images[i] << ": masked-patch loss " << std::fixed << std::setprecision(4) << out.loss.item<double>()
              << " -> " << png.string() << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mae-reconstruct: pretrain a masked autoencoder on images and show its reconstructions"};
  apps::one_line_parse_errors(app, "mae-reconstruct");
  app.require_subcommand(1);

  TrainArgs ta;
  auto* tr = app.add_subcommand("train", "Pretrain an MAE (masked-patch reconstruction)");
  tr->add_option("--data", ta.data, "Data directory: idx files, CIFAR-10 batches, or ImageFolder train/ + val/");
  tr->add_option("--out", ta.out, "Run directory")->required();
  tr->add_option("--config", ta.config, "JSON file {\"model\": {...}, \"train\": {...}} (see --dump-config)");
  tr->add_option("--preset", ta.preset, "tiny, small-28 (default), small-32 or base");
  tr->add_flag("--resume", ta.resume, "Continue from the run's latest checkpoint");
  tr->add_flag("--dump-config", ta.dump_config, "Print the resolved config as JSON and exit");
  tr->add_flag("--strict-data", ta.strict_data, "An unreadable image is an error (default: skipped and listed)");
  tr->add_flag("--resize", ta.resize, "Resize images whose size differs from the model's");
  tr->add_flag("--norm-pix-loss", ta.norm_pix_loss, "Reconstruct per-patch normalised pixels (MAE's better default)");
  tr->add_option("--mask-ratio", ta.mask_ratio, "Fraction of patches masked per image (default 0.75)");
  tr->add_option("--img-size", ta.img_size, "Image side");
  tr->add_option("--patch-size", ta.patch_size, "Patch side");
  tr->add_option("--embed-dim", ta.embed_dim, "Encoder width");
  tr->add_option("--depth", ta.depth, "Encoder blocks");
  tr->add_option("--num-heads", ta.num_heads, "Encoder heads");
  tr->add_option("--decoder-embed-dim", ta.decoder_embed_dim, "Decoder width");
  tr->add_option("--decoder-depth", ta.decoder_depth, "Decoder blocks");
  tr->add_option("--decoder-num-heads", ta.decoder_num_heads, "Decoder heads");
  tr->add_option("--workers", ta.workers, "Threads preparing batches in the background")->capture_default_str();
  apps::add_train_flags(tr, ta.train);

  ShowArgs sa;
  auto* sh = app.add_subcommand("show", "4-panel PNG per image: original | masked | reconstruction | + visible");
  sh->add_option("--run", sa.run, "Run directory of `mae-reconstruct train`")->required();
  sh->add_option("--checkpoint", sa.checkpoint, "best, latest or step-N")->capture_default_str();
  sh->add_option("--images", sa.images, "Image files")->required();
  sh->add_option("--out", sa.out, "Output directory")->capture_default_str();
  sh->add_option("--mask-ratio", sa.mask_ratio, "Override the run's mask ratio");
  sh->add_option("--seed", sa.seed, "Seed of the masks")->capture_default_str();
  apps::add_runtime_flags(sh, sa.device, sa.threads);

  CLI11_PARSE(app, argc, argv);
  return apps::run_guarded("mae-reconstruct", [&] {
    if (*tr) return train(ta);
    if (*sh) show(sa);
    return 0;
  });
}
