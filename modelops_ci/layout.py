"""Where each pipeline's files live, in one place for the compiler and the steps.

Every path is relative to the repository root (stages run there: `wdir: ../..`).
"""

from __future__ import annotations

from dataclasses import dataclass

COMPILED_DIR = "compiled"
STATE_DIR = ".modelops"  # ignored by git: MLflow database, default DVC remote, logs


@dataclass(frozen=True)
class Layout:
    """The files of pipeline `name`; of one series when `family` names its batched family.

    A batched family (spec.batch) compiles to one folder, compiled/<family>/, whose stage writes
    each series' files under models/<family>/series/<name>/ and reports/<family>/series/<name>/.
    """

    name: str
    family: str | None = None

    def _own(self, kind: str) -> str:
        return f"{kind}/{self.family}/series/{self.name}" if self.family else f"{kind}/{self.name}"

    @property
    def folder(self) -> str:
        return f"{COMPILED_DIR}/{self.family or self.name}"

    @property
    def params(self) -> str:
        return f"{self.folder}/params.yaml"

    @property
    def series_table(self) -> str:
        """A batched family's series and what each sets differently (its shared settings are in
        params.yaml, which DVC parses whenever it reads the folder's dvc.yaml: kept small)."""
        return f"{self.folder}/series.yaml"

    @property
    def stages(self) -> str:
        return f"{self.folder}/dvc.yaml"

    @property
    def lock(self) -> str:
        return f"{self.folder}/dvc.lock"

    @property
    def dataset(self) -> str:
        return f"{self._own('data')}/dataset.parquet"

    @property
    def train(self) -> str:
        return f"{self._own('data')}/train.parquet"

    @property
    def test(self) -> str:
        return f"{self._own('data')}/test.parquet"

    @property
    def model(self) -> str:
        return f"{self._own('models')}/model.skops"

    @property
    def model_card(self) -> str:
        """Metadata beside the model: its sha256, trusted types, features (checked on load)."""
        return f"{self._own('models')}/model.json"

    @property
    def reports(self) -> str:
        return self._own("reports")

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

    # -- a decision (task: optimize) pipeline's files ------------------------------------------

    @property
    def inputs(self) -> str:
        """The tables every scenario shares (`data.inputs`), one parquet file each, by name."""
        return f"{self._own('data')}/inputs"

    @property
    def problems(self) -> str:
        """Each scenario's problem as the formulation built it: plain arrays (optimize/store.py)."""
        return f"{self._own('data')}/problems.npz"

    @property
    def formulation(self) -> str:
        """A decision model's card: the formulation, its code digest, the solver and its options."""
        return f"{self._own('models')}/formulation.json"

    @property
    def solutions(self) -> str:
        """The decisions: every scenario's variable values, as the solver returned them."""
        return f"{self.reports}/solutions.parquet"

    @property
    def solved(self) -> str:
        """What the solver said of each scenario: status, objective, bound, gap, time."""
        return f"{self.reports}/solved.json"

    @property
    def results(self) -> str:
        """Each scenario's result with its violations recomputed (what the decision gates judge)."""
        return f"{self.reports}/scenarios.json"

    @property
    def contract(self) -> str:
        """The data contract (in git) unless the policy names another file."""
        return f"contracts/{self.family or self.name}.yaml"

    def gate_report(self, gate: str) -> str:
        return f"{self.reports}/gates/{gate}.json"

    @property
    def gates(self) -> str:
        return f"{self.reports}/gates.json"

    # -- a batched family's own files (Layout(family)) -----------------------------------------

    @property
    def series_models(self) -> str:
        """Every series' model, its only file there (a DVC output of the family's stage)."""
        return f"models/{self.name}/series"

    @property
    def series_reports(self) -> str:
        """Every series' record, its only file there (a DVC output)."""
        return f"reports/{self.name}/series"

    def series(self, name: str) -> Layout:
        return Layout(name, family=self.name)

    @property
    def series_record(self) -> str:
        """In a series' report folder: its key (what its outputs were computed from), verdict,
        metrics, gate results, model card and predictions (steps/series.py); written last, so a
        folder without it is recomputed."""
        return f"{self.reports}/series.json"
