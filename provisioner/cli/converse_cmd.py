"""`provisioner converse APP BOT TEXT`: register the sender, send a bot a message as that
user, and on the emulator print its reply and what Dify recorded (steps 2, 4 and 5 of
RongCloud's bot guide)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provisioner.cli.options import bots_dir_option, env_file_option
from provisioner.cli.output import echo_error
from provisioner.converse import DEFAULT_SENDER, Conversed, converse
from provisioner.workspace import load_each


@click.command("converse")
@click.argument("app")
@click.argument("bot")
@click.argument("text")
@bots_dir_option
@env_file_option
@click.option(
    "--from",
    "sender",
    default=DEFAULT_SENDER,
    show_default=True,
    help="The user who sends the message (RongCloud's fromUserId); registered first.",
)
@click.option(
    "--name",
    "sender_name",
    default=None,
    help="The sender's name when it is registered (default: its userId).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=600),
    default=60.0,
    show_default=True,
    help="On the emulator: seconds to wait for the bot's integrations.",
)
def command(
    app: str,
    bot: str,
    text: str,
    bots_dir: Path,
    sender: str,
    sender_name: str | None,
    timeout: float,
) -> int:
    """Send TEXT to BOT (its userId) of APP as a user, through the app's endpoint.

    The sender is registered first (/user/getToken.json, the guide's step 2; its token is
    not shown). On the emulator (endpoint: local, or a loopback emulator), wait for what the
    message fires (webhooks, Dify through the stand-in), print the bot's reply and how many
    messages Dify recorded in the conversation; run it again and the reply shows the
    conversation kept. On the real service, print the message id: the reply goes to the
    user's clients.

    Exit status: 0 when sent (and, on the emulator, nothing it fired failed), 1 otherwise.

    \b
    Examples:
      provisioner converse demo assistant-bot "Hello"
      provisioner converse demo assistant-bot "Do you remember me?"
      provisioner converse staging helper-bot "ping" --from qa-user
    """
    env = dict(os.environ)
    [loaded] = load_each([app], bots_dir, env=env)
    if loaded.error is not None:
        raise loaded.error
    assert loaded.app is not None
    sent = converse(
        loaded.app,
        bot,
        text,
        sender=sender,
        sender_name=sender_name,
        env=env,
        timeout=timeout,
        base_dir=Path.cwd(),
    )
    _print(sent, timeout)
    return 1 if sent.failed else 0


def _print(sent: Conversed, timeout: float) -> None:
    click.echo(f"Registered {sent.sender} (/user/getToken.json; the token is not shown).")
    click.echo(f"Sent to {sent.bot} as {sent.sender} (message {sent.message_uid}).")
    if not sent.on_emulator:
        click.echo(
            f"The reply goes to {sent.sender}'s RongCloud clients (an app logged in as"
            f" {sent.sender}), not here; Dify's logs show the conversation too."
        )
        return
    for reply in sent.replies:
        click.echo(f"{sent.bot}: {reply}")
    if sent.dify_messages is not None:
        count = sent.dify_messages
        plural = "message" if count == 1 else "messages"
        click.echo(f"Dify: {count} {plural} recorded in one conversation.")
    for delivery in sent.deliveries:
        line = f"{delivery.integration} {delivery.target}: {delivery.detail}"
        if delivery.status == "failed":
            echo_error(f"{delivery.integration} {delivery.target} failed: {delivery.detail}")
        elif delivery.status == "skipped":
            click.echo(f"note: {line}")
    if sent.timed_out:
        echo_error(
            f"the bot's integrations did not finish within {timeout:g} s",
            hint="raise --timeout, or check the emulator's /_emulator/conversation",
        )
    elif not sent.replies and not sent.failed:
        if any(delivery.status == "skipped" for delivery in sent.deliveries):
            click.echo("(no reply: some of the bot's integrations were not called, see the notes)")
        else:
            click.echo("(no reply: none of the bot's integrations stores one)")
