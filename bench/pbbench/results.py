"""What the items report: the sections of RESULTS.md, the summary rows, the facts for the analysis.

Items append here rather than return text, so that main can write RESULTS.md and README.md once
at the end from everything that ran, whatever --only selected. The helpers fix the table and
number formats that every item shares.
"""


FACTS = {}  # figures the analysis at the end explains the misses with
SECTIONS = []   # (title, markdown text)
SUMMARY = []    # (item, what, result, target, verdict)


def section(title, text):
    SECTIONS.append((title, text))
    print(f"\n## {title}\n\n{text}\n", flush=True)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def verdict(ok):
    return "met" if ok else "**missed**"


def rfmt(x, threshold):
    """x with 2 decimals, or 3 when 2 would round it onto the threshold it misses or meets."""
    return f"{x:.3f}" if f"{x:.2f}" == f"{threshold:.2f}" else f"{x:.2f}"


def fmt(x, nd=2):
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return f"{x:.{nd}f}"
