"""The Envoy backend: the effective records and the placement → one xDS snapshot per
workload instance (see `snapshot.Snapshot`)."""
