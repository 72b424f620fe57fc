"""The flows' parameters, as pydantic models: the Prefect UI renders each as a form with
descriptions and defaults (a dry run unless switched off)."""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import BaseModel, ConfigDict, Field


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(
        default="inventories/norddjurs/plan.yml", description="Plan file, relative to the worker's working directory"
    )
    lang: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2}(-[A-Z]{2})?$",
        description="Language of the run's reports: da, en (one templates/i18n/<lang>.yml each); empty: "
        "$OVERFLYT_LANG, else da",
    )


class MigrateWaveParams(_Params):
    wave: int = Field(default=1, ge=1, description="The wave to run")
    sites: list[str] = Field(default_factory=list, description="Only these sites of the wave (empty: all of them)")
    dry_run: bool = Field(default=True, description="Show what would move and change; change nothing")
    approved_by: str | None = Field(default=None, description="Who approved the cutover (when the plan needs approval)")
    ticket: str | None = Field(default=None, description="Change ticket of the approval")
    outside_window: bool = Field(
        default=False,
        description="Run although the wave's window is not open yet or has passed (recorded as an override, with who)",
    )
    outside_window_reason: str | None = Field(
        default=None, description="Why the run overrides the window (recorded with the override)"
    )
    ask_approval: bool = Field(
        default=False,
        description="A real cutover that needs approval and has no approved_by pauses before its first cutover "
        "step until someone approves it in the UI (who, change ticket); off, such a run is refused",
    )
    approval_timeout_s: int = Field(
        default=3600,
        ge=1,
        description="How long a run paused for approval waits before it ends with nothing changed",
    )


class PrecheckWaveParams(_Params):
    wave: int | None = Field(
        default=None, ge=1, description="The wave to check (empty: the next wave whose window has not ended)"
    )
    sites: list[str] = Field(default_factory=list, description="Only these sites of the wave (empty: all of them)")
    mode: str = Field(default="precheck", pattern="^(precheck|run)$", description="run: the window must be open now")


class RollbackSiteParams(_Params):
    site: str = Field(description="The site whose cutover is rolled back")


class ApprovalInput(RunInput):
    """What the Prefect UI asks for on a cutover paused for approval."""

    approved_by: str = Field(min_length=1, description="Who approves the cutover")
    ticket: str = Field(min_length=1, description="The change ticket of the approval")
