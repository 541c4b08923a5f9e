from sb3_ext.marl.qmix.networks import (
    AgentQNetwork,
    IndependentValues,
    QMixer,
    RecurrentAgentQNetwork,
    VDNMixer,
)
from sb3_ext.marl.qmix.qmix import QMIX, VDN

__all__ = [
    "QMIX",
    "VDN",
    "AgentQNetwork",
    "IndependentValues",
    "QMixer",
    "RecurrentAgentQNetwork",
    "VDNMixer",
]
