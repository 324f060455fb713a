"""A postmortem draft as Markdown: its sections in the order a reader expects them, every
citation a link to the record's line under *Evidence cited*."""

from __future__ import annotations

from collections.abc import Mapping

from diagnose.postmortem import drafting, wording
from diagnose.postmortem import facts as facts_


def markdown(postmortem: drafting.Postmortem, *, images: Mapping[str, str] | None = None) -> str:
    """The draft as Markdown; ``images`` maps plot names to the file each was written to."""
    images = images or {}
    pm = postmortem
    impact = pm.impact
    out = [f"# Postmortem draft: {pm.title}", ""]
    out += [f"Run `{pm.run_id}`. Drafted from the run's stored evidence; unknowns are marked."]
    out += ["", "## Summary", "", *(f"- {line}" for line in pm.summary)]
    out += ["", "## Impact", ""]
    out.append(f"- Onset: {wording.when(impact.onset)}")
    ended = f" ({impact.end_kind})" if impact.end_kind != facts_.UNKNOWN else ""
    out.append(f"- End: {wording.when(impact.end)}{ended}")
    out.append(f"- Duration: {impact.duration}")
    out += [f"- Affected requests: {line}" for line in impact.requests_text]
    out.append(f"- Error budget burned: {impact.budget}")
    out += ["", "## Timeline (UTC)", ""]
    out += [
        f"- {wording.when(line.at)}: {line.what} — [{line.ref}](#{wording.anchor(line.ref)})"
        for line in pm.timeline
    ] or ["- unknown: nothing in the stored data could be placed in time"]
    out += ["", "## Root cause", "", *pm.root_cause]
    out += ["", "## Contributing factors", "", *(f"- {line}" for line in pm.contributing)]
    out += ["", "## What went well", "", *(f"- {line}" for line in pm.went_well)]
    out += ["", "## What went badly", "", *(f"- {line}" for line in pm.went_badly)]
    out += [
        "",
        "## Action items",
        "",
        *(f"- [ ] {item} (owner: unassigned)" for item in pm.actions),
    ]
    out += ["", "## Plots", ""]
    for plot in pm.plots:
        if plot.name in images:
            out += [
                f"![{plot.title}]({images[plot.name]})",
                "",
                f"{plot.title}, from [{plot.evidence}](#{wording.anchor(plot.evidence)}).",
                "",
            ]
    if not any(p.name in images for p in pm.plots):
        out += ["No plot: no series of the root or the alerting service in the evidence.", ""]
    out += ["## Evidence cited", ""]
    out += [
        f'- <a id="{wording.anchor(ref)}"></a>`{ref}`: {what}' for ref, what in pm.cited.items()
    ]
    return "\n".join(out).rstrip() + "\n"
