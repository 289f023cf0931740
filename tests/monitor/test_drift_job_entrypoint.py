"""The drift job's own entrypoint (`python -m mlplat.monitor`, argparse) takes the flags the component gives it."""

from pathlib import Path

from components.drift import monitor_arguments
from mlplat.monitor.__main__ import _parser


def test_the_job_parses_every_flag_the_scheduled_component_passes() -> None:
    flags = monitor_arguments(
        "s3://bucket/data-capture/abalone/", "abalone", "6h", 0.25, 0.05, "abalone", 4, "/opt/ml/processing/output"
    )
    parsed = _parser().parse_args([str(f) for f in flags])
    assert (
        parsed.capture,
        parsed.endpoint,
        parsed.since,
        parsed.psi_threshold,
        parsed.p_value,
        parsed.model,
        parsed.model_version,
        parsed.output_dir,
        parsed.profile,
        parsed.log,
    ) == (
        "s3://bucket/data-capture/abalone/",
        "abalone",
        "6h",
        0.25,
        0.05,
        "abalone",
        "4",
        Path("/opt/ml/processing/output"),
        None,
        True,
    )


def test_a_staged_profile_turns_mlflow_logging_off() -> None:
    flags = monitor_arguments("/in", "abalone", "24h", 0.2, 0.01, "abalone", 1, "/out", "/in/profile.json")
    parsed = _parser().parse_args([str(f) for f in flags])
    assert (parsed.profile, parsed.log) == (Path("/in/profile.json"), False)
