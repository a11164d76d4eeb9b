"""The plan as a pull-request comment: summary first, risk flags prominent, details folded.

GitHub rejects comments of 65,536 characters or more, so the comment is built from
self-contained blocks (every `<details>` and code fence opens and closes inside one block)
and packed into parts; each part starts with `<!-- meshc-plan part i/n -->`, which the
review workflow uses to find and update its comments.
"""

from __future__ import annotations

from typing import Any

from compiler.plan.mermaid import changed_graph
from compiler.plan.text import summary_line

GITHUB_COMMENT_LIMIT = 65_536
MARKER_PREFIX = "<!-- meshc-plan part"
_BUDGET = GITHUB_COMMENT_LIMIT - 2_000
"""Room left for the marker, a continuation line and GitHub's own accounting."""
_DIFF_BUDGET = 20_000
MAX_PARTS = 5
_MAX_FLAGS_SHOWN = 50
"""Most comments one plan posts; a bigger plan lists resources without their diffs."""


_NO_EDGES: dict[str, list[dict[str, str]]] = {"added": [], "removed": []}
"""A document written before the egress section existed has none."""


def marker(index: int, total: int) -> str:
    return f"{MARKER_PREFIX} {index}/{total} -->"


def render_markdown(
    doc: dict[str, Any], *, context: list[dict[str, str]] | None = None
) -> list[str]:
    """The comment parts, each below GitHub's limit, each starting with its marker.

    At most MAX_PARTS parts, so a huge change (a first plan against a broken base) does not
    flood the pull request: past that, resources are listed without their diffs, and if
    even that is too long the tail is left out with a note.
    """
    resources = doc["resources"] or []
    estimate = sum(min(len(r["diff"]), _DIFF_BUDGET) + 200 for r in resources)
    if estimate <= MAX_PARTS * _BUDGET:  # otherwise skip building diffs that cannot be posted
        parts = pack(_blocks(doc, context or [], diffs=True), budget=_BUDGET)
        if len(parts) <= MAX_PARTS:
            return parts
    blocks = _blocks(doc, context or [], diffs=False)
    dropped = 0
    while True:
        note = (
            [
                f"_… {dropped} more section(s) left out to keep this comment short; "
                "run `meshc plan --format markdown` locally for everything._\n\n"
            ]
            if dropped
            else []
        )
        parts = pack(blocks + note, budget=_BUDGET)
        if len(parts) <= MAX_PARTS or len(blocks) <= 1:
            return parts
        blocks = blocks[:-1]
        dropped += 1


def pack(blocks: list[str], *, budget: int) -> list[str]:
    """Greedily pack blocks into parts of at most `budget` characters (markers added)."""
    parts: list[list[str]] = [[]]
    size = 0
    for block in blocks:
        block = block if len(block) <= budget else _truncate(block, budget)
        if parts[-1] and size + len(block) > budget:
            parts.append([])
            size = 0
        parts[-1].append(block)
        size += len(block)
    total = len(parts)
    rendered = []
    for index, chunk in enumerate(parts, start=1):
        head = marker(index, total) + "\n"
        if index > 1:
            head += f"_meshc plan, continued ({index}/{total})_\n\n"
        rendered.append(head + "".join(chunk).rstrip() + "\n")
    return rendered


def _truncate(block: str, budget: int) -> str:
    """A block that alone exceeds a part: keep its start and close what it opened."""
    kept = block[: budget - 400]
    kept = kept[: kept.rfind("\n") + 1]
    closing = "\n… (cut to fit a GitHub comment; run `meshc plan` locally for the rest)\n"
    if kept.count("```") % 2:
        closing += "```\n"
    if kept.count("<details") > kept.count("</details>"):
        closing += "\n</details>\n"
    return kept + closing + "\n"


def _chunks(items: list[str], limit: int) -> list[list[str]]:
    """Split a long list so each block fits a comment part."""
    chunks: list[list[str]] = [[]]
    size = 0
    for item in items:
        if chunks[-1] and size + len(item) + 1 > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += len(item) + 1
    return chunks


def _blocks(doc: dict[str, Any], context: list[dict[str, str]], *, diffs: bool) -> list[str]:
    blocks = [_header(doc)]
    meaning = doc["meaning"]
    if meaning is None:
        return blocks
    graph = changed_graph(
        meaning["allowed"]["added"],
        meaning["allowed"]["removed"],
        context,
    )
    if graph is not None:
        blocks.append(
            "### Access graph (changed part)\n\n"
            "Green: allowed from now on · red, dashed: no longer allowed · plain: unchanged.\n\n"
            f"```mermaid\n{graph}```\n\n"
        )
    blocks.extend(_meaning_blocks(meaning))
    blocks.extend(_resource_blocks(doc["resources"], diffs=diffs))
    return blocks


def _header(doc: dict[str, Any]) -> str:
    lines = [f"## meshc plan: `{_rev(doc['base'])}` → `{_rev(doc['head'])}`", ""]
    if doc["refusals"]:
        lines.append(
            "> [!CAUTION]\n> **Refused**: head must not be applied "
            f"({len(doc['refusals'])} problem(s))."
        )
        lines.extend(f"> - {_inline(r)}" for r in doc["refusals"])
        lines.append("")
    for side in ("base", "head"):
        if not doc[side]["compiles"]:
            lines.extend(_broken(side, doc[side]))
    lines.append(f"**{summary_line(doc)}**")
    lines.append("")
    if doc["riskFlags"]:
        lines.append(f"> [!WARNING]\n> **Risk flags ({len(doc['riskFlags'])})**")
        shown = doc["riskFlags"][:_MAX_FLAGS_SHOWN]
        lines.extend(
            f"> - `{f['code']}`{' (info)' if f.get('severity') == 'info' else ''} "
            f"{_inline(f['message'])}"
            for f in shown
        )
        if len(doc["riskFlags"]) > len(shown):
            more = len(doc["riskFlags"]) - len(shown)
            lines.append(f"> - … and {more} more (`meshc plan --format json` lists them all)")
        lines.append("")
    elif doc["meaning"] is not None:
        lines.extend(["No risk flags.", ""])
    if doc["head"]["compiles"] and doc["head"]["findings"]:
        lines.extend(_findings("head's lint findings", doc["head"]))
    notes = [n for n in doc["notes"] if "does not compile" not in n]
    lines.extend(f"_Note: {_inline(n)}_\n" for n in notes)
    lines.append(f"<sub>evaluated at {doc['now']}</sub>\n\n")
    return "\n".join(lines)


def _rev(side: dict[str, Any]) -> str:
    return f"{side['ref']}@{side['commit'][:12]}" if side["commit"] else str(side["ref"])


def _broken(name: str, side: dict[str, Any]) -> list[str]:
    if name == "base":
        title = (
            "> [!IMPORTANT]\n> **base does not compile**: head's resources are shown as all new."
        )
    else:
        title = "> [!CAUTION]\n> **head does not compile**: nothing can be planned or applied."
    return [title, "", *_findings(f"{name} findings", side)]


def _findings(summary: str, side: dict[str, Any]) -> list[str]:
    lines = [f"<details><summary>{summary} ({len(side['findings'])})</summary>\n"]
    for f in side["findings"]:
        lines.append(
            f"- `{f['file']}:{f['line']}:{f['column']}` "
            f"**{f['severity']}[{f['code']}]** {_inline(f['message'])}"
        )
    lines.extend(["", "</details>", ""])
    return lines


def _meaning_blocks(meaning: dict[str, Any]) -> list[str]:
    blocks = []
    for title, edges in (
        ("Allowed access (what servers permit)", meaning["allowed"]),
        ("Effective access (declared calls that are allowed)", meaning["effective"]),
        ("Egress (calls outside the mesh, through Externals)", meaning.get("egress", _NO_EDGES)),
    ):
        items = [f"+ {e['text']}" for e in edges["added"]] + [
            f"- {e['text']}" for e in edges["removed"]
        ]
        count = f"+{len(edges['added'])} / -{len(edges['removed'])}"
        for index, chunk in enumerate(_chunks(items, _DIFF_BUDGET) if items else []):
            label = f"{title}: {count}" + (" (continued)" if index else "")
            blocks.append(_details(label, "```diff\n" + "\n".join(chunk) + "\n```", open_=True))
    for title, key in (
        ("Traffic", "traffic"),
        ("Resilience", "resilience"),
        ("Mesh: mTLS, default action, settings", "mesh"),
        ("Trust: CA anchors and issuer", "trust"),
    ):
        items = [f"- {_inline(c['text'])}" for c in meaning[key]]
        for index, chunk in enumerate(_chunks(items, _DIFF_BUDGET) if items else []):
            label = f"{title} ({len(items)})" + (" (continued)" if index else "")
            blocks.append(_details(label, "\n".join(chunk), open_=True))
    return blocks


def _resource_blocks(resources: list[dict[str, Any]] | None, *, diffs: bool) -> list[str]:
    if resources is None:
        return ["_Resources were not compared (see the notes above)._\n\n"]
    if not resources:
        return []
    counts = {
        a: sum(1 for r in resources if r["action"] == a) for a in ("created", "changed", "deleted")
    }
    blocks = [
        f"### Resources: {counts['created']} created, {counts['changed']} changed, "
        f"{counts['deleted']} deleted\n\n"
    ]
    if not diffs:
        items = [f"- {change['action']}: `{change['id']}`" for change in resources]
        for index, chunk in enumerate(_chunks(items, _DIFF_BUDGET)):
            label = "Changed objects (diffs left out: too many to post)"
            label += " (continued)" if index else ""
            blocks.append(_details(label, "\n".join(chunk)))
        return blocks
    for change in resources:
        diff = change["diff"]
        if len(diff) > _DIFF_BUDGET:
            diff = diff[:_DIFF_BUDGET] + "\n… (diff cut; run `meshc plan` locally for all of it)\n"
        fence = "````" if "```" in diff else "```"
        blocks.append(
            _details(
                f"{change['action']}: <code>{_html(change['id'])}</code>",
                f"{fence}diff\n{diff.rstrip()}\n{fence}",
            )
        )
    return blocks


def _details(summary: str, body: str, *, open_: bool = False) -> str:
    attribute = " open" if open_ else ""
    return f"<details{attribute}><summary>{summary}</summary>\n\n{body}\n\n</details>\n\n"


def _inline(text: str) -> str:
    """Text inside markdown prose: no raw HTML, no accidental formatting."""
    return _html(text).replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
