"""Pinning a released model in a stack file: only `modelVersion` and `modelSha256` change, comments and order stay."""

from pathlib import Path

import pytest

from mlplat.release import ReleaseError, pin_text, write_atomic

SHA = "ab" * 32
STACK = """\
# a stack file with comments
config:
  aws:region: us-east-1
  mlplat:endpoints:
    # the public one
    - name: fraud-a
      model: fraud
      instanceType: ml.m5.large  # small
    - name: churn
      model: churn
      modelVersion: 3  # pinned by hand
      rollout:
        canaryPercent: 10
    - model: fraud
      name: fraud-b
      modelVersion: 1
      modelSha256: "{old}"
  mlplat:budget:
    limitUsd: 10
""".replace("{old}", "cd" * 32)


def test_missing_keys_are_inserted_after_the_model_key() -> None:
    text, _ = pin_text(STACK, "fraud", 4, SHA, "s.yaml")

    assert text.splitlines()[5:10] == [
        "    - name: fraud-a",
        "      model: fraud",
        "      modelVersion: 4",
        f'      modelSha256: "{SHA}"',
        "      instanceType: ml.m5.large  # small",
    ]


def test_existing_keys_are_replaced_in_place_even_when_the_item_starts_with_model() -> None:
    text, endpoints = pin_text(STACK, "fraud", 4, SHA, "s.yaml")

    assert endpoints == ["fraud-a", "fraud-b"]
    assert text.splitlines()[-6:-2] == [
        "    - model: fraud",
        "      name: fraud-b",
        "      modelVersion: 4",
        f'      modelSha256: "{SHA}"',
    ]


def test_endpoints_of_other_models_and_comments_are_untouched() -> None:
    text, _ = pin_text(STACK, "churn", 5, SHA, "s.yaml")

    assert text == STACK.replace(
        "      modelVersion: 3  # pinned by hand\n",
        f'      modelVersion: 5  # pinned by hand\n      modelSha256: "{SHA}"\n',
    )


def test_a_flow_style_endpoint_list_is_refused_rather_than_rewritten() -> None:
    flow = "config:\n  mlplat:endpoints: [{name: a, model: fraud}]\n"

    with pytest.raises(ReleaseError) as caught:
        pin_text(flow, "fraud", 2, SHA, "s.yaml")

    assert str(caught.value) == "s.yaml: mlplat:endpoints must be a block list (one `- name: ...` item per endpoint)"


def test_an_atomic_write_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("old\n")
    path.chmod(0o640)

    write_atomic(path, "new\n")

    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["Pulumi.dev.yaml"]
