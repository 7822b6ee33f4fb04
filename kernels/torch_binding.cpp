// The only file that sees torch: CUDA implementations of the ops whose schemas (and CPU/fake
// implementations) are defined in mla_backend/ops.py. Arguments are validated there, before any
// kernel is reached; the TORCH_CHECKs here only guard against calling these ops directly.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>

#include "mla_params.h"

namespace {

std::tuple<at::Tensor, at::Tensor> tile_scheduler_cuda(const at::Tensor& cache_seqlens, int64_t num_sm_parts,
                                                        int64_t split_overhead) {
  TORCH_CHECK(cache_seqlens.is_cuda() && cache_seqlens.scalar_type() == at::kInt && cache_seqlens.dim() == 1 &&
              cache_seqlens.is_contiguous(), "cache_seqlens must be a contiguous int32 CUDA vector");
  TORCH_CHECK(num_sm_parts >= 1 && split_overhead >= 0, "num_sm_parts must be >= 1 and split_overhead >= 0");
  const c10::cuda::CUDAGuard guard(cache_seqlens.device());
  const int64_t b = cache_seqlens.size(0);
  auto opts = cache_seqlens.options();
  at::Tensor sched = at::empty({num_sm_parts, mla::kSchedFields}, opts);
  at::Tensor num_splits = at::empty({b + 1}, opts);
  mla::MetadataParams p{cache_seqlens.data_ptr<int>(), sched.data_ptr<int>(), num_splits.data_ptr<int>(), int(b),
                        int(num_sm_parts), int(split_overhead)};
  C10_CUDA_CHECK(mla::launch_get_metadata(p, c10::cuda::getCurrentCUDAStream()));
  return {sched, num_splits};
}

std::tuple<at::Tensor, at::Tensor> decode_paged_cuda(const at::Tensor& q, const std::optional<at::Tensor>& q_rope,
                                                     const at::Tensor& k_cache,
                                                     const at::Tensor& block_table, const at::Tensor& cache_seqlens,
                                                     const at::Tensor& tile_scheduler_metadata,
                                                     const at::Tensor& num_splits, double softmax_scale, bool causal,
                                                     const std::optional<at::Tensor>& descale_k,
                                                     bool row_halves) {
  TORCH_CHECK(q.is_cuda() && q.dim() == 4 && q.stride(3) == 1 &&
              q.size(3) == (q_rope ? mla::kHeadDimV : mla::kHeadDim), "bad q");
  TORCH_CHECK(!q_rope || (q_rope->is_cuda() && q_rope->dim() == 4 && q_rope->stride(3) == 1 &&
                          q_rope->size(3) == mla::kHeadDim - mla::kHeadDimV &&
                          q_rope->scalar_type() == q.scalar_type()), "bad q_rope");
  const bool fp8_kv = k_cache.scalar_type() == at::kFloat8_e4m3fn;
  TORCH_CHECK(k_cache.dim() == 3 && k_cache.size(1) == mla::kBlockSize && k_cache.size(2) == mla::kHeadDim &&
              k_cache.stride(2) == 1 && (fp8_kv || k_cache.scalar_type() == q.scalar_type()), "bad k_cache");
  TORCH_CHECK(fp8_kv == descale_k.has_value(), "descale_k goes with a float8_e4m3fn k_cache, and only with one");
  TORCH_CHECK(!descale_k || (descale_k->is_cuda() && descale_k->device() == q.device() &&
                             descale_k->scalar_type() == at::kFloat && descale_k->numel() == 1), "bad descale_k");
  const c10::cuda::CUDAGuard guard(q.device());
  const int64_t b = q.size(0), s_q = q.size(1), h_q = q.size(2);
  TORCH_CHECK(!row_halves || (fp8_kv && s_q * h_q > mla::kNarrowMaxRows && s_q * h_q <= mla::kFp8MaxRows),
              "row_halves goes with a float8_e4m3fn k_cache and 17-32 query rows");
  const int64_t num_parts = tile_scheduler_metadata.size(0);
  at::Tensor out = at::empty({b, s_q, h_q, mla::kHeadDimV}, q.options());
  at::Tensor lse = at::empty({b, h_q, s_q}, q.options().dtype(at::kFloat));
  at::Tensor out_accum = at::empty({b + num_parts, s_q * h_q, mla::kHeadDimV}, q.options());
  at::Tensor lse_accum = at::empty({b + num_parts, s_q * h_q}, q.options().dtype(at::kFloat));

  mla::DecodeParams p{};
  p.q = q.data_ptr();
  p.q_stride_b = q.stride(0);
  p.q_stride_s = q.stride(1);
  p.q_stride_h = q.stride(2);
  const at::Tensor& rope = q_rope ? *q_rope : q;
  p.q_rope = static_cast<const char*>(rope.data_ptr()) + (q_rope ? 0 : mla::kHeadDimV * q.element_size());
  p.q_rope_stride_b = rope.stride(0);
  p.q_rope_stride_s = rope.stride(1);
  p.q_rope_stride_h = rope.stride(2);
  p.k_cache = k_cache.data_ptr();
  p.k_stride_block = k_cache.stride(0);
  p.k_stride_token = k_cache.stride(1);
  p.num_blocks = int(k_cache.size(0));
  p.block_table = block_table.data_ptr<int>();
  p.block_table_stride = block_table.stride(0);
  p.max_blocks = int(block_table.size(1));
  p.seqlens = cache_seqlens.data_ptr<int>();
  p.sched = tile_scheduler_metadata.data_ptr<int>();
  p.num_splits = num_splits.data_ptr<int>();
  p.out = out.data_ptr();
  p.lse = lse.data_ptr<float>();
  p.out_accum = out_accum.data_ptr();
  p.lse_accum = lse_accum.data_ptr<float>();
  p.b = int(b);
  p.s_q = int(s_q);
  p.h_q = int(h_q);
  p.rows = int(s_q * h_q);
  p.num_parts = int(num_parts);
  p.scale_log2 = float(softmax_scale * M_LOG2E);
  p.causal = causal && s_q > 1;
  p.descale_k = descale_k ? descale_k->data_ptr<float>() : nullptr;
  p.row_halves = row_halves;

  // The fp8 kernels load with cp.async (the swap-AB ones and the 64-row one, which widens the bytes): no tensor map.
  TORCH_CHECK(fp8_kv || !mla::decode_needs_tensor_map(p) || mla::make_kv_tensor_map(p, q.scalar_type() == at::kBFloat16),
              "could not encode a TMA descriptor for k_cache (driver too old for cuTensorMapEncodeTiled?)");
  auto stream = c10::cuda::getCurrentCUDAStream();
  if (q.scalar_type() == at::kBFloat16) {
    C10_CUDA_CHECK(mla::launch_decode<__nv_bfloat16>(p, stream));
    C10_CUDA_CHECK(mla::launch_combine<__nv_bfloat16>(p, stream));
  } else {
    TORCH_CHECK(q.scalar_type() == at::kHalf, "q must be bfloat16 or float16");
    C10_CUDA_CHECK(mla::launch_decode<__half>(p, stream));
    C10_CUDA_CHECK(mla::launch_combine<__half>(p, stream));
  }
  return {out, lse};
}

}  // namespace

TORCH_LIBRARY_IMPL(mla_backend, CUDA, m) {
  m.impl("tile_scheduler", &tile_scheduler_cuda);
  m.impl("decode_paged", &decode_paged_cuda);
}
