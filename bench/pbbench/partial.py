"""A run of some items only (`--only`): what it keeps of the earlier RESULTS.md and README section.

A partial run replaces the summary rows, the section and the analysis paragraph of the items it
ran, and keeps every other item's as the earlier run wrote them, with a line saying which run each
item's figures come from; so `bench/run --only 3 --readme` refreshes item 3 and nothing else. A
full run writes everything anew, as before.
"""
import re

from .config import ONLY

ITEMS = (1, 2, 3, 4, 5, 6)
ANALYSIS = "Why the missed targets are missed, and what would close them"
# The README rows of each item, by how their first cell starts (readme_rows in report.py).
README_ROWS = ((1, "grant rate"), (2, "RSS"), (2, "start-up to READY"), (3, "added start time"),
               (4, "requests/s"), (5, "failed requests, rolling"), (6, "failed requests, kill"), (6, "…"))


def is_partial():
    return set(ONLY) != set(ITEMS)


def items_text(items):
    items = sorted(items)
    return ("item " if len(items) == 1 else "items ") + ", ".join(str(i) for i in items)


def _row_item(line):
    """The item of a summary row `| N | …`."""
    return int(line.split("|")[1])


def _paragraph_items(paragraphs):
    """The item of each analysis paragraph (`(item N)`; one without follows the one before)."""
    item, out = 0, []
    for p in paragraphs:
        m = re.search(r"\(item (\d)\)", p)
        item = int(m.group(1)) if m else item
        out.append(item)
    return out


def merge_results(path, head, summary, sections):
    """RESULTS.md from this run's HEAD, SUMMARY table lines and SECTIONS [(title, text)], with the
    other items taken from the earlier file at PATH. Returns (head, summary lines, sections)."""
    text = open(path).read()
    parts = text.split("\n## ")
    old_heads = [p for p in parts[0].strip().split("\n\n")[2:] if p.strip()]
    old_rows, old_sections = [], []
    for part in parts[1:]:
        title, _, body = part.partition("\n\n")
        if title == "Summary":
            old_rows = [line for line in body.splitlines() if re.match(r"\| \d \|", line)]
        else:
            old_sections.append((title, body.strip("\n")))
    ran = set(ONLY)

    # Heads: this run's for its items; each earlier head for whichever of its items were not rerun.
    heads = [f"{items_text(ran).capitalize()} (`bench/run --only {','.join(map(str, sorted(ran)))}`): {head}"]
    for h in old_heads:
        m = re.match(r"Items? ([\d, ]+) \(", h)
        items = {int(i) for i in m.group(1).split(",")} if m else set(ITEMS)
        kept = items - ran
        if kept:
            body = h.split(": ", 1)[1] if m else h
            heads.append(f"{items_text(kept).capitalize()} (an earlier run): {body}")

    rows = []
    for item in ITEMS:
        rows += [r for r in summary if _row_item(r) == item] if item in ran else \
            [r for r in old_rows if _row_item(r) == item]

    new = dict(sections)
    merged = []
    for item in ITEMS:
        source = sections if item in ran else old_sections
        merged += [(t, b) for t, b in source if t.startswith(f"{item}. ")]
    old_par = dict(old_sections).get(ANALYSIS, "").split("\n\n")
    new_par = new.get(ANALYSIS, "").split("\n\n")
    paragraphs = [(i, p) for i, p in zip(_paragraph_items(old_par), old_par) if p and i not in ran]
    paragraphs += [(i, p) for i, p in zip(_paragraph_items(new_par), new_par) if p]
    if paragraphs:
        merged.append((ANALYSIS, "\n\n".join(p for _, p in sorted(paragraphs, key=lambda x: x[0]))))
    return "\n\n".join(heads), rows, merged


def _readme_item(line):
    what = line.split("|")[1].strip()
    return next((i for i, start in README_ROWS if what.startswith(start)), None)


def merge_readme(old_block, rows, date, machine):
    """The README section from this run's table ROWS (markdown lines) for its items and the earlier
    OLD_BLOCK's rows for the others; the earlier block's head notes which items are from this run,
    of DATE on MACHINE."""
    lines = old_block.strip("\n").split("\n")
    table_at = next(i for i, line in enumerate(lines) if line.startswith("| what"))
    head, header, old_rows = lines[:table_at], lines[table_at:table_at + 2], lines[table_at + 2:]
    ran = set(ONLY)
    merged, last = [], None
    for item in ITEMS:
        if item in ran:
            merged += [r for r in rows if _readme_item(r) == item]
        else:
            for r in old_rows:
                last = _readme_item(r) or last  # a row no prefix names stays with the one above
                if last == item:
                    merged.append(r)
    note = (f" ({items_text(ran)}: {date}, {machine}, from `bench/run --only "
            f"{','.join(map(str, sorted(ran)))} --readme`)")
    text = "\n".join(head)
    # The note of an earlier partial run may hold parentheses of its own (a CPU's "(R)").
    date_note = r"(Date: [\d-]+)( \((?:[^()]|\([^()]*\))*\))?\."
    text = re.sub(date_note, lambda m: m.group(1) + note + ".", text, count=1)
    return text + "\n" + "\n".join(header + merged) + "\n"
