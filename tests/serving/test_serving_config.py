"""Serving settings: every documented default is the value `serving/__init__.py` states, and each limit's variable is
accepted just at its bound and refused just past it, with the message naming the variable."""

import ast
import re
from pathlib import Path

import pytest

from serving import config as config_module
from serving.config import Settings, SettingsError, available_cpus

# The defaults as `serving/__init__.py` documents them (the operator's reference), read from its docstring.
# (`import serving` in a test finds tests/serving first, so the docstring is read from the file.)
DOC = ast.get_docstring(ast.parse((Path(config_module.__file__).parent / "__init__.py").read_text())) or ""


def documented(variable: str) -> str:
    found = re.search(rf"`{variable}` \(([^),]+)", DOC)
    assert found, f"{variable} is not documented in serving/__init__.py"
    return found.group(1).strip()


@pytest.mark.parametrize(
    ("variable", "field", "value"),
    [
        ("MLPLAT_MAX_ROWS", "max_rows", 10_000),
        ("MLPLAT_MAX_IN_FLIGHT", "max_in_flight", 64),
        ("MLPLAT_MICRO_BATCH_ROWS", "micro_batch_rows", 1024),
        ("MLPLAT_TORCH_THREADS", "torch_threads", 1),
    ],
)
def test_each_integer_limit_defaults_to_its_documented_value(variable: str, field: str, value: int) -> None:
    assert int(documented(variable)) == value
    assert getattr(Settings.from_env({}), field) == value


@pytest.mark.parametrize(
    ("variable", "field", "value"),
    [
        ("MLPLAT_REQUEST_TIMEOUT", "request_timeout", 10.0),
        ("MLPLAT_MODEL_POLL_INTERVAL", "poll_interval", 30.0),
        ("MLPLAT_GRACEFUL_TIMEOUT", "graceful_timeout", 25.0),
        ("MLPLAT_KEEP_ALIVE_TIMEOUT", "keep_alive_timeout", 75),
        ("MLPLAT_MICRO_BATCH_WAIT_MS", "micro_batch_wait_ms", 0.0),
    ],
)
def test_each_time_limit_defaults_to_its_documented_value(variable: str, field: str, value: float) -> None:
    assert float(documented(variable).removesuffix(" s")) == value
    assert getattr(Settings.from_env({}), field) == value


def test_the_body_limit_defaults_to_the_documented_6_mib() -> None:
    assert documented("MLPLAT_MAX_BODY_BYTES") == "6 MiB"
    assert Settings.from_env({}).max_body_bytes == 6 * 1024 * 1024


def test_the_inference_timeout_defaults_to_10_seconds_and_follows_sagemaker_unless_mlplat_sets_it() -> None:
    assert Settings.from_env({}).inference_timeout == 10.0
    assert Settings.from_env({"SAGEMAKER_MODEL_SERVER_TIMEOUT": "7"}).inference_timeout == 7.0
    both = {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "7", "MLPLAT_INFERENCE_TIMEOUT": "3"}
    assert Settings.from_env(both).inference_timeout == 3.0


def test_the_other_documented_defaults_hold_when_the_environment_is_empty() -> None:
    settings = Settings.from_env({})
    assert (settings.model_uri, settings.host, settings.port) == ("/opt/ml/model", "0.0.0.0", 8080)
    assert (settings.inline_inference, settings.micro_batch, settings.access_log) == (True, True, False)
    assert (settings.log_level, settings.model_name, settings.model_version) == ("info", None, None)
    assert (settings.model_cache, settings.worker_state_dir) == (None, None)
    assert settings.workers == available_cpus()


def test_every_variable_is_read_into_its_own_field() -> None:
    settings = Settings.from_env(
        {
            "MLPLAT_MODEL_URI": "models:/m@prod",
            "MLPLAT_HOST": "127.0.0.1",
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "MLPLAT_MODEL_NAME": "m",
            "MLPLAT_MODEL_VERSION": "4",
            "MLPLAT_MODEL_CACHE": "/cache",
            "MLPLAT_MAX_BODY_BYTES": "100",
            "MLPLAT_MAX_ROWS": "5",
            "MLPLAT_MAX_IN_FLIGHT": "6",
            "MLPLAT_REQUEST_TIMEOUT": "1.5",
            "MLPLAT_MODEL_POLL_INTERVAL": "0",
            "MLPLAT_TORCH_THREADS": "2",
            "MLPLAT_INLINE_INFERENCE": "off",
            "MLPLAT_MICRO_BATCH": "no",
            "MLPLAT_MICRO_BATCH_ROWS": "7",
            "MLPLAT_MICRO_BATCH_WAIT_MS": "2.5",
            "MLPLAT_GRACEFUL_TIMEOUT": "8",
            "MLPLAT_KEEP_ALIVE_TIMEOUT": "9",
            "MLPLAT_LOG_LEVEL": "DEBUG",
            "MLPLAT_ACCESS_LOG": "yes",
            "MLPLAT_WORKER_STATE_DIR": "/state",
        }
    )
    assert settings == Settings(
        model_uri="models:/m@prod",
        host="127.0.0.1",
        port=9000,
        workers=3,
        model_name="m",
        model_version="4",
        model_cache=Path("/cache"),
        max_body_bytes=100,
        max_rows=5,
        max_in_flight=6,
        request_timeout=1.5,
        inference_timeout=10.0,
        poll_interval=0.0,
        torch_threads=2,
        inline_inference=False,
        micro_batch=False,
        micro_batch_rows=7,
        micro_batch_wait_ms=2.5,
        graceful_timeout=8.0,
        keep_alive_timeout=9,
        log_level="debug",
        access_log=True,
        worker_state_dir=Path("/state"),
    )


def test_a_blank_variable_keeps_the_default() -> None:
    assert Settings.from_env({"MLPLAT_MAX_ROWS": "  "}).max_rows == 10_000


@pytest.mark.parametrize(
    "variable",
    [
        "MLPLAT_MAX_BODY_BYTES",
        "MLPLAT_MAX_ROWS",
        "MLPLAT_MAX_IN_FLIGHT",
        "MLPLAT_TORCH_THREADS",
        "MLPLAT_MICRO_BATCH_ROWS",
        "MLPLAT_KEEP_ALIVE_TIMEOUT",
        "SAGEMAKER_MODEL_SERVER_WORKERS",
    ],
)
def test_a_positive_integer_limit_accepts_1_and_refuses_0(variable: str) -> None:
    Settings.from_env({variable: "1"})
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: "0"})
    assert str(raised.value) == f"{variable}='0': must be a positive integer"


@pytest.mark.parametrize(("raw", "port"), [("1", 1), ("65535", 65535)])
def test_the_port_accepts_1_and_65535(raw: str, port: int) -> None:
    assert Settings.from_env({"SAGEMAKER_BIND_TO_PORT": raw}).port == port


@pytest.mark.parametrize("raw", ["0", "65536"])
def test_the_port_refuses_0_and_65536(raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"SAGEMAKER_BIND_TO_PORT": raw})
    assert str(raised.value) == f"SAGEMAKER_BIND_TO_PORT={raw!r}: must be a TCP port (1-65535)"


@pytest.mark.parametrize("variable", ["MLPLAT_REQUEST_TIMEOUT", "MLPLAT_INFERENCE_TIMEOUT", "MLPLAT_GRACEFUL_TIMEOUT"])
def test_a_timeout_accepts_just_over_zero_and_refuses_zero(variable: str) -> None:
    Settings.from_env({variable: "0.001"})
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: "0"})
    assert str(raised.value) == f"{variable}='0': must be a positive number"


@pytest.mark.parametrize("variable", ["MLPLAT_MODEL_POLL_INTERVAL", "MLPLAT_MICRO_BATCH_WAIT_MS"])
def test_a_wait_accepts_zero_and_refuses_just_under_it(variable: str) -> None:
    Settings.from_env({variable: "0"})
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: "-0.001"})
    assert str(raised.value) == f"{variable}='-0.001': must be zero or a positive number"


@pytest.mark.parametrize(
    ("raw", "value"),
    [(word, True) for word in ("1", "TRUE", "yes", "on")] + [(word, False) for word in ("0", "False", "no", "OFF")],
)
def test_a_flag_reads_each_spelling(raw: str, value: bool) -> None:
    assert Settings.from_env({"MLPLAT_ACCESS_LOG": raw}).access_log is value


@pytest.mark.parametrize("level", ["critical", "error", "warning", "info", "debug"])
def test_each_log_level_is_accepted(level: str) -> None:
    assert Settings.from_env({"MLPLAT_LOG_LEVEL": level.upper()}).log_level == level


def test_an_unknown_log_level_is_refused_naming_the_levels() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MLPLAT_LOG_LEVEL": "trace"})
    assert str(raised.value) == "MLPLAT_LOG_LEVEL='trace': must be one of critical, error, warning, info, debug"


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_cgroup_v2_quota_caps_the_cpus_rounding_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    assert available_cpus(_cgroup(tmp_path, {"cpu.max": "150000 100000\n"})) == 2


def test_a_cgroup_v2_max_quota_leaves_the_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    assert available_cpus(_cgroup(tmp_path, {"cpu.max": "max 100000\n"})) == 8


def test_a_cgroup_v1_quota_caps_the_cpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    root = _cgroup(tmp_path, {"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert available_cpus(root) == 3


def test_a_cgroup_v1_quota_of_minus_1_means_no_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    root = _cgroup(tmp_path, {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert available_cpus(root) == 8


def test_a_tiny_quota_still_leaves_one_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    assert available_cpus(_cgroup(tmp_path, {"cpu.max": "1000 100000\n"})) == 1


def test_no_cgroup_files_leave_the_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(5)))
    assert available_cpus(tmp_path) == 5


def test_a_cgroup_v2_max_quota_is_final_even_beside_cgroup_v1_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    files = {"cpu.max": "max 100000\n", "cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}
    assert available_cpus(_cgroup(tmp_path, files)) == 8


@pytest.mark.parametrize(("quota", "period"), [("0", "100000"), ("100000", "0")])
def test_a_cgroup_v1_quota_or_period_of_zero_means_no_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quota: str, period: str
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    root = _cgroup(tmp_path, {"cpu/cpu.cfs_quota_us": quota, "cpu/cpu.cfs_period_us": period})
    assert available_cpus(root) == 8


def test_the_smallest_cgroup_v1_quota_and_period_count_as_a_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    assert available_cpus(_cgroup(tmp_path, {"cpu/cpu.cfs_quota_us": "1", "cpu/cpu.cfs_period_us": "1"})) == 1


@pytest.mark.parametrize(("count", "expected"), [(4, 4), (None, 1)])
def test_without_an_affinity_the_cpu_count_is_used_and_1_when_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int | None, expected: int
) -> None:
    monkeypatch.delattr("os.sched_getaffinity")
    monkeypatch.setattr("os.cpu_count", lambda: count)
    assert available_cpus(tmp_path) == expected
