"""The ``web-user`` commands: who may sign in to a node's web pages (relay.web), the same on
the district (dashboard, staff console) and at a township (staff console)."""

import sys
from typing import Annotated

import typer

from casework import InvalidInput
from messages import t
from relay.config import CONFIG_FILE
from relay.console import AsJson, Home, emit, err, fail, out, refused, run, with_node
from relay.staff import names as roster_names
from relay.web import add_user, list_users, remove_user


def add_web_user_commands(app: typer.Typer, help_text: str, roster_only: bool = False) -> None:
    """``web-user add|remove|list`` on ``app``; ``help_text`` says what the users sign in to.
    With ``roster_only`` (a township: its only pages are the staff console) adding a user not on
    the roster warns that they cannot sign in yet."""
    web_user_app = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(web_user_app, name="web-user")

    @web_user_app.command("add", help=t("cli.cmd.web_user_add"))
    def web_user_add(
        home: Home,
        name: Annotated[str, typer.Option(help=t("cli.opt.login_name"))],
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help=t("cli.opt.password_stdin"))
        ] = False,
    ) -> None:
        """Add a web user, or set a new password for one (which ends their sessions)."""
        if not (home / CONFIG_FILE).exists():
            fail(t("cli.no_node", home=home))
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            again = t("cli.web_user.password_again")
            password = typer.prompt(t("cli.web_user.password"), hide_input=True, confirmation_prompt=again)
        try:
            new = add_user(home, name, password)
        except InvalidInput as exc:
            refused(exc)
        said = (
            t("cli.web_user.added", name=name.strip())
            if new
            else t("cli.web_user.new_password", name=name.strip())
        )
        out.print(said, markup=False)
        if roster_only and name.strip() not in run(with_node(home, roster_names)):
            err.print(
                t("cli.web_user.not_on_roster", name=name.strip()),
                markup=False,
                highlight=False,
            )

    @web_user_app.command("remove", help=t("cli.cmd.web_user_remove"))
    def web_user_remove(home: Home, name: Annotated[str, typer.Option(help=t("cli.opt.login_name"))]) -> None:
        """Remove a web user; their sessions end at once."""
        try:
            remove_user(home, name)
        except InvalidInput as exc:
            refused(exc)
        out.print(t("cli.web_user.removed", name=name), markup=False)

    @web_user_app.command("list", help=t("cli.cmd.web_user_list"))
    def web_user_list(home: Home, as_json: AsJson = False) -> None:
        """The web users and when each password was set."""
        try:
            users = list_users(home)
        except InvalidInput as exc:
            refused(exc)

        def human() -> None:
            for user in users:
                out.print(f"{user['name']}  {user['set_at']}", markup=False)

        emit(users, as_json, human)
