"""Tags set once: resource transforms that stamp the stack tags and `mlplat:component` on every taggable AWS resource.

A transform given to a component applies to the component and to every resource beneath it (the engine walks
from a resource up through its parents), so the platform passes the stack tags once on itself and each child
component passes its `mlplat:component` value once on itself. Tags land in each resource's own `tags` input,
where `pulumi preview`, the offline plan and the policy pack all see them.
"""

import functools
import importlib
import inspect
from collections.abc import Mapping

import pulumi

COMPONENT_TAG = "mlplat:component"


@functools.cache
def is_taggable(type_token: str) -> bool:
    """True when the pulumi-aws resource class of `type_token` takes a `tags` map (`aws:s3/bucket:Bucket`)."""
    package, _, rest = type_token.partition(":")
    module, _, class_name = rest.partition(":")
    if package != "aws" or not class_name:
        return False
    # Python spells the `lambda` module `lambda_` (a keyword otherwise).
    python_name = module.split("/")[0]
    python_name = f"{python_name}_" if python_name == "lambda" else python_name
    try:
        python_module = importlib.import_module(f"pulumi_aws.{python_name}")
    except ImportError:
        return False
    cls = getattr(python_module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, pulumi.CustomResource)):
        return False
    parameter = inspect.signature(cls._internal_init).parameters.get("tags")  # type: ignore[attr-defined]
    # A few resources (autoscaling groups) take a list of tag objects instead of a map; those are not ours to fill.
    return parameter is not None and "Mapping[str" in str(parameter.annotation)


def _with_tags(
    args: pulumi.ResourceTransformArgs, tags: Mapping[str, str], override: bool
) -> pulumi.ResourceTransformResult | None:
    if not args.custom or not is_taggable(args.type_):
        return None
    existing = args.props.get("tags") or {}
    if not isinstance(existing, Mapping):
        return None
    merged = {**existing, **tags} if override else {**tags, **existing}
    return pulumi.ResourceTransformResult(props={**args.props, "tags": merged}, opts=args.opts)


def stack_tags(tags: Mapping[str, str]) -> pulumi.ResourceTransform:
    """A transform that sets the stack tags; they win over anything a resource sets itself."""
    frozen = dict(tags)

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        return _with_tags(args, frozen, override=True)

    return transform


def component_tag(component: str) -> pulumi.ResourceTransform:
    """A transform that sets `mlplat:component`; the innermost component's value wins (it runs first)."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        return _with_tags(args, {COMPONENT_TAG: component}, override=False)

    return transform


def with_component_tag(opts: pulumi.ResourceOptions | None, component: str) -> pulumi.ResourceOptions:
    """`opts` plus the transform that tags everything under a component with `mlplat:component=<component>`."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(transforms=[component_tag(component)]))
