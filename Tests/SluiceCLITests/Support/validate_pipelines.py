"""Validates pipeline files against the JSON Schema `sluice schema` writes, with an
independent implementation (python-jsonschema), so the editor schema is checked by someone
other than its author. Usage: validate_pipelines.py SCHEMA FILE... ; prints one line per
file, `ok PATH` or `invalid PATH: reason`, and exits 0."""
import json
import re
import sys

import jsonschema
import yaml


class YAML12Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where 2026-01-01 is a date and `on`, `yes`, `no` are booleans;
    Sluice and editors read YAML 1.2, where those are text. Only true/false stay booleans."""


YAML12Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers
          if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YAML12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))

with open(sys.argv[1], encoding="utf-8") as handle:
    schema = json.load(handle)
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=YAML12Loader)
    first = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if first is not None:
        where = "/".join(str(part) for part in first.absolute_path)
        print(f"invalid {path}: {where}: {first.message[:200]}")
    else:
        print(f"ok {path}")
