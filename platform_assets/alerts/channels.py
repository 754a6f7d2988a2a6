"""Where alerts go: apprise URLs from one setting, each channel with its own queue of undelivered messages.

``PLATFORM_ALERT_URLS`` holds apprise URLs separated by spaces (``mailtos://``,
``slack://``, ``json://``, ...); ``${VAR}`` in them is read from the environment, so
passwords and tokens stay out of committed files. A channel that is down keeps its
messages, in order, for the next tick; the others do not wait for it. What it keeps
is bounded in count and bytes: beyond that the oldest go, and one notice at the head
of its queue counts them, so the channel hears of them when it is back.
"""

import hashlib
import logging
import os

import apprise

from platform_assets.alerts.messages import PREFIX

# per channel: older undelivered messages are dropped (counted, and logged) beyond either
MAX_QUEUED = 50
MAX_QUEUED_BYTES = 128 * 1024


class Channel:
    def __init__(self, url: str):
        self.id = hashlib.sha256(url.encode()).hexdigest()[:12]
        self._apprise = apprise.Apprise()
        self.valid = self._apprise.add(os.path.expandvars(url))
        # the URL as it may be logged: apprise masks passwords and tokens
        self.name = self._apprise[0].url(privacy=True) if self.valid else url.split("://")[0] + "://..."

    def send(self, message: dict) -> str | None:
        """None when delivered, else why not (from apprise's own log of the attempt)."""
        with apprise.LogCapture(level=logging.WARNING) as captured:
            sent = self._apprise.notify(title=message["title"], body=message["body"],
                                        body_format=apprise.NotifyFormat.TEXT,
                                        notify_type=apprise.NotifyType(message["severity"]))
        if sent:
            return None
        lines = [line.split(" - ", 2)[-1] for line in captured.getvalue().splitlines() if line.strip()]
        return "; ".join(lines[-2:]) or "apprise gave no reason"


def _drop_oldest(queue: list[dict]) -> int:
    """Keep the queue within its bounds, oldest messages first out; count them in a notice at its head."""
    notice = queue.pop(0) if queue and "dropped" in queue[0] else None
    dropped = 0
    while queue and (len(queue) >= MAX_QUEUED or sum(_size(m) for m in queue) > MAX_QUEUED_BYTES):
        queue.pop(0)
        dropped += 1
    if notice or dropped:
        total = dropped + (notice["dropped"] if notice else 0)
        queue.insert(0, {"title": f"{PREFIX} {total} alert(s) were dropped while this channel was down",
                         "body": f"This channel could not be reached for a while; the {total} oldest alert(s) "
                                 "waiting for it were dropped. The alerts sensor's log in the UI has every alert.",
                         "severity": "warning", "dropped": total})
    return dropped


def _size(message: dict) -> int:
    return len(message["title"]) + len(message["body"])


def channels(urls: str) -> list[Channel]:
    return [Channel(url) for url in urls.split()]


def deliver(outbox: dict[str, list[dict]], configured: list[Channel], log) -> None:
    """Send each channel's queue oldest first; a failure leaves the rest of that queue for the next tick."""
    for channel in configured:
        queue = outbox.setdefault(channel.id, [])
        dropped = _drop_oldest(queue)
        if dropped:
            log.error(f"alert channel {channel.name}: dropped {dropped} undelivered message(s), the oldest; "
                      f"{len(queue) - 1} kept (at most {MAX_QUEUED} and {MAX_QUEUED_BYTES // 1024} KB)")
        while queue:
            try:
                failure = channel.send(queue[0])
            except Exception as error:  # a channel never breaks the sensor
                failure = f"{type(error).__name__}: {error}"
            if failure is not None:
                log.warning(f"alert channel {channel.name} failed ({failure}); {len(queue)} message(s) "
                            "kept for the next tick")
                break
            log.info(f"alert sent to {channel.name}: {queue.pop(0)['title']}")
    for gone in set(outbox) - {c.id for c in configured}:
        del outbox[gone]  # a channel taken out of the settings
