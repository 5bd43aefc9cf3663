"""The speed benchmarks' harness: interleaved rounds, per-round ratios, median and spread."""

from benchmarks.timing import Timings, interleave


def test_interleave_rotates_the_order_and_divides_within_each_round():
    calls: list[str] = []
    # the bare loop's time changes from round to round (a noisy machine); the other
    # loop is always twice as slow in the same round
    bare_times = iter([9.0, 1.0, 2.0, 4.0])  # warm-up, then three rounds

    def bare(steps: int) -> float:
        calls.append(f"bare{steps}")
        return next(bare_times)

    slow_times = iter([9.0, 2.0, 4.0, 8.0])

    def slow(steps: int) -> float:
        calls.append(f"slow{steps}")
        return next(slow_times)

    timings = interleave({"bare": bare, "slow": slow}, steps=7, repeats=3, warmup=2)
    assert calls == ["bare2", "slow2", "bare7", "slow7", "slow7", "bare7", "bare7", "slow7"]
    assert timings.ratios("slow") == [2.0, 2.0, 2.0]
    assert timings.ratio("slow") == (2.0, 2.0, 2.0)
    assert timings.bare_ms() == 2000.0


def test_median_and_spread_of_the_ratios():
    timings = Timings({"bare": [1.0, 1.0, 1.0, 1.0], "module": [1.1, 0.9, 1.5, 1.0]})
    median, low, high = timings.ratio("module")
    assert (low, high) == (0.9, 1.5) and abs(median - 1.05) < 1e-12
    assert timings.cell("module") == "1.05 (0.90-1.50)"
    assert "| module | 1050.0 | 1.05 (0.90-1.50) |" in timings.table()
