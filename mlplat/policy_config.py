"""The policy pack's config files (`--policy-pack-config`): where each environment's lives, reading and checking one,
and adding the cost estimate the budget policy compares against. Shared by `mlplat policy` and `mlplat cost`.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.config import display_path
from policies import registry

REPO_ROOT = Path(__file__).resolve().parents[1]
POLICY_PACK_DIR = REPO_ROOT / "policies"
POLICY_CONFIG_DIR = POLICY_PACK_DIR / "config"
COST_POLICY = "budget-covers-peak-cost"
ESTIMATE_KEY = "estimatedPeakMonthlyUsd"


class PolicyConfigError(ValueError):
    """A policy pack config file that cannot be used."""

    exit_status = 2  # bad input, in the command line's error path (mlplat.clikit)


def config_path(environment: str) -> Path:
    """The shipped policy config of an environment: `policies/config/<environment>.json`."""
    return POLICY_CONFIG_DIR / f"{environment}.json"


def load_pack_config(path: Path) -> dict[str, Any]:
    """Read a `--policy-pack-config` document and check it against the registry."""
    shown = display_path(path)
    if not path.is_file():
        raise PolicyConfigError(f"{shown}: no such policy config file")
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise PolicyConfigError(f"{shown}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PolicyConfigError(f"{shown}: must be a JSON object keyed by policy name")
    problems = registry.validate_pack_config(doc)
    if problems:
        raise PolicyConfigError("\n".join(f"{shown}: {p}" for p in problems))
    return doc


def with_estimate(pack_config: Mapping[str, Any], peak_usd: float) -> dict[str, Any]:
    """The policy config plus the peak estimate for the budget policy (what CI hands to `pulumi preview`)."""
    merged = json.loads(json.dumps(pack_config))
    entry = merged.get(COST_POLICY)
    if not isinstance(entry, dict):
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else {}
    entry[ESTIMATE_KEY] = round(peak_usd, 2)
    merged[COST_POLICY] = entry
    return merged
