"""What a deployment file asks the server to serve, as far as the registry lets it.

Each version the file names is served only if it holds a verified tag of the file's stage
(registry/deployed.py). Its model and card are read from DVC by the md5s its commit's dvc.lock
records (what `verify` checked the tag's evidence against), refused if the bytes hash otherwise,
and the model is loaded only if its sha256 matches the card and it holds audited types only
(ml/model_store.py). A version that cannot be served is left out with the reason; the server keeps
what it served before for that model (serve/state.py decides), so a bad change never takes a
model down.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelops_ci.errors import ModelopsError, SpecError, UserError
from modelops_ci.layout import Layout
from modelops_ci.registry import deployed, evidence, state
from modelops_ci.registry.deployed import params_at
from modelops_ci.registry.dvc_cache import load_model_at
from modelops_ci.registry.promote import policy_stages
from modelops_ci.serve.state import Route, Served, ServedVersion
from modelops_ci.spec.deployment import DEPLOYMENTS_DIR, Deployment, ModelDeployment
from modelops_ci.spec.deployment import parse as parse_deployment
from modelops_ci.spec.model import Document

STAGE = re.compile(r"[a-z][a-z0-9-]{0,39}")  # as the schema's spec.stage: never a path


def check_stage(stage: str) -> None:
    if not STAGE.fullmatch(stage):
        raise UserError(f"--stage {stage!r}: a stage is lowercase letters, digits and '-', e.g. production")


def deployment_path(root: Path, stage: str) -> Path:
    return root / DEPLOYMENTS_DIR / f"{stage}.yaml"


def read_deployment(root: Path, stage: str) -> Deployment:
    """The stage's deployment file, schema-checked and parsed (SpecError: exit 2 with file:line)."""
    from modelops_ci.spec.resolve import read_document

    check_stage(stage)
    path = deployment_path(root, stage)
    display = f"{DEPLOYMENTS_DIR}/{stage}.yaml"
    if not path.is_file():
        raise UserError(f"{display}: no such file: a stage is deployed by a promotion "
                        f"(`modelops-ci promotion-request NAME@vX.Y.Z --to {stage}`) or by writing that file")
    return deployment_of(read_document(path, display), display)


def deployment_at(text: str, stage: str) -> Deployment:
    """The stage's deployment file as committed (its text read at a commit), checked as a file is."""
    from modelops_ci.spec.resolve import parse_document

    display = f"{DEPLOYMENTS_DIR}/{stage}.yaml"
    return deployment_of(parse_document(text, display), display)


def deployment_of(doc: Document, display: str) -> Deployment:
    if doc.kind != "Deployment":
        raise UserError(f"{display}: kind is {doc.kind}, not Deployment")
    deployment, problems = parse_deployment(doc.data, display)
    if problems:
        raise SpecError(problems)
    return deployment


@dataclass
class Catalog:
    """Loads what a deployment names, keeping models already loaded (by commit and model md5)
    across reloads so a change that moves only traffic loads nothing."""

    root: Path
    stage: str
    loaded: dict[tuple[str, str, str], ServedVersion] = field(default_factory=dict)
    last: dict[str, Route] = field(default_factory=dict)  # what the previous load served, by model

    def fingerprint(self) -> str:
        """A digest of what `load` reads that can change under a running server: the deployment file
        and the repository's tags (a signed stage tag fetched makes a pending version servable)."""
        digest = hashlib.sha256(_bytes(deployment_path(self.root, self.stage)))
        git_dir = self.root / ".git"
        digest.update(_bytes(git_dir / "packed-refs"))
        tags = git_dir / "refs" / "tags"
        for ref in sorted(tags.rglob("*")) if tags.is_dir() else ():
            digest.update(ref.relative_to(tags).as_posix().encode() + b"\0" + _bytes(ref))
        return digest.hexdigest()

    def load(self) -> Served:
        """The served state the stage's deployment file asks for now (raises ModelopsError when the
        file cannot be read: the caller keeps serving what it had)."""
        deployment = read_deployment(self.root, self.stage)
        registry = state.read(self.root, list(deployment.models))
        found = deployed.standings(registry, deployment, lambda n: policy_stages(self.root, n, "HEAD"))
        versions: dict[tuple[str, str], ServedVersion] = {}
        problems: list[str] = []
        for standing in found:
            if not standing.servable:
                problems.append(f"{standing.model} {standing.version} ({standing.role}): "
                                f"{standing.pending or standing.refused}")
                continue
            try:
                versions[(standing.model, standing.version)] = self._version(standing)
            except ModelopsError as exc:
                problems.append(f"{standing.model} {standing.version} ({standing.role}): {exc}")
        routes = {name: _route(model, versions, self.last.get(name)) for name, model in deployment.models.items()}
        self.last = routes
        return Served(self.stage, routes, tuple(problems), ready=not problems)

    def _version(self, standing: deployed.Standing) -> ServedVersion:
        assert standing.tag is not None  # servable
        commit = standing.tag.commit
        layout = Layout(standing.model)
        claimed = evidence.collect(self.root, standing.model, commit, version=standing.version)
        if claimed.family:
            raise UserError("a batched family is not served yet: deploy single pipelines")
        if claimed.decision:
            return self._decision(standing, commit, claimed)
        digests = {relative: claimed.model.get(relative, "") for relative in (layout.model, layout.model_card)}
        key = (standing.model, commit, digests[layout.model])
        if key not in self.loaded:
            self.loaded[key] = _load(self.root, standing, commit, digests)
        return self.loaded[key]


    def _decision(self, standing: deployed.Standing, commit: str, claimed: evidence.Evidence) -> ServedVersion:
        from modelops_ci.serve import decision

        key = (standing.model, commit, claimed.model.get(Layout(standing.model).formulation, ""))
        if key not in self.loaded:
            model, card = decision.load(self.root, standing.model, commit, claimed)
            self.loaded[key] = ServedVersion(standing.model, standing.version, model, card)
        return self.loaded[key]


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes() if path.is_file() else b""
    except OSError:  # mid-checkout or mid-fetch: the next look sees it
        return b""


def _load(root: Path, standing: deployed.Standing, commit: str, digests: dict[str, str]) -> ServedVersion:
    from modelops_ci.ml.model_types import policy_types

    trusted = policy_types(params_at(root, commit, Layout(standing.model)))
    model, card = load_model_at(root, standing.model, commit, digests, extra_types=trusted)
    return ServedVersion(standing.model, standing.version, model, card)


def _route(model: ModelDeployment, versions: Mapping[tuple[str, str], ServedVersion], last: Route | None) -> Route:
    """The model's route: its champion (the one served before, when the named one cannot serve) and
    its challenger, which gets no traffic when it cannot serve."""
    champion = versions.get((model.name, model.champion)) if model.champion else None
    if champion is None and last is not None:
        champion = last.champion
    challenger = versions.get((model.name, model.challenger)) if model.challenger else None
    return Route(model.name, champion, challenger, model.mode, model.weight if challenger else 0)
