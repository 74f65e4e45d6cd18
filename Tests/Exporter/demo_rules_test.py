#!/usr/bin/env python3
"""Writes a promtool rule test from an exposition of `ipvstop exporter`:

    demo_rules_test.py EXPOSITION.prom RULES.yml > test.yml

Every ipvstop_finding series of the exposition becomes an input series (held for 2 minutes),
and the test expects, at 1 minute, exactly one alert of its kind's rule per finding, with the
finding's labels and the annotations the rule's templates make of them. So the shipped rules
are tested on the findings the demo (or any director) really raises, not on made-up ones.
"""
import re
import sys

import json

expo, rules_path = sys.argv[1:3]
labels_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
findings = []
for line in open(expo):
    if line.startswith("ipvstop_finding{"):
        labels = dict((k, v.encode().decode("unicode_escape")) for k, v in labels_re.findall(line[line.index("{"):line.rindex("}")]))
        findings.append(labels)

# The rules: alert name, the kind its expr selects, its annotation templates (a small reader
# of the shipped file's own layout, not a YAML library: Debian's python3 has none built in).
rules = []
cur = None
for line in open(rules_path):
    s = line.strip()
    if s.startswith("- alert:"):
        cur = {"alert": s.split(":", 1)[1].strip(), "ann": {}}
        rules.append(cur)
    elif cur is not None and s.startswith("expr:"):
        m = re.search(r'kind="(\w+)"', s)
        cur["kind"] = m.group(1) if m else None
    elif cur is not None and (s.startswith("summary:") or s.startswith("description:")):
        k, v = s.split(":", 1)
        cur["ann"][k] = json.loads(v.strip())
by_kind = {r["kind"]: r for r in rules if r.get("kind")}


def render(tmpl, labels):
    return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), tmpl)


def q(s):
    return json.dumps(s)  # a JSON string is a YAML double-quoted string


out = ["rule_files: [" + q(rules_path) + "]", "evaluation_interval: 15s", "tests:",
       "  - name: the demo's own findings", "    interval: 15s", "    input_series:"]
for f in findings:
    labels = dict(f, job="demo", instance="127.0.0.1:19911")
    sel = ",".join(f'{k}={q(v)}' for k, v in labels.items())
    out.append(f"      - series: {q('ipvstop_finding{' + sel + '}')}")
    out.append("        values: '1x8'")
out.append("    alert_rule_test:")
for kind, rule in sorted(by_kind.items()):
    fs = [dict(f, job="demo", instance="127.0.0.1:19911") for f in findings if f["kind"] == kind]
    out.append("      - eval_time: 1m")
    out.append(f"        alertname: {rule['alert']}")
    if not fs:
        out.append("        exp_alerts: []")
        continue
    out.append("        exp_alerts:")
    for f in fs:
        out.append("          - exp_labels: {" + ", ".join(f"{k}: {q(v)}" for k, v in f.items()) + "}")
        out.append("            exp_annotations: {" + ", ".join(f"{k}: {q(render(v, f))}" for k, v in rule["ann"].items()) + "}")
print("\n".join(out))
print(f"# {len(findings)} findings, alerts expected for kinds {sorted({f['kind'] for f in findings})}", file=sys.stderr)
