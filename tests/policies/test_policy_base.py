"""The readers every check shares: one case per way a property can be spelled, missing or unknown at preview."""

from typing import Any

import pytest
from policy_support import UNKNOWN, resource
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policies import base

PROPS = unknown_checking_proxy({"a": {"b": [10, {"c": "x"}]}, "s": "text", "u": UNKNOWN, "n": None})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(("a", "b", 0), 10, id="a list index"),
        pytest.param(("a", "b", 1, "c"), "x", id="a key under an index"),
        pytest.param(("a", "b", 2), None, id="an index past the end"),
        pytest.param(("a", 0), None, id="an index into a mapping"),
        pytest.param(("s", 0), None, id="an index into a string"),
        pytest.param(("s", "c"), None, id="a key into a string"),
        pytest.param(("a", "z"), None, id="a missing key"),
    ],
)
def test_get_follows_each_kind_of_step(path: tuple[str | int, ...], value: Any) -> None:
    assert base.get(PROPS, *path) == value


def test_get_raises_on_an_unknown_value_and_peek_answers_none() -> None:
    with pytest.raises(UnknownValueError):
        base.get(PROPS, "u")
    assert base.peek(PROPS, "u") is None
    assert base.peek(PROPS, "a", "b", 0) == 10


def test_is_unknown_tells_an_unknown_value_from_a_missing_one() -> None:
    assert base.is_unknown(PROPS, "u") is True
    assert base.is_unknown(PROPS, "missing") is False
    assert base.is_unknown(PROPS, "s") is False


@pytest.mark.parametrize(
    ("props", "value"),
    [
        pytest.param({"f": True}, True, id="true"),
        pytest.param({"f": "True "}, True, id="the string True with a space"),
        pytest.param({"f": "yes"}, False, id="another string"),
        pytest.param({"f": 1}, False, id="the number 1"),
        pytest.param({}, False, id="missing"),
        pytest.param({"f": UNKNOWN}, None, id="unknown at preview"),
    ],
)
def test_is_true_reads_each_spelling_of_a_flag(props: dict[str, Any], value: bool | None) -> None:
    assert base.is_true(unknown_checking_proxy(props), "f") is value


@pytest.mark.parametrize(
    ("props", "value"),
    [
        pytest.param({"k": "v"}, True, id="a string"),
        pytest.param({"k": 0}, True, id="zero"),
        pytest.param({"k": False}, True, id="false"),
        pytest.param({"k": ""}, False, id="the empty string"),
        pytest.param({"k": []}, False, id="an empty list"),
        pytest.param({"k": None}, False, id="null"),
        pytest.param({}, False, id="missing"),
        pytest.param({"k": UNKNOWN}, True, id="unknown at preview counts as set"),
    ],
)
def test_is_set_for_each_kind_of_value(props: dict[str, Any], value: bool) -> None:
    assert base.is_set(unknown_checking_proxy(props), "k") is value


def test_has_key_does_not_read_the_value() -> None:
    assert base.has_key(PROPS, "u") is True
    assert base.has_key(PROPS, "missing") is False


@pytest.mark.parametrize(
    ("value", "result"),
    [
        pytest.param(None, [], id="None"),
        pytest.param("x", ["x"], id="a string is one item"),
        pytest.param(b"x", [b"x"], id="bytes are one item"),
        pytest.param(("a", "b"), ["a", "b"], id="a tuple"),
        pytest.param(3, [3], id="a number"),
    ],
)
def test_as_list_for_each_shape(value: Any, result: list[Any]) -> None:
    assert base.as_list(value) == result


@pytest.mark.parametrize(
    ("value", "number"),
    [
        pytest.param(3, 3.0, id="an int"),
        pytest.param(2.5, 2.5, id="a float"),
        pytest.param("7", 7.0, id="a numeric string"),
        pytest.param("seven", None, id="a word"),
        pytest.param(True, None, id="a boolean is no number"),
        pytest.param(None, None, id="None"),
        pytest.param([1], None, id="a list"),
    ],
)
def test_as_number_for_each_shape(value: Any, number: float | None) -> None:
    assert base.as_number(value) == number


@pytest.mark.parametrize(
    ("value", "doc"),
    [
        pytest.param('{"Statement": []}', {"Statement": []}, id="a JSON string"),
        pytest.param({"Statement": []}, {"Statement": []}, id="a mapping"),
        pytest.param("{not json", None, id="invalid JSON"),
        pytest.param("[1, 2]", None, id="a JSON array"),
        pytest.param("", None, id="the empty string"),
        pytest.param(None, None, id="None"),
        pytest.param(["Statement"], None, id="a list"),
    ],
)
def test_document_for_each_shape(value: Any, doc: Any) -> None:
    assert base.document(value) == doc


def test_statements_takes_one_statement_or_a_list_and_drops_what_is_no_statement() -> None:
    one = {"Effect": "Allow"}
    assert base.statements({"Statement": one}) == [one]
    assert base.statements({"Statement": [one, "x", 3]}) == [one]
    assert base.statements("not json") == []


@pytest.mark.parametrize(
    ("statement", "label"),
    [
        pytest.param({"Sid": "Read"}, "statement 'Read'", id="a Sid"),
        pytest.param({"Sid": ""}, "statement 3", id="an empty Sid"),
        pytest.param({"Sid": 5}, "statement 3", id="a Sid that is no string"),
        pytest.param({}, "statement 3", id="no Sid"),
    ],
)
def test_statement_label_names_a_statement_by_sid_or_1_based_index(statement: dict[str, Any], label: str) -> None:
    assert base.statement_label(2, statement) == label


def test_actions_reads_action_or_not_action_as_strings() -> None:
    statement = {"Action": "s3:GetObject", "NotAction": ["iam:*", 7]}
    assert base.actions(statement) == ["s3:GetObject"]
    assert base.actions(statement, "NotAction") == ["iam:*", "7"]


@pytest.mark.parametrize(
    ("principal", "result"),
    [
        pytest.param("*", {"*": ["*"]}, id="star"),
        pytest.param("arn:aws:iam::111122223333:root", {"AWS": ["arn:aws:iam::111122223333:root"]}, id="an ARN"),
        pytest.param({"Service": "s.amazonaws.com"}, {"Service": ["s.amazonaws.com"]}, id="a mapping"),
        pytest.param({"AWS": ["a", "b"]}, {"AWS": ["a", "b"]}, id="a mapping to a list"),
        pytest.param(["*"], {}, id="a list"),
        pytest.param(None, {}, id="none"),
    ],
)
def test_principals_for_each_shape(principal: Any, result: dict[str, list[str]]) -> None:
    statement = {} if principal is None else {"Principal": principal}
    assert base.principals(statement) == result


@pytest.mark.parametrize(
    ("effect", "allow"), [("Allow", True), ("Deny", False), (None, False), ("allow", False)], ids=str
)
def test_is_allow_only_for_an_explicit_allow(effect: str | None, allow: bool) -> None:
    assert base.is_allow({} if effect is None else {"Effect": effect}) is allow


BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PARENT = "urn:pulumi:test::mlplat::mlplat:platform:MlPlatform$mlplat:artifacts:ArtifactStore::art"


def test_of_type_keeps_plan_order() -> None:
    a, b, c = resource(BUCKET, "a", {}), resource(PAB, "b", {}), resource(BUCKET, "c", {})
    assert list(base.of_type([a, b, c], BUCKET)) == [a, c]
    assert list(base.of_type([a, b, c], PAB, BUCKET)) == [a, b, c]


@pytest.mark.parametrize(
    ("bucket", "block", "refers"),
    [
        pytest.param({"id": "b-1"}, {"props": {"bucket": "b-1"}}, True, id="by ID"),
        pytest.param({"props": {"bucket": "phys"}}, {"props": {"bucket": "phys"}}, True, id="by physical bucket name"),
        pytest.param({"props": {"name": "phys"}}, {"props": {"bucket": "phys"}}, True, id="by physical name"),
        pytest.param({}, {"props": {"bucket": "art-bucket"}}, True, id="by logical name"),
        pytest.param({}, {"props": {"bucket": "other"}, "parent": None}, False, id="another name, no parent"),
        pytest.param({}, {"props": {"bucket": ""}}, True, id="an empty value falls back to the shared parent"),
        pytest.param({}, {"props": {"bucket": "x"}, "parent": "other-parent"}, False, id="another parent"),
        pytest.param(
            {},
            {"props": {"bucket": UNKNOWN}, "dependencies": {"bucket": ["urn:other"]}},
            False,
            id="engine dependencies on another resource",
        ),
    ],
)
def test_refers_to_each_way_a_companion_names_its_bucket(
    bucket: dict[str, Any], block: dict[str, Any], refers: bool
) -> None:
    target = resource(BUCKET, "art-bucket", bucket.get("props", {}), parent=PARENT, id=bucket.get("id"))
    companion = resource(
        PAB,
        "art-pab",
        block["props"],
        parent=block.get("parent", PARENT),
        dependencies=block.get("dependencies"),
    )
    assert base.refers_to(companion, "bucket", target, [target, companion]) is refers


def test_refers_to_falls_back_to_the_parent_only_when_it_holds_one_bucket() -> None:
    first = resource(BUCKET, "first", {}, parent=PARENT)
    second = resource(BUCKET, "second", {}, parent=PARENT)
    block = resource(PAB, "pab", {"bucket": UNKNOWN}, parent=PARENT)
    assert base.refers_to(block, "bucket", first, [first, block]) is True
    assert base.refers_to(block, "bucket", first, [first, second, block]) is False


def test_refers_to_a_value_naming_a_sibling_is_not_this_bucket() -> None:
    mine = resource(BUCKET, "mine", {}, parent=PARENT)
    other = resource(BUCKET, "other", {}, parent="urn:elsewhere")
    block = resource(PAB, "pab", {"bucket": "other"}, parent=PARENT)
    assert base.refers_to(block, "bucket", mine, [mine, other, block]) is False


def test_companions_lists_the_resources_of_the_types_that_refer_to_the_target() -> None:
    target = resource(BUCKET, "art-bucket", {}, parent=PARENT, id="b-1")
    mine = resource(PAB, "mine", {"bucket": "b-1"}, parent=PARENT)
    theirs = resource(PAB, "theirs", {"bucket": "b-2"}, parent=None)
    assert base.companions([target, mine, theirs], target, "bucket", PAB) == [mine]
