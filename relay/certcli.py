"""The ``renew`` command townships and villages share: a new certificate now, over the link,
or the key and certificate of a new bundle (an expired or revoked node enrolled again)."""

from pathlib import Path
from typing import Annotated

import typer

from casework import CaseworkError, InvalidInput
from messages import t
from relay.config import NodeConfig
from relay.console import AsJson, Home, emit, out, read_bundle, refused, run, with_node
from relay.joining import reinstall_credentials
from relay.node import Node
from relay.pki import Validity, validity_of
from relay.renewal import Renewer
from relay.tls import Credentials


def add_renew_command(app: typer.Typer, role: str) -> None:
    @app.command(help=t("cli.cmd.renew"))
    def renew(
        home: Home,
        bundle: Annotated[
            Path | None,
            typer.Option(help=t("cli.opt.renew_bundle")),
        ] = None,
        as_json: AsJson = False,
    ) -> None:
        """Renew this node's certificate now, over its link (a new key, signed by the district);
        or install the key and certificate of a new bundle. A running server takes them up
        at its next connection."""
        if bundle is None:
            expires = run(with_node(home, _renew)).expires
        else:
            new = read_bundle(bundle, role)
            try:
                config = NodeConfig.load(home)
                reinstall_credentials(home, config, new)
            except CaseworkError as exc:
                refused(exc)
            expires = validity_of(config.tls.credentials(home).cert).expires
        emit(
            {"certificate_expires": expires.isoformat()},
            as_json,
            lambda: out.print(t("cli.renewed", expires=expires.isoformat()), markup=False),
        )


async def _renew(node: Node) -> Validity:
    upstream = node.upstream()
    try:
        if not isinstance(upstream.security, Credentials):
            raise InvalidInput(t("cli.no_certificate"))
        return await Renewer(node.home, node.config, upstream).renew()
    finally:
        await upstream.close()
