"""The launch screen's editable config fields: one row per key (name, value, help text from
`engine.config.schema`), an `Input` for free values and a `Select` for keys with fixed choices.
A field's widget id is `field-<key>`; a checkpoint row also has an `info-<key>` line that shows
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
            yield Static("", classes="info", id=f"info-{self.key}")
        yield Static(help_of(self.key), classes="help")
