"""SB3 policies whose actor (PPO, A2C) or Q-network (DQN) is a :class:`VariationalCircuit`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from sb3_ext.common.validation import check_positive
from sb3_ext.quantum.circuit import VariationalCircuit

#: The :class:`VariationalCircuit` arguments a VQC policy takes in its ``policy_kwargs``.
CIRCUIT_ARGUMENTS = (
    "n_qubits",
    "n_layers",
    "observables",
    "reuploading",
    "entangler",
    "entangling_gate",
    "input_transform",
    "gradient",
    "init_std",
)


class ScaledExpectations(nn.Module):
    """
    The policy head of the quantum RL papers: ``w_k * <O_k>_x``, one trainable weight per
    observable (Jerbi et al.'s ``softmax(beta w <O>)`` logits, Skolik et al.'s Q-values).

    The weight is ``output_scale * v`` with ``v`` trainable and initialized to
    ``output_init / output_scale``: with Adam the effective step size of the weight is
    ``output_scale`` times the learning rate, which lets the head grow to the size of the returns
    (Q-values) or of confident logits while the circuit's angles take small steps.

    :param circuit: the variational circuit, one output per action
    :param output_scale: step-size multiplier of the output weights
    :param output_init: initial value of the output weights (default: ``output_scale``)
    """

    def __init__(
        self, circuit: VariationalCircuit, output_scale: float = 1.0, output_init: float | None = None
    ) -> None:
        super().__init__()
        self.circuit = circuit
        self.output_scale = check_positive("output_scale", output_scale)
        self.output_init = (
            self.output_scale if output_init is None else check_positive("output_init", output_init)
        )
        initial = th.full((circuit.n_outputs,), self.output_init / self.output_scale, dtype=th.float64)
        self.output_weights = nn.Parameter(initial)

    def forward(self, features: th.Tensor) -> th.Tensor:
        weights = self.output_scale * self.output_weights
        return (self.circuit(features) * weights).to(th.float32)


def _circuit_for(
    observation_space: spaces.Space, action_space: spaces.Space, circuit_kwargs: dict[str, Any]
) -> VariationalCircuit:
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"VQC policies need a Discrete action space, got {action_space}")
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"VQC policies need a flat Box observation space, got {observation_space}")
    unknown = sorted(set(circuit_kwargs) - set(CIRCUIT_ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown circuit argument(s) {unknown}; allowed: {CIRCUIT_ARGUMENTS}")
    # One output per action: given observables must be as many (the circuit checks it).
    return VariationalCircuit(
        int(observation_space.shape[0]), n_outputs=int(action_space.n), **circuit_kwargs
    )


class VQCPolicy(ActorCriticPolicy):
    """
    Actor-critic policy for PPO and A2C whose actor is a variational quantum circuit (Jerbi et al.
    2021): ``pi(a|s) = softmax_a(w_a <O_a>_s)`` with the circuit of :class:`VariationalCircuit`
    on the (flat) observation and one observable per action. The critic is a classical MLP
    (``vf_net_arch``), as in the hybrid agents of the papers that use actor-critic methods.

    :param observation_space: flat ``Box`` observations (one feature per rotation; up to
        ``3 n_qubits``)
    :param action_space: ``Discrete`` actions
    :param lr_schedule: learning-rate schedule
    :param vf_net_arch: hidden layers of the critic
    :param output_scale: see :class:`ScaledExpectations`
    :param output_init: see :class:`ScaledExpectations`
    :param circuit_kwargs: :class:`VariationalCircuit`'s arguments (``n_qubits``, ``n_layers``,
        ``observables``, ``reuploading``, ``entangler``, ``entangling_gate``,
        ``input_transform``, ``gradient``, ``init_std``)
    :param kwargs: the other arguments of SB3's ``ActorCriticPolicy`` (not ``net_arch``)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        vf_net_arch: Sequence[int] = (64, 64),
        output_scale: float = 1.0,
        output_init: float | None = None,
        circuit_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "net_arch" in kwargs:
            raise ValueError(
                "VQCPolicy: the actor is the circuit; give the critic's layers as vf_net_arch, not net_arch"
            )
        self.vf_net_arch = [int(size) for size in vf_net_arch]
        self.output_scale, self.output_init = output_scale, output_init
        self.circuit_kwargs = dict(circuit_kwargs or {})
        # Fail before SB3 builds anything.
        ScaledExpectations(
            _circuit_for(observation_space, action_space, self.circuit_kwargs), output_scale, output_init
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch={"pi": [], "vf": self.vf_net_arch},
            **kwargs,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        circuit = _circuit_for(self.observation_space, self.action_space, self.circuit_kwargs)
        self.action_net = ScaledExpectations(circuit, self.output_scale, self.output_init).to(self.device)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        del data["net_arch"]
        data.update(
            vf_net_arch=self.vf_net_arch,
            output_scale=self.output_scale,
            output_init=self.output_init,
            circuit_kwargs=self.circuit_kwargs,
        )
        return data


class VQCQNetwork(QNetwork):
    """SB3's ``QNetwork`` with the Q-values ``Q(s, a) = w_a <O_a>_s`` of a variational circuit
    (Skolik et al. 2022) instead of an MLP."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        output_scale: float = 1.0,
        output_init: float | None = None,
        circuit_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        **_: Any,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor,
            features_dim,
            [],
            normalize_images=normalize_images,
        )
        self.output_scale, self.circuit_kwargs = output_scale, dict(circuit_kwargs or {})
        self.q_net = ScaledExpectations(
            _circuit_for(observation_space, action_space, self.circuit_kwargs), output_scale
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            output_scale=self.output_scale, output_init=self.output_init, circuit_kwargs=self.circuit_kwargs
        )
        return data


class VQCDQNPolicy(DQNPolicy):
    """
    DQN policy whose Q-network (and target network) is a :class:`VQCQNetwork`.

    :param observation_space: flat ``Box`` observations
    :param action_space: ``Discrete`` actions
    :param lr_schedule: learning-rate schedule
    :param output_scale: see :class:`ScaledExpectations` (Q-values need a large one: returns are
        far outside the ``[-1, 1]`` of an expectation value)
    :param output_init: see :class:`ScaledExpectations`
    :param circuit_kwargs: :class:`VariationalCircuit`'s arguments
    :param kwargs: the other arguments of SB3's ``DQNPolicy`` (not ``net_arch``)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        output_scale: float = 1.0,
        output_init: float | None = None,
        circuit_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("net_arch"):
            raise ValueError("VQCDQNPolicy: the Q-network is the circuit; net_arch is not used")
        kwargs.pop("net_arch", None)
        self.output_scale, self.output_init = output_scale, output_init
        self.circuit_kwargs = dict(circuit_kwargs or {})
        ScaledExpectations(
            _circuit_for(observation_space, action_space, self.circuit_kwargs), output_scale, output_init
        )
        super().__init__(observation_space, action_space, lr_schedule, net_arch=[], **kwargs)

    def make_q_net(self) -> QNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return VQCQNetwork(
            **net_args,
            output_scale=self.output_scale,
            output_init=self.output_init,
            circuit_kwargs=self.circuit_kwargs,
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        del data["net_arch"]
        data.update(
            output_scale=self.output_scale, output_init=self.output_init, circuit_kwargs=self.circuit_kwargs
        )
        return data
