"""Where each pipeline's files live, in one place for the compiler and the steps.

Every path is relative to the repository root (stages run there: `wdir: ../..`).
"""

from __future__ import annotations

from dataclasses import dataclass

COMPILED_DIR = "compiled"
STATE_DIR = ".modelops"  # ignored by git: MLflow database, default DVC remote, logs


@dataclass(frozen=True)
class Layout:
    """The files of pipeline `name`."""

    name: str

    @property
    def folder(self) -> str:
        return f"{COMPILED_DIR}/{self.name}"

    @property
    def params(self) -> str:
        return f"{self.folder}/params.yaml"

    @property
    def stages(self) -> str:
        return f"{self.folder}/dvc.yaml"

    @property
    def lock(self) -> str:
        return f"{self.folder}/dvc.lock"

    @property
    def dataset(self) -> str:
        return f"data/{self.name}/dataset.parquet"

    @property
    def train(self) -> str:
        return f"data/{self.name}/train.parquet"

    @property
    def test(self) -> str:
        return f"data/{self.name}/test.parquet"

    @property
    def model(self) -> str:
        return f"models/{self.name}/model.skops"

    @property
    def model_card(self) -> str:
        """Metadata beside the model: its sha256, trusted types, features (checked on load)."""
        return f"models/{self.name}/model.json"

    @property
    def reports(self) -> str:
        return f"reports/{self.name}"

    @property
    def profile(self) -> str:
        return f"{self.reports}/profile.json"

    @property
    def predictions(self) -> str:
        return f"{self.reports}/predictions.parquet"

    @property
    def metrics(self) -> str:
        return f"{self.reports}/metrics.json"

    @property
    def plots(self) -> str:
        return f"{self.reports}/plots"

    @property
    def contract(self) -> str:
        """The data contract (in git) unless the policy names another file."""
        return f"contracts/{self.name}.yaml"

    def gate_report(self, gate: str) -> str:
        return f"{self.reports}/gates/{gate}.json"

    @property
    def gates(self) -> str:
        return f"{self.reports}/gates.json"
