"""Label names shared by everything that reads series: one list, so the analysis and the
playbooks can never disagree on which label names a workload."""

WORKLOAD_LABELS = (
    "service_name",
    "service",
    "app",
    "app_kubernetes_io_name",
    "destination_workload",
    "deployment",
    "container",
    "job",
    "name",
    "pod",
)
"""Labels that name a workload, most trusted first (OpenTelemetry's ``service_name``, then
the common Kubernetes and Prometheus conventions, ``pod`` last)."""
