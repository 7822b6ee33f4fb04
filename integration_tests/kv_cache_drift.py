"""How far an engine's fp8-cache e2e run is from its bf16 run, next to how far our fp8 path is from the engine's own.

Issue 12's accuracy rule: served with an fp8 KV cache, our teacher-forced logprobs are no further from the engine's
fp8 reference backend (flashmla / FLASHMLA) than that backend is from its own bf16 run. Both runs' result files
(result_<backend>_<tag>.json in each driver's work folder, same checkpoint) give every distance: within the fp8
run over every forced position, across the runs over the positions where both references forced the same tokens
(e2e_common.forced_logprob_diff).

    python integration_tests/kv_cache_drift.py --bf16-run DIR --fp8-run DIR [--engine sglang|vllm] [--others triton]
        [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import sglang_e2e
import vllm_e2e
from e2e_common import OUR_BACKEND, forced_logprob_diff

REFERENCE = {"sglang": sglang_e2e.REFERENCE, "vllm": vllm_e2e.REFERENCE}   # each engine's e2e reference backend


def load_result(run: Path, backend: str) -> dict:
    """The one result_<backend>_*.json of a driver's work folder."""
    found = sorted(run.glob(f"result_{backend}_*.json"))
    if len(found) != 1:
        raise SystemExit(f"{run}: expected one result_{backend}_*.json, found {[f.name for f in found]}")
    return json.loads(found[0].read_text())


def drift(bf16_run: Path, fp8_run: Path, engine: str, others: tuple[str, ...] = ()) -> dict:
    reference, ours = REFERENCE[engine], OUR_BACKEND[engine]
    ref_bf16, ref_fp8 = load_result(bf16_run, reference), load_result(fp8_run, reference)
    pairs = {f"{reference} fp8 ~ {reference} bf16": forced_logprob_diff(ref_fp8, ref_bf16)}
    for name in (ours, *others):
        fp8 = load_result(fp8_run, name)
        pairs[f"{name} fp8 ~ {reference} fp8"] = forced_logprob_diff(fp8, ref_fp8)
        pairs[f"{name} fp8 ~ {reference} bf16"] = forced_logprob_diff(fp8, ref_bf16)
    empty = [pair for pair, diff in pairs.items() if diff["positions"] == 0]
    if empty:
        raise SystemExit(f"no forced position to compare for {empty}: the runs' references part at the first token")
    own, mine = pairs[f"{reference} fp8 ~ {reference} bf16"], pairs[f"{ours} fp8 ~ {reference} fp8"]
    return {"pairs": pairs, "ours_within_the_reference_own_drift": mine["max"] <= own["max"]
            and mine["mean"] <= own["mean"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bf16-run", type=Path, required=True, help="work folder of the run on the model's dtype")
    parser.add_argument("--fp8-run", type=Path, required=True, help="work folder of the run on an fp8 cache")
    parser.add_argument("--engine", choices=sorted(REFERENCE), default="sglang",
                        help="whose runs: names the reference backend and ours as that engine's e2e driver does")
    parser.add_argument("--others", default="", help="more fp8-run backends to place, comma-separated")
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args(argv)
    others = tuple(n for n in args.others.split(",") if n)
    report = drift(args.bf16_run, args.fp8_run, args.engine, others)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if report["ours_within_the_reference_own_drift"] else 1


if __name__ == "__main__":
    sys.exit(main())
