"""The edge's pods on the Docker Engine (issue 9): see manager.PodManager for the interface."""

from __future__ import annotations

from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.manager import PodManager
from runtime.edge.pods.refs import RefResolver
from runtime.edge.pods.slots import default_parallel

__all__ = ["DockerAdapter", "PodManager", "RefResolver", "default_parallel"]
