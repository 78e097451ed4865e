"""The tool registry as data: $CSMCP_BUILD_DIR/worker/tools_inventory.json, written at build
time by worker/tools/gen_registry.py from worker/tools/<category>/<name>.json (the same source
as tools/list and docs/tools.md). Tests take tool lists from here, never from a hand-kept list."""
import json
import os

import lib

PATH = os.path.join(lib.BUILD, "worker", "tools_inventory.json")


def tools(categories=None, fixtures=False):
    """Inventory entries (dicts: name, category, source, scope, action_scopes, rate_class,
    annotations, handler, sql_function, fixture, parameters, required, rules), in listing order;
    only the given categories when categories is given; fixture tools only with fixtures=True."""
    with open(PATH, encoding="utf-8") as f:
        inv = json.load(f)["tools"]
    return [t for t in inv if (fixtures or not t["fixture"]) and
            (categories is None or t["category"] in categories)]


def names(categories=None, fixtures=False):
    return [t["name"] for t in tools(categories, fixtures)]
