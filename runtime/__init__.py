"""kedge runtime: the cloud, edge and embedded control-plane roles. Never imports kubeedge_cli."""

__version__ = "0.1.0"
PROTOCOL_VERSION = "kubeedge-v1"  # KubeEdge beehive message model, as recorded in shared/kubeedge-wire
