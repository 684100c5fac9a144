"""How a batching session's runs are fed: one array, refilled run after run (issue 94)."""

import numpy as np
from alphacut.models.inputs import RunBuffer, in_runs
from alphacut.models.isnet import IsnetModel


def picture(value: float) -> np.ndarray:
    return np.full((1, 3, 4, 4), value, np.float32)


def test_a_run_with_fewer_pictures_than_the_last_blanks_the_slots_the_last_one_filled():
    buffer = RunBuffer()
    full = buffer.fill([picture(k) for k in (1, 2, 3, 4)], 4)
    assert [float(full[k, 0, 0, 0]) for k in range(4)] == [1, 2, 3, 4]
    again = buffer.fill([picture(7)], 4)
    assert again is full  # the same memory, refilled
    assert np.array_equal(again, in_runs([picture(7)], 4)[0])  # as a new run would hold


class RecordingSession:
    """A batching session that answers each picture's mean as its matte and keeps what it was fed."""

    batches = True
    batch_size = 4

    def __init__(self) -> None:
        self.input_names = ["input"]
        self.fed: list[np.ndarray] = []

    def run(self, names, feeds):
        batch = feeds["input"]
        self.fed.append(batch)
        return [
            np.broadcast_to(batch.mean(axis=(1, 2, 3))[:, None, None, None] - 1, (len(batch), 1, 4, 4)).copy()
        ]


def test_isnet_feeds_a_batching_session_one_array_and_answers_each_pictures_clipped_matte():
    session = RecordingSession()
    model = IsnetModel(session, features=False)
    mattes = model.run_many([picture(k / 4) for k in range(1, 7)])  # six pictures: runs of 4 and 2
    assert len(session.fed) == 2 and session.fed[0] is session.fed[1]
    assert [float(m[0, 0]) for m in mattes] == [0.0, 0.0, 0.0, 0.0, 0.25, 0.5]  # k/4 - 1, clipped at 0
    assert all(m.shape == (4, 4) for m in mattes)
    assert not session.fed[1][2:].any()  # the second run's two blank pictures
