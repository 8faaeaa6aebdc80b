"""mlops-stack runtime: what runs inside the provisioned infrastructure. Never imports pulumi.

The package root re-exports only the IaC <-> runtime contract, which is light (pydantic, yaml):
the IaC side imports it without pulling in Feast, MLflow or scikit-learn.
"""

from runtime.feast_config import feature_store_config, online_table_name, render_feature_store_yaml
from runtime.metrics import CATALOGUE, Dimension, Metric
from runtime.settings import ENV_PREFIX, Settings, env_var, library_env, render_env

__all__ = [
    "CATALOGUE",
    "ENV_PREFIX",
    "Dimension",
    "Metric",
    "Settings",
    "env_var",
    "feature_store_config",
    "library_env",
    "online_table_name",
    "render_env",
    "render_feature_store_yaml",
]
