"""What people read: one message per burst, each part saying what, where, how bad, and a link into the UI."""

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from platform_assets.excerpts import excerpt

PREFIX = "[platform_assets]"
LAYER_ORDER = {layer: i for i, layer in enumerate(("raw", "cleaned", "features", "model"))}  # data's flow
FILES_NAMED = 10  # files listed in one message; the rest are counted
SAMPLES = 2  # failing-row samples shown per message
TITLE_CHARS, BODY_CHARS = 250, 8000  # a burst of many notices is cut there, saying how much was left out


@dataclass(frozen=True)
class Directory:
    """What the messages need to know about the code location: links, owners, what each check means."""

    ui_url: str
    owners: dict[str, list[str]]  # asset -> owners
    rules: dict[str, str]  # "asset:check" -> the check's description
    freshness_hours: float

    def asset_link(self, asset: str, **query) -> str:
        path = "/".join(quote(part, safe="") for part in asset.split("/"))
        return f"{self.ui_url}/assets/{path}" + (f"?{urlencode(query)}" if query else "")

    def check_link(self, asset: str, check: str) -> str:
        return self.asset_link(asset, view="checks", checkDetail=check)

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url}/runs/{run_id}"

    def owners_line(self, assets) -> str:
        owners = sorted({o for a in assets for o in self.owners.get(a, [])})
        return f"Owners: {', '.join(owners)}" if owners else ""


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    severity: str  # failure | warning | success (apprise's notify types)

    @classmethod
    def bounded(cls, title: str, body: str, severity: str) -> "Message":
        return cls(excerpt(title, line_chars=TITLE_CHARS), excerpt(body, total_chars=BODY_CHARS), severity)

    def as_dict(self) -> dict:
        return {"title": self.title, "body": self.body, "severity": self.severity}


def compose(notices: list[dict], incidents: dict[str, dict], directory: Directory) -> Message:
    """One message for a batch: a single notice speaks for itself, several get a summary title."""
    parts = [_part(n, incidents, directory) for n in notices]
    if len(parts) == 1:
        headline, body, severity = parts[0]
        return Message.bounded(f"{PREFIX} {headline}", body, severity)
    problems = sum(1 for _, _, severity in parts if severity != "success")
    resolved = len(parts) - problems
    counts = ", ".join(s for s in (f"{problems} problem(s)" if problems else "",
                                   f"{resolved} resolved" if resolved else "") if s)
    headlines = "; ".join(headline for headline, _, _ in parts[:3]) + ("; ..." if len(parts) > 3 else "")
    title = f"{PREFIX} {counts}: {headlines}"
    body = "\n\n".join(f"{i}. {headline}\n{body}" for i, (headline, body, _) in enumerate(parts, 1))
    severity = "failure" if any(s == "failure" for _, _, s in parts) else parts[0][2]
    return Message.bounded(title, body, severity)


def _part(notice: dict, incidents: dict[str, dict], directory: Directory) -> tuple[str, str, str]:
    kind = notice["notice"]
    if kind == "opened":
        incident = incidents[notice["incident"]]
        return (_check_failed if incident["kind"] == "check_failed" else _stale)(incident, directory)
    if kind == "joined":
        incident = incidents[notice["incident"]]
        return (_still_failing if incident["kind"] == "check_failed" else _still_stale)(
            incident, notice["members"], directory)
    if kind == "resolved":
        return _resolved(notice, directory)
    return {"quarantined": _quarantined, "stuck": _stuck, "run_failed": _run_failed}[kind](notice, directory)


def _check_failed(incident: dict, directory: Directory) -> tuple[str, str, str]:
    failing = list(incident["failing"].values())
    first = failing[0]
    asset, check = first["asset"], first["check"]
    files = [d["file"] for d in failing if d["file"]]
    where = (files[0] if len(files) == 1 else f"{len(files)} files") if files else "the latest rows"
    lines = [f"The blocking check {check} on {asset} failed on {where}.",
             f"Rule: {directory.rules.get(f'{asset}:{check}', check)}",
             "The layers downstream do not take these rows until the check passes (land a corrected file).", ""]
    for i, detail in enumerate(failing[:FILES_NAMED]):
        lines.append(f"- {detail['file'] or asset}: {_how_bad(detail)}")
        if i < SAMPLES and detail.get("sample"):
            lines += ["  " + row for row in detail["sample"].splitlines()]
    if len(failing) > FILES_NAMED:
        lines.append(f"- and {len(failing) - FILES_NAMED} more file(s)")
    lines += ["", directory.owners_line([asset]), f"Check: {directory.check_link(asset, check)}"]
    if len(failing) == 1 and first.get("run_id"):
        lines.append(f"Run: {directory.run_link(first['run_id'])}")
    return f"Blocking check failed: {asset} {check} on {where}", _text(lines), "failure"


def _still_failing(incident: dict, members: list[str], directory: Directory) -> tuple[str, str, str]:
    """Files that joined an incident already paged: named, as a warning, not a second page."""
    details = [incident["failing"][m] for m in members]
    asset, check = details[0]["asset"], details[0]["check"]
    where = members[0] if len(members) == 1 else f"{len(members)} more files"
    lines = [f"The blocking check {check} on {asset} fails on {where} too; its incident is still open "
             f"({len(incident['failing'])} file(s) failing). It was alerted once; this names the files since.", ""]
    lines += [f"- {d['file'] or asset}: {_how_bad(d)}" for d in details[:FILES_NAMED]]
    if len(details) > FILES_NAMED:
        lines.append(f"- and {len(details) - FILES_NAMED} more file(s)")
    lines += ["", directory.owners_line([asset]), f"Check: {directory.check_link(asset, check)}"]
    return f"Still failing: {asset} {check}, now also on {where}", _text(lines), "warning"


def _how_bad(detail: dict) -> str:
    count, percent, tested = detail.get("failing_rows"), detail.get("percent"), detail.get("rows_tested")
    if count is None:
        return f"check {str(detail.get('outcome') or 'failed').lower()}"
    return (f"{count:,} failing row(s)" + (f" of {tested:,}" if tested else "")
            + (f" ({percent:.2f}%)" if percent is not None else ""))


def _in_flow_order(assets) -> list[str]:
    """Assets named in the order data flows through them (raw, cleaned, features, model), others last."""
    return sorted(assets, key=lambda a: (LAYER_ORDER.get(a.split("/")[0], len(LAYER_ORDER)), a))


def _stale(incident: dict, directory: Directory) -> tuple[str, str, str]:
    assets = _in_flow_order(incident["failing"])
    lines = [f"No new data in {', '.join(assets)} for more than {_hours(directory.freshness_hours)} "
             "(its freshness policy).",
             "Is a daily file missing from landing/, stopped by a check, or is a run stuck?", "",
             directory.owners_line(assets)] + [f"Asset: {directory.asset_link(a)}" for a in assets]
    return f"Stale data: {', '.join(assets)}", _text(lines), "warning"


def _still_stale(incident: dict, members: list[str], directory: Directory) -> tuple[str, str, str]:
    """Layers that went stale after the stale-data page (often downstream of the first): a warning."""
    assets, stale = _in_flow_order(members), _in_flow_order(incident["failing"])
    lines = [f"No new data in {', '.join(assets)} either; the stale-data incident is still open "
             f"({', '.join(stale)}). It was alerted once; this names the layers since.", "",
             directory.owners_line(assets)] + [f"Asset: {directory.asset_link(a)}" for a in assets]
    return f"Still stale: now also {', '.join(assets)}", _text(lines), "warning"


def _resolved(notice: dict, directory: Directory) -> tuple[str, str, str]:
    lasted = _duration(notice["at"] - notice["opened"])
    if notice["kind"] == "stale":
        assets = _in_flow_order(notice["members"])
        lines = [f"{', '.join(assets)} {'is' if len(assets) == 1 else 'are'} fresh again (stale for {lasted}).",
                 directory.owners_line(assets)] + [f"Asset: {directory.asset_link(a)}" for a in assets]
        return f"Resolved: fresh data in {', '.join(assets)}", _text(lines), "success"
    asset, check = notice["asset"], notice["check"]
    files = [m for m in notice["members"] if m]
    which = (files[0] if len(files) == 1 else f"all {notice['ever']} files") if files else "the latest rows"
    lines = [f"The blocking check {check} on {asset} passes again on {which} (failing for {lasted}); "
             "the layers downstream take the rows again.",
             directory.owners_line([asset]), f"Check: {directory.check_link(asset, check)}"]
    return f"Resolved: {asset} {check} passes on {which}", _text(lines), "success"


def _quarantined(notice: dict, directory: Directory) -> tuple[str, str, str]:
    link = (f"Run: {directory.run_link(notice['run_id'])}" if notice.get("run_id")
            else f"Asset: {directory.asset_link(notice['asset'], view='events')}")
    lines = [f"{notice['file']} was quarantined; nothing of it was loaded.", f"Reason: {notice['reason']}",
             "It is in quarantine/ with its reason; land a corrected file under the same name.",
             directory.owners_line([notice["asset"]]), link]
    return f"File quarantined: {notice['file']}", _text(lines), "failure"


def _stuck(notice: dict, directory: Directory) -> tuple[str, str, str]:
    lines = [f"{notice['file']} is still in landing/: {notice['reason']}.",
             directory.owners_line([notice["asset"]]),
             f"Asset: {directory.asset_link(notice['asset'], view='events')}"]
    return f"File stuck in landing: {notice['file']}", _text(lines), "failure"


def _run_failed(notice: dict, directory: Directory) -> tuple[str, str, str]:
    where = f" in step {notice['step']}" if notice.get("step") else ""
    lines = [f"Run {notice['run_id'][:8]} of {notice['job']} failed{where} "
             f"(attempt {notice['attempt']}, no retry left): {notice['error'] or 'no error message'}",
             f"Run: {directory.run_link(notice['run_id'])}"]
    return f"Run failed: {notice['job']}{where}", _text(lines), "failure"


def _text(lines: list[str]) -> str:
    return "\n".join(lines).strip()


def _hours(hours: float) -> str:
    return f"{hours:g} h" if hours >= 1 else f"{hours * 60:g} min"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min" if seconds >= 60 \
        else f"{seconds:.0f} s"
