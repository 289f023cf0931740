"""The mlplat Pulumi program: validate the stack's config, build the platform, export its outputs."""

import pulumi

from components.config import load_from_pulumi
from components.platform import MlPlatform, MlPlatformArgs

config = load_from_pulumi()
platform = MlPlatform(f"mlplat-{config.environment}", MlPlatformArgs(config=config))
for key, value in platform.stack_outputs().items():
    pulumi.export(key, value)
