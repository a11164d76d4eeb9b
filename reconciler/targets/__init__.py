"""Where the reconciler applies a revision: a folder of rendered manifests (`directory`),
the embedded Envoy control plane (`xds`), a Kubernetes cluster (`kubernetes`)."""
