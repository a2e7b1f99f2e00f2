"""Writes what an installed ansible-core's AnsiballZ payloads may hold, for bastion/ansible/known/.

    python -m bastion.ansible.manifest [SITE_PACKAGES/ansible] > bastion/ansible/known/ansible-core-X.json

Reads files only (nothing of ansible is imported): the wrapper, every module
and module_utils file (the zip members), the two package stubs ansible-core
writes itself, the serialization profiles and the internal arguments
(`PASS_VARS` in module_utils/common/parameters.py).
"""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from pathlib import Path

from bastion.ansible.ansiballz import wrapper_digest


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _assigned(source: str, name: str) -> object:
    for node in ast.parse(source).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        for target in targets:
            if isinstance(target, ast.Name) and target.id == name and node.value is not None:
                return node.value
    raise ValueError(f"{name} not found")


def build_manifest(ansible_dir: Path) -> dict[str, object]:
    version = ast.literal_eval(_assigned((ansible_dir / "release.py").read_text(), "__version__"))  # type: ignore[arg-type]
    author = ast.literal_eval(_assigned((ansible_dir / "release.py").read_text(), "__author__"))  # type: ignore[arg-type]
    wrapper = (ansible_dir / "_internal" / "_ansiballz" / "_wrapper.py").read_text()
    members: dict[str, str] = {}
    for sub in ("module_utils", "modules"):
        for path in sorted((ansible_dir / sub).rglob("*.py")):
            if "__pycache__" not in path.parts:
                members[f"ansible/{path.relative_to(ansible_dir).as_posix()}"] = _sha(
                    path.read_bytes()
                )
    extend = b"from pkgutil import extend_path\n__path__=extend_path(__path__,__name__)\n"
    members["ansible/__init__.py"] = _sha(
        extend + f'__version__="{version}"\n__author__="{author}"\n'.encode()
    )
    members["ansible/module_utils/__init__.py"] = _sha(extend)
    profiles = sorted(
        p.name[len("_module_") : -len("_c2m.py")]
        for p in (ansible_dir / "module_utils" / "_internal" / "_json" / "_profiles").glob(
            "_module_*_c2m.py"
        )
    )
    pass_vars = _assigned(
        (ansible_dir / "module_utils" / "common" / "parameters.py").read_text(), "PASS_VARS"
    )
    assert isinstance(pass_vars, ast.Dict)
    internal = sorted(f"_ansible_{ast.literal_eval(k)}" for k in pass_vars.keys if k is not None)
    return {
        "ansible_core": version,
        "wrapper_sha256": wrapper_digest(wrapper.partition("\n")[2]),
        "profiles": profiles,
        "internal_args": internal,
        "members": members,
    }


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        ansible_dir = Path(argv[1])
    else:
        import importlib.util

        spec = importlib.util.find_spec("ansible")
        if spec is None or spec.origin is None:
            print("ansible-core is not installed; give its package directory", file=sys.stderr)
            return 2
        ansible_dir = Path(spec.origin).parent
    json.dump(build_manifest(ansible_dir), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
