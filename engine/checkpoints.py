"""Checkpoint files, their metadata, and the per-environment ladder index.

A checkpoint is one `torch.save`d dict of plain tensors and plain values:
`{"meta": {...}, "actor": state_dict | None, "critic": state_dict | None}`, loaded with
`torch.load(weights_only=True)` so that no code from the file is executed. `meta` says what it
is without building a network: format, kind (`policy` | `critic`), env_id, obs_dim, act_dim,
role, iteration, logstd, det_sr, stoch_sr, network sizes, gamma (critics), created.

The ladder of an environment lives in `<checkpoints_dir>/<env-slug>/` with an `index.json`
mapping role names (`start`, `expert`, `optimal`, `critic-expert`, `critic-optimal`) to files
and metadata. The seed's names are aliases of roles (`ckpt_76_logstd-1.5` = start, ...).
`checkpoints_dir` is `./checkpoints` unless `PLAYGROUND_CHECKPOINTS_DIR` says otherwise.

Shipped ladders: the package carries a ladder built by `playground pretrain` (fixed seed) for
the embedded env, in `engine/ladders/<env-slug>/` (package data), so a first run needs no
pretraining. A built ladder (an `index.json` naming any role in the checkpoints dir) overrides
the shipped one as a whole; `read_index` says which one an env's roles come from (`source`:
'built' or 'shipped'). `PLAYGROUND_SHIPPED_LADDERS=0` ignores shipped ladders (the tests use it
to see an env without a ladder).

Policies and critics leave a checkpoint one way: `load_net` (resolve the spec, load the file
weights-only, check it fits the env, build the network on the CPU, move it). torch, and
engine.nets / engine.envs.pickcube_lite which import it, are imported inside the functions that
save, load or build: `import torch` took 5.1 s (perf_counter, this 2-core machine), and the
launcher (so `playground --help`), name resolution and reading a ladder index import this module
without needing torch (`import engine.checkpoints`: 9-45 ms, -X importtime).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import settings
from .archive_sizes import ArchiveTooBig, check_archive
from .errors import UserError

if TYPE_CHECKING:  # torch loads lazily (see above): resolving names and reading the index must stay instant
    import torch

    from .nets import Actor, Critic

FORMAT = "playground-ckpt-1"
POLICY_ROLES = ("start", "expert", "optimal")
CRITIC_ROLES = ("critic-expert", "critic-optimal")
ROLES = POLICY_ROLES + CRITIC_ROLES
SEED_ALIASES = {
    "ckpt_76_logstd-1.5": "start",
    "ckpt_101": "expert",
    "ckpt_301": "optimal",
    "pretrained_critic_sparse": "critic-expert",
    "pretrained_critic_sparse.pt": "critic-expert",
}
ROLE_SEED_NAME = {v: k for k, v in SEED_ALIASES.items() if not k.endswith(".pt")}


class CheckpointError(UserError, ValueError):
    """A one-line, user-facing checkpoint problem."""


def checkpoints_dir() -> Path:
    return Path(settings.get("PLAYGROUND_CHECKPOINTS_DIR"))


def env_slug(env_id: str) -> str:
    return env_id.replace(":", "-").replace("/", "-")


def ladder_dir(env_id: str, root: Path | None = None) -> Path:
    return (root or checkpoints_dir()) / env_slug(env_id)


# --- saving -------------------------------------------------------------------------------

def actor_meta(actor: "Actor") -> dict[str, Any]:
    return {"obs_dim": actor.obs_dim, "act_dim": actor.act_dim, "actor_layers": actor.layers,
            "actor_width": actor.width, "logstd": float(actor.logstd.detach().mean()),
            "learn_logstd": bool(actor.logstd.requires_grad)}


def critic_meta(critic: "Critic") -> dict[str, Any]:
    return {"obs_dim": critic.obs_dim, "critic_layers": critic.layers, "critic_width": critic.width}


def save_checkpoint(path: str | Path, *, env_id: str, role: str = "", iteration: int = 0,
                    actor: "Actor | None" = None, critic: "Critic | None" = None, **extra: Any) -> dict:
    """Write a checkpoint atomically (temp file + rename); returns its metadata."""
    import torch  # lazy: 5.1 s (module docstring)

    if actor is None and critic is None:
        raise ValueError("a checkpoint needs an actor or a critic")
    meta: dict[str, Any] = {"format": FORMAT, "kind": "policy" if actor is not None else "critic",
                            "env_id": env_id, "role": role, "iteration": int(iteration),
                            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if critic is not None:
        meta.update(critic_meta(critic))
    if actor is not None:
        meta.update(actor_meta(actor))
    meta.update(extra)
    blob = {"meta": meta,
            "actor": {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()} if actor else None,
            "critic": {k: v.detach().cpu().clone() for k, v in critic.state_dict().items()} if critic else None}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    side = _sidecar(path)
    side_tmp = side.with_name(side.name + ".tmp")
    side_tmp.write_text(json.dumps({**meta, "file_size": path.stat().st_size}, indent=1))
    os.replace(side_tmp, side)
    return meta


def _sidecar(path: Path) -> Path:
    """`x.pt` -> `x.pt.json`: the metadata in plain JSON, so tools read it without torch."""
    return path.with_name(path.name + ".json")


# --- loading ------------------------------------------------------------------------------

@dataclass
class Checkpoint:
    path: Path
    meta: dict[str, Any]
    actor_state: "dict[str, torch.Tensor] | None"
    critic_state: "dict[str, torch.Tensor] | None"

    def build_actor(self, learn_logstd: bool | None = None) -> "Actor":
        from .nets import Actor  # imports torch: lazy (module docstring)

        if self.actor_state is None:
            raise CheckpointError(f"{self.path}: holds a critic, not a policy (use it as critic_checkpoint)")
        m = self.meta
        actor = Actor(m["obs_dim"], m["act_dim"], m.get("actor_layers", 3), m.get("actor_width", 256),
                      learn_logstd=m.get("learn_logstd", True) if learn_logstd is None else learn_logstd)
        _load_state(actor, self.actor_state, self.path)
        return actor

    def build_critic(self) -> "Critic":
        from .nets import Critic  # imports torch: lazy (module docstring)

        if self.critic_state is None:
            raise CheckpointError(f"{self.path}: holds no critic (pass a critic checkpoint such as 'critic-expert')")
        m = self.meta
        critic = Critic(m["obs_dim"], m.get("critic_layers", 3), m.get("critic_width", 256))
        _load_state(critic, self.critic_state, self.path)
        return critic


def _load_state(module: "torch.nn.Module", state: dict, path: Path) -> None:
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not match the network its metadata describes ({first})") from None


def first_words(e: BaseException) -> str:
    """The start of an exception's message without torch's advice: its first sentence is what
    went wrong; the rest suggests `weights_only=False`, which would run code from the file."""
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    first = first.split(". ")[0].split("Re-running")[0].split("re-running")[0].strip()
    return first[:120] or type(e).__name__


def _sidecar_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def torch_load(path: Path, what: str, fix: str) -> Any:
    """`torch.load(weights_only=True)` of a file a user may have damaged or replaced: any failure
    is one CheckpointError line naming the file, never torch's advice to load unsafely. Its zip
    entries are checked first against what the file and its metadata allow (a size bomb is
    refused before torch allocates anything: engine.archive_sizes)."""
    import torch  # lazy: 5.1 s (module docstring)

    try:
        check_archive(path, what, fix, meta=_sidecar_meta(Path(path)))
    except ArchiveTooBig as e:
        raise CheckpointError(str(e)) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle with code, random bytes, a directory...
        raise CheckpointError(f"{what} {path} is corrupt, truncated or not a playground {what} "
                              f"({first_words(e)}); {fix}") from None


RESUME_KEYS = ("iteration", "env_steps", "peak_sr", "wall_s", "actor", "opt")


def load_resume_state(path: str | Path) -> dict[str, Any]:
    """A run's `checkpoints/resume.pt` (what a resumed worker continues from), checked to hold
    the trainer's state: CheckpointError (one line) when it is damaged or tampered with."""
    path = Path(path)
    fix = "start a new run instead of resuming this one"
    state = torch_load(path, "resume file", fix)
    if not isinstance(state, dict) or any(k not in state for k in RESUME_KEYS) \
            or not isinstance(state.get("actor"), dict):
        raise CheckpointError(f"resume file {path} does not hold a playground run's saved state; {fix}")
    try:
        for k in ("iteration", "env_steps"):
            state[k] = int(state[k])
        for k in ("peak_sr", "wall_s"):
            state[k] = float(state[k])
    except (TypeError, ValueError):
        raise CheckpointError(f"resume file {path} has a damaged '{k}'; {fix}") from None
    return state


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    blob = torch_load(path, "checkpoint", "rebuild it with `playground pretrain`")
    if not isinstance(blob, dict) or not isinstance(blob.get("meta"), dict) or blob["meta"].get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a playground checkpoint (no '{FORMAT}' metadata)")
    meta = blob["meta"]
    for key in ("env_id", "obs_dim", "kind"):
        if key not in meta:
            raise CheckpointError(f"{path}: metadata lacks '{key}'")
    return Checkpoint(path, meta, blob.get("actor"), blob.get("critic"))


@dataclass
class LoadedNet:
    """A network built from a checkpoint, with where it came from."""
    net: "Actor | Critic"
    path: Path
    role: str | None          # the role the spec named (seed names mapped), None for a path
    meta: dict[str, Any]


def load_net(spec: str | Path, kind: str, env_id: str, obs_dim: int | None = None, act_dim: int | None = None, *,
             what: str = "checkpoint", learn_logstd: bool | None = None,
             device: "torch.device | str | None" = None) -> LoadedNet:
    """The one way a policy (`kind` 'policy') or a critic ('critic') comes out of a checkpoint:
    `spec` (a role, a seed name or a path; a `Path` is taken as the file itself) resolved for
    `env_id`, the file loaded weights-only, checked to fit the env (its id, `obs_dim` and, for a
    policy, `act_dim`; None skips a size), the network built on the CPU and moved to `device`
    (None: left there). CheckpointError (one line naming `what`) for anything unusable."""
    import torch  # lazy: 5.1 s (module docstring)

    res = Resolved(str(spec), None, spec) if isinstance(spec, Path) else resolve_checkpoint(spec, env_id)
    if res.path is None:
        raise CheckpointError(f"{what}: 'none' names no checkpoint file to load")
    c = load_checkpoint(res.path)
    check_compatible(c.meta, env_id, obs_dim, act_dim if kind == "policy" else None, what=what)
    with torch.device("cpu"):
        net = c.build_actor(learn_logstd=learn_logstd) if kind == "policy" else c.build_critic()
    return LoadedNet(net if device is None else net.to(device), res.path, res.role, c.meta)


def read_meta(path: str | Path) -> dict[str, Any]:
    """The checkpoint's metadata, without building any network (and without torch when the
    JSON sidecar written with it matches the file's size; else from the file itself)."""
    path = Path(path)
    side = _sidecar(path)
    try:
        meta = json.loads(side.read_text())
        if meta.get("format") == FORMAT and meta.pop("file_size", None) == path.stat().st_size:
            return meta
    except (OSError, ValueError):
        pass
    return load_checkpoint(path).meta


def _weight(state: Any, key: str, path: Path) -> "torch.Tensor":
    import torch  # lazy: 5.1 s (module docstring)

    t = state.get(key) if isinstance(state, dict) else None
    if not isinstance(t, torch.Tensor) or t.dim() not in (1, 2):
        raise CheckpointError(f"{path}: weights lack '{key}' (damaged, or not a playground network): "
                              "rebuild it with `playground pretrain`")
    return t


def weight_dims(path: Path, kind: str, state: Any) -> tuple[int, int | None]:
    """(observation size, action size or None for a critic) read from the weights themselves:
    the first layer's input width, and the policy's log-std length and last layer's output."""
    prefix = "mean" if kind == "policy" else "net"
    obs = int(_weight(state, f"{prefix}.0.weight", path).shape[-1])
    if kind != "policy":
        return obs, None
    layers = [int(k.split(".")[1]) for k in state if k.startswith("mean.") and k.endswith(".weight")
              and k.split(".")[1].isdigit()]
    out = int(_weight(state, f"mean.{max(layers)}.weight", path).shape[0])
    std = int(_weight(state, "logstd", path).shape[0])
    if out != std:
        raise CheckpointError(f"{path}: its policy outputs {out} actions but has {std} log-stds (damaged): "
                              "rebuild it with `playground pretrain`")
    return obs, out


def verified_meta(path: str | Path) -> dict[str, Any]:
    """The checkpoint's metadata as stored in the file itself (never the `.json` sidecar, which
    anyone can edit), checked against its weights: the observation and action sizes returned
    are those of the weights. CheckpointError (one line) when the metadata and the weights
    disagree, or the weights are not a playground network's."""
    c = load_checkpoint(path)
    meta = dict(c.meta)
    kind = meta.get("kind")
    if kind not in ("policy", "critic"):
        raise CheckpointError(f"{c.path}: metadata 'kind' is {kind!r}, not policy or critic")
    state = c.actor_state if kind == "policy" else c.critic_state
    obs, act = weight_dims(c.path, kind, state)
    for key, real in (("obs_dim", obs), ("act_dim", act)):
        said = meta.get(key)
        if real is not None and said is not None and said != real:
            raise CheckpointError(f"{c.path}: its weights have {key} {real} but its metadata says {said} "
                                  "(the file was edited or damaged): rebuild it with `playground pretrain`")
        if real is not None:
            meta[key] = real
    return meta


def env_obs_dim(env_id: str) -> int | None:
    """The observation size of an env id, where it is known without building the env."""
    if env_id == "pickcube-lite":
        from .envs.pickcube_lite import OBS_DIM  # imports torch: lazy (module docstring)

        return OBS_DIM
    return {"maniskill:PickCube-v1": 42}.get(env_id)


def check_compatible(meta: dict, env_id: str, obs_dim: int | None = None, act_dim: int | None = None,
                     what: str = "checkpoint") -> None:
    if meta.get("env_id") != env_id:
        raise CheckpointError(f"{what} was trained on env {meta.get('env_id')!r}, not {env_id!r}: "
                              f"pick one from `playground checkpoints --env {env_id}`")
    if obs_dim is not None and meta.get("obs_dim") != obs_dim:
        raise CheckpointError(f"{what} expects {meta.get('obs_dim')}-D observations, env {env_id} has {obs_dim}")
    if act_dim is not None and meta.get("act_dim") not in (None, act_dim):
        raise CheckpointError(f"{what} outputs {meta.get('act_dim')}-D actions, env {env_id} takes {act_dim}")


# --- the ladder index ---------------------------------------------------------------------

SHIPPED_LADDERS_ENV = "PLAYGROUND_SHIPPED_LADDERS"


def shipped_ladder_dir(env_id: str) -> Path:
    """Where the package keeps the ladder it ships for `env_id` (may not exist)."""
    return Path(__file__).resolve().parent / "ladders" / env_slug(env_id)


def shipped_ladders_enabled() -> bool:
    return settings.get(SHIPPED_LADDERS_ENV)


def _index_file(d: Path, env_id: str) -> dict[str, Any] | None:
    p = d / "index.json"
    if not p.is_file():
        return None
    rebuild = f"rebuild the ladder with `playground pretrain --env {env_id}`"
    try:
        index = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{p} is not valid JSON: {rebuild}") from None
    except OSError as e:
        raise CheckpointError(f"{p} cannot be read ({e.strerror or e}): {rebuild}") from None
    if not isinstance(index, dict) or not isinstance(index.get("roles", {}), dict):
        raise CheckpointError(f"{p} is not a ladder index (no 'roles' table): {rebuild}")
    for role, entry in index.get("roles", {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("file", ""), str) \
                or any(entry.get(k) is not None and (not isinstance(entry[k], (int, float)) or isinstance(entry[k], bool))
                       for k in ("det_sr", "stoch_sr", "iteration", "logstd")):
            raise CheckpointError(f"{p}: role '{role}' is not a ladder entry (a table with a string 'file' "
                                  f"and numeric SRs): {rebuild}")
    if not isinstance(index.get("iterations", []), list):
        raise CheckpointError(f"{p}: 'iterations' is not a list: {rebuild}")
    return index


def read_index(env_id: str, root: Path | None = None) -> dict[str, Any]:
    """The ladder `env_id`'s roles resolve to: the built one when its index names any role, else
    the shipped one (when enabled), else an empty index. The result carries `source` ('built',
    'shipped' or None when there is no ladder) and `dir` (where its files are); every role entry
    its `source` and `path` too (`tag_index`)."""
    built = ladder_dir(env_id, root)
    index, source, where = _index_file(built, env_id), "built", built
    if not (index and index.get("roles")) and shipped_ladders_enabled():
        shipped = _index_file(shipped_ladder_dir(env_id), env_id)
        if shipped and shipped.get("roles"):
            index, source, where = shipped, "shipped", shipped_ladder_dir(env_id)
    if not (index and index.get("roles")):
        return {"env_id": env_id, "roles": {}, "iterations": [], "source": None, "dir": str(built)}
    return tag_index(index, source, where)


def tag_index(index: dict[str, Any], source: str, where: Path) -> dict[str, Any]:
    """`index` with its `source` ('built' | 'shipped') and `dir`, and each role entry with its
    `source` and `path` (the file's full path). Not written to index.json: where a ladder lies is
    known when it is read."""
    roles = {role: {**entry, "source": source, **({"path": str(where / entry["file"])} if entry.get("file") else {})}
             for role, entry in (index.get("roles") or {}).items()}
    return {**index, "roles": roles, "source": source, "dir": str(where)}


def write_index(env_id: str, index: dict[str, Any], root: Path | None = None) -> Path:
    d = ladder_dir(env_id, root)
    d.mkdir(parents=True, exist_ok=True)
    p = d / "index.json"
    tmp = p.with_name("index.json.tmp")
    tmp.write_text(json.dumps(index, indent=2))
    os.replace(tmp, p)
    return p


def canonical_role(spec: str) -> str | None:
    """The role a name stands for ('ckpt_101' -> 'expert'), or None if it is not a role name."""
    if spec in ROLES:
        return spec
    return SEED_ALIASES.get(spec)


@dataclass
class Resolved:
    spec: str
    role: str | None          # role name when the spec was a role or seed alias
    path: Path | None         # None for 'none'


def resolve_checkpoint(spec: str, env_id: str, root: Path | None = None) -> Resolved:
    """Turn a checkpoint key's value (role, seed name, path or 'none') into a file path."""
    spec = (spec or "none").strip()
    if spec.lower() == "none":
        return Resolved(spec, None, None)
    role = canonical_role(spec)
    if role is not None:
        index = read_index(env_id, root)
        entry = index["roles"].get(role)
        if entry is None:
            raise CheckpointError(f"no '{role}' checkpoint for env {env_id} yet"
                                  f"{' (seed name ' + spec + ')' if spec != role else ''}: "
                                  f"build the ladder with `playground pretrain --env {env_id}`")
        path = Path(entry["path"])
        if not path.is_file():
            raise CheckpointError(f"the ladder index names {path} for role '{role}' but the file is gone: "
                                  f"rebuild with `playground pretrain --env {env_id}`")
        return Resolved(spec, role, path)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint {spec!r} is neither a role ({', '.join(ROLES)}), a seed name "
                              f"({', '.join(ROLE_SEED_NAME.values())}) nor an existing file")
    return Resolved(spec, None, path)
