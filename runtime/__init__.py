"""mlops-stack runtime: what runs inside the provisioned infrastructure. Never imports pulumi."""
