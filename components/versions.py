"""The one dated table of EKS versions: when each leaves standard support, and the add-ons and charts pinned for it.

A version's row pins every managed add-on and Helm chart the platform installs on a cluster of that version, so an
upgrade is one reviewed change here. The default version is the newest row still in standard support on the day the
config is validated; a version past its end date is refused unless the stack opts into extended support (which EKS
bills at six times the cluster-hour).
"""

from dataclasses import dataclass
from datetime import date

from components.problems import Problem

TABLE_AS_OF = date(2026, 12, 6)
"""The day the end dates and pins below were last checked."""
LIFECYCLE_SOURCE = "https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html"
"""Where the end-of-standard-support dates come from (`aws eks describe-cluster-versions` says the same)."""


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned to one version."""

    chart: str
    version: str
    repo: str | None
    """An https chart repository; None when `chart` is an `oci://` reference."""
    namespace: str = "kube-system"


@dataclass(frozen=True)
class ClusterRelease:
    """One EKS Kubernetes minor: its end of standard support and what the platform pins on it."""

    version: str
    end_of_standard_support: date
    addons: dict[str, str]
    """Managed add-on versions (`aws eks describe-addon-versions --kubernetes-version <v> --addon-name <name>`)."""
    charts: dict[str, Chart]
    """Helm charts by role, each at a version that supports this Kubernetes minor."""


# Chart releases are shared by every minor they support; a new minor gets its own entry only when a chart differs.
KARPENTER = Chart("oci://public.ecr.aws/karpenter/karpenter", "1.14.1", None)
KUEUE = Chart("oci://registry.k8s.io/kueue/charts/kueue", "0.19.2", None, "kueue-system")
DEVICE_PLUGIN = Chart("nvidia-device-plugin", "0.17.1", "https://nvidia.github.io/k8s-device-plugin")
DCGM_EXPORTER = Chart("dcgm-exporter", "4.6.0", "https://nvidia.github.io/dcgm-exporter/helm-charts", "gpu-telemetry")
METRICS_SERVER = Chart("metrics-server", "3.12.2", "https://kubernetes-sigs.github.io/metrics-server/")
# Only on clusters with an endpoint that scales on in-flight requests: Prometheus scrapes the servers and the adapter
# serves what it scraped as the custom metrics API the autoscaler reads. Pinned from the charts' own Chart.yaml
# (prometheus 27.19.0) and Artifact Hub's release feed (prometheus-adapter 5.3.0, 2026-02-19), not `helm search`.
PROMETHEUS = Chart("prometheus", "27.19.0", "https://prometheus-community.github.io/helm-charts", "monitoring")
PROMETHEUS_ADAPTER = Chart(
    "prometheus-adapter", "5.3.0", "https://prometheus-community.github.io/helm-charts", "monitoring"
)
_CHARTS = {
    "karpenter": KARPENTER,
    "kueue": KUEUE,
    "device-plugin": DEVICE_PLUGIN,
    "dcgm-exporter": DCGM_EXPORTER,
    "metrics-server": METRICS_SERVER,
    "prometheus": PROMETHEUS,
    "prometheus-adapter": PROMETHEUS_ADAPTER,
}

# The end dates are AWS's; 1.36 is not tabled because its EKS release date could not be confirmed offline. The 1.34
# and 1.35 add-on builds and the DCGM chart pin were entered without `describe-addon-versions` or the chart index at
# hand: confirm them (and bump TABLE_AS_OF) before the first deploy on those versions.
RELEASES: dict[str, ClusterRelease] = {
    "1.32": ClusterRelease(
        "1.32",
        date(2026, 3, 23),
        {
            "vpc-cni": "v1.19.2-eksbuild.1",
            "kube-proxy": "v1.32.0-eksbuild.2",
            "coredns": "v1.11.4-eksbuild.2",
            "eks-node-monitoring-agent": "v1.4.0-eksbuild.2",
        },
        _CHARTS,
    ),
    "1.33": ClusterRelease(
        "1.33",
        date(2026, 7, 29),
        {
            "vpc-cni": "v1.19.5-eksbuild.1",
            "kube-proxy": "v1.33.0-eksbuild.2",
            "coredns": "v1.12.1-eksbuild.2",
            "eks-node-monitoring-agent": "v1.4.0-eksbuild.2",
        },
        _CHARTS,
    ),
    "1.34": ClusterRelease(
        "1.34",
        date(2026, 12, 2),
        {
            "vpc-cni": "v1.20.4-eksbuild.1",
            "kube-proxy": "v1.34.0-eksbuild.2",
            "coredns": "v1.12.3-eksbuild.1",
            "eks-node-monitoring-agent": "v1.4.1-eksbuild.1",
        },
        _CHARTS,
    ),
    "1.35": ClusterRelease(
        "1.35",
        date(2027, 3, 27),
        {
            "vpc-cni": "v1.21.1-eksbuild.1",
            "kube-proxy": "v1.35.0-eksbuild.2",
            "coredns": "v1.13.1-eksbuild.1",
            "eks-node-monitoring-agent": "v1.4.1-eksbuild.1",
        },
        _CHARTS,
    ),
}
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(RELEASES)


def in_standard_support(version: str, today: date) -> bool:
    """True while `version` has not yet reached its end of standard support."""
    return today < RELEASES[version].end_of_standard_support


def default_version(today: date | None = None) -> str:
    """The newest tabled version in standard support on `today` (every row pins all add-ons and charts)."""
    today = today or date.today()
    current = [v for v in SUPPORTED_VERSIONS if in_standard_support(v, today)]
    if not current:
        # The table has aged past its last row: no default beats a silent extended-support bill.
        raise ValueError(
            f"components/versions.py: no tabled EKS version is in standard support on {today.isoformat()} "
            f"(table as of {TABLE_AS_OF.isoformat()}); add the current version"
        )
    return max(current, key=lambda v: tuple(int(p) for p in v.split(".")))


def problems(key: str, version: str, *, allow_extended: bool = False, today: date | None = None) -> list[Problem]:
    """Why `version` (at `key`) may not be used: not tabled, or, judged on `today`, past standard support."""
    if version not in RELEASES:
        return [Problem(key, f"must be one of {', '.join(SUPPORTED_VERSIONS)} (got {version!r})")]
    if today is None or in_standard_support(version, today) or allow_extended:
        return []
    ended = RELEASES[version].end_of_standard_support.isoformat()
    return [
        Problem(
            key,
            f"{version} left EKS standard support on {ended} (table as of {TABLE_AS_OF.isoformat()}); "
            f"use {default_version(today)}, or set mlplat:cluster.allowExtendedSupport: true to pay for extended "
            "support",
        )
    ]
