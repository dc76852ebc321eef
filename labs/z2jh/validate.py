"""Check a Zero to JupyterHub config against the chart's schema, as `helm install` does.

    python labs/z2jh/validate.py [labs/z2jh/config.yaml]

helm validates the *merged* values (the chart's defaults with the user's config over them), so
the bare config, which lacks the chart's required top-level keys, is merged first. The schema and
defaults are vendored (vendor/README.md: version, licence, hashes), so this runs offline.
Exit status 0 when valid; otherwise every error is printed with its path.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "vendor" / "values.schema.json"
DEFAULTS = HERE / "vendor" / "values.yaml"
CONFIG = HERE / "config.yaml"


def merge(defaults, values):
    """helm's merge of user values over chart defaults: maps merge key by key, anything else
    (lists included) replaces, and a null in the user's values deletes the default's key."""
    if not (isinstance(defaults, dict) and isinstance(values, dict)):
        return copy.deepcopy(values)
    merged = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None and key in merged and isinstance(merged[key], (dict, list)):
            del merged[key]  # helm: `key: null` removes a default table
        elif key in merged:
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def errors(config: dict) -> list[str]:
    """Every schema error of ``config`` merged over the chart's defaults, as 'path: message'."""
    schema = json.loads(SCHEMA.read_text())
    merged = merge(yaml.safe_load(DEFAULTS.read_text()), config)
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(merged), key=lambda e: list(map(str, e.absolute_path)))]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else CONFIG
    found = errors(yaml.safe_load(path.read_text()) or {})
    for line in found:
        print(line)
    print(f"{path}: {'valid' if not found else f'{len(found)} errors'} against the z2jh chart's schema (merged over its defaults)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
