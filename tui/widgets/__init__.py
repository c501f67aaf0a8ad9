"""Widgets of the launcher's screens: the SR plot, the runs table, the findings list and the
editable config fields."""
