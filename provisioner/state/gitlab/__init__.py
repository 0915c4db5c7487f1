"""The gitlab state backend: GitLab-managed Terraform state (see backend.py)."""
