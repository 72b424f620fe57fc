"""Prefect only: deployments per municipality and ``overflyt serve`` (:mod:`.serve`), the
start of Prefect's local API (:mod:`.local`), the API's auth string (:mod:`.auth`), and the
notifications Prefect's automations send (:mod:`.notify`).

The flows themselves live in the top-level ``flows/`` package; the library they call never
imports Prefect. May import: ``flows``, ``plan``, ``overflyt.errors``.
"""
