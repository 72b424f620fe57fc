"""Prefect only: deployments per municipality and ``overflyt serve`` (:mod:`.serve`), the
start of Prefect's local API (:mod:`.local`), and the API's auth string (:mod:`.auth`).

The flows themselves live in the top-level ``flows/`` package; the library they call never
imports Prefect. May import: ``flows``, ``plan``, ``overflyt.errors``.
"""
