"""What the stacks deploy as code: artifacts this repository builds, never a package index.

- the Lambda bundle (`make lambda-bundle`: regionguard and its dependencies as manylinux wheels
  for the Lambda runtime, unpacked, the dependencies from requirements/lambda.lock), the code of
  the app, guard and health functions;
- the app's wheelhouse (`make wheelhouse`: regionguard's wheel and every dependency's, those from
  requirements/ec2.lock, with a `requirements.txt` pinning each by version and sha256), which EC2
  instances fetch from the CDK asset bucket and install with `pip --no-index --require-hashes`.

`regionguard synth` refuses to write a deployable assembly without them. `--check-only` (and the
tests) synthesize for review instead: the source tree stands in for the bundle and an empty
wheelhouse for the wheels, and the assembly says it is not deployable.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

from constructs import Construct

SRC = Path(__file__).resolve().parents[2]  # .../src
REPO = SRC.parent
CONTEXT_KEY = "regionguard:artifacts"  # "required" (deployable) or "review"
REQUIREMENTS = "requirements.txt"
NOT_DEPLOYABLE = "NOT-DEPLOYABLE.txt"


def lambda_bundle() -> Path:
    return Path(os.environ.get("RG_LAMBDA_BUNDLE", REPO / "build" / "lambda"))


def wheelhouse() -> Path:
    return Path(os.environ.get("RG_WHEELHOUSE", REPO / "build" / "wheelhouse"))


def missing() -> list[str]:
    """The artifacts a deployable synth needs and does not find, as `make` targets."""
    out = []
    if not (lambda_bundle() / "regionguard").is_dir():
        out.append(f"{lambda_bundle()} (make lambda-bundle)")
    if not (wheelhouse() / REQUIREMENTS).is_file():
        out.append(f"{wheelhouse()} (make wheelhouse)")
    return out


def review_only(scope: Construct) -> bool:
    return bool(scope.node.try_get_context(CONTEXT_KEY) != "required")


def lambda_code_path(scope: Construct) -> Path:
    bundle = lambda_bundle()
    if (bundle / "regionguard").is_dir():
        return bundle
    if not review_only(scope):
        raise FileNotFoundError(f"the Lambda bundle {bundle} is missing: make lambda-bundle")
    return SRC  # review: the package without its dependencies (not deployable)


def wheelhouse_path(scope: Construct) -> Path:
    house = wheelhouse()
    if (house / REQUIREMENTS).is_file():
        return house
    if not review_only(scope):
        raise FileNotFoundError(f"the app wheelhouse {house} is missing: make wheelhouse")
    placeholder = Path(tempfile.gettempdir()) / "regionguard-review-wheelhouse"
    placeholder.mkdir(exist_ok=True)
    (placeholder / NOT_DEPLOYABLE).write_text(
        "synthesized for review: build the wheelhouse (make wheelhouse) and synth again\n")
    (placeholder / REQUIREMENTS).write_text("# review only: nothing to install\n")
    return placeholder


def write_requirements(house: Path) -> Path:
    """`requirements.txt` for every wheel in `house`: name==version --hash=sha256:..., the
    input of `pip install --no-index --require-hashes` (a changed or added file fails it)."""
    from packaging.utils import parse_wheel_filename

    lines = []
    for wheel in sorted(house.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    if not lines:
        raise ValueError(f"no wheels in {house}")
    path = house / REQUIREMENTS
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":  # make wheelhouse
    print(write_requirements(Path(sys.argv[1])))
