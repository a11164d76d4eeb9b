"""Realistic applications with their own Kubernetes manifests, held against what meshc renders."""
