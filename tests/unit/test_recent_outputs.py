"""A model run's outputs kept for the same input asked again (alphacut.models.recent)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from alphacut.models.engines import PROBE_MODEL, Engine, OnnxruntimeSession
from alphacut.models.recent import RecentOutputs
from alphacut.settings import EngineSettings, SettingError

MB = 1 << 20


class CountingSession:
    """A model whose output is its input's sum per name, counting its runs."""

    batches = False

    def __init__(self):
        self.input_names = ["input"]
        self.runs = 0

    def run(self, names, feeds):
        self.runs += 1
        return [np.full((256, 256), float(feeds["input"].sum()) + len(names or ()), np.float32)]


def picture(value: float = 1.0) -> dict[str, np.ndarray]:
    return {"input": np.full((1, 3, 16, 16), value, np.float32)}


def test_the_same_input_asked_again_is_answered_from_memory_with_the_same_outputs():
    inner, recent = CountingSession(), RecentOutputs(8 * MB)
    session = recent.remembering(inner)
    first = session.run(["matte"], picture())
    again = session.run(["matte"], picture())
    assert inner.runs == 1 and (recent.hits, recent.misses) == (1, 1)
    assert np.array_equal(first[0], again[0]) and again[0].dtype == np.float32


@pytest.mark.parametrize("change", ["one value", "the output names", "the dtype", "the shape"])
def test_an_input_that_differs_in_anything_runs_the_model(change):
    inner = CountingSession()
    session = RecentOutputs(8 * MB).remembering(inner)
    session.run(["matte"], picture())
    names, feeds = ["matte"], picture()
    if change == "one value":
        feeds["input"][0, 2, 15, 15] = np.nextafter(np.float32(1), np.float32(2))
    elif change == "the output names":
        names = ["matte", "features"]
    elif change == "the dtype":
        feeds["input"] = feeds["input"].astype(np.float16)
    else:
        feeds["input"] = feeds["input"].reshape(1, 3, 8, 32)
    session.run(names, feeds)
    assert inner.runs == 2


def test_the_output_names_as_a_list_or_a_tuple_are_one_question():
    inner = CountingSession()
    session = RecentOutputs(8 * MB).remembering(inner)
    session.run(["matte"], picture())
    session.run(("matte",), picture())
    assert inner.runs == 1


def test_two_sessions_never_answer_for_each_other_even_with_one_memory():
    recent = RecentOutputs(8 * MB)
    fp32, int8 = CountingSession(), CountingSession()
    recent.remembering(fp32).run(["matte"], picture())
    recent.remembering(int8).run(["matte"], picture())
    assert (fp32.runs, int8.runs) == (1, 1)


def test_changing_the_arrays_a_caller_got_changes_nothing_the_next_caller_gets():
    session = RecentOutputs(8 * MB).remembering(CountingSession())
    first = session.run(["matte"], picture())
    expected = first[0].copy()
    first[0][:] = -1  # the pipeline scales and thresholds its matte in place
    second = session.run(["matte"], picture())
    second[0][:] = -2
    assert np.array_equal(session.run(["matte"], picture())[0], expected)


def test_the_oldest_outputs_go_first_once_the_budget_is_spent_and_a_larger_one_is_never_kept():
    inner = CountingSession()  # each output 256 KB
    recent = RecentOutputs(3 * 256 * 1024)
    session = recent.remembering(inner)
    for value in (1, 2, 3):
        session.run(["matte"], picture(value))
    session.run(["matte"], picture(1))  # 1 is now the newest: 2 is the oldest
    session.run(["matte"], picture(4))  # over budget: 2 goes
    assert inner.runs == 4 and recent.held_bytes == 3 * 256 * 1024
    session.run(["matte"], picture(1))
    session.run(["matte"], picture(3))
    assert inner.runs == 4
    session.run(["matte"], picture(2))
    assert inner.runs == 5
    small = RecentOutputs(256 * 1024 - 1)
    tight = small.remembering(CountingSession())
    tight.run(["matte"], picture())
    tight.run(["matte"], picture())
    assert tight.session.runs == 2 and small.held_bytes == 0


def test_callers_at_once_on_one_input_all_get_its_outputs():
    inner = CountingSession()
    session = RecentOutputs(8 * MB).remembering(inner)
    answers, start = [], threading.Barrier(8)

    def call():
        start.wait()
        answers.append(session.run(["matte"], picture(5))[0])

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8 and all(np.array_equal(a, answers[0]) for a in answers)
    assert 1 <= inner.runs <= 8 and session.run(["matte"], picture(5)) and inner.runs <= 8


def test_a_remembering_session_is_the_session_for_everything_but_its_runs():
    session = RecentOutputs(MB).remembering(CountingSession())
    assert session.input_names == ["input"] and session.batches is False


def test_an_engine_with_a_memory_remembers_its_onnxruntime_runs_and_one_without_runs_each(tmp_path):
    model = tmp_path / "identity.onnx"
    model.write_bytes(PROBE_MODEL)  # y = x, float[1]
    recent = RecentOutputs(MB)
    plain, remembering = Engine("onnxruntime", "test"), Engine("onnxruntime", "test", recent=recent)
    assert plain == remembering  # the memory is not part of what the engine is
    assert isinstance(plain.open(model), OnnxruntimeSession)
    session = remembering.open(model)
    feeds = {"x": np.array([0.25], np.float32)}
    assert [session.run(["y"], feeds)[0][0] for _ in range(3)] == [0.25] * 3
    assert (recent.hits, recent.misses) == (2, 1)


def test_the_setting_is_off_unless_set_and_refuses_a_negative_size():
    assert EngineSettings.from_env({}).recent_outputs_mb == 0
    assert EngineSettings.from_env({"ALPHACUT_RECENT_OUTPUTS_MB": "64"}).recent_outputs_mb == 64
    with pytest.raises(SettingError, match="ALPHACUT_RECENT_OUTPUTS_MB must be at least 0"):
        EngineSettings.from_env({"ALPHACUT_RECENT_OUTPUTS_MB": "-1"})


def test_a_remembering_session_copies_without_asking_a_session_it_does_not_have_yet():
    import copy

    session = RecentOutputs(MB).remembering(CountingSession())
    assert copy.copy(session).input_names == ["input"]


def test_one_callers_runs_never_answer_another_callers_same_input():
    from alphacut.caller_scope import caller_scope as scope

    inner, recent = CountingSession(), RecentOutputs(8 * MB)
    session = recent.remembering(inner)
    with scope("kaaaaaaaaaaaa"):
        session.run(["matte"], picture())
    with scope("kbbbbbbbbbbbb"):
        session.run(["matte"], picture())  # B learns nothing of what A sent: its own run
    assert inner.runs == 2 and recent.hits == 0
    with scope("kaaaaaaaaaaaa"):
        session.run(["matte"], picture())
    assert inner.runs == 2 and recent.hits == 1  # A's own retry still skips the run
