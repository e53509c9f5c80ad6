"""`hearth config init | show | path`."""

from __future__ import annotations

import argparse

from app.config import Settings, default_config_path, render_toml, write_default_config


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = args.config or default_config_path()
    if args.config_command == "path":
        print(path)
        return 0
    if args.config_command == "init":
        write_default_config(path, force=args.force)
        print(f"wrote {path}")
        return 0
    print(f"# effective settings, from {settings.source}")
    print(render_toml(settings, commented=False))
    return 0
