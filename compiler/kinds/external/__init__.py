"""External: a destination outside the mesh (hosts and ports) that services may call."""
