// vit-classify: train a Vision Transformer on an image dataset, evaluate it, classify image files,
// and draw where it looks.
//   vit-classify train --data DIR --out RUN [--preset small-28] [model and training flags] [--resume]
//   vit-classify train --data DIR --out RUN --init-from RUN2|timm:DIR|mae:RUN [--freeze-backbone]   (transfer)
//   vit-classify eval (--run RUN | --init-from timm:DIR) --data DIR [--json] [--confusion PNG]
//   vit-classify predict (--run RUN | --init-from timm:DIR) --images FILE... [--top-k K] [--json]
//   vit-classify attention (--run RUN | --init-from timm:DIR) --image FILE [--out DIR]
// DIR holds idx files (Fashion-MNIST), CIFAR-10 binary batches, or an ImageFolder train/ + val/.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "apps/common/cli.h"
#include "apps/vit-classify/pictures.h"
#include "apps/vit-classify/run.h"
#include "datasets/images.h"
#include "engine/checkpoint.h"
#include "engine/plot.h"
#include "engine/runtime.h"
#include "engine/trainer.h"
#include "models/mae/mae.h"
#include "weights/state_dict.h"
#include "weights/timm_vit.h"

namespace fs = std::filesystem;
using namespace attnzoo;

namespace {

struct TrainArgs {
  std::string data, out, config, preset, init_from;
  bool resume = false, dump_config = false, freeze_backbone = false, strict_data = false, resize = false,
       no_hflip = false;
  std::optional<int64_t> img_size, patch_size, embed_dim, depth, num_heads, num_classes;
  std::optional<double> mlp_ratio, dropout, rrc_scale_min, backbone_lr_scale;
  std::optional<int64_t> train_subset;
  std::optional<std::string> global_pool;
  int workers = 2;
  apps::TrainFlags train;
};

struct EvalArgs {
  std::string run, init_from, data, checkpoint = "best", split = "test", device = "auto", dtype = "fp32", confusion;
  int64_t batch_size = 256, threads = 0;
  bool json = false, strict_data = false;
};

struct PredictArgs {
  std::string run, init_from, checkpoint = "best", device = "auto";
  std::vector<std::string> images;
  int64_t top_k = 5, threads = 0;
  bool json = false;
};

struct AttentionArgs {
  std::string run, init_from, checkpoint = "best", image, out = "attention", device = "auto";
  int64_t threads = 0;
};

// Top-1 / top-5 accuracy, mean loss and the confusion matrix over a whole split.
struct Evaluation {
  double loss = 0, top1 = 0, top5 = 0;
  int64_t n = 0;
  torch::Tensor confusion;  // (K, K) int64: rows true class, columns predicted
};

Evaluation evaluate_split(models::VisionTransformer& model, const datasets::ImageDataset& data,
                          const datasets::ImageTransform& tf, int64_t batch_size, const std::string& dtype,
                          torch::Device device) {
  const int64_t K = model->cfg.num_classes;
  datasets::ImageBatcher batches(data, tf, batch_size, /*train=*/false, 0, 2);
  Evaluation ev;
  ev.confusion = torch::zeros({K, K}, torch::kLong);
  torch::NoGradGuard no_grad;
  model->eval();
  for (int64_t b = 0; b < batches.batches_per_epoch(); ++b) {
    auto batch = batches.get(b);
    auto y = batch.labels.to(device);
    torch::Tensor logits;
    {
      engine::AutocastGuard autocast(dtype, device);
      logits = model->forward(batch.images.to(device));
    }
    logits = logits.to(torch::kFloat);
    ev.loss += torch::nn::functional::cross_entropy(logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
    auto top = std::get<1>(logits.topk(std::min<int64_t>(5, K), 1));  // (B, 5)
    ev.top1 += top.select(1, 0).eq(y).sum().item<double>();
    ev.top5 += top.eq(y.unsqueeze(1)).any(1).sum().item<double>();
    auto pred = top.select(1, 0).cpu(), truth = batch.labels;
    for (int64_t i = 0; i < truth.size(0); ++i) ev.confusion[truth[i].item<int64_t>()][pred[i].item<int64_t>()] += 1;
    ev.n += truth.size(0);
  }
  ev.loss /= ev.n, ev.top1 /= ev.n, ev.top5 /= ev.n;
  return ev;
}

void plot_confusion(const Evaluation& ev, const std::vector<std::string>& classes, const fs::path& png) {
  engine::Heatmap hm;
  auto rows = ev.confusion.to(torch::kDouble);
  rows = rows / rows.sum(1, true).clamp_min(1.0);  // each true class sums to 1
  for (int64_t r = 0; r < rows.size(0); ++r) {
    std::vector<double> row;
    for (int64_t c = 0; c < rows.size(1); ++c) row.push_back(rows[r][c].item<double>());
    hm.values.push_back(row);
  }
  hm.row_labels = hm.col_labels = classes;
  std::ostringstream title;
  title << "confusion matrix: top-1 " << std::fixed << std::setprecision(2) << 100 * ev.top1 << " % of " << ev.n;
  hm.title = title.str();
  hm.xlabel = "predicted class";
  hm.ylabel = "true class";
  hm.vmin = 0.0, hm.vmax = 1.0;
  engine::plot_heatmap(hm, png);
}

// The transform's size, channels and normalisation for the model of CFG.
void fit_transforms(apps::VitRunConfig& cfg) {
  for (auto* tf : {&cfg.augment, &cfg.eval}) {
    tf->size = cfg.model.img_size;
    tf->channels = cfg.model.in_chans;
  }
  cfg.eval.random_resized_crop = false, cfg.eval.hflip = false;
  cfg.augment.mean = cfg.eval.mean, cfg.augment.std = cfg.eval.std;
  cfg.augment.interpolation = cfg.eval.interpolation;
  cfg.augment.crop_pct = 1.0;
}

void report_skipped(const datasets::ImageDataset& d) {
  if (d.skipped.empty()) return;
  std::cerr << "warning: " << d.source << ": skipped " << d.skipped.size() << " unreadable image(s) (--strict-data makes this an error):\n";
  for (size_t i = 0; i < d.skipped.size() && i < 10; ++i) std::cerr << "  " << d.skipped[i] << "\n";
  if (d.skipped.size() > 10) std::cerr << "  ... (" << d.skipped.size() - 10 << " more)\n";
}

// Returns the exit code: 0, or 128 + the signal that interrupted training (after saving).
int train(const TrainArgs& a) {
  auto cfg = apps::default_vit_run_config();
  std::optional<apps::RunWeights> init_run;
  std::optional<weights::TimmViT> init_timm;
  std::optional<std::map<std::string, torch::Tensor>> init_mae;  // the encoder of an MAE run
  const bool model_flags = a.img_size || a.patch_size || a.embed_dim || a.depth || a.num_heads || a.mlp_ratio || a.global_pool;
  if (a.resume && (!a.preset.empty() || !a.init_from.empty() || model_flags || a.freeze_backbone))
    throw std::invalid_argument("--resume: the model comes from the checkpoint; drop --preset, --init-from, --freeze-backbone and model flags");
  if (!a.init_from.empty() && (!a.preset.empty() || model_flags))
    throw std::invalid_argument("--init-from: the model's shape comes from the checkpoint; drop --preset and model flags");
  if (a.resume) {
    cfg = apps::load_run_weights(a.out, "latest").config;
  } else if (!a.init_from.empty()) {
    if (a.init_from.rfind("timm:", 0) == 0) {
      init_timm = weights::load_timm_vit_dir(a.init_from.substr(5));
      cfg.model = init_timm->config;
      cfg.eval.mean = init_timm->preprocess.mean, cfg.eval.std = init_timm->preprocess.std;
      cfg.eval.interpolation = init_timm->preprocess.interpolation;
    } else if (a.init_from.rfind("mae:", 0) == 0) {
      // An MAE pretraining run (mae-reconstruct): its encoder, a fresh head.
      const fs::path run = a.init_from.substr(4);
      if (!fs::is_directory(run)) throw std::runtime_error(run.string() + ": no such run directory (--init-from mae:RUN)");
      engine::CheckpointStore store(run);
      const auto dir = fs::is_directory(store.root() / "best") ? store.resolve("best") : store.resolve("latest");
      auto ckpt = engine::read_checkpoint(dir);
      if (!ckpt.model.count("mask_token"))
        throw std::invalid_argument((dir / "model.safetensors").string() + ": not an MAE checkpoint (no mask_token); "
                                    "use --init-from RUN for a vit-classify run");
      models::MAEConfig mae_cfg;
      try {
        mae_cfg = ckpt.config.at("model").get<models::MAEConfig>();
        cfg.eval = ckpt.config.at("augment").get<datasets::ImageTransform>();
      } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error((dir / "config.json").string() + ": " + e.what());
      }
      cfg.model = models::mae_encoder_config(mae_cfg, 0);
      init_mae = models::mae_encoder_tensors(ckpt.model);
    } else {
      init_run = apps::load_run_weights(a.init_from, "best");
      cfg.model = init_run->config.model;
      cfg.eval = init_run->config.eval;
    }
    cfg.init_from = a.init_from;
  } else if (!a.preset.empty()) {
    cfg.model = models::vit_preset(a.preset);
  }
  if (!a.config.empty()) apps::apply_json(cfg, apps::read_json_file(a.config), a.config);
  auto set = [](auto& field, const auto& flag) {
    if (flag) field = *flag;
  };
  set(cfg.model.img_size, a.img_size), set(cfg.model.patch_size, a.patch_size), set(cfg.model.embed_dim, a.embed_dim);
  set(cfg.model.depth, a.depth), set(cfg.model.num_heads, a.num_heads), set(cfg.model.mlp_ratio, a.mlp_ratio);
  set(cfg.model.global_pool, a.global_pool), set(cfg.model.dropout, a.dropout);
  apps::apply_train_flags(cfg.train, a.train);
  if (!a.data.empty()) cfg.data = a.data;
  if (a.freeze_backbone) {
    if (a.init_from.empty()) throw std::invalid_argument("--freeze-backbone needs --init-from (a trained backbone)");
    cfg.freeze_backbone = true;
  }
  if (a.backbone_lr_scale) {
    if (!(*a.backbone_lr_scale >= 0.0 && *a.backbone_lr_scale <= 1.0))
      throw std::invalid_argument("--backbone-lr-scale must be in [0, 1], got " + std::to_string(*a.backbone_lr_scale));
    cfg.backbone_lr_scale = *a.backbone_lr_scale;
  }
  if (a.no_hflip) cfg.augment.hflip = false;
  if (a.rrc_scale_min) cfg.augment.random_resized_crop = true, cfg.augment.scale_min = *a.rrc_scale_min;
  if (cfg.data.empty()) throw std::invalid_argument("--data is required");

  if (a.train_subset) cfg.train_subset = *a.train_subset;
  auto train_set = datasets::subset(datasets::open_image_dataset(cfg.data, "train", a.strict_data), cfg.train_subset,
                                    cfg.train.seed);
  auto test_set = datasets::open_image_dataset(cfg.data, "test", a.strict_data);
  report_skipped(train_set), report_skipped(test_set);
  if (train_set.classes != test_set.classes && train_set.format == "imagefolder")
    throw std::invalid_argument(test_set.source + ": its class folders differ from those of " + train_set.source);
  const auto first = train_set.image(0);
  if (!a.resume && a.init_from.empty() && a.config.empty()) cfg.model.in_chans = first.size(0);
  const int64_t K = a.num_classes ? *a.num_classes : static_cast<int64_t>(train_set.classes.size());
  if (a.num_classes && *a.num_classes < static_cast<int64_t>(train_set.classes.size()))
    throw std::invalid_argument("--num-classes " + std::to_string(K) + " is smaller than the " +
                                std::to_string(train_set.classes.size()) + " classes of " + train_set.source);
  if (!a.resume) cfg.model.num_classes = K;
  if (train_set.format != "imagefolder" && (first.size(1) != cfg.model.img_size || first.size(2) != cfg.model.img_size) &&
      !a.resize && !a.resume && cfg.augment.size == 0)
    throw std::invalid_argument(train_set.source + ": images are " + std::to_string(first.size(1)) + "x" +
                                std::to_string(first.size(2)) + " but the model takes " +
                                std::to_string(cfg.model.img_size) + "x" + std::to_string(cfg.model.img_size) +
                                "; pass --resize to resize them, or --img-size " + std::to_string(first.size(1)));
  if (!a.resume) fit_transforms(cfg);
  if (cfg.train.eval_iters <= 0) {
    datasets::ImageBatcher probe(test_set, cfg.eval, cfg.train.batch_size, false, 0, 0);
    cfg.train.eval_iters = probe.batches_per_epoch();
  }
  cfg.model.validate();
  cfg.train.validate();
  cfg.augment.validate();
  if (a.dump_config) {
    std::cout << apps::to_json(cfg).dump(2) << std::endl;
    return 0;
  }

  const auto device = engine::setup_runtime({cfg.train.device, cfg.train.threads});
  torch::manual_seed(cfg.train.seed);
  models::VisionTransformer model(cfg.model);
  if (init_run || init_timm || init_mae) {
    // The backbone from the source; its head too when the classes agree, else a fresh one.
    auto tensors = init_run ? init_run->tensors : init_timm ? init_timm->tensors : *init_mae;
    const int64_t source_k = init_run ? init_run->config.model.num_classes : init_timm ? init_timm->config.num_classes : 0;
    if (source_k != K) {
      for (auto it = tensors.begin(); it != tensors.end();)
        it = model->is_head_parameter(it->first) && it->first.rfind("fc_norm.", 0) != 0 ? tensors.erase(it) : std::next(it);
    }
    auto report = weights::load_state_dict(*model, tensors, /*strict=*/false, a.init_from);
    for (const auto& k : report.missing)
      if (!model->is_head_parameter(k)) throw std::runtime_error(a.init_from + ": missing key " + k);
    std::cout << "initialised from " << a.init_from << (source_k != K ? " (new head for " + std::to_string(K) + " classes)" : "")
              << std::endl;
  }
  if (cfg.freeze_backbone)
    for (auto& p : model->named_parameters()) p.value().set_requires_grad(model->is_head_parameter(p.key()));
  model->to(device);
  int64_t trainable = 0, total = 0;
  for (const auto& p : model->parameters()) total += p.numel(), trainable += p.requires_grad() ? p.numel() : 0;
  std::cout << "model: ViT " << cfg.model.depth << " blocks, " << cfg.model.num_heads << " heads, " << cfg.model.embed_dim
            << " dim, " << cfg.model.img_size << "px / patch " << cfg.model.patch_size << ", " << K << " classes, "
            << total / 1e6 << "M parameters (" << trainable << " trainable); data " << train_set.format << ": "
            << train_set.size() << " train, " << test_set.size() << " test; " << at::get_num_threads() << " threads, "
            << cfg.train.dtype << std::endl;

  datasets::ImageBatcher train_batches(train_set, cfg.augment, cfg.train.batch_size, true, cfg.train.seed, a.workers);
  datasets::ImageBatcher eval_batches(test_set, cfg.eval, cfg.train.batch_size, false, cfg.train.seed, a.workers);
  auto step_on = [&](const datasets::ImageBatch& b, bool eval) {
    auto logits = model->forward(b.images.to(device)).to(torch::kFloat);
    auto y = b.labels.to(device);
    engine::StepOutput out{torch::nn::functional::cross_entropy(logits, y), {}};
    auto top = std::get<1>(logits.detach().topk(std::min<int64_t>(5, K), 1));
    out.metrics["top1"] = top.select(1, 0).eq(y).to(torch::kFloat).mean().item<double>();
    if (eval) out.metrics["top5"] = top.eq(y.unsqueeze(1)).any(1).to(torch::kFloat).mean().item<double>();
    return out;
  };
  engine::Task task;
  task.train_step = [&](int64_t step, int64_t micro) {
    return step_on(train_batches.get(step * cfg.train.grad_accum + micro), false);
  };
  task.eval_step = [&](int64_t batch) { return step_on(eval_batches.get(batch), true); };
  if (cfg.backbone_lr_scale != 1.0)
    task.lr_scale = [&](const std::string& name) { return model->is_head_parameter(name) ? 1.0 : cfg.backbone_lr_scale; };
  task.config = apps::to_json(cfg);
  task.extra_state = {{"classes", train_set.classes.size() == static_cast<size_t>(K) ? train_set.classes
                                                                                      : std::vector<std::string>{}}};
  auto result = engine::train(*model, task, cfg.train, a.out, a.resume, device);
  if (result.interrupted) return 128 + result.signal;

  // The best checkpoint on the whole test split: accuracy and the confusion matrix.
  auto best = apps::load_classifier(a.out, "", "best", device);
  auto ev = evaluate_split(best.model, test_set, cfg.eval, cfg.train.batch_size, cfg.train.dtype, device);
  plot_confusion(ev, best.classes, fs::path(a.out) / "confusion.png");
  std::cout << "done: " << result.steps_done << " steps in " << std::fixed << std::setprecision(1) << result.seconds
            << " s; test (" << best.source << "): top-1 " << std::setprecision(2) << 100 * ev.top1 << " %, top-5 "
            << 100 * ev.top5 << " %, loss " << std::setprecision(4) << ev.loss << "; " << (fs::path(a.out) / "confusion.png").string()
            << std::endl;
  return 0;
}

void eval(const EvalArgs& a) {
  const auto device = engine::setup_runtime({a.device, a.threads, a.json});
  auto c = apps::load_classifier(a.run, a.init_from, a.checkpoint, device);
  auto data = datasets::open_image_dataset(a.data, a.split, a.strict_data);
  report_skipped(data);
  const int64_t K = c.model->cfg.num_classes;
  for (auto label : data.labels)
    if (label >= K)
      throw std::invalid_argument(a.data + ": label " + std::to_string(label) + " but the model has only " +
                                  std::to_string(K) + " classes");
  auto ev = evaluate_split(c.model, data, c.transform, a.batch_size, a.dtype, device);
  if (!a.confusion.empty()) plot_confusion(ev, c.classes, a.confusion);
  if (a.json) {
    std::cout << nlohmann::json{{"top1", ev.top1}, {"top5", ev.top5}, {"loss", ev.loss}, {"images", ev.n}}.dump() << std::endl;
  } else {
    std::cout << c.source << " on " << a.data << " (" << a.split << ", " << ev.n << " images): top-1 " << std::fixed
              << std::setprecision(2) << 100 * ev.top1 << " %, top-5 " << 100 * ev.top5 << " %, loss "
              << std::setprecision(4) << ev.loss << std::endl;
  }
}

void predict(const PredictArgs& a) {
  if (a.images.empty()) throw std::invalid_argument("--images: give at least one image file");
  if (a.top_k <= 0) throw std::invalid_argument("--top-k must be positive, got " + std::to_string(a.top_k));
  const auto device = engine::setup_runtime({a.device, a.threads, a.json});
  auto c = apps::load_classifier(a.run, a.init_from, a.checkpoint, device);
  torch::NoGradGuard no_grad;
  const int64_t k = std::min<int64_t>(a.top_k, c.model->cfg.num_classes);
  for (const auto& file : a.images) {
    auto x = datasets::transform_image(datasets::read_image_file(file), c.transform, false, 0).unsqueeze(0);
    auto probs = torch::softmax(c.model->forward(x.to(device)), 1).cpu()[0];
    auto [values, indices] = probs.topk(k);
    nlohmann::json row = {{"image", file}, {"top", nlohmann::json::array()}};
    for (int64_t i = 0; i < k; ++i) {
      const int64_t cls = indices[i].item<int64_t>();
      row["top"].push_back({{"class", cls}, {"label", c.classes[cls]}, {"prob", values[i].item<double>()}});
    }
    if (a.json) {
      std::cout << row.dump() << std::endl;
    } else {
      std::cout << file << ":";
      for (const auto& t : row["top"])
        std::cout << "  " << t["label"].get<std::string>() << " " << std::fixed << std::setprecision(3) << t["prob"].get<double>();
      std::cout << std::endl;
    }
  }
}

void attention(const AttentionArgs& a) {
  const auto device = engine::setup_runtime({a.device, a.threads});
  auto c = apps::load_classifier(a.run, a.init_from, a.checkpoint, device);
  auto x = datasets::transform_image(datasets::read_image_file(a.image), c.transform, false, 0);  // (C, S, S)
  torch::NoGradGuard no_grad;
  c.model->keep_attention(true);
  auto probs = torch::softmax(c.model->forward(x.unsqueeze(0).to(device)), 1).cpu()[0];
  const auto weights = c.model->attention_weights();  // per layer (1, Hd, T, T)
  const int64_t g = c.model->cfg.grid(), Hd = c.model->cfg.num_heads;
  const auto rgb = datasets::denormalize_to_rgb(x, c.transform);
  fs::create_directories(a.out);
  // Per layer: the [class] token's attention over the patches for each head, and their mean.
  for (size_t l = 0; l < weights.size(); ++l) {
    auto cls = weights[l][0].select(1, 0).narrow(1, 1, g * g).cpu().view({Hd, g, g});  // (Hd, g, g)
    std::vector<apps::Panel> panels{{torch::Tensor(), "image"}};
    for (int64_t h = 0; h < Hd; ++h) panels.push_back({cls[h], "layer " + std::to_string(l) + " head " + std::to_string(h)});
    panels.push_back({cls.mean(0), "layer " + std::to_string(l) + " mean"});
    std::ostringstream name;
    name << "layer" << std::setw(2) << std::setfill('0') << l << ".png";
    apps::write_overlay_grid(rgb, panels, 7, fs::path(a.out) / name.str());
  }
  auto rollout = models::attention_rollout(weights).cpu()[0].view({g, g});
  const int64_t pred = probs.argmax().item<int64_t>();
  std::ostringstream title;
  title << "rollout: " << c.classes[pred] << " " << std::fixed << std::setprecision(2) << probs[pred].item<double>();
  apps::write_overlay_grid(rgb, {{torch::Tensor(), "image"}, {rollout, title.str()}}, 2, fs::path(a.out) / "rollout.png", 224);
  std::cout << a.image << ": " << c.classes[pred] << " (" << std::fixed << std::setprecision(3) << probs[pred].item<double>()
            << "); " << weights.size() << " layer maps and rollout.png in " << a.out << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vit-classify: train a Vision Transformer on images, evaluate it, classify files, show its attention"};
  apps::one_line_parse_errors(app, "vit-classify");
  app.require_subcommand(1);

  TrainArgs ta;
  auto* tr = app.add_subcommand("train", "Train (or fine-tune) a ViT classifier");
  tr->add_option("--data", ta.data, "Data directory: idx files, CIFAR-10 batches, or ImageFolder train/ + val/");
  tr->add_option("--out", ta.out, "Run directory: checkpoints, metrics.jsonl, loss.png, confusion.png")->required();
  tr->add_option("--config", ta.config, "JSON file {\"model\": {...}, \"train\": {...}, ...} (see --dump-config)");
  tr->add_option("--preset", ta.preset, "Model preset: tiny, small-28 (default), small-32, vit_tiny_patch16_224, "
                                        "vit_small_patch16_224, vit_base_patch16_224");
  tr->add_option("--init-from", ta.init_from, "Start from RUN (a vit-classify run), timm:DIR (a timm ViT download) or mae:RUN (an MAE encoder)");
  tr->add_option("--num-classes", ta.num_classes, "Classes of the new head (default: the data's)");
  tr->add_flag("--freeze-backbone", ta.freeze_backbone, "With --init-from: train only the head (a linear probe)");
  tr->add_option("--backbone-lr-scale", ta.backbone_lr_scale,
                 "Full fine-tuning: the backbone learns at --lr times this (e.g. 0.1), the head at --lr");
  tr->add_flag("--resume", ta.resume, "Continue from the run's latest checkpoint");
  tr->add_flag("--dump-config", ta.dump_config, "Print the resolved config as JSON and exit");
  tr->add_flag("--strict-data", ta.strict_data, "An unreadable image is an error (default: skipped and listed)");
  tr->add_flag("--resize", ta.resize, "Resize images whose size differs from the model's --img-size");
  tr->add_flag("--no-hflip", ta.no_hflip, "No random horizontal flips");
  tr->add_option("--rrc-scale-min", ta.rrc_scale_min, "Random resized crops of at least this area fraction (off by default)");
  tr->add_option("--train-subset", ta.train_subset, "Train on N images of the training split (a seeded choice)");
  tr->add_option("--workers", ta.workers, "Threads preparing batches in the background")->capture_default_str();
  tr->add_option("--img-size", ta.img_size, "Image side the model takes");
  tr->add_option("--patch-size", ta.patch_size, "Patch side P");
  tr->add_option("--embed-dim", ta.embed_dim, "Token width C");
  tr->add_option("--depth", ta.depth, "Transformer blocks");
  tr->add_option("--num-heads", ta.num_heads, "Attention heads");
  tr->add_option("--mlp-ratio", ta.mlp_ratio, "MLP hidden width / C");
  tr->add_option("--global-pool", ta.global_pool, "token ([class] token) or avg (mean of the patches)");
  tr->add_option("--dropout", ta.dropout, "Dropout probability");
  apps::add_train_flags(tr, ta.train);

  EvalArgs ea;
  auto* ev = app.add_subcommand("eval", "Top-1 / top-5 accuracy of a model on a split");
  ev->add_option("--run", ea.run, "Run directory");
  ev->add_option("--init-from", ea.init_from, "timm:DIR: a timm ViT download instead of a run");
  ev->add_option("--data", ea.data, "Data directory")->required();
  ev->add_option("--split", ea.split, "test or train")->capture_default_str();
  ev->add_option("--checkpoint", ea.checkpoint, "best, latest or step-N")->capture_default_str();
  ev->add_option("--batch-size", ea.batch_size, "Images per forward")->capture_default_str();
  ev->add_option("--confusion", ea.confusion, "Write the confusion matrix as this PNG");
  apps::add_runtime_flags(ev, ea.device, ea.threads, &ea.dtype);
  ev->add_flag("--strict-data", ea.strict_data, "An unreadable image is an error");
  ev->add_flag("--json", ea.json, "Print {\"top1\", \"top5\", \"loss\", \"images\"} as JSON");

  PredictArgs pa;
  auto* pr = app.add_subcommand("predict", "Classify image files");
  pr->add_option("--run", pa.run, "Run directory");
  pr->add_option("--init-from", pa.init_from, "timm:DIR: a timm ViT download instead of a run");
  pr->add_option("--checkpoint", pa.checkpoint, "best, latest or step-N")->capture_default_str();
  pr->add_option("--images", pa.images, "Image files (JPEG, PNG, ...)")->required();
  pr->add_option("--top-k", pa.top_k, "Classes shown per image")->capture_default_str();
  apps::add_runtime_flags(pr, pa.device, pa.threads);
  pr->add_flag("--json", pa.json, "One JSON object per image: {\"image\", \"top\": [{\"class\", \"label\", \"prob\"}]}");

  AttentionArgs aa;
  auto* at = app.add_subcommand("attention", "Attention of the [class] token per layer and head, and rollout, as PNGs");
  at->add_option("--run", aa.run, "Run directory");
  at->add_option("--init-from", aa.init_from, "timm:DIR: a timm ViT download instead of a run");
  at->add_option("--checkpoint", aa.checkpoint, "best, latest or step-N")->capture_default_str();
  at->add_option("--image", aa.image, "Image file")->required();
  at->add_option("--out", aa.out, "Output directory for layerNN.png and rollout.png")->capture_default_str();
  apps::add_runtime_flags(at, aa.device, aa.threads);

  CLI11_PARSE(app, argc, argv);
  return apps::run_guarded("vit-classify", [&] {
    if (*tr) return train(ta);
    if (*ev) eval(ea);
    if (*pr) predict(pa);
    if (*at) attention(aa);
    return 0;
  });
}
