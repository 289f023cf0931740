"""Too few captured rows give "not enough data" and exit 0, never a verdict that flips on two or three rows."""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from monitor_support import abalone, build_profile, frame_records, shifted, write_capture
from typer.testing import CliRunner

from mlplat.monitor import drift
from mlplat.monitor.drift import Thresholds
from mlplat.monitor.run import Target
from mlplat.monitor_cmd import cli, retrain

ENDPOINT = "abalone-small"


@pytest.fixture(scope="module")
def app():  # type: ignore[no-untyped-def]
    import typer

    root = typer.Typer()
    root.callback()(lambda: None)
    cli.register(root)
    return root


def _capture(tmp_path: Path, rows: int) -> tuple[str, Path]:
    now = datetime.now(UTC)
    frame = shifted(abalone().sample(n=rows, random_state=3), new_category_every=None)
    write_capture(tmp_path, ENDPOINT, frame_records(frame, now, batch=1, model_name="abalone"), now)
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(build_profile(abalone())))
    return str(tmp_path / "data-capture" / ENDPOINT), profile


def test_three_shifted_rows_are_not_enough_data_and_exit_0(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    capture, profile = _capture(tmp_path, 3)
    result = CliRunner().invoke(
        app, ["monitor", "--capture", capture, "--profile", str(profile), "--no-log", "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert (
        "not enough data: 3 captured rows, fewer than the 50 needed to judge drift "
        "(--min-records, mlplat:monitoring.minRecords); no verdict"
    ) in lines
    assert "records: 3 capture records in the window" in lines
    assert "DRIFT" not in result.stdout
    assert list(tmp_path.glob("*.png")) == []


def test_the_json_report_says_there_was_not_enough_data(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    capture, profile = _capture(tmp_path, 3)
    result = CliRunner().invoke(
        app,
        ["monitor", "--capture", capture, "--profile", str(profile), "--no-log", "--json", "--output-dir",
         str(tmp_path)],
    )  # fmt: skip
    document = json.loads(result.stdout)
    assert (result.exit_code, document["drifted"], document["enough_data"], document["records"]) == (0, False, False, 3)


def test_min_records_lowers_the_bar_for_one_run(app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    capture, profile = _capture(tmp_path, 30)
    result = CliRunner().invoke(
        app,
        ["monitor", "--capture", capture, "--profile", str(profile), "--no-log", "--min-records", "20",
         "--output-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 3, result.output


def test_the_report_gives_no_verdict_under_the_minimum() -> None:
    profile = drift.Profile.from_dict(build_profile(abalone()))
    sample = shifted(abalone().sample(n=3, random_state=1), new_category_every=None)
    columns = {name: sample[name].tolist() for name in profile.feature_names}
    report = drift.compare(profile, columns, None, Thresholds(min_records=50))
    assert (report.enough_data, report.drifted, report.drifted_features) == (False, False, [])


def test_the_retraining_run_keeps_its_temporary_files_under_the_home_and_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlplat.local import launcher

    seen = tmp_path / "seen-tmpdir"
    # A stand-in for the training entrypoint: it writes into its TMPDIR, says where that was, and prints a result.
    script = (
        "import os, pathlib, sys; tmp = os.environ['TMPDIR']; "
        "(pathlib.Path(tmp) / 'model-copy').write_text('weights'); "
        "pathlib.Path(sys.argv[1]).write_text(tmp); "
        'print(\'MLPLAT_RESULT {\\"version\\": 2, \\"run_id\\": \\"r\\"}\')'
    )
    monkeypatch.setattr(retrain, "newest_dataset_version", lambda client, bucket, model: "v1")
    monkeypatch.setattr(launcher.LocalTrainingJob, "argv", lambda job: [sys.executable, "-c", script, str(seen)])
    home = tmp_path / "home"
    target = Target(ENDPOINT, "s3://b/data-capture/x/", "http://127.0.0.1:9", Thresholds(), "local", bucket="b")
    log = home / "monitor" / ENDPOINT / "run" / "retrain.log"
    retrain.retrain_local(target, "abalone", log)
    assert Path(seen.read_text()).is_relative_to(home)
    assert not Path(seen.read_text()).exists()
