"""The window staff console (窗口工作台) on a node's web server: the queue of the signed-in
staff member's window with each case's deadline light, one case with its materials and
history, and the actions the casework rules let them take, each recorded against them. A
township serves it at its root; the district hub under /desk/, beside the dashboard."""

from relay.deskweb._app import Desk, desk

__all__ = ["Desk", "desk"]
