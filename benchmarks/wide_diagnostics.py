"""Diagnostic copies of the 64-row kernels, each without one piece of a KV block's work (outputs wrong by design).

The time each copy saves is what that piece costs on the kernel's critical path:

    python benchmarks/wide_diagnostics.py . /tmp/wd      # -> /tmp/wd/<copy>-nocheck, one per COPIES entry
    bash benchmarks/probe_variants.sh OUT b128/s4096/h128/q1,b128/s4096/h64/q1 /tmp/wd/wide-*-nocheck
    PROBE_ARGS="--kv fp8" bash benchmarks/probe_variants.sh OUT b128/s4096/h64/q1 /tmp/wd/fp8-*-nocheck

Where a row reaches the card's power cap, `power_probe.py --unchecked` in a copy's tree prices the piece in energy
(mJ a step) instead (kernels/PERF_NOTES.md, forty-first session).

`wide-*` copies edit the 16-bit kernel (kernels/mla_decode.cuh), `fp8-*` the fp8 one (mla_decode_wide_fp8.cuh and
its producer in mla_fp8_stages.cuh). Each snippet must occur in its file exactly once (the script stops otherwise:
update the snippet).
"""
import shutil
import sys
from pathlib import Path

WIDE = "kernels/mla_decode.cuh"
WIDE_FP8 = "kernels/mla_decode_wide_fp8.cuh"
FP8_STAGES = "kernels/mla_fp8_stages.cuh"


def guarded(file: str, statement: str, condition: str) -> tuple[str, str, str]:
    """An edit that runs `statement` only where `condition` holds (a condition never true removes it)."""
    head = statement.lstrip()
    return file, statement, statement[:len(statement) - len(head)] + f"if ({condition}) " + head


# Warpgroup 1's P V wgmma in the 16-bit kernel (SS: P from shared memory).
WG1_PV = guarded(WIDE, """    wgmma_ss<typename GmmaOps<Element>::PV_SS>(desc_k_major(probs + t * 32), v_desc(v1, t), o, true,
                                               std::make_index_sequence<128>{});""",
                 "v1 == 0xffffffffu")
# The TMA producer's expectation of a group's bytes, first statement of issue_kv_group (the loads follow it).
TMA_GROUP_LOAD = "  mbar_arrive_expect_tx(full, group_sub_tiles(group) * kSubTileBytes);\n"
FP8_PV = ("      wgmma_rs<PV>(probs[part][t], narrow_fp8::desc_k_major_sw64(columns + t * 32), o, "
          "std::make_index_sequence<128>{});")
COPIES = {
    "wide-main": [],   # the baseline, built and probed the same way
    # softmax off: P = raw scores, rescale 1
    "wide-nosoftmax": [(WIDE, "  online_softmax_speculative<Element>(p, f, b.block, needs_mask, key_limit, s, stats, "
                              "rescale, padding, probs);\n",
                        "  rescale[0] = rescale[1] = 1.f;\n"
                        "  for (int t = 0; t < kTokenSteps; ++t) {\n"
                        "    for (int r = 0; r < 4; ++r) probs[t][r] = GmmaOps<Element>::pack(s[t * 8 + r * 2], "
                        "s[t * 8 + r * 2 + 1]);\n"
                        "  }\n")],
    # O's rescale off in both warpgroups (scale_rows' multiplies; its loop stays, empty)
    "wide-norescale": [(WIDE, "    o[j * 4 + 0] *= row0;\n    o[j * 4 + 1] *= row0;\n    o[j * 4 + 2] *= row1;\n"
                              "    o[j * 4 + 3] *= row1;\n", "")],
    # Q K^T's 36 wgmmas off (S keeps whatever it held)
    "wide-noqk": [guarded(WIDE, """    wgmma_ss<typename GmmaOps<Element>::QK>(desc_plus(q_desc, offset), desc_plus(kv_desc, offset), s, k > 0,
                                            std::make_index_sequence<32>{});""", "offset < 0")],
    # both P V halves off
    "wide-nopv": [guarded(WIDE, "    wgmma_rs<typename GmmaOps<Element>::PV_RS>(probs[t], v_desc(kv, t), o, "
                              "std::make_index_sequence<128>{});", "kv == 0xffffffffu"), WG1_PV],
    # warpgroup 1's P V half off (warpgroup 0 alone on the tensor cores during its P V)
    "wide-nopv1": [WG1_PV],
    # no KV loads: the TMA producer arrives on each full barrier without copying (the stages keep what they held;
    # the one-tile cp.async instantiation, h_q*s_q <= 64, still loads)
    "wide-noload": [(WIDE, TMA_GROUP_LOAD, "  mbar_arrive_expect_tx(full, 0);\n  return;\n")],
    # only each part's first row tile loads (the others keep what their stages held): with 2-4 row tiles a part, the
    # repeated L2-to-shared copies of each block are gone, its DRAM read stays (what multicast could save at most)
    "wide-noloaddup": [(WIDE, TMA_GROUP_LOAD, "  if (blockIdx.x > 0) {\n    mbar_arrive_expect_tx(full, 0);\n"
                                              "    return;\n  }\n" + TMA_GROUP_LOAD)],
    "fp8-main": [],
    "fp8-nosoftmax": [(WIDE_FP8, "    wide::online_softmax(p, f, b.block, needs_mask, key_limit, s, stats, rescale);\n",
                       "    rescale[0] = rescale[1] = 1.f;\n")],
    # half the blocks' softmax (the odd ones keep P = raw scores): what FlashMLA's seesaw, both warpgroups taking
    # alternate blocks' softmax, could save at most
    "fp8-halfsoftmax": [(WIDE_FP8, "    wide::online_softmax(p, f, b.block, needs_mask, key_limit, s, stats, rescale);\n",
                         "    if (b.block % 2 == 0) {\n      wide::online_softmax(p, f, b.block, needs_mask, key_limit, s, "
                         "stats, rescale);\n    } else {\n      rescale[0] = rescale[1] = 1.f;\n    }\n")],
    # the folded tile's softmax off (17-32 rows): P8's parts are raw score bits, rescale 1
    "fp8-nofoldedsoftmax": [(WIDE_FP8, "      folded_softmax(f, half, b.block, needs_mask, key_limit, "
                                       "row_scale_log2, s, stats, rescale, high, low);\n",
                             "      rescale[0] = rescale[1] = 1.f;\n"
                             "      for (int r = 0; r < 4; ++r) high[r] = low[r] = "
                             "__float_as_uint(half ? s[16 + r] : s[r]);\n")],
    # the folded tile's rows 32-63 of Q8 zeros (the repeat rows' Q.K^T multiplies zeros): what the duplicate rows'
    # operands cost in energy, at the same instructions (power_probe.py)
    "fp8-zerofoldedrows": [(WIDE_FP8, "        p, req, query_row, query_row < p.rows, part, ",
                            "        p, req, query_row, query_row < p.rows && (!kFolded || row < kFoldedRows), "
                            "part, ")],
    # P8's low part not computed (the high part as its low part too): the cost of the second part's packing
    "fp8-nolow": [(WIDE_FP8, "      probs[1][t][r] = low[0] | (uint32_t(low[1]) << 16);\n",
                   "      probs[1][t][r] = probs[0][t][r];\n")],
    "fp8-noqk": [guarded(WIDE_FP8, "    wgmma_ss<QK>(desc_plus(q_desc, offset), desc_plus(raw_desc, offset), s, k > 0, "
                                   "std::make_index_sequence<32>{});", "offset < 0")],
    "fp8-nopv": [guarded(WIDE_FP8, FP8_PV, "columns == 0xffffffffu")],
    "fp8-nopv1": [guarded(WIDE_FP8, FP8_PV, "warpgroup == 0")],   # warpgroup 1's half off
    # the producer's Vt stores off (its loads stay: volatile asm; the byte permutes go with the stores)
    "fp8-notranspose": [guarded(FP8_STAGES,
                                "    store_shared_16(VtLayout::chunk(vt, 16 * lane.c + (i ^ swap), lane.g),",
                                "vt == 0xffffffffu")],
    # the cp.async copies off (the raw stages keep what they held; the arrivals stay)
    "fp8-noload": [guarded(FP8_STAGES, "        cp_async_16_zfill(dst + k * 2 * RawLayout::kGroupBytes + t * 1024,",
                         "src_bytes > 16")],
}


def edited(root: Path, name: str) -> dict[str, str]:
    """The files COPIES[name] changes, by path relative to root, with its snippets replaced."""
    files: dict[str, str] = {}
    for file, old, new in COPIES[name]:
        text = files.get(file) or (root / file).read_text()
        assert text.count(old) == 1, (name, file, old[:60])
        files[file] = text.replace(old, new)
    return files


def main(src: Path, dest: Path) -> None:
    for name in COPIES:
        tree = dest / f"{name}-nocheck"
        if tree.exists():
            shutil.rmtree(tree)
        shutil.copytree(src, tree, ignore=shutil.ignore_patterns(".git", ".variants", ".peers", ".dev", ".bundle-*",
                                                                 ".jit", ".venv*", "__pycache__", ".whl", ".gl",
                                                                 ".peers-new", "build", "*.egg-info"))
        for file, text in edited(src, name).items():
            (tree / file).write_text(text)
        print("made", tree)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
