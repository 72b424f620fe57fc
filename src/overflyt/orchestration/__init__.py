"""Prefect only: deployments per municipality and ``overflyt serve`` (:mod:`.serve`), and the
start of Prefect's local API (:mod:`.local`).

The flows themselves live in the top-level ``flows/`` package; the library they call never
imports Prefect. May import: ``flows``, ``plan``, ``overflyt.errors``.
"""
