"""Once per incident, one message per burst: the alert sensor's memory, kept in its cursor.

An incident opens with its first failing member (a file failing a blocking check,
a layer going stale) and stays open until every member is healthy again: it pages
once, members that fail after that are named in a follow-up ("still failing, now
also on ..."), never a second page, and the last one healing sends "resolved".
Notices (an opened incident, members that joined it, a resolution, a quarantined or
stuck file, a failed run) wait in a batch until nothing new has come for
``group_seconds``, so a burst of thirty bad files is one message, however the
burst's loads are spread in time. An incident healed before its notice went out
pages nobody.
"""

import json
from dataclasses import asdict, dataclass, field

from platform_assets.alerts.events import Finding

MAX_MEMBERS = 200  # files named per incident; the count goes on
SAMPLED = 5  # failing members whose failing-row samples are kept


@dataclass
class AlertState:
    after: int | None = None  # event log storage id read up to
    incidents: dict[str, dict] = field(default_factory=dict)
    batch: list[dict] = field(default_factory=list)
    batch_started: float | None = None
    batch_touched: float | None = None
    outbox: dict[str, list[dict]] = field(default_factory=dict)  # channel id -> messages not delivered yet

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "AlertState":
        return cls(**json.loads(cursor)) if cursor else cls()

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def take(self, found: Finding, now: float, log) -> None:
        """Fold one finding into the incidents and the batch."""
        if found.incident is None:
            self._notice({"notice": found.kind, **found.detail}, now)
        elif found.healthy:
            self._heal(found, now, log)
        else:
            self._fail(found, now, log)

    def _fail(self, found: Finding, now: float, log) -> None:
        incident = self.incidents.get(found.incident)
        if incident is None:
            incident = self.incidents[found.incident] = {
                "kind": found.kind, "opened": now, "notified": False, "failing": {}, "ever": 0, "first": []}
            self._notice({"notice": "opened", "incident": found.incident}, now)
        failing = incident["failing"]
        known = found.member in failing
        # the cursor stays small however many files fail: failing-row samples of the first few only
        position = list(failing).index(found.member) if known else len(failing)
        failing[found.member] = found.detail if position < SAMPLED else {
            k: v for k, v in found.detail.items() if k != "sample"}
        if known:
            return
        incident["ever"] += 1
        if len(incident["first"]) < MAX_MEMBERS:
            incident["first"].append(found.member)
        if incident["notified"]:
            log.info(f"{found.incident}: {found.member or 'the table'} fails too; it is named in a follow-up")
            self._notice({"notice": "joined", "incident": found.incident, "member": found.member}, now)
        else:
            self.batch_touched = now  # the burst is still growing

    def _heal(self, found: Finding, now: float, log) -> None:
        incident = self.incidents.get(found.incident)
        if incident is None or found.member not in incident["failing"]:
            return
        del incident["failing"][found.member]
        if incident["failing"]:
            log.info(f"{found.incident}: {found.member or 'the table'} is healthy again; "
                     f"{len(incident['failing'])} still failing")
            return
        del self.incidents[found.incident]
        if incident["notified"]:
            self._notice({"notice": "resolved", "incident": found.incident, "kind": incident["kind"],
                          "opened": incident["opened"], "members": incident["first"], "ever": incident["ever"],
                          **found.detail}, now)
        else:
            self.batch = [n for n in self.batch if n.get("incident") != found.incident or n["notice"] != "opened"]
            if not self.batch:
                self.batch_started = self.batch_touched = None
            log.info(f"{found.incident}: healthy again before its alert went out; nobody is paged")

    def _notice(self, notice: dict, now: float) -> None:
        self.batch.append(notice)
        self.batch_started = self.batch_started or now
        self.batch_touched = now

    def burst_over(self, now: float, group_seconds: float) -> bool:
        """Nothing new for ``group_seconds``, or the batch has waited ten times that (a steady trickle)."""
        if not self.batch:
            return False
        return now - self.batch_touched >= group_seconds or now - self.batch_started >= 10 * group_seconds

    def close_batch(self) -> tuple[list[dict], dict[str, dict]]:
        """The batch's notices and the open incidents they speak of, leaving an empty batch.

        Incidents opened are marked notified; members that joined one are gathered into one
        notice per incident, leaving out those healthy again by now.
        """
        batch, self.batch, self.batch_started, self.batch_touched = self.batch, [], None, None
        notices, joined = [], {}
        for notice in batch:
            if notice["notice"] != "joined":
                notices.append(notice)
                continue
            still = self.incidents.get(notice["incident"], {}).get("failing", {})
            if notice["member"] in still:
                if notice["incident"] not in joined:
                    joined[notice["incident"]] = {"notice": "joined", "incident": notice["incident"], "members": []}
                    notices.append(joined[notice["incident"]])
                joined[notice["incident"]]["members"].append(notice["member"])
        spoken_of = {n["incident"]: self.incidents[n["incident"]] for n in notices
                     if n["notice"] in ("opened", "joined")}
        for notice in notices:
            if notice["notice"] == "opened":
                spoken_of[notice["incident"]]["notified"] = True
        return notices, spoken_of
