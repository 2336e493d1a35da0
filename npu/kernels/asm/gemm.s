# gemm.s - Y[M x N] = X[M x K] @ W[K x N] on the matrix unit, weights streamed per column panel.
#
# Layout contract (assembler constants; X_HI / X_LO are the upper / lower 16 bits of X):
#   DRAM   X_HI/LO    M rows of K activations in {ACT_FMT}, X_ROW_BYTES apart
#          W_HI/LO    K rows of N weights in {WEIGHT_FMT}, W_ROW_BYTES apart (MX blocks along N)
#          Y_HI/LO    out: M rows of N in {ACT_FMT}, Y_ROW_BYTES apart
#   VECTOR SRAM  VX_HI/LO   M * K elements (X, row-major);  VY_HI/LO   M * N elements (Y)
#   MATRIX SRAM  WM0_HI/LO, WM1_HI/LO   two panels of K * MLEN elements (double buffer)
#   Sizes: M = M_BLOCKS * BLEN, K = K_TILES * MLEN, N = N_TILES * MLEN,
#          PANEL_BYTES = DRAM bytes of MLEN weights of one row (offset between column panels),
#          TILE_ELEMS = MLEN * MLEN, BLOCK_ACT_STEP = BLEN * K, BLOCK_OUT_STEP = BLEN * N.
#
# Tile order (the reference repeats it through numerics.hw_matmul_accumulate): for each column
# panel n (its K x MLEN weights loaded by ONE DMA as K/MLEN stacked MLEN x MLEN tiles, the next
# panel prefetched meanwhile), for each block of BLEN rows: ACC = X[:, 0:MLEN] @ W_0n, then
# ACC += X[:, k*MLEN:(k+1)*MLEN] @ W_kn for k = 1 .. K_TILES-1, and write ACC back to Y.
#
# Registers: r2 / r3 = X / Y in vector SRAM, r5 = K, r6 = N, r8 / r9 = current / next panel,
#   r10 = their xor, r11 = MLEN, r12 = W_ROW_BYTES, r13 = panels left, r14 = Y column of the
#   panel, r15 / r1 = activation / output rows of the block, r4 / r7 = activation / weight tile.

        lui  r1, X_HI
        ori  r1, r1, X_LO
        amov a0, r1
        lui  r1, W_HI
        ori  r1, r1, W_LO
        amov a1, r1
        lui  r1, Y_HI
        ori  r1, r1, Y_LO
        amov a2, r1
        lui  r2, VX_HI
        ori  r2, r2, VX_LO
        lui  r3, VY_HI
        ori  r3, r3, VY_LO
        addi r4, r0, M
        addi r5, r0, K
        addi r6, r0, N
        addi r7, r0, X_ROW_BYTES
        dld.v a0, r2, r4, r5, r7, r5, {ACT_FMT}
        lui  r8, WM0_HI
        ori  r8, r8, WM0_LO
        lui  r9, WM1_HI
        ori  r9, r9, WM1_LO
        xor  r10, r8, r9
        addi r11, r0, MLEN
        addi r12, r0, W_ROW_BYTES
        dld.m a1, r8, r5, r11, r12, r11, {WEIGHT_FMT}   # panel 0
        addi r13, r0, N_TILES
        addi r14, r3, 0
        loopi N_TILES, gemm_panels_end
        wait dma|matrix
        addi r13, r13, -1
        aaddi a1, a1, PANEL_BYTES
        beq  r13, r0, gemm_prefetched
        dld.m a1, r9, r5, r11, r12, r11, {WEIGHT_FMT}   # prefetch the next panel
gemm_prefetched:
        addi r15, r2, 0
        addi r1, r14, 0
        loopi M_BLOCKS, gemm_blocks_end
        addi r4, r15, 0
        addi r7, r8, 0
        mm   r4, r5, r7, 0
        loopi K_TILES_MINUS_1, gemm_k_end
        addi r4, r4, MLEN
        addi r7, r7, TILE_ELEMS
        mma  r4, r5, r7, 0
gemm_k_end:
        mwb  r1, r6, 0
        addi r15, r15, BLOCK_ACT_STEP
        addi r1, r1, BLOCK_OUT_STEP
gemm_blocks_end:
        addi r14, r14, MLEN
        xor  r8, r8, r10
        xor  r9, r9, r10
gemm_panels_end:
        wait matrix
        addi r4, r0, M
        addi r7, r0, Y_ROW_BYTES
        dst.v a2, r3, r4, r6, r7, r6, {ACT_FMT}
        wait dma
        halt
