"""Building blocks shared by the envs, the wrappers, the MARL envs and ``sb3_ext``.

- :mod:`gym_advrl.utils.validation`: argument and action checks whose ``ValueError`` names the
  argument and the values it accepts (``check_int``, ``check_float``, ``check_choice``,
  ``box_action``, ``discrete_action``, ``reject_unknown_kwargs``, ...).
- :mod:`gym_advrl.utils.rendering`: ``RenderMixin``, ``render``/``close`` for every
  ``render_mode`` from an env's ``_draw`` (and ``_ansi``); pygame only for ``"human"``.
- :mod:`gym_advrl.utils.canvas`: ``Canvas``, a small numpy rasterizer for ``"rgb_array"`` frames,
  and ``grid_image`` for grid-shaped frames.

Importing these modules never imports torch, stable-baselines3 or pygame.
"""
