"""Reading a running qaflow release with the Kubernetes API (``qaflow cluster status``)."""
