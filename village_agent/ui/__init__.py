"""The village agent's intake app (``village-agent run --ui 127.0.0.1:PORT``): a local web app
on the agent's laptop to find an item, read its guide, take a request with scans of the
materials and the applicant's authorisation, print the receipt, and follow the cases. It
works with no network: requests go to the outbox as from the command line.

Server-rendered pages in large Chinese text, usable by keyboard alone; every word from the
message catalog (messages/). See _app for the routes and how forms are protected."""

from relay.httpd import Handler
from relay.node import Node
from village_agent.ui._app import IntakeApp, takes_files


def intake_app(node: Node) -> Handler:
    """The request handler of the intake app for the village ``node``."""
    return IntakeApp(node).handle


__all__ = ["intake_app", "takes_files"]
