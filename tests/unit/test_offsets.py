from hypothesis import given
from hypothesis import strategies as st

from qaflow.core.offsets import OffsetTracker

TP = ("t", 0)


@given(st.permutations(list(range(20))), st.integers(0, 20))
def test_commit_never_passes_an_unfinished_record(order: list[int], finished_count: int) -> None:
    tracker = OffsetTracker()
    for off in range(20):
        tracker.started(TP, off)
    done = set(order[:finished_count])
    for off in order[:finished_count]:
        tracker.finished(TP, off)
    committed = tracker.committable().get(TP, 0)
    unfinished = set(range(20)) - done
    expected = min(unfinished) if unfinished else 20
    assert committed == expected


def test_committable_reports_only_moves() -> None:
    tracker = OffsetTracker()
    tracker.started(TP, 0)
    tracker.finished(TP, 0)
    assert tracker.committable() == {TP: 1}
    assert tracker.committable() == {}
    tracker.started(TP, 1)
    assert tracker.committable() == {}
    assert tracker.in_flight() == 1
    tracker.forget({TP})
    assert tracker.in_flight() == 0
