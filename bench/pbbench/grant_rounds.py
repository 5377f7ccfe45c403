"""Item 1's comparisons: per-round ratios of grant rates between servers measured in the same
rounds, their medians and spreads, and the summary rows they decide.

A round runs every server once with the same client, so the ratio of two servers within a round
cancels most of what the shared machine does to both; the median of those ratios is the result,
and every round's value is shown beside it.
"""
from .config import BASELINE
from .procstat import median
from .results import SUMMARY, rfmt, table, verdict

ONE, THOUSAND = "portbinder", "portbinder, 1,000 bindings"

# (who, against whom, target or None, what the summary calls it)
COMPARED = [
    (ONE, "fdserver_min.c", 0.9, "grant rate, {c}, vs fdserver_min.c"),
    (ONE, "fdserver.py", 1.3, "grant rate, {c}, vs fdserver.py (gist)"),
    (THOUSAND, ONE, 0.9, "grant rate, {c}, daemon serving 1,000 bindings vs 1 binding (same build)"),
    (THOUSAND, "fdserver_min.c", None, "(beside it) grant rate, {c}, daemon serving 1,000 bindings, vs fdserver_min.c"),
]


def per_round(res, who, other, t):
    return [a["rate"] / b["rate"] for a, b in zip(res[(who, t)], res[(other, t)])]


def comparisons(before):
    """What is compared: the targets, then this build against the baseline's (if any)."""
    out = list(COMPARED)
    for name in before:
        mine = THOUSAND if name.startswith(THOUSAND) else ONE
        out.append((mine, name, None, f"(beside it) grant rate, {{c}}, {mine}: this build vs {BASELINE[0]}"))
    return out


def summary_rows(res, cpu, before):
    """Computes {(clients, who, other): (median, min, max, per round)} and the CPU-per-grant ratios,
    and appends the summary rows."""
    ratios = {}
    for t in (1, 4):
        clients = f"{t} client{'s' if t > 1 else ''}"
        for who, other, target, what in comparisons(before):
            rounds = per_round(res, who, other, t)
            if not rounds:
                continue
            ratios[(t, who, other)] = (median(rounds), min(rounds), max(rounds), rounds)
            m = ratios[(t, who, other)][0]
            if target is None:
                SUMMARY.append((1, what.format(c=clients), f"{m:.2f}x", "(no target)", ""))
            else:
                SUMMARY.append((1, what.format(c=clients), f"{rfmt(m, target)}x", f"≥ {target}x",
                                verdict(m >= target)))
        for who in (ONE, THOUSAND):
            ratios[(t, who, "cpu")] = median(cpu[(who, t)]) / median(cpu[("fdserver_min.c", t)])
    return ratios


def rounds_text(res, cpu, before):
    """The ratios as a table: median [min–max], then every round's value, in round order."""
    rows = []
    for t in (1, 4):
        for who, other, _target, _what in comparisons(before):
            rounds = per_round(res, who, other, t)
            if not rounds:
                continue
            rows.append([t, f"{who} / {other}", f"{median(rounds):.2f} [{min(rounds):.2f}–{max(rounds):.2f}]",
                         ", ".join(f"{x:.2f}" for x in rounds)])
        for who in (ONE, THOUSAND):
            rows.append([t, f"{who}: server CPU per grant / fdserver_min.c's",
                         f"{median(cpu[(who, t)]) / median(cpu[('fdserver_min.c', t)]):.2f}", ""])
    return ("Grant rates as ratios, median of the per-round ratios [min–max], and each round's ratio:\n\n"
            + table(["clients", "ratio", "median [min–max]", "per round"], rows))
