# commit_dllm.s - commit the most confident still-masked positions of a block (dLLM lowering:
# vrank / vtopk / vthresh / vsel / vseli). Runs after confidence_*.s, whose x0 and confidences
# it reads from SRAM.
#
# Layout contract (assembler constants; X_HI / X_LO are the upper / lower 16 bits of X):
#   DRAM   TOKENS_HI/LO      N int32 token ids of the block; updated in place
#          COMMIT_OUT_HI/LO  out: N int32, 1 where this step committed the position
#   INT SRAM   X0_SRAM       N proposed token ids (from the confidence kernel)
#              K_SRAM        one word: k of the top-k rule (written by the control program)
#              TOK_SRAM, RANK_SRAM, COMMIT_SRAM   ROWS * VLEN words each
#   FP SRAM    CONF_SRAM     N fp32 confidences (from the confidence kernel)
#   VECTOR SRAM  CONFV, ELIG, MASKV, TOPV   ROWS * VLEN elements each;  NEGINF_ROW, ZERO_ROW
#   Sizes: ROWS = ceil(N / VLEN), PAD = ROWS * VLEN - N (lanes past the block).
#   Scalars: MASK_HI/LO = the [MASK] token id, RULE = 0 top-k / 1 threshold,
#            TAU_HI/LO = fp32 bits of the threshold tau.
#
# The rule sees the confidences in the vector-SRAM format (vldf rounds them), ranks them with
# ties going to the lowest position, and commits among eligible (== [MASK]) positions:
#   top-k:     rank < k
#   threshold: confidence >= tau, or rank == 0 (Fast-dLLM: always at least one)
# Then tokens = commit ? x0 : tokens, by `vseli` in INT SRAM (ids never pass through floats).
#
# Registers: r1 = 1, r2 = N, r5 = [MASK] id, r6 / r7 = -inf / zero row, r8.. = row pointers;
#   f0 = 0, f1 = -inf, f7 = tau.

        addi r1, r0, 1
        addi r2, r0, N
        flui f0, 0.0
        flui f1, -inf
        addi r3, r0, PAD                # lanes past the block: token -1 (never [MASK]), x0 0, conf 0
        addi r4, r0, -1
        addi r8, r0, N
        loop r3, commit_pad_end
        sw   r4, TOK_SRAM(r8)
        sw   r0, X0_SRAM(r8)
        fsw  f0, CONF_SRAM(r8)
        addi r8, r8, 1
commit_pad_end:
        lui  r9, TOKENS_HI
        ori  r9, r9, TOKENS_LO
        amov a0, r9
        addi r8, r0, TOK_SRAM
        dld.i a0, r8, r1, r2, r0, r0, int32
        wait dma
        lui  r5, MASK_HI
        ori  r5, r5, MASK_LO
        addi r6, r0, NEGINF_ROW
        vbcast r6, f1
        addi r7, r0, ZERO_ROW
        vbcast r7, f0
        addi r8, r0, TOK_SRAM
        addi r9, r0, CONF_SRAM
        addi r10, r0, ELIG
        addi r11, r0, CONFV
        addi r12, r0, RANK_SRAM
        loopi ROWS, commit_rows_end
        vieq r10, r8, r5                # eligible: still [MASK]
        vldf r11, r9
        vsel r11, r11, r6, r10          # -inf where not eligible
        vsti r12, r7                    # ranks start at 0
        addi r8, r8, VLEN
        addi r9, r9, VLEN
        addi r10, r10, VLEN
        addi r11, r11, VLEN
        addi r12, r12, VLEN
commit_rows_end:
        addi r11, r0, CONFV             # ranks: every pair of rows (c, o)
        addi r12, r0, RANK_SRAM
        loopi ROWS, commit_rank_end
        addi r13, r0, CONFV
        loopi ROWS, commit_rank_pair_end
        vrank r12, r11, r13
        addi r13, r13, VLEN
commit_rank_pair_end:
        addi r11, r11, VLEN
        addi r12, r12, VLEN
commit_rank_end:
        lw   r3, K_SRAM(r0)
        addi r4, r0, RULE
        lui  r9, TAU_HI
        ori  r9, r9, TAU_LO
        fmv.f.i f7, r9
        addi r8, r0, TOK_SRAM
        addi r9, r0, X0_SRAM
        addi r10, r0, ELIG
        addi r11, r0, CONFV
        addi r12, r0, RANK_SRAM
        addi r13, r0, MASKV
        addi r14, r0, TOPV
        addi r15, r0, COMMIT_SRAM
        loopi ROWS, commit_select_end
        bne  r4, r0, commit_threshold
        vtopk r13, r12, r10, r3
        j    commit_selected
commit_threshold:
        vthresh r13, r11, r10, f7
        vtopk r14, r12, r10, r1         # the best eligible position
        vmax  r13, r13, r14
commit_selected:
        vseli r8, r9, r8, r13
        vsti  r15, r13
        addi r8, r8, VLEN
        addi r9, r9, VLEN
        addi r10, r10, VLEN
        addi r11, r11, VLEN
        addi r12, r12, VLEN
        addi r13, r13, VLEN
        addi r14, r14, VLEN
        addi r15, r15, VLEN
commit_select_end:
        wait vector
        addi r8, r0, TOK_SRAM
        dst.i a0, r8, r1, r2, r0, r0, int32
        lui  r9, COMMIT_OUT_HI
        ori  r9, r9, COMMIT_OUT_LO
        amov a1, r9
        addi r8, r0, COMMIT_SRAM
        dst.i a1, r8, r1, r2, r0, r0, int32
        wait dma
