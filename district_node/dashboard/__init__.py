"""The district's web dashboard for the management office (电子监察): coverage of the network,
backlogs and sync lag, cases against their limits, on-time and satisfaction rates, with
drill-down to a township, a window, an item and a case. Read-only, behind a staff login."""

from district_node.dashboard._app import dashboard

__all__ = ["dashboard"]
