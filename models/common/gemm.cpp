#include "models/common/gemm.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <string>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "models/common/avx512_math.h"

#ifdef ATTNZOO_HAVE_DNNL
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "models/common/dnnl_runtime.h"
#endif

namespace attnzoo::models {

#ifdef ATTNZOO_HAVE_DNNL
dnnl::engine& dnnl_cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

void dnnl_run(const dnnl::primitive& p, const std::unordered_map<int, dnnl::memory>& args) {
  thread_local dnnl::stream stream(dnnl_cpu_engine());
  p.execute(stream, args);
  stream.wait();
}

namespace {

using dnnl::memory;

memory::desc describe(const torch::Tensor& t) {
  const auto type = t.scalar_type() == torch::kBFloat16 ? memory::data_type::bf16 : memory::data_type::f32;
  return memory::desc(memory::dims(t.sizes().begin(), t.sizes().end()), type,
                      memory::dims(t.strides().begin(), t.strides().end()));
}

// An activation applied by the matmul primitive to its fp32 result, before rounding to the output type.
enum class PostOp { none, gelu, gelu_tanh, relu };

dnnl::algorithm algorithm_of(PostOp op) {
  switch (op) {
    case PostOp::gelu: return dnnl::algorithm::eltwise_gelu_erf;
    case PostOp::gelu_tanh: return dnnl::algorithm::eltwise_gelu_tanh;
    case PostOp::relu: return dnnl::algorithm::eltwise_relu;
    case PostOp::none: break;
  }
  return dnnl::algorithm::undef;
}

// A matmul primitive and, when it reads its B operand in a blocked layout of its own choosing, the
// reorder that writes B into that layout.
struct MatmulPrimitive {
  dnnl::matmul matmul;
  std::optional<dnnl::reorder> to_blocked;  // B (as given) -> blocked_b
  memory::desc blocked_b;
};

// One oneDNN matmul primitive per distinct (shapes, strides, alpha, bias, layout of B); creating one
// costs far more than running it on these sizes.
struct Primitives {
  std::mutex mutex;
  std::unordered_map<std::string, MatmulPrimitive> cache;

  MatmulPrimitive get(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c, const torch::Tensor* bias,
                      float alpha, PostOp post, bool blocked_b) {
    std::string key;
    for (const auto* t : {&a, &b, &c, bias}) {
      if (!t) continue;
      key += std::to_string(static_cast<int>(t->scalar_type())) + '|';
      for (auto s : t->sizes()) key += std::to_string(s) + ',';
      key += ':';
      for (auto s : t->strides()) key += std::to_string(s) + ',';
      key += ';';
    }
    key += std::to_string(alpha) + '|' + std::to_string(static_cast<int>(post)) + '|' + (blocked_b ? "B" : "-");
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (post != PostOp::none) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.0f, algorithm_of(post), 0.0f, 0.0f);
      attr.set_post_ops(ops);
    }
    const auto b_given = describe(b);
    const auto b_desc = blocked_b ? memory::desc(b_given.dims(), b_given.data_type(), memory::format_tag::any) : b_given;
    auto desc = bias ? dnnl::matmul::desc(describe(a), b_desc, describe(*bias), describe(c))
                     : dnnl::matmul::desc(describe(a), b_desc, describe(c));
    dnnl::matmul::primitive_desc pd(desc, attr, dnnl_cpu_engine());
    MatmulPrimitive prim{dnnl::matmul(pd), std::nullopt, pd.weights_desc()};
    if (prim.blocked_b != b_given)
      prim.to_blocked = dnnl::reorder(dnnl::reorder::primitive_desc(dnnl_cpu_engine(), b_given, dnnl_cpu_engine(),
                                                                     prim.blocked_b));
    if (cache.size() > 4096) cache.clear();  // bounded: shapes change with sequence length in decoding
    cache.emplace(key, prim);
    return prim;
  }
};

Primitives& primitives() {
  static Primitives p;
  return p;
}

// Whether a product with these operands gains from a blocked copy of B (bench/, two threads):
// bf16 with enough rows of A to pay for the copy (1.05-1.2x on the models' shapes); fp32 when B is
// row-major (a layer's input gradient, x' = g W) and the product large: there the plain kernel
// falls behind (1.3x on GPT-2's MLP and head input gradients, copy included), while for Wᵀ (the
// forward) and small products the copy takes back what the blocked kernel gains.
bool block_b_for(const torch::Tensor& a, const torch::Tensor& b) {
  if (b.dim() != 2 || a.size(-2) < 64) return false;
  if (b.scalar_type() == torch::kBFloat16) return true;
  const bool row_major = b.stride(1) == 1 && b.stride(0) == b.size(1);
  return b.scalar_type() == torch::kFloat && row_major &&
         static_cast<double>(a.size(-2)) * static_cast<double>(b.size(0)) * static_cast<double>(b.size(1)) >= 0x1p31;
}

// Blocked copies of weights for products run without autograd (inference, evaluation), so that a
// weight is reordered once rather than once per product. A copy serves again only while its weight
// and the weight's storage are the same objects (weak references keep their addresses from being
// reused; Module::to swaps the storage), at the same data pointer and version: every in-place
// change bumps the version (ATen's in-place ops, and engine::AdamW's fused update, which writes
// through raw pointers and bumps it itself). Writes through a `.data()` alias are not seen, as
// autograd does not see them either. Bounded in bytes, least recently used first out; emptied as
// soon as a weight that needs a gradient goes through `linear` (training), whose steps change
// every weight anyway.
class BlockedWeights {
 public:
  static constexpr std::size_t kMaxBytes = std::size_t{1} << 30;

  // The blocked copy of B = f(owner) (f: a transpose or a cast) as `blocked`, made by `fill` on a miss.
  torch::Tensor get(const torch::Tensor& owner, const memory::desc& given, const memory::desc& blocked,
                    const std::function<void(const torch::Tensor&)>& fill) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto* key = owner.unsafeGetTensorImpl();
    const auto* storage = owner.storage().unsafeGetStorageImpl();
    const int64_t version = owner._version();
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      auto& e = it->second;
      if (!e.owner.expired() && e.storage_impl == storage && e.data == owner.data_ptr() && e.version == version &&
          e.given == given && e.blocked_desc == blocked) {
        e.used = ++clock_;
        return e.copy;
      }
      bytes_ -= static_cast<std::size_t>(e.copy.nbytes());
      entries_.erase(it);
    }
    auto copy = torch::empty({static_cast<int64_t>(blocked.get_size())}, owner.options().dtype(torch::kByte));
    fill(copy);
    const auto n = static_cast<std::size_t>(copy.nbytes());
    if (n > kMaxBytes / 2) return copy;  // too large to keep
    // Drop the entries of weights that are gone, then the least recently used, to make room.
    for (auto e = entries_.begin(); e != entries_.end();)
      if (e->second.owner.expired()) bytes_ -= static_cast<std::size_t>(e->second.copy.nbytes()), e = entries_.erase(e);
      else ++e;
    while (bytes_ + n > kMaxBytes && !entries_.empty()) {
      auto lru = std::min_element(entries_.begin(), entries_.end(),
                                  [](const auto& x, const auto& y) { return x.second.used < y.second.used; });
      bytes_ -= static_cast<std::size_t>(lru->second.copy.nbytes());
      entries_.erase(lru);
    }
    entries_.emplace(key, Entry{c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(owner.getIntrusivePtr()),
                                c10::weak_intrusive_ptr<c10::StorageImpl>(owner.storage().getWeakStorageImpl()),
                                storage, owner.data_ptr(), version, given, blocked, copy, ++clock_});
    bytes_ += n;
    nonempty_ = true;
    return copy;
  }

  void clear() {
    if (!nonempty_.load(std::memory_order_relaxed)) return;
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
    bytes_ = 0;
    nonempty_ = false;
  }

 private:
  struct Entry {
    c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> owner;
    c10::weak_intrusive_ptr<c10::StorageImpl> storage;  // holds storage_impl's address
    const c10::StorageImpl* storage_impl;
    const void* data;
    int64_t version;
    memory::desc given, blocked_desc;
    torch::Tensor copy;
    uint64_t used;
  };
  std::mutex mutex_;
  std::unordered_map<const c10::TensorImpl*, Entry> entries_;
  std::size_t bytes_ = 0;
  uint64_t clock_ = 0;
  std::atomic<bool> nonempty_{false};
};

BlockedWeights& blocked_weights() {
  static auto* cache = new BlockedWeights;  // never destroyed: products may run during static destruction
  return *cache;
}

// c = alpha · a @ b (+ bias broadcast over rows); c is preallocated with any strides. With
// may_block_b, where block_b_for says so, b is first copied into the blocked layout the kernel
// reads fastest: oneDNN's kernels otherwise repack plain B blocks again for every block of rows,
// 10-20 % of a bf16 product on these shapes (bench/), where one reorder of a weight costs ~1 %.
// With weight_owner (a weight that needs no gradient here; b is a transpose or cast of it), the
// blocked copy comes from BlockedWeights, and fp32 products take it too: without the copy's cost,
// the blocked kernel is the faster one for them as well.
void dnnl_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c,
                 const torch::Tensor* bias = nullptr, float alpha = 1.0f, PostOp post = PostOp::none,
                 bool may_block_b = false, const torch::Tensor* weight_owner = nullptr) {
  RECORD_FUNCTION("dnnl_matmul", std::vector<c10::IValue>());
  const bool cached = weight_owner && !weight_owner->is_inference() && b.dim() == 2 && a.size(-2) >= 64;
  const bool blocked_b = cached || (may_block_b && block_b_for(a, b));
  const auto prim = primitives().get(a, b, c, bias, alpha, post, blocked_b);
  auto& engine = dnnl_cpu_engine();
  memory b_mem(describe(b), engine, b.data_ptr());
  torch::Tensor b_blocked;  // keeps the blocked copy alive until the product has run
  if (prim.to_blocked) {
    auto fill = [&](const torch::Tensor& out) {
      memory blocked(prim.blocked_b, engine, out.data_ptr());
      dnnl_run(*prim.to_blocked, {{DNNL_ARG_FROM, b_mem}, {DNNL_ARG_TO, blocked}});
    };
    if (cached) {
      b_blocked = blocked_weights().get(*weight_owner, describe(b), prim.blocked_b, fill);
    } else {
      b_blocked = torch::empty({static_cast<int64_t>(prim.blocked_b.get_size())}, b.options().dtype(torch::kByte));
      fill(b_blocked);
    }
    b_mem = memory(prim.blocked_b, engine, b_blocked.data_ptr());
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(describe(a), engine, a.data_ptr())},
                                       {DNNL_ARG_WEIGHTS, b_mem},
                                       {DNNL_ARG_DST, memory(describe(c), engine, c.data_ptr())}};
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(describe(*bias), engine, bias->data_ptr()));
  dnnl_run(prim.matmul, args);
}

// x wᵀ (+ bias, then `post`) for x (M, K) and w (N, K) ready for oneDNN; an empty bias is none.
// weight_owner: the weight w was made from, when no gradient is needed (see BlockedWeights).
torch::Tensor dnnl_linear_2d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias,
                             PostOp post = PostOp::none, const torch::Tensor* weight_owner = nullptr) {
  const int64_t N = w.size(0);
  auto y = torch::empty({x.size(0), N}, x.options());
  if (bias.defined() && bias.numel() > 0) {
    const auto b = bias.contiguous().view({1, N});
    dnnl_matmul(x, w.t(), y, &b, 1.0f, post, /*may_block_b=*/true, weight_owner);
  } else {
    dnnl_matmul(x, w.t(), y, nullptr, 1.0f, post, /*may_block_b=*/true, weight_owner);
  }
  return y;
}

// oneDNN wants each matrix to be stored with one unit stride; anything else is copied first.
torch::Tensor matrix_ready(const torch::Tensor& t) {
  const auto n = t.dim();
  if (t.stride(n - 1) == 1 || t.stride(n - 2) == 1) return t;
  return t.contiguous();
}

// A batch of matrices for oneDNN's fast (brgemm) kernels: stored densely, row- or column-major.
// Anything else, such as attention's q, k and v sliced out of one qkv projection (the heads' batch
// stride is smaller than the rows'), sends oneDNN 2.6 to a gemm kernel 1.3-1.8x slower on
// attention's shapes than a copy followed by the fast one (bench/).
torch::Tensor batch_ready(const torch::Tensor& t) {
  if (t.dim() == 2) return matrix_ready(t);
  if (t.is_contiguous() || t.transpose(-2, -1).is_contiguous()) return t;
  return t.contiguous();
}

torch::Tensor empty_result(const torch::Tensor& a, const torch::Tensor& b, bool heads_last) {
  auto sizes = a.sizes().vec();
  sizes.back() = b.size(-1);
  if (heads_last) {  // (B, H, M, N) stored as (B, M, H, N)
    return torch::empty({sizes[0], sizes[2], sizes[1], sizes[3]}, a.options()).permute({0, 2, 1, 3});
  }
  return torch::empty(sizes, a.options());
}

struct MatmulFn : torch::autograd::Function<MatmulFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a_in,
                               const torch::Tensor& b_in, double alpha, bool heads_last) {
    auto a = batch_ready(a_in), b = batch_ready(b_in);
    auto c = empty_result(a, b, heads_last);
    dnnl_matmul(a, b, c, nullptr, static_cast<float>(alpha));
    ctx->save_for_backward({a, b});
    ctx->saved_data["alpha"] = alpha;
    return c;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto alpha = static_cast<float>(ctx->saved_data["alpha"].toDouble());
    auto g = batch_ready(grads[0]);
    torch::Tensor ga, gb;
    if (ctx->needs_input_grad(0)) {  // alpha · g @ bᵀ
      ga = torch::empty(a.sizes(), a.options());
      dnnl_matmul(g, b.transpose(-2, -1), ga, nullptr, alpha);
    }
    if (ctx->needs_input_grad(1)) {  // alpha · aᵀ @ g
      gb = torch::empty(b.sizes(), b.options());
      dnnl_matmul(a.transpose(-2, -1), g, gb, nullptr, alpha);
    }
    return {ga, gb, torch::Tensor(), torch::Tensor()};
  }
};

// x Wᵀ + b with autograd. With to_bf16 (training under bf16 autocast, fp32 weights) the product
// runs in bf16 as autocast runs it, but the weight and bias gradients leave the backward matmul in
// fp32, where autocast's bf16 gradients take one more pass over every weight to convert them (~6 %
// of a GPT-2 step). Every gradient comes back in its input's type.
struct LinearFn : torch::autograd::Function<LinearFn> {
  // cache_weight: no gradient is needed (the caller ran without autograd), so the weight's blocked
  // copy may come from BlockedWeights.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& w_in, const torch::Tensor& bias_in, bool to_bf16,
                               bool cache_weight) {
    const int64_t K = x_in.size(-1), N = w_in.size(0);
    auto x = x_in.reshape({-1, K});  // (M, K), a view when x is contiguous
    auto w = w_in;                   // (N, K)
    if (to_bf16) x = x.to(torch::kBFloat16), w = w.to(torch::kBFloat16);
    x = matrix_ready(x), w = matrix_ready(w);
    // An empty bias stands for "no bias" (autograd inputs must be defined); under autocast it
    // stays fp32, and oneDNN adds it to the fp32 sums.
    const auto y = dnnl_linear_2d(x, w, bias_in, PostOp::none, cache_weight ? &w_in : nullptr);
    ctx->save_for_backward({x, w});
    ctx->saved_data["has_bias"] = bias_in.numel() > 0;
    ctx->saved_data["x_sizes"] = x_in.sizes().vec();
    ctx->saved_data["x_type"] = static_cast<int64_t>(x_in.scalar_type());
    ctx->saved_data["w_type"] = static_cast<int64_t>(w_in.scalar_type());
    auto out_sizes = x_in.sizes().vec();
    out_sizes.back() = N;
    return y.view(out_sizes);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];  // (M, K)
    const auto& w = saved[1];  // (N, K)
    const auto w_type = static_cast<c10::ScalarType>(ctx->saved_data["w_type"].toInt());
    auto g = matrix_ready(grads[0].reshape({-1, w.size(0)}).to(x.scalar_type()));  // (M, N)
    torch::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0)) {
      gx = torch::empty(x.sizes(), x.options());
      dnnl_matmul(g, w, gx, nullptr, 1.0f, PostOp::none, /*may_block_b=*/true);
      const auto x_type = static_cast<c10::ScalarType>(ctx->saved_data["x_type"].toInt());
      gx = gx.view(ctx->saved_data["x_sizes"].toIntVector()).to(x_type);
    }
    if (ctx->needs_input_grad(1)) {
      gw = torch::empty(w.sizes(), w.options().dtype(w_type));
      dnnl_matmul(g.t(), x, gw);
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) gb = g.sum(0).to(w_type);
    return {gx, gw, gb, torch::Tensor(), torch::Tensor()};
  }
};

bool needs_grad(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return at::GradMode::is_enabled() &&
         (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad()));
}

// Whether a linear layer runs without autograd, so that its weight's blocked copy may be kept; a
// layer that trains empties BlockedWeights instead.
bool may_cache_weight(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!needs_grad(x, weight, bias)) return true;
  if (weight.requires_grad()) blocked_weights().clear();
  return false;
}

}  // namespace
#endif

namespace {

bool autocast_enabled() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

[[maybe_unused]] bool autocast_to_bf16() {  // used with oneDNN only
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return autocast_enabled() && at::autocast::get_autocast_dtype(at::kCPU) == at::kBFloat16;
#else
  return autocast_enabled() && at::autocast::get_autocast_cpu_dtype() == at::kBFloat16;
#endif
}

}  // namespace

bool uses_dnnl(const torch::Tensor& t) {
#ifdef ATTNZOO_HAVE_DNNL
  const auto type = t.scalar_type();
  return t.device().is_cpu() && (type == torch::kFloat || type == torch::kBFloat16) && !autocast_enabled();
#else
  (void)t;
  return false;
#endif
}

torch::Tensor matmul(const torch::Tensor& a, const torch::Tensor& b, double alpha, bool heads_last) {
  TORCH_CHECK(a.dim() >= 2 && a.dim() == b.dim() && a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2) &&
                  a.size(-1) == b.size(-2),
              "matmul: shapes ", a.sizes(), " and ", b.sizes(), " do not fit (equal batch dims, K matching)");
  TORCH_CHECK(!heads_last || a.dim() == 4, "matmul: heads_last needs 4-D inputs, got ", a.dim(), "-D");
#ifdef ATTNZOO_HAVE_DNNL
  // Not for a single row (decoding one token): its shapes change with every token, and creating a
  // oneDNN primitive per shape costs far more than the product itself.
  // Under bf16 autocast, products of two bf16 tensors (attention's q, k, v and weights come out of
  // bf16 linears) are what autocast would run too: bf16 in, bf16 out.
  const bool bf16_autocast = a.device().is_cpu() && a.scalar_type() == torch::kBFloat16 && autocast_to_bf16();
  if ((uses_dnnl(a) || bf16_autocast) && b.scalar_type() == a.scalar_type() && a.numel() > 0 && b.numel() > 0 &&
      a.size(-2) > 1)
    return MatmulFn::apply(a, b, alpha, heads_last);
#endif
  auto c = torch::matmul(a, b);
  return alpha == 1.0 ? c : c * alpha;
}

namespace {

#ifdef ATTNZOO_HAVE_AVX512_KERNELS
// y = W x for bf16 weights W (rows n0..n1-1 of K, row stride ldw) and a bf16 x, with AVX-512 BF16's
// dot product of bf16 pairs into fp32 sums: the products are exact and the sums fp32, so the
// result is as close as an fp32 product of the same bf16 values. Four rows at a time share each
// load of x and the next four rows are prefetched: the rows stream through memory once, which is
// all a matrix-vector product can do.
ATTNZOO_AVX512_WARNINGS_OFF
__attribute__((target("avx512f,avx512bw,avx512bf16"), always_inline)) inline __m512bh load_bf16(const uint16_t* p,
                                                                                             __mmask32 m) {
  return (__m512bh)_mm512_maskz_loadu_epi16(m, p);
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void gemv_bf16_rows(const uint16_t* W, int64_t ldw,
                                                                           const uint16_t* x, int64_t K, int64_t n0,
                                                                           int64_t n1, float* y) {
  const int64_t full = K / 32 * 32;
  const auto tail = static_cast<__mmask32>((1ull << (K - full)) - 1);
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) {
    const uint16_t* r[4] = {W + n * ldw, W + (n + 1) * ldw, W + (n + 2) * ldw, W + (n + 3) * ldw};
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t k = 0; k < full; k += 32) {
      const auto xv = (__m512bh)_mm512_loadu_si512(x + k);
      for (int i = 0; i < 4; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(r[i] + 4 * ldw + k), _MM_HINT_T0);
        acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)_mm512_loadu_si512(r[i] + k), xv);
      }
    }
    if (tail) {
      const auto xv = load_bf16(x + full, tail);
      for (int i = 0; i < 4; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], load_bf16(r[i] + full, tail), xv);
    }
    for (int i = 0; i < 4; ++i) y[n + i] = _mm512_reduce_add_ps(acc[i]);
  }
  for (; n < n1; ++n) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 32) {
      const auto m = k < full ? static_cast<__mmask32>(0xFFFFFFFFu) : tail;
      acc = _mm512_dpbf16_ps(acc, load_bf16(W + n * ldw + k, m), load_bf16(x + k, m));
    }
    y[n] = _mm512_reduce_add_ps(acc);
  }
}
ATTNZOO_AVX512_WARNINGS_ON

// The bf16 one-row linear on CPUs with AVX-512 BF16, or nullopt. oneDNN's bf16 matmul with M = 1
// reads the weights at about a third of the memory speed that this loop reaches.
std::optional<torch::Tensor> gemv_bf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!simd::has_avx512_bf16() || weight.stride(1) != 1) return std::nullopt;
  const int64_t K = weight.size(1), N = weight.size(0), ldw = weight.stride(0);
  const auto xc = x.reshape({K}).contiguous();
  auto y = torch::empty({N}, x.options().dtype(torch::kFloat));
  const auto* W = reinterpret_cast<const uint16_t*>(weight.data_ptr<c10::BFloat16>());
  const auto* xp = reinterpret_cast<const uint16_t*>(xc.data_ptr<c10::BFloat16>());
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, (N + 3) / 4, 16, [&](int64_t q0, int64_t q1) {
    gemv_bf16_rows(W, ldw, xp, K, 4 * q0, std::min(N, 4 * q1), yp);
  });
  if (bias.defined()) y += bias.to(torch::kFloat);
  return y.to(torch::kBFloat16);
}
#else
std::optional<torch::Tensor> gemv_bf16(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  return std::nullopt;
}
#endif

// Decoding one token multiplies a single row by each weight matrix. As a GEMM with M = 1 that is
// ~3× slower on CPU than a matrix-vector product, which streams the weights once at memory speed
// (DESIGN.md, performance facts). fp32 runs BLAS gemv (addmv); bf16 weights run gemv_bf16 above
// on CPUs with AVX-512 BF16 and oneDNN's bf16 matmul elsewhere (LibTorch 1.13's bf16 addmv is a scalar
// loop). Only without autograd: decoding is inference.
std::optional<torch::Tensor> single_row_linear(const torch::Tensor& x, const torch::Tensor& weight,
                                               const torch::Tensor& bias) {
  const int64_t K = x.size(-1), N = weight.size(0);
  if (!x.device().is_cpu() || x.numel() != K || weight.dim() != 2 || weight.size(1) != K) return std::nullopt;
  if (at::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad())))
    return std::nullopt;
  const auto type = weight.scalar_type();
  if (x.scalar_type() != type || (bias.defined() && bias.scalar_type() != type)) return std::nullopt;
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  if (type == torch::kFloat) {
    auto v = x.reshape({K});
    auto y = bias.defined() ? at::addmv(bias, weight, v) : at::mv(weight, v);
    return y.view(out_sizes);
  }
  if (type == torch::kBFloat16)
    if (auto y = gemv_bf16(x, weight, bias)) return y->view(out_sizes);
#ifdef ATTNZOO_HAVE_DNNL
  if (type == torch::kBFloat16 && weight.stride(1) == 1) {
    return dnnl_linear_2d(x.reshape({1, K}).contiguous(), weight, bias).view(out_sizes);
  }
#endif
  return std::nullopt;
}

}  // namespace

#ifdef ATTNZOO_HAVE_DNNL
namespace {
// x, the weight and the bias (if any) of one type that oneDNN runs, on CPU, outside autocast.
bool dnnl_linear_fits(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  return uses_dnnl(x) && weight.scalar_type() == x.scalar_type() && x.numel() > 0 && x.dim() >= 1 &&
         weight.dim() == 2 && (!bias.defined() || bias.scalar_type() == x.scalar_type());
}
}  // namespace
#endif

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (x.dim() >= 1 && x.numel() > 0 && !autocast_enabled())
    if (auto y = single_row_linear(x, weight, bias)) return *y;
#ifdef ATTNZOO_HAVE_DNNL
  if (dnnl_linear_fits(x, weight, bias))
    return LinearFn::apply(x, weight, bias.defined() ? bias : torch::empty({0}, weight.options()), false,
                           may_cache_weight(x, weight, bias));
  // Training under bf16 autocast: fp32 weights, more than one row.
  if (x.device().is_cpu() && autocast_to_bf16() && weight.scalar_type() == torch::kFloat && weight.dim() == 2 &&
      (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) && x.dim() >= 2 &&
      x.numel() > x.size(-1) && (!bias.defined() || bias.scalar_type() == torch::kFloat))
    return LinearFn::apply(x, weight, bias.defined() ? bias : torch::empty({0}, weight.options()), true,
                           may_cache_weight(x, weight, bias));
#endif
  return at::linear(x, weight, bias);
}

std::optional<torch::Tensor> fused_linear_activation(const torch::Tensor& x, const torch::Tensor& weight,
                                                     const torch::Tensor& bias, const std::string& act) {
#ifdef ATTNZOO_HAVE_DNNL
  const auto post = act == "gelu" ? PostOp::gelu : act == "gelu_tanh" ? PostOp::gelu_tanh : act == "relu" ? PostOp::relu
                                                                                                         : PostOp::none;
  // One row (decoding) goes to the matrix-vector product of linear() instead.
  if (post == PostOp::none || needs_grad(x, weight, bias) || !dnnl_linear_fits(x, weight, bias) || x.numel() == x.size(-1))
    return std::nullopt;
  const int64_t K = x.size(-1), N = weight.size(0);
  const auto y = dnnl_linear_2d(matrix_ready(x.reshape({-1, K})), matrix_ready(weight), bias, post, &weight);
  auto out_sizes = x.sizes().vec();
  out_sizes.back() = N;
  return y.view(out_sizes);
#else
  (void)x, (void)weight, (void)bias, (void)act;
  return std::nullopt;
#endif
}

}  // namespace attnzoo::models
