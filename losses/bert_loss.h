// BERT's pretraining loss (Devlin et al. 2019, §3.1, appendix A.2): the mean cross-entropy of the
// masked-LM predictions plus the mean cross-entropy of next-sentence prediction, with the
// accuracies of both as metrics. Logits are upcast to fp32 (bf16 autocast loses too much in a
// softmax over a large vocabulary).
#pragma once

#include <torch/torch.h>

namespace attnzoo::losses {

struct BertPretrainingLoss {
  torch::Tensor loss;   // scalar: mlm_loss + nsp_loss, to backpropagate
  double mlm_loss = 0;  // over the M predictions (0 when M = 0)
  double mlm_acc = 0;   // fraction of the M predictions whose argmax is the label (0 when M = 0)
  double nsp_loss = 0;
  double nsp_acc = 0;
  int64_t predictions = 0;  // M
};

// mlm_logits (M, V) for the masked positions only, mlm_labels (M); nsp_logits (B, 2), nsp_labels (B)
// with 0 = B follows A, 1 = B is random.
BertPretrainingLoss bert_pretraining_loss(const torch::Tensor& mlm_logits, const torch::Tensor& mlm_labels,
                                          const torch::Tensor& nsp_logits, const torch::Tensor& nsp_labels);

// Mean cross-entropy of classification logits (B, L) against labels (B), and the accuracy.
struct ClassificationLoss {
  torch::Tensor loss;
  double accuracy = 0;
};
ClassificationLoss classification_loss(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace attnzoo::losses
