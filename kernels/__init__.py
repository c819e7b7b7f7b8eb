"""Attention kernels over the paged KV cache.

Layout: ``k_cache, v_cache: [num_blocks, block_size, num_kv_heads, head_dim]``; LSE is float32, natural log.
``kernels.reference`` holds the torch versions (CPU path and test oracle). The Triton kernels come with the
kernels issue; until then the engine uses the reference backend on every device.
"""
