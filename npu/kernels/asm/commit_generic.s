# commit_generic.s - commit the most confident still-masked positions of a block, generic
# lowering for machines without dLLM instructions (ar-npu). Same contract and bit-identical
# results as commit_dllm.s; N <= 256 (ranks and positions are exact integers in bf16).
#
# Layout contract: as commit_dllm.s (DRAM, INT SRAM, FP SRAM), but these vector rows:
#   VECTOR SRAM  ELIG, KEYV, RANKV, POSV, MASKV   ROWS * VLEN elements each;
#                BCAST_ROW, GT_ROW, EQ_ROW, AFTER_ROW   one row each
#   FP SRAM      KEY_F       ROWS * VLEN words (the keys, for scalar reads)
#   INT SRAM     ISCRATCH    ROWS * VLEN words (to build POSV)
#   Sizes: ROWS_X_VLEN = ROWS * VLEN.
#
# Generic lowering:
#   key = conf * eligible + (eligible - 1)   (conf >= 0 where eligible, -1 elsewhere: no vsel)
#   rank_i = sum over positions j of [key_j > key_i] + [key_j == key_i] * [i > j]
#            (one broadcast of key_j per j; vgt / vge / vgts / vmul / vadd per row)
#   top-k: eligible * [k > rank];  threshold: eligible * max([key >= tau], [1 > rank])
#   commit: token = token + mask * (x0 - token), scalar integer ops per position (no vseli)
#
# Registers: r1 = 1, r2 = N, r5 = [MASK] id; f0 = 0, f6 = -1, f7 = tau.

        addi r1, r0, 1
        addi r2, r0, N
        flui f0, 0.0
        flui f6, -1.0
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
        addi r8, r0, 0                  # POSV: lane positions 0 .. ROWS * VLEN - 1
        addi r9, r0, ISCRATCH
        loopi ROWS_X_VLEN, commit_positions_end
        sw   r8, 0(r9)
        addi r8, r8, 1
        addi r9, r9, 1
commit_positions_end:
        wait dma
        lui  r5, MASK_HI
        ori  r5, r5, MASK_LO
        addi r8, r0, TOK_SRAM
        addi r9, r0, CONF_SRAM
        addi r10, r0, ELIG
        addi r11, r0, KEYV
        addi r12, r0, RANKV
        addi r13, r0, KEY_F
        addi r14, r0, EQ_ROW
        loopi ROWS, commit_rows_end
        vieq  r10, r8, r5               # eligible: still [MASK]
        vldf  r11, r9
        vmul  r11, r11, r10
        vadds r14, r10, f6
        vadd  r11, r11, r14             # key
        vstf  r13, r11
        vbcast r12, f0                  # ranks start at 0
        addi r8, r8, VLEN
        addi r9, r9, VLEN
        addi r10, r10, VLEN
        addi r11, r11, VLEN
        addi r12, r12, VLEN
        addi r13, r13, VLEN
commit_rows_end:
        addi r13, r0, POSV
        addi r14, r0, ISCRATCH
        loopi ROWS, commit_posv_end
        vldi r13, r14
        addi r13, r13, VLEN
        addi r14, r14, VLEN
commit_posv_end:
        wait vector
        addi r3, r0, 0                  # ranks: one pass per position j
        addi r4, r0, BCAST_ROW
        addi r10, r0, EQ_ROW
        addi r14, r0, GT_ROW
        addi r15, r0, AFTER_ROW
        loop r2, commit_rank_end
        flw  f2, KEY_F(r3)              # key_j
        fcvt.f.i f3, r3                 # j
        vbcast r4, f2
        addi r11, r0, KEYV
        addi r12, r0, RANKV
        addi r13, r0, POSV
        loopi ROWS, commit_rank_rows_end
        vgt  r14, r4, r11               # [key_j > key_i]
        vge  r10, r4, r11               # [key_j >= key_i]
        vsub r10, r10, r14              # [key_j == key_i]
        vgts r15, r13, f3               # [i > j]
        vmul r10, r10, r15
        vadd r14, r14, r10
        vadd r12, r12, r14
        addi r11, r11, VLEN
        addi r12, r12, VLEN
        addi r13, r13, VLEN
commit_rank_rows_end:
        addi r3, r3, 1
commit_rank_end:
        lw   r3, K_SRAM(r0)
        addi r4, r0, RULE
        lui  r9, TAU_HI
        ori  r9, r9, TAU_LO
        fmv.f.i f7, r9
        fcvt.f.i f4, r3
        addi r5, r0, BCAST_ROW
        bne  r4, r0, commit_threshold_bound
        vbcast r5, f4                   # top-k: k in every lane
        j    commit_bound_done
commit_threshold_bound:
        flui f4, 1.0
        vbcast r5, f4                   # threshold: the best position has rank < 1
commit_bound_done:
        addi r10, r0, ELIG
        addi r11, r0, KEYV
        addi r12, r0, RANKV
        addi r13, r0, MASKV
        addi r14, r0, EQ_ROW
        addi r15, r0, COMMIT_SRAM
        loopi ROWS, commit_select_end
        vgt  r13, r5, r12               # [bound > rank]
        beq  r4, r0, commit_masked
        vges r14, r11, f7               # [key >= tau]
        vmax r13, r13, r14
commit_masked:
        vmul r13, r13, r10              # only eligible positions
        vsti r15, r13
        addi r10, r10, VLEN
        addi r11, r11, VLEN
        addi r12, r12, VLEN
        addi r13, r13, VLEN
        addi r15, r15, VLEN
commit_select_end:
        wait vector
        addi r3, r0, 0                  # token = token + mask * (x0 - token)
        loop r2, commit_tokens_end
        lw   r4, COMMIT_SRAM(r3)
        lw   r5, X0_SRAM(r3)
        lw   r6, TOK_SRAM(r3)
        sub  r5, r5, r6
        mul  r5, r5, r4
        add  r6, r6, r5
        sw   r6, TOK_SRAM(r3)
        addi r3, r3, 1
commit_tokens_end:
        addi r8, r0, TOK_SRAM
        dst.i a0, r8, r1, r2, r0, r0, int32
        lui  r9, COMMIT_OUT_HI
        ori  r9, r9, COMMIT_OUT_LO
        amov a1, r9
        addi r8, r0, COMMIT_SRAM
        dst.i a1, r8, r1, r2, r0, r0, int32
        wait dma
