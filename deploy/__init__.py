"""Deployment without torch: bundles, onnxruntime policies, the safety filter, the
Controller, run logs and replay. Only ``deploy.export`` imports torch (at export time)."""

from deploy.bundle import Bundle, load_bundle
from deploy.controller import Controller, TickInfo
from deploy.safety import SafetyFilter, SafetyLimits, Stage

__all__ = [
    "Bundle",
    "Controller",
    "SafetyFilter",
    "SafetyLimits",
    "Stage",
    "TickInfo",
    "load_bundle",
]
