"""Diagnostic copies of the 64-row kernel, each without one piece of a KV block's work (outputs wrong by design).

The time each copy saves is what that piece costs on the kernel's critical path:

    python benchmarks/wide_diagnostics.py . /tmp/wd      # -> /tmp/wd/wide-<piece>-nocheck (and wide-main-nocheck)
    bash benchmarks/probe_variants.sh OUT b128/s4096/h128/q1,b128/s4096/h64/q1 /tmp/wd/wide-*-nocheck

Each edit must match kernels/mla_decode.cuh exactly once (the script stops otherwise: update the snippet).
"""
import shutil
import sys
from pathlib import Path

F = "kernels/mla_decode.cuh"
# Warpgroup 1's P V wgmma (SS: P from shared memory), switched off by a condition that is never true.
WG1_PV = ("""    wgmma_ss<typename GmmaOps<Element>::PV_SS>(desc_k_major(probs + t * 32), v_desc(v1, t), o, true,
                                               std::make_index_sequence<128>{});""",
          """    if (v1 == 0xffffffffu) wgmma_ss<typename GmmaOps<Element>::PV_SS>(desc_k_major(probs + t * 32), v_desc(v1, t), o, true,
                                               std::make_index_sequence<128>{});""")
EDITS = {
    "main": [],   # the baseline, built and probed the same way
    # softmax off: P = raw scores, rescale 1
    "nosoftmax": [("  online_softmax<kLoads>(p, descale, f, b.block, needs_mask, key_limit, s, stats, rescale);\n",
                   "  rescale[0] = rescale[1] = 1.f;\n")],
    # Q K^T's 36 wgmmas off (S keeps whatever it held)
    "noqk": [("""    wgmma_ss<typename GmmaOps<Element>::QK>(desc_k_major(q + offset), desc_k_major(kv + offset), s, k > 0,
                                            std::make_index_sequence<32>{});""",
              """    if (offset < 0) wgmma_ss<typename GmmaOps<Element>::QK>(desc_k_major(q + offset), desc_k_major(kv + offset), s, k > 0,
                                            std::make_index_sequence<32>{});""")],
    # both P V halves off
    "nopv": [("""    wgmma_rs<typename GmmaOps<Element>::PV_RS>(probs[t], v_desc(kv, t), o, std::make_index_sequence<128>{});""",
              """    if (kv == 0xffffffffu) wgmma_rs<typename GmmaOps<Element>::PV_RS>(probs[t], v_desc(kv, t), o, std::make_index_sequence<128>{});"""),
             WG1_PV],
    # warpgroup 1's P V half off (warpgroup 0 alone on the tensor cores during its P V)
    "nopv1": [WG1_PV],
    # no KV loads: the TMA producer arrives on each full barrier without copying (the stages keep what they held;
    # the one-tile cp.async instantiation, h_q*s_q <= 64, still loads)
    "noload": [("  mbar_arrive_expect_tx(full, group_sub_tiles(group) * kSubTileBytes);\n",
                "  mbar_arrive_expect_tx(full, 0);\n  return;\n")],
}


def edited(text: str, name: str) -> str:
    """The kernel source with EDITS[name] applied; each snippet must occur exactly once."""
    for old, new in EDITS[name]:
        assert text.count(old) == 1, (name, old[:60])
        text = text.replace(old, new)
    return text


def main(src: Path, dest: Path) -> None:
    for name in EDITS:
        tree = dest / f"wide-{name}-nocheck"
        if tree.exists():
            shutil.rmtree(tree)
        shutil.copytree(src, tree, ignore=shutil.ignore_patterns(".git", ".variants", ".peers", ".dev", ".bundle-*",
                                                                 ".jit", ".venv*", "__pycache__", ".whl", ".gl",
                                                                 ".peers-new", "build", "*.egg-info"))
        path = tree / F
        path.write_text(edited(path.read_text(), name))
        print("made", tree)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
