"""The Prefect flows of overflyt: ``migrate-wave`` → ``site-cutover`` (one task per itinerary
step, and the rollback), ``precheck-wave`` and ``rollback-site``.

Runs are named per municipality and a wave shows its progress (:mod:`flows.progress`); what needs a
human is emitted as an event the notification automations send (:mod:`flows.notify`).

Thin: each flow calls the library (:mod:`overflyt.cutover`, :mod:`overflyt.precheck`) and shows
its results in Prefect (logs, artifacts, states); the library never imports Prefect. The
deployments that ``overflyt serve`` registers (:mod:`overflyt.orchestration.serve`) point at these
modules; the CLI runs the same flows on Prefect's temporary local API
(:func:`overflyt.orchestration.local.prepare_local_database`).

May import: ``overflyt`` (any wing but the CLI), ``prefect``.
"""

from overflyt.orchestration.local import prefect_defaults

prefect_defaults()  # before Prefect is imported: its settings are read once, at import

from flows.migrate_wave import ApprovalGate, migrate_wave  # noqa: E402
from flows.params import ApprovalInput, MigrateWaveParams, PrecheckWaveParams, RollbackSiteParams  # noqa: E402
from flows.precheck_wave import findings_table, precheck_wave  # noqa: E402
from flows.rollback_site import rollback_site  # noqa: E402
from flows.site_cutover import site_cutover  # noqa: E402

__all__ = [
    "ApprovalGate",
    "ApprovalInput",
    "MigrateWaveParams",
    "PrecheckWaveParams",
    "RollbackSiteParams",
    "findings_table",
    "migrate_wave",
    "precheck_wave",
    "rollback_site",
    "site_cutover",
]
