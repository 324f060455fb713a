"""Time shifting: one whole-second offset applied to every timestamp of every format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from diagnose.lab import shifting

HOUR = timedelta(hours=1)


def _om(text: str, offset: timedelta = HOUR) -> str:
    return "".join(shifting.shift_openmetrics(text.splitlines(keepends=True), offset=offset))


def test_offset_puts_the_trigger_three_minutes_before_now_in_whole_seconds() -> None:
    at = datetime(2022, 5, 14, 22, 5, 52, tzinfo=UTC)
    now = datetime(2026, 1, 1, 12, 0, 0, 700_000, tzinfo=UTC)
    offset = shifting.compute_offset(at, now=now)
    assert offset.microseconds == 0
    assert at + offset == datetime(2026, 1, 1, 11, 57, 0, tzinfo=UTC)


def test_openmetrics_sample_timestamps_move_and_values_do_not() -> None:
    shifted = _om('# TYPE up gauge\nup{job="a"} 1 1652565600\nup{job="a"} 0.5 1652565601.25\n')
    assert shifted.splitlines() == [
        "# TYPE up gauge",
        'up{job="a"} 1 1652569200',
        'up{job="a"} 0.5 1652569201.25',
    ]


def test_openmetrics_keeps_eof_comments_and_samples_without_timestamp() -> None:
    text = '# HELP up is it up\nup 1\nup{job="a"} 1\n# EOF\n'
    assert _om(text) == text


def test_openmetrics_label_values_with_spaces_braces_and_hashes_are_left_alone() -> None:
    line = 'x{route="/a b} # 1 2",code="5\\"00"} 3 100 # {trace_id="ab c"} 1.5 90.5\n'
    assert _om(line, timedelta(seconds=10)) == (
        'x{route="/a b} # 1 2",code="5\\"00"} 3 110 # {trace_id="ab c"} 1.5 100.5\n'
    )


def test_openmetrics_without_labels_and_with_exponent_timestamps() -> None:
    assert _om("up 1 1.6525656e9\n", timedelta(seconds=10)) == "up 1 1652565610\n"


def test_rfc3339_strings_keep_their_fraction_and_zone() -> None:
    assert shifting.shift_timestamp("2026-01-10T10:07:00Z", offset=HOUR) == "2026-01-10T11:07:00Z"
    micro = shifting.shift_timestamp("2026-01-10T23:30:00.123456789Z", offset=HOUR)
    assert micro == "2026-01-11T00:30:00.123456789Z"
    zoned = shifting.shift_timestamp("2026-01-10T10:07:00+02:00", offset=HOUR)
    assert zoned == "2026-01-10T11:07:00+02:00"
    assert shifting.shift_timestamp("checkout-2026", offset=HOUR) is None
    assert shifting.shift_timestamp("2026-01-10", offset=HOUR) is None


def test_kubernetes_documents_have_every_timestamp_shifted_wherever_it_sits() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "creationTimestamp": "2026-01-10T08:00:00Z",
            "managedFields": [{"manager": "kubectl", "time": "2026-01-10T08:01:00Z"}],
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-10T08:02:00Z"},
            "labels": {"version": "2026-01-10"},
        },
        "status": {
            "conditions": [{"type": "Ready", "lastTransitionTime": "2026-01-10T08:03:00Z"}],
            "containerStatuses": [
                {"lastState": {"terminated": {"finishedAt": "2026-01-10T08:04:00Z"}}}
            ],
        },
    }
    shifted = shifting.shift_document(pod, offset=HOUR)
    assert shifted["metadata"]["creationTimestamp"] == "2026-01-10T09:00:00Z"
    assert shifted["metadata"]["managedFields"][0]["time"] == "2026-01-10T09:01:00Z"
    assert shifted["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == (
        "2026-01-10T09:02:00Z"
    )
    assert shifted["metadata"]["labels"] == {"version": "2026-01-10"}
    assert shifted["status"]["conditions"][0]["lastTransitionTime"] == "2026-01-10T09:03:00Z"
    terminated = shifted["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert terminated["finishedAt"] == "2026-01-10T09:04:00Z"
    assert pod["metadata"]["creationTimestamp"] == "2026-01-10T08:00:00Z"  # a copy, not in place


def test_event_micro_time_and_yaml_datetimes_come_back_as_api_strings() -> None:
    event = {"eventTime": "2026-01-10T08:00:00.000001Z", "at": datetime(2026, 1, 10, tzinfo=UTC)}
    shifted = shifting.shift_document(event, offset=HOUR)
    assert shifted == {"eventTime": "2026-01-10T09:00:00.000001Z", "at": "2026-01-10T01:00:00Z"}


def test_otlp_nanosecond_fields_shift_as_strings_and_as_integers() -> None:
    span = {"traceId": "ab", "startTimeUnixNano": "1000000000000000000"}
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            span | {"endTimeUnixNano": 1_000_000_000_500_000_000},
                            {"events": [{"timeUnixNano": "1000000000100000000"}]},
                            {"startTimeUnixNano": "0"},
                        ]
                    }
                ]
            }
        ]
    }
    spans = shifting.shift_otlp(document, offset=timedelta(seconds=2))["resourceSpans"][0]
    first, second, unset = spans["scopeSpans"][0]["spans"]
    assert first["startTimeUnixNano"] == "1000000002000000000"
    assert first["endTimeUnixNano"] == 1_000_000_002_500_000_000
    assert first["traceId"] == "ab"
    assert second["events"][0]["timeUnixNano"] == "1000000002100000000"
    assert unset["startTimeUnixNano"] == "0"
