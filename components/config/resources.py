"""Container resource requests shared by every workload concern."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

from components.config.base import ConfigModel, Quantity


class ContainerResources(ConfigModel):
    cpu: Quantity = "250m"
    """CPU request."""
    memory: Quantity = "512Mi"
    """Memory request, and limit (memory is not compressible: request = limit)."""
    cpu_limit: Quantity | None = None
    """CPU limit (default: 2 x the request)."""
    gpu: Annotated[StrictInt, Field(ge=0, le=8)] = 0
    """NVIDIA GPUs (request = limit)."""
