"""The launcher's screens: `launch` (pick, edit, validate, launch), `monitor` (follow runs),
and the modal dialogs (confirm, quit, help, summary, compare)."""
