"""Real-time serving: `mlops-runtime serve` (FastAPI app factory, model holder, micro-batching)."""

from runtime.serving.app import ServingError, create_app
from runtime.serving.model import ModelSource, RegistryModelSource, Scored, ServedModel
from runtime.serving.server import serve

__all__ = [
    "ModelSource",
    "RegistryModelSource",
    "Scored",
    "ServedModel",
    "ServingError",
    "create_app",
    "serve",
]
