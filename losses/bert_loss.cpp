#include "losses/bert_loss.h"

namespace attnzoo::losses {

BertPretrainingLoss bert_pretraining_loss(const torch::Tensor& mlm_logits, const torch::Tensor& mlm_labels,
                                          const torch::Tensor& nsp_logits, const torch::Tensor& nsp_labels) {
  TORCH_CHECK(mlm_logits.dim() == 2 && mlm_labels.dim() == 1 && mlm_logits.size(0) == mlm_labels.size(0),
              "bert_pretraining_loss expects MLM logits (M, V) and labels (M), got ", mlm_logits.sizes(), " and ",
              mlm_labels.sizes());
  BertPretrainingLoss out;
  auto nsp = classification_loss(nsp_logits, nsp_labels);
  out.nsp_loss = nsp.loss.item<double>();
  out.nsp_acc = nsp.accuracy;
  out.predictions = mlm_labels.size(0);
  if (out.predictions == 0) {
    out.loss = nsp.loss + 0.0 * mlm_logits.sum();  // keeps the MLM head in the graph
    return out;
  }
  const auto logits = mlm_logits.to(torch::kFloat);
  const auto mlm = torch::cross_entropy_loss(logits, mlm_labels);
  out.mlm_loss = mlm.item<double>();
  out.mlm_acc = logits.argmax(-1).eq(mlm_labels).to(torch::kDouble).mean().item<double>();
  out.loss = mlm + nsp.loss;
  return out;
}

ClassificationLoss classification_loss(const torch::Tensor& logits, const torch::Tensor& labels) {
  TORCH_CHECK(logits.dim() == 2 && labels.dim() == 1 && logits.size(0) == labels.size(0),
              "classification_loss expects logits (B, L) and labels (B), got ", logits.sizes(), " and ", labels.sizes());
  const auto l = logits.to(torch::kFloat);
  return {torch::cross_entropy_loss(l, labels), l.argmax(-1).eq(labels).to(torch::kDouble).mean().item<double>()};
}

}  // namespace attnzoo::losses
