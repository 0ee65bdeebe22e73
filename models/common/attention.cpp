#include "models/common/attention.h"

#include "models/common/gemm.h"
#include "models/common/softmax.h"

#include <cmath>
#include <limits>

namespace attnzoo::models {
namespace {

// softmax(scores) over `allowed` (see masked_softmax). Without may_be_empty the caller guarantees
// every row allows at least one key (causal and local masks always allow the diagonal).
torch::Tensor softmax_over(const torch::Tensor& scores, torch::Tensor allowed, bool may_be_empty) {
  torch::Tensor empty_rows;  // (..., Tq, 1): rows with no allowed key
  if (may_be_empty) {
    empty_rows = allowed.logical_not().all(-1, /*keepdim=*/true);
    // Such rows attend everywhere (finite, so no NaN forward or backward) and are zeroed after.
    allowed = allowed.logical_or(empty_rows);
  }
  auto weights = torch::softmax(scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity()), -1);
  return may_be_empty ? weights.masked_fill(empty_rows, 0.0) : weights;
}

bool may_have_empty_rows(const AttentionOptions& opt) {
  return opt.mask.defined() || opt.key_padding_mask.defined() || opt.key_lengths.defined();
}

}  // namespace

torch::Tensor causal_mask(int64_t tq, int64_t tk, torch::Device device) {
  return torch::ones({tq, tk}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril(tk - tq);
}

torch::Tensor local_mask(int64_t tq, int64_t tk, int64_t window, torch::Device device) {
  TORCH_CHECK(window >= 0, "local attention needs a window >= 0, got ", window);
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto query_pos = torch::arange(tk - tq, tk, opts).unsqueeze(1);  // (Tq, 1)
  auto key_pos = torch::arange(tk, opts).unsqueeze(0);              // (1, Tk)
  return (query_pos - key_pos).abs() <= window;                     // (Tq, Tk)
}

torch::Tensor key_padding_mask_from_lengths(const torch::Tensor& lengths, int64_t tk) {
  TORCH_CHECK(lengths.dim() == 1 && !lengths.is_floating_point() && lengths.scalar_type() != torch::kBool,
              "key lengths must be a 1-D integer tensor (B), got ", lengths.scalar_type(), " ", lengths.sizes());
  auto key_pos = torch::arange(tk, lengths.options().dtype(torch::kLong)).unsqueeze(0);  // (1, Tk)
  return key_pos >= lengths.to(torch::kLong).unsqueeze(1);                               // (B, Tk)
}

torch::Tensor attention_mask(const AttentionOptions& opt, int64_t B, int64_t H, int64_t tq, int64_t tk,
                             torch::Device device) {
  torch::Tensor allowed;
  auto add = [&](const torch::Tensor& m) { allowed = allowed.defined() ? allowed.logical_and(m) : m; };
  if (opt.mask.defined()) {
    const auto& m = opt.mask;
    TORCH_CHECK(m.scalar_type() == torch::kBool, "attention mask must be bool (true = may attend), got ",
                m.scalar_type());
    const std::vector<int64_t> full = {B, H, tq, tk};
    bool fits = m.dim() <= 4;
    for (int64_t d = 1; fits && d <= m.dim(); ++d) {
      const int64_t size = m.size(-d);
      fits = size == 1 || size == full[static_cast<size_t>(4 - d)];
    }
    TORCH_CHECK(fits, "attention mask of shape ", m.sizes(), " does not broadcast to (B, H, Tq, Tk) = (", B, ", ", H,
                ", ", tq, ", ", tk, ")");
    add(m.to(device));
  }
  if (opt.key_padding_mask.defined()) {
    const auto& m = opt.key_padding_mask;
    TORCH_CHECK(m.scalar_type() == torch::kBool && m.dim() == 2 && m.size(0) == B && m.size(1) == tk,
                "key padding mask must be bool (B, Tk) = (", B, ", ", tk, "), got ", m.scalar_type(), " ", m.sizes());
    add(m.to(device).logical_not().view({B, 1, 1, tk}));
  }
  if (opt.key_lengths.defined()) {
    TORCH_CHECK(opt.key_lengths.dim() == 1 && opt.key_lengths.size(0) == B, "key lengths must have shape (B) = (", B,
                "), got ", opt.key_lengths.sizes());
    add(key_padding_mask_from_lengths(opt.key_lengths.to(device), tk).logical_not().view({B, 1, 1, tk}));
  }
  if (opt.causal && tq > 1) add(causal_mask(tq, tk, device));  // one query (decoding) sits last: it sees every key
  if (opt.window >= 0) add(local_mask(tq, tk, opt.window, device));
  return allowed;
}

torch::Tensor masked_softmax(const torch::Tensor& scores, const torch::Tensor& allowed) {
  if (!allowed.defined()) return torch::softmax(scores, -1);
  TORCH_CHECK(allowed.scalar_type() == torch::kBool, "masked_softmax: the mask must be bool, got ",
              allowed.scalar_type());
  return softmax_over(scores, allowed, /*may_be_empty=*/true);
}

AttentionOutput scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                             const torch::Tensor& v, const AttentionOptions& opt) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention expects (B, H, T, D) inputs, got q ",
              q.sizes(), ", k ", k.sizes(), ", v ", v.sizes());
  TORCH_CHECK(q.size(-1) == k.size(-1) && k.sizes().slice(0, 3) == v.sizes().slice(0, 3) &&
                  q.sizes().slice(0, 2) == k.sizes().slice(0, 2),
              "attention: q ", q.sizes(), ", k ", k.sizes(), " and v ", v.sizes(),
              " do not fit together (expected (B, H, Tq, D), (B, H, Tk, D), (B, H, Tk, Dv))");
  const int64_t B = q.size(0), H = q.size(1), tq = q.size(2), tk = k.size(2);
  TORCH_CHECK(!opt.causal || tq <= tk, "causal attention needs Tq <= Tk, got ", tq, " > ", tk);
  TORCH_CHECK(opt.window >= -1, "attention window must be >= 0 (or -1 for global), got ", opt.window);
  const double p = opt.training ? opt.dropout : 0.0;

  torch::Tensor mask = attention_mask(opt, B, H, tq, tk, q.device());
  const bool may_be_empty = may_have_empty_rows(opt);

#if TORCH_VERSION_MAJOR >= 2
  if (!opt.need_weights) {
    // The fused kernel (flash / memory-efficient on GPU, fused CPU kernel) when no weights are needed.
    const bool plain_causal = opt.causal && !may_be_empty && opt.window < 0 && tq == tk;
    torch::Tensor empty_rows;
    if (may_be_empty) {
      empty_rows = mask.logical_not().all(-1, /*keepdim=*/true);  // (..., Tq, 1)
      mask = mask.logical_or(empty_rows);
    }
    // No mask is an empty optional: LibTorch 2.x refuses an optional holding an undefined tensor.
    const auto fused_mask = plain_causal || !mask.defined() ? c10::optional<at::Tensor>() : c10::optional<at::Tensor>(mask);
    auto out = at::scaled_dot_product_attention(q, k, v, fused_mask, p, plain_causal);
    return {may_be_empty ? out.masked_fill(empty_rows, 0.0) : out, {}};
  }
#endif

  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = matmul(q, k.transpose(-2, -1), scale);  // (B, H, Tq, Tk)
  // A causal mask and nothing else: the softmax skips the masked keys itself.
  const bool only_causal = opt.causal && !may_be_empty && opt.window < 0;
  auto weights = !mask.defined() || only_causal ? attention_softmax(scores, only_causal && tq > 1)
                                                : softmax_over(scores, mask, may_be_empty);
  auto dropped = p > 0.0 ? torch::dropout(weights, p, true) : weights;
  // (B, H, Tq, Dv), stored as (B, Tq, H, Dv): merging the heads afterwards is a view, not a copy.
  auto out = matmul(dropped, v, 1.0, /*heads_last=*/true);
  return {out, opt.need_weights ? weights : torch::Tensor()};
}

}  // namespace attnzoo::models
