"""integration_tests/vllm_engine_profile.py on CPU (no vLLM needed): its arithmetic, and the wrappers that time the
engine's phases on a stand-in for vLLM's LLM object."""
from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

import pytest

import bench_serving
import vllm_engine_profile as vep


def test_a_step_is_the_difference_of_two_rounds():
    rate = vep.step_rate(64, 128, 384, t_short=3.0, t_long=10.68)
    assert rate["ms_per_step"] == pytest.approx(30.0)
    assert rate["tokens_per_s"] == pytest.approx(64 / 0.030)


def test_phases_per_step_and_what_nested_phases_leave_of_their_parents():
    short = {"llm_engine.step": 1.0, "get_output": 0.8, "schedule": 0.1, "process_outputs": 0.1}
    long = {"llm_engine.step": 3.0, "get_output": 2.4, "schedule": 0.3, "process_outputs": 0.5}
    ms = vep.per_step_ms(short, long, steps=100)
    assert ms["llm_engine.step"] == pytest.approx(20.0) and ms["schedule"] == pytest.approx(2.0)
    assert ms["get_output_other"] == pytest.approx(16.0 - 2.0)
    assert ms["step_other"] == pytest.approx(20.0 - 16.0 - 4.0)


def test_gpu_busy_time_counts_overlapping_kernels_once():
    assert vep.busy_us([(0, 10), (5, 15), (20, 30), (22, 25)]) == 25
    assert vep.busy_us([]) == 0


def test_arguments():
    args = vep.parse_args(["--out", "o"])
    assert (args.backend, args.concurrency, args.short, args.long, args.enforce_eager) == ("CUSTOM", [64, 1], 128,
                                                                                           384, False)
    with pytest.raises(SystemExit):
        vep.parse_args(["--out", "o", "--short", "384", "--long", "128"])


def test_the_checkpoint_is_bench_serving_s_for_the_arguments_given():
    # bench_serving.model_dir reads --num-heads, --num-layers and the cache dtype: the probe's arguments carry all
    from mla_backend.models import serving_model

    default = vep.parse_args(["--out", "o"])
    assert bench_serving.model_dir(default) == default.workdir / serving_model.NAME
    narrow = vep.parse_args(["--out", "o", "--num-heads", "16", "--num-layers", "12"])
    assert bench_serving.model_dir(narrow) == narrow.workdir / f"{serving_model.NAME}-h16-l12"


def test_wrappers_time_each_phase_and_the_wait_on_a_returned_future():
    pytest.importorskip("torch")
    future = Future()
    future.set_result("out")
    executor = SimpleNamespace(execute_model=lambda s: None, sample_tokens=lambda g: future)
    scheduler = SimpleNamespace(schedule=lambda: "s", update_from_output=lambda s, o: {})
    core = SimpleNamespace(scheduler=scheduler, model_executor=executor)

    def get_output():
        scheduler.schedule()
        executor.execute_model("s")
        return scheduler.update_from_output("s", executor.sample_tokens(None).result())

    client = SimpleNamespace(engine_core=core, get_output=get_output)
    engine = SimpleNamespace(engine_core=client, output_processor=SimpleNamespace(process_outputs=lambda o: []))
    engine.step = lambda: engine.output_processor.process_outputs(engine.engine_core.get_output())
    phases = vep.Phases()
    phases.install(SimpleNamespace(llm_engine=engine))
    engine.step()
    engine.step()
    # The stand-in engine has no V2 model runner: its phases are skipped, the engine's are timed.
    engine_phases = {label for label, _, _ in vep.PHASES if not label.startswith("runner.")}
    assert set(phases.calls.values()) == {2} and set(phases.calls) == engine_phases | {vep.WAIT}
