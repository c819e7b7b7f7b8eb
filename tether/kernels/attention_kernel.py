"""The paged attention kernel: one program per (query tile, kv head, sequence x key split).

Each program loads a ``[BLOCK_M, D]`` tile of queries (the GQA group packed into M, see ``tether.kernels.tiles``) and
walks the keys ``lo .. hi-1`` of its split in steps of BLOCK_N, gathering each key through the block table
(key ``n`` lives at page ``block_table[seq, n // PAGE_SIZE]``, offset ``n % PAGE_SIZE``). Online softmax in
base 2 with fp32 ``m`` / ``l`` / accumulator::

    s = (q @ k^T) * scale * log2(e)      masked: key >= hi, or key > position when CAUSAL
    m' = max(m, rowmax(s));  alpha = 2^(m - m');  p = 2^(s - m')      (m' = -inf is read as 0: no NaN)
    l = l * alpha + rowsum(p);  acc = acc * alpha + p @ v

Output: ``o = acc / l`` and ``lse = (m + log2 l) * ln 2``; a row that saw no key writes ``o = 0, lse = -inf``.
With NUM_SPLITS > 1 the program writes fp32 partials ``[split, T, Hq, D]`` / ``[split, T, Hq]`` that
``merge_kernels.reduce_splits`` combines. No data-dependent Python control flow: empty tiles and splits run a
loop of zero iterations and every load/store is masked.
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def paged_attention_kernel(
    q_ptr,
    k_cache_ptr,
    v_cache_ptr,
    block_table_ptr,
    cu_seqlens_q_ptr,
    kv_lens_ptr,
    o_ptr,
    lse_ptr,
    sm_scale_log2,
    split_size,
    head_dim,
    stride_qt,
    stride_qh,
    stride_qd,
    stride_kb,
    stride_kp,
    stride_kh,
    stride_kd,
    stride_vb,
    stride_vp,
    stride_vh,
    stride_vd,
    stride_bts,
    stride_btb,
    stride_os,
    stride_ot,
    stride_oh,
    stride_od,
    stride_ls,
    stride_lt,
    stride_lh,
    GROUP: tl.constexpr,
    PAGE_SIZE: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
    NUM_SPLITS: tl.constexpr,
    CAUSAL: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    # tl.dot on tensor cores: M, N, K >= 16 (K is BLOCK_D for q @ k^T and BLOCK_N for p @ v).
    tl.static_assert(BLOCK_M >= 16 and BLOCK_N >= 16 and BLOCK_D >= 16)
    tl.static_assert(GROUP <= BLOCK_M)
    TOKENS: tl.constexpr = BLOCK_M // GROUP
    # Index math in int64 from the start: page offsets can pass 2^31 elements on a large cache (and the
    # interpreter's int32 overflow checks stay off the hot path).
    tile = tl.program_id(0).to(tl.int64)
    kv_head = tl.program_id(1).to(tl.int64)
    seq = tl.program_id(2).to(tl.int64) // NUM_SPLITS
    split = tl.program_id(2).to(tl.int64) % NUM_SPLITS

    q_start = tl.load(cu_seqlens_q_ptr + seq).to(tl.int64)
    q_len = tl.load(cu_seqlens_q_ptr + seq + 1).to(tl.int64) - q_start
    kv_len = tl.load(kv_lens_ptr + seq).to(tl.int64)

    rows = tl.arange(0, BLOCK_M).to(tl.int64)
    tok = tile * TOKENS + rows // GROUP  # (BLOCK_M,) query index within the sequence
    head = kv_head * GROUP + rows % GROUP  # (BLOCK_M,) query head
    row_ok = (rows < TOKENS * GROUP) & (tok < q_len)
    pos = kv_len - q_len + tok  # (BLOCK_M,) causal position of each row
    d = tl.arange(0, BLOCK_D).to(tl.int64)
    d_ok = d < head_dim

    q_rows = (q_start + tok) * stride_qt + head * stride_qh
    q = tl.load(
        q_ptr + q_rows[:, None] + d[None, :] * stride_qd, mask=row_ok[:, None] & d_ok[None, :], other=0.0
    )  # (BLOCK_M, BLOCK_D)

    lo = split * split_size
    hi = tl.minimum(kv_len, lo + split_size)
    if CAUSAL:
        last_tok = tl.minimum(tile * TOKENS + TOKENS, q_len) - 1
        hi = tl.minimum(hi, kv_len - q_len + last_tok + 1)
    hi = tl.where(tile * TOKENS < q_len, hi, lo)  # a tile past the sequence's queries reads nothing

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    offs_n = tl.arange(0, BLOCK_N).to(tl.int64)
    table = block_table_ptr + seq * stride_bts
    k_base = k_cache_ptr + kv_head * stride_kh
    v_base = v_cache_ptr + kv_head * stride_vh
    k_dim = (d * stride_kd)[:, None]  # (BLOCK_D, 1)
    v_dim = (d * stride_vd)[None, :]  # (1, BLOCK_D)
    for start in range(lo, hi, BLOCK_N):
        n = start + offs_n  # (BLOCK_N,) key positions
        n_ok = n < hi
        page = tl.load(table + (n // PAGE_SIZE) * stride_btb, mask=n_ok, other=0).to(tl.int64)
        in_page = n % PAGE_SIZE
        kt = tl.load(
            k_base + (page * stride_kb + in_page * stride_kp)[None, :] + k_dim,
            mask=n_ok[None, :] & d_ok[:, None],
            other=0.0,
        )  # (BLOCK_D, BLOCK_N)
        s = tl.dot(q, kt, input_precision=DOT_PRECISION) * sm_scale_log2  # (BLOCK_M, BLOCK_N) fp32
        visible = n_ok[None, :]
        if CAUSAL:
            visible = visible & (n[None, :] <= pos[:, None])
        s = tl.where(visible, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(
            v_base + (page * stride_vb + in_page * stride_vp)[:, None] + v_dim,
            mask=n_ok[:, None] & d_ok[None, :],
            other=0.0,
        )  # (BLOCK_N, BLOCK_D)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new

    seen = l_i > 0.0
    l_safe = tl.where(seen, l_i, 1.0)
    out = acc / l_safe[:, None]
    lse = tl.where(seen, (m_i + tl.log2(l_safe)) * 0.6931471805599453, float("-inf"))  # ln 2
    o_rows = split * stride_os + (q_start + tok) * stride_ot + head * stride_oh
    tl.store(
        o_ptr + o_rows[:, None] + d[None, :] * stride_od,
        out.to(o_ptr.dtype.element_ty),
        mask=row_ok[:, None] & d_ok[None, :],
    )
    l_rows = split * stride_ls + (q_start + tok) * stride_lt + head * stride_lh
    tl.store(lse_ptr + l_rows, lse, mask=row_ok)
