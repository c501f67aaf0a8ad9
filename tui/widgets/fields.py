"""The launch screen's editable config fields: one row per key (name, value, help text from
`engine.config.schema`), an `Input` for free values and a `Select` for keys with fixed choices.
A field's widget id is `field-<key>`; a checkpoint row also has a pick list `pick-<key>` of the
env's ladder roles with their measured det / stoch SR (`role_options`; picking one fills the free
text field, which still takes a seed name, a path or none) and an `info-<key>` line that shows
what the checkpoint is (role, env, det / stoch SR from its metadata)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from ..core import FIELDS, ROLE_LABELS


def help_of(key: str) -> str:
    return str(FIELDS[key].metadata.get("help", ""))


def choices_of(key: str) -> tuple[str, ...] | None:
    c = FIELDS[key].metadata.get("choices")
    return tuple(c) if c else None


def pct(x) -> str:
    return f"{100 * x:.0f}%" if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def role_options(key: str, ladder: list[dict]) -> list[tuple[str, str]]:
    """(label, role) of the ladder roles that fit checkpoint key `key` (critics for the critic,
    policies for the others) with what was measured when they were saved (policies: det / stoch
    SR; critics: the policy they were fitted on), and `none`. Short: the list fits 80 columns."""
    critic = key == "critic_checkpoint"
    out = []
    for r in ladder:
        if str(r["role"]).startswith("critic") != critic:
            continue
        if critic:
            label = f"{r['role']}  V({r.get('fitted_on') or '?'})"
        else:
            label = f"{r['role']}  {pct(r.get('det_sr'))} / {pct(r.get('stoch_sr'))}"
        out.append((label, str(r["role"])))
    return out + [("none  fresh network", "none")]


def as_text(value) -> str:
    """A config value as the user would type it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class FieldRow(Vertical):
    DEFAULT_CSS = """
    FieldRow { height: auto; margin-bottom: 0; }
    FieldRow > Horizontal { height: auto; }
    FieldRow Label { width: 19; color: $text; }
    FieldRow Input { width: 1fr; max-width: 30; }
    FieldRow Select { width: 1fr; max-width: 30; }
    FieldRow .help { color: $text-muted; padding-left: 19; }
    FieldRow .info { padding-left: 19; }
    FieldRow .pick { width: 1fr; max-width: 30; margin-left: 19; }
    FieldRow .pick #label { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, key: str, value: str = "", *, label: str | None = None):
        super().__init__(classes="field-row")
        self.key = key
        self.value = value
        self.label = label or key

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label)
            choices = choices_of(self.key)
            if choices:
                yield Select([(c, c) for c in choices], value=self.value if self.value in choices else choices[0],
                             allow_blank=False, compact=True, id=f"field-{self.key}")
            else:
                yield Input(self.value, compact=True, id=f"field-{self.key}", select_on_focus=True)
        if self.key in ROLE_LABELS:
            yield Select([], prompt="ladder: det / stoch SR", compact=True, classes="pick", id=f"pick-{self.key}")
            yield Static("", classes="info", id=f"info-{self.key}")
        yield Static(help_of(self.key), classes="help")
