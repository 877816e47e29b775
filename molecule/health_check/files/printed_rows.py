"""The rows of a printed health report as a person reads them, against the report's JSON.

    printed_rows.py <printed.pdf> <report.json>

pdftotext -layout reads the page chromium printed. A row starts with its status word as displayed (the page
upper-cases it with CSS) followed by the first line of the check's name (a long name wraps in its cell).
Prints JSON {"overall": "FAIL", "rows": [...], "mismatches": [...]}: a mismatch is a row whose status or
name differs from the report's check at the same place, or a missing or extra row.
"""

import json
import re
import subprocess
import sys

text = subprocess.run(["pdftotext", "-layout", sys.argv[1], "-"], capture_output=True, text=True, check=True).stdout
with open(sys.argv[2], encoding="utf-8") as handle:
    report = json.load(handle)
overall = re.search(r"Overall:\s*(OK|WARN|FAIL)\b", text)
rows = []
for line in text.splitlines():
    match = re.match(r"^\s*(OK|WARN|FAIL)\s{2,}(\S.*?)(?:\s{2,}|$)", line)
    if match:
        rows.append({"status": match.group(1), "check": match.group(2)})
mismatches = []
for index in range(max(len(rows), len(report["checks"]))):
    seen = rows[index] if index < len(rows) else None
    want = report["checks"][index] if index < len(report["checks"]) else None
    if not seen or not want or seen["status"] != want["status"].upper() or not want["check"].startswith(seen["check"]):
        mismatches.append({"row": index, "seen": seen, "report": want and [want["status"], want["check"]]})
print(json.dumps({"overall": overall.group(1) if overall else None, "rows": rows, "mismatches": mismatches}))
