"""The app-wide style sheet: the focus ring. Every widget that can take the focus shows it in
the accent colour without moving the layout: one-line (compact) inputs, selects and buttons, the
runs table and scrolling panes get a bar on each side (`outline-left/right`, drawn over a
column of padding they always have); bordered widgets (the findings pane, the curve's box,
full-size inputs and buttons) get their border in the accent colour. tests/test_tui_focus.py
walks every screen's focus chain and checks each widget's ring."""

FOCUS_CSS = """
Input.-textual-compact { padding: 0 1; }
Select.-textual-compact > SelectCurrent { padding: 0 1; }
TextDialog VerticalScroll, DataTable { padding: 0 1; }

Input.-textual-compact:focus, Select.-textual-compact:focus > SelectCurrent, Button.-textual-compact:focus,
RunsTable:focus, VerticalScroll:focus, DataTable:focus {
    outline-left: outer $accent;
    outline-right: outer $accent;
}
FindingsList:focus { border: round $accent; }
#plot-box:focus-within { border: round $accent; }
Input:focus { border: tall $accent; }
Input.-textual-compact:focus { border: none !important; }
Button:focus { outline: tall $accent; }
Button.-textual-compact:focus { outline-top: none; outline-bottom: none; }
"""
