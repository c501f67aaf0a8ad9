"""A scripted (privileged-state) policy for pickcube-lite, batched and stateless.

`scripted_pickcube_action(obs)` reads pickcube-lite observations (layout in
`engine.envs.pickcube_lite.OBS_LAYOUT`; indices used here: 0:3 tcp_pos, 3 gripper finger
position, 8 is_grasped, 9:12 goal_pos, 12:15 obj_pos) and returns [N, 4] actions in [-1, 1]:
move above the cube with the gripper open, descend onto it, close, carry the cube to the goal
and slow down there until the arm is still. It solves the task in about 10-30 steps, like the
real PickCube's scripted `pd_ee_delta_pos` policy (8-26).
"""
from __future__ import annotations

import torch

from .pickcube_lite import HALF, VMAX

HOVER = 0.05          # height above the cube while aligning in xy
ALIGN_TOL = 0.012     # xy error below which the gripper descends
CLOSE_TOL = 0.008     # TCP-cube distance below which the gripper closes
GAIN = 0.6            # fraction of the remaining error commanded per step


def scripted_pickcube_action(obs: torch.Tensor) -> torch.Tensor:
    tcp, finger, grasped = obs[:, 0:3], obs[:, 3], obs[:, 8] > 0.5
    goal, obj = obs[:, 9:12], obs[:, 12:15]
    xy_err = torch.linalg.vector_norm(obj[:, :2] - tcp[:, :2], dim=1)
    hover = obj.clone()
    hover[:, 2] += HOVER
    above = torch.where((xy_err > ALIGN_TOL)[:, None], hover, obj)
    # Once held, move the TCP so that the cube (not the TCP) lands on the goal.
    target = torch.where(grasped[:, None], tcp + (goal - obj), above)
    move = ((target - tcp) * (GAIN / VMAX)).clamp(-1.0, 1.0)
    near = torch.linalg.vector_norm(obj - tcp, dim=1) < CLOSE_TOL
    # Close when at the cube (and the fingers can still close around it); open otherwise.
    close = grasped | (near & (finger > HALF * 0.5))
    grip = torch.where(close, -1.0, 1.0).to(obs.dtype)
    return torch.cat([move, grip[:, None]], 1)
