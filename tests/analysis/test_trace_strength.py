"""A trace finding's strength is on the metrics' scale: an error rise counts in error points."""

from __future__ import annotations

from diagnose.analysis import components, spantable, traces, tracing


def _stats(count: int, errors: int) -> traces.WindowStats:
    return traces.WindowStats(count, errors, 10.0, 20.0, 30.0, 5.0, 10.0, 12.0)


def _operation(*, before: tuple[int, int], after: tuple[int, int]) -> traces.OperationChange:
    test = spantable.MannWhitney(u=0.0, effect=0.5, z=0.0, p_value=1.0, n_baseline=1, n_incident=1)
    return traces.OperationChange(
        service="checkout",
        operation="POST /pay",
        component="checkout",
        detail="/pay",
        baseline=_stats(*before),
        incident=_stats(*after),
        latency_test=test,
        error_p_value=1e-5,
        latency_changed=False,
        errors_changed=True,
        exemplars=(),
    )


def test_an_error_rise_counts_its_lower_bound_in_points_when_that_beats_the_test_z() -> None:
    """0 % → 18.75 % in 64 spans: z 4.1, but the rise is at least ~11 points (95 %)."""
    operation = _operation(before=(80, 0), after=(64, 12))
    z = tracing.proportion_z(0, 80, 12, 64)
    strength = tracing.change_strength(operation, z=z)
    assert 4.0 < z < 4.5
    assert components.compress(10.0) < strength < components.compress(12.0)


def test_a_rise_from_a_handful_of_spans_claims_little_more_than_its_test() -> None:
    operation = _operation(before=(5, 0), after=(4, 1))
    z = tracing.proportion_z(0, 5, 1, 4)
    assert tracing.change_strength(operation, z=z) == components.compress(abs(z))


def test_a_latency_finding_keeps_its_test_z() -> None:
    operation = _operation(before=(80, 0), after=(64, 0))
    latency_only = traces.OperationChange(
        **{**operation.__dict__, "errors_changed": False, "latency_changed": True}
    )
    assert tracing.change_strength(latency_only, z=7.5) == components.compress(7.5)
    assert tracing.change_strength(None, z=-3.0) == components.compress(3.0)
