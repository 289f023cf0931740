"""`mlplat release` against moto's S3 and a real MLflow registry: pack, upload, verify, tag, pin; and promotion."""

import hashlib
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cloud_support import FakeStack, Registry, write_model_dir
from typer.testing import CliRunner

from components.config import load_stack_file
from mlplat.cli import app
from mlplat.release import artifact_key, pack_model_dir

runner = CliRunner()


def release(stack: FakeStack, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["release", "--stack", stack.name, "--model", stack.model, "--outputs", str(stack.outputs_file),
         "--stack-file", str(stack.stack_file), *args],
    )  # fmt: skip
    return result.exit_code, result.output


def object_bytes(stack: FakeStack, version: int) -> bytes:
    body = stack.s3().get_object(Bucket=stack.bucket, Key=artifact_key(stack.model, version))["Body"]
    return bytes(body.read())


def keys(stack: FakeStack) -> list[str]:
    listed = stack.s3().list_objects_v2(Bucket=stack.bucket, Prefix="models/")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_release_uploads_the_champion_as_model_tar_gz_with_its_sha256(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("dev")
    registry.register(stack.model, write_model_dir(model_dir.parent / "v1", b"old"), alias=None)
    version = registry.register(stack.model, model_dir)

    code, output = release(stack)

    assert code == 0, output
    data = object_bytes(stack, version)
    sha256 = hashlib.sha256(data).hexdigest()
    head = stack.s3().head_object(Bucket=stack.bucket, Key=f"models/{stack.model}/2/model.tar.gz")
    assert version == 2
    assert head["Metadata"]["sha256"] == sha256
    assert head["Metadata"]["mlflow-version"] == "2"
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == stack.outputs["kmsKeyArn"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["MLmodel", "artifacts", "artifacts/mlplat_model.json", "artifacts/model.pt2"]
        member = tar.extractfile("artifacts/model.pt2")
        assert member is not None and member.read() == b"weights-v1"
    assert f"released {stack.model} version 2 to dev" in output


def test_release_tags_the_registry_version_with_the_checksum_and_location(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("dev")
    version = registry.register(stack.model, model_dir)

    code, output = release(stack)

    assert code == 0, output
    tags = registry.client().get_model_version(stack.model, str(version)).tags
    assert tags["mlplat.sha256"] == hashlib.sha256(object_bytes(stack, version)).hexdigest()
    assert tags["mlplat.artifact.dev"] == f"s3://{stack.bucket}/models/{stack.model}/{version}/model.tar.gz"


def test_release_pins_the_endpoint_in_the_stack_file_and_keeps_everything_else(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("prod")
    registry.register(stack.model, write_model_dir(model_dir.parent / "v1", b"old"), alias=None)
    registry.register(stack.model, model_dir)
    before = stack.stack_file.read_text()

    code, output = release(stack)

    assert code == 0, output
    sha256 = hashlib.sha256(object_bytes(stack, 2)).hexdigest()
    after = stack.stack_file.read_text()
    expected = before.replace(
        f"      model: {stack.model}\n      modelVersion: 1\n",
        f'      model: {stack.model}\n      modelVersion: 2\n      modelSha256: "{sha256}"\n',
    )
    assert after == expected
    assert after.startswith("# prod: three AZs")  # comments stay
    endpoint = load_stack_file(stack.stack_file).endpoints[0]
    assert (endpoint.model_version, endpoint.model_sha256) == (2, sha256)


def test_release_of_an_explicit_version_ignores_the_alias(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("dev")
    first = registry.register(stack.model, write_model_dir(model_dir.parent / "v1", b"first"), alias=None)
    registry.register(stack.model, model_dir)

    code, output = release(stack, "--version", str(first))

    assert code == 0, output
    assert keys(stack) == [f"models/{stack.model}/1/model.tar.gz"]
    assert load_stack_file(stack.stack_file).endpoints[0].model_version == 1


def test_releasing_the_same_version_again_is_idempotent(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("dev")
    registry.register(stack.model, model_dir)
    assert release(stack)[0] == 0
    pinned = stack.stack_file.read_text()

    code, output = release(stack)

    assert code == 0, output
    assert "(already in the bucket)" in output
    assert stack.stack_file.read_text() == pinned


def test_release_prints_json_when_asked(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    import json

    stack = make_stack("dev")
    registry.register(stack.model, model_dir)

    code, output = release(stack, "--json")

    assert code == 0, output
    report = json.loads(output)
    assert report["version"] == 1
    assert report["endpoints"] == ["abalone-dev"]
    assert report["uploaded"] is True


def test_an_unknown_model_fails_and_releases_nothing(make_stack: Callable[..., FakeStack], registry: Registry) -> None:
    stack = make_stack("dev")
    before = stack.stack_file.read_text()

    code, output = release(stack)

    assert code == 1
    assert output == f"error: model {stack.model!r} is not in the registry at {registry.tracking_uri}\n"
    assert keys(stack) == []
    assert stack.stack_file.read_text() == before


def test_a_missing_alias_fails_with_one_clear_message(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("dev")
    registry.register(stack.model, model_dir, alias=None)

    code, output = release(stack, "--alias", "champion")

    assert code == 1
    where = f"the registry at {registry.tracking_uri}"
    assert output == f"error: model {stack.model!r} has no alias 'champion' in {where}\n"
    assert keys(stack) == []


def test_a_missing_version_fails_with_one_clear_message(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("dev")
    registry.register(stack.model, model_dir)

    code, output = release(stack, "--version", "7")

    assert code == 1
    assert output == f"error: model {stack.model!r} has no version 7 in the registry at {registry.tracking_uri}\n"


def test_alias_and_version_together_are_refused(make_stack: Callable[..., FakeStack], registry: Registry) -> None:
    stack = make_stack("dev")

    code, output = release(stack, "--alias", "champion", "--version", "1")

    assert (code, output) == (1, "error: pass --alias or --version, not both\n")


def test_a_model_no_endpoint_serves_is_refused_before_any_upload(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("dev")
    other = f"{stack.model}-other"
    registry.register(other, model_dir)

    result = runner.invoke(
        app,
        ["release", "--stack", "dev", "--model", other, "--outputs", str(stack.outputs_file),
         "--stack-file", str(stack.stack_file)],
    )  # fmt: skip

    assert result.exit_code == 1
    assert result.output == (
        f"error: {stack.stack_file}: no endpoint serves model {other!r} (no mlplat:endpoints[*].model is {other!r})\n"
    )
    assert keys(stack) == []


def test_a_bucket_holding_a_different_artifact_for_the_version_is_a_checksum_mismatch(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    stack = make_stack("dev")
    version = registry.register(stack.model, model_dir)
    key = artifact_key(stack.model, version)
    stack.s3().put_object(Bucket=stack.bucket, Key=key, Body=b"not it", Metadata={"sha256": "0" * 64})
    before = stack.stack_file.read_text()

    code, output = release(stack)

    assert code == 1
    assert output.startswith(f"error: checksum mismatch: s3://{stack.bucket}/{key} already holds a different artifact")
    assert output.endswith("; nothing was released\n")
    assert stack.stack_file.read_text() == before
    assert "mlplat.sha256" not in registry.client().get_model_version(stack.model, str(version)).tags


def test_an_unknown_stack_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["release", "--stack", "qa", "--model", "abalone"])

    assert result.exit_code == 2
    assert result.output == (
        "error: unknown stack 'qa': stacks/Pulumi.qa.yaml does not exist "
        "(known: dev, prod, staging; or pass --stack-file PATH)\n"
    )


def test_missing_outputs_are_named(make_stack: Callable[..., FakeStack], tmp_path: Path) -> None:
    stack = make_stack("dev")
    stack.outputs_file.write_text('{"environment": "dev", "region": "us-east-1"}')

    code, output = release(stack)

    assert code == 2
    assert output.startswith(f"error: stack 'dev' outputs ({stack.outputs_file}) are missing vpcId, privateSubnetIds,")


def test_promote_copies_the_exact_staging_artifact_to_the_prod_bucket(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    staging, prod = make_stack("staging"), make_stack("prod")
    version = registry.register(staging.model, model_dir)
    assert release(staging)[0] == 0

    code, output = promote(prod, staging)

    assert code == 0, output
    assert object_bytes(prod, version) == object_bytes(staging, version)
    sha256 = hashlib.sha256(object_bytes(prod, version)).hexdigest()
    head = prod.s3().head_object(Bucket=prod.bucket, Key=artifact_key(prod.model, version))
    assert head["Metadata"]["sha256"] == sha256
    assert head["Metadata"]["promoted-from"] == "staging"
    assert head["SSEKMSKeyId"] == prod.outputs["kmsKeyArn"]
    endpoint = load_stack_file(prod.stack_file).endpoints[0]
    assert (endpoint.model_version, endpoint.model_sha256) == (version, sha256)
    assert f"released {prod.model} version {version} to prod (promoted from staging)" in output


def promote(prod: FakeStack, staging: FakeStack) -> tuple[int, str]:
    return release(
        prod, "--promote-from", "staging", "--from-outputs", str(staging.outputs_file),
        "--from-stack-file", str(staging.stack_file),
    )  # fmt: skip


def test_promote_refuses_a_tampered_staging_artifact(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    staging, prod = make_stack("staging"), make_stack("prod")
    version = registry.register(staging.model, model_dir)
    assert release(staging)[0] == 0
    key = artifact_key(staging.model, version)
    original = staging.s3().head_object(Bucket=staging.bucket, Key=key)["Metadata"]
    staging.s3().put_object(Bucket=staging.bucket, Key=key, Body=b"tampered", Metadata=original)
    before = prod.stack_file.read_text()

    code, output = promote(prod, staging)

    actual = hashlib.sha256(b"tampered").hexdigest()
    assert code == 1
    assert output == (
        f"error: checksum mismatch for s3://{staging.bucket}/{key}: expected {original['sha256']}, got {actual}; "
        "nothing was released\n"
    )
    assert keys(prod) == []
    assert prod.stack_file.read_text() == before


def test_promote_needs_a_released_artifact_in_the_source_stack(
    make_stack: Callable[..., FakeStack], registry: Registry
) -> None:
    staging, prod = make_stack("staging"), make_stack("prod")

    code, output = promote(prod, staging)

    assert code == 1
    assert output == (
        f"error: {staging.stack_file} pins no released artifact for model {staging.model!r} (modelSha256 is unset); "
        f"run `mlplat release --stack staging --model {staging.model}` first\n"
    )


def test_promote_with_a_version_is_refused(make_stack: Callable[..., FakeStack]) -> None:
    prod = make_stack("prod")

    code, output = release(prod, "--promote-from", "staging", "--version", "3")

    assert (code, output) == (
        1,
        "error: --promote-from copies the version the other stack pins; drop --alias and --version\n",
    )


def test_packing_the_same_model_twice_gives_the_same_bytes(model_dir: Path, tmp_path: Path) -> None:
    first = pack_model_dir(model_dir, tmp_path / "a.tar.gz")
    (model_dir / "MLmodel").touch()  # a newer mtime must not change the archive

    second = pack_model_dir(model_dir, tmp_path / "b.tar.gz")

    assert first == second
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_packing_a_directory_without_mlmodel_is_refused(tmp_path: Path) -> None:
    from mlplat.release import ReleaseError

    with pytest.raises(ReleaseError) as caught:
        pack_model_dir(tmp_path, tmp_path / "x.tar.gz")

    assert str(caught.value) == f"{tmp_path} is not an MLflow model directory (no MLmodel file at its root)"


def test_the_pinned_stack_gives_the_endpoint_a_new_model_from_the_released_archive(
    make_stack: Callable[..., FakeStack], registry: Registry, model_dir: Path
) -> None:
    from mlplat import synth

    stack = make_stack("dev")
    registry.register(stack.model, write_model_dir(model_dir.parent / "v1", b"old"), alias=None)
    version = registry.register(stack.model, model_dir)
    assert release(stack)[0] == 0
    sha256 = hashlib.sha256(object_bytes(stack, version)).hexdigest()

    record = synth.synthesize(stack.stack_file, "dev")

    container = record.of_type("aws:sagemaker/model:Model")[0].inputs["primaryContainer"]
    bucket = record.outputs["bucketName"]
    assert container["modelDataUrl"] == f"s3://{bucket}/{artifact_key(stack.model, version)}"
    assert container["environment"]["MLPLAT_MODEL_VERSION"] == str(version)
    assert container["environment"]["MLPLAT_MODEL_SHA256"] == sha256


def test_a_sagemaker_tracking_arn_without_its_plugin_is_refused(
    make_stack: Callable[..., FakeStack], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    stack = make_stack("dev")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sagemaker_mlflow" else real(name)
    )

    code, output = release(stack)

    assert code == 2  # a missing extra is bad input (the environment), like missing credentials
    assert output == (
        f"error: the tracking server {stack.outputs['trackingServerArn']} is a SageMaker MLflow ARN: "
        "pip install 'mlplat[sagemaker]' (the sagemaker-mlflow plugin signs its requests) or pass --tracking-uri URL\n"
    )
