"""Which wave each unit and each site goes into: first fit, site by site.

:class:`Placement` takes the planning model's units (:mod:`overflyt.planning.units`) and fills
waves of ``window_hours`` each: nothing moves after what it depends on, a unit that needs a shared
service from another site moves in a later wave, a unit may move ahead of its site but never after
it, and every wave cuts over at least one site. A unit's subnets that move ahead of their site are
cutovers of their own (backup, configure, verify, post-check): each costs ``site_minutes`` too
(:meth:`Placement.ahead_minutes`), counted in the wave it moves in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from overflyt.planning.options import PlanningImpossible, PlanningOptions
from overflyt.planning.units import PlanningModel, name_list


class Placement:
    """First fit, site by site: a site's pending VMs (and what they need that has not moved yet) go
    together into the earliest wave they may use that has room; a site too big for one window has
    its units placed one by one (moving ahead of it) and its cutover after the last of them."""

    def __init__(self, model: PlanningModel, options: PlanningOptions, capacity: float) -> None:
        self.model = model
        self.options = options
        self.capacity = capacity
        self.used: list[float] = []
        self.sites: list[list[str]] = []
        self.unit_wave: dict[int, int] = {}
        self.site_wave: dict[str, int] = {}
        self.charged: dict[int, float] = {}  # unit -> the ahead overhead counted in its wave's `used`
        units_of_site: dict[str, list[int]] = {s.id: [] for s in model.estate.sites}
        for unit in sorted(model.units, key=lambda u: u.rank):
            for site in unit.sites:
                units_of_site[site].append(unit.id)
        self.units_of_site = units_of_site
        self.site_order = self._order()
        self.position = {site: k for k, site in enumerate(self.site_order)}

    @property
    def count(self) -> int:
        return len(self.used)

    def _order(self) -> list[str]:
        units = self.model.units

        def key(pair: tuple[int, str]) -> tuple[int, int, int]:
            position, site = pair
            mine = self.units_of_site[site]
            if not mine:
                return (2, 0, position)
            shared = any(units[u].shared for u in mine)
            return (0 if shared else 1, min(units[u].rank for u in mine), position)

        return [site for _, site in sorted(enumerate(s.id for s in self.model.estate.sites), key=key)]

    def strict(self, unit: int, dep: int) -> bool:
        """Whether ``unit`` must move in a later wave than ``dep``: it needs a shared service from elsewhere."""
        u, d = self.model.units[unit], self.model.units[dep]
        return d.shared and not u.shared and not set(u.sites) & set(d.sites)

    def run(self) -> None:
        for site in self.site_order:
            self._place_site(site)
        self._give_every_wave_a_site()

    def _closure(self, start: Iterable[int]) -> list[int]:
        units = self.model.units
        seen: set[int] = set()
        todo = [u for u in start if u not in self.unit_wave]
        while todo:
            u = todo.pop()
            if u in seen:
                continue
            seen.add(u)
            todo.extend(d for d in units[u].deps if d not in self.unit_wave and d not in seen)
        return sorted(seen, key=lambda u: units[u].rank)

    def _lower_bound(self, bundle: Sequence[int], site: str | None) -> int:
        units = self.model.units
        bound = 0
        for u in bundle:
            for d in units[u].deps:
                if d in self.unit_wave:
                    bound = max(bound, self.unit_wave[d] + (1 if self.strict(u, d) else 0))
        if site is not None:
            for u in self.units_of_site[site]:
                if u in self.unit_wave:
                    bound = max(bound, self.unit_wave[u])
        return bound

    def ahead_minutes(self, unit: int, here: str | None = None) -> float:
        """The per-cutover overhead of ``unit``'s subnets that move ahead of their site: one
        ``site_minutes`` each. Placed, a subnet is ahead when its site is not cut over in the unit's
        wave; not yet placed (when it is being fitted, with site ``here``), when its site is another
        one whose wave is not known yet."""
        wave = self.unit_wave.get(unit)
        count = 0
        for site, subnets in self.model.units[unit].subnets.items():
            if wave is None:
                count += len(subnets) if site != here and site not in self.site_wave else 0
            elif self.site_wave.get(site) != wave:
                count += len(subnets)
        return count * self.options.site_minutes

    def _settle(self, units: Iterable[int]) -> None:
        """Bring the ahead overhead counted for placed ``units`` in line with where their sites are now."""
        for u in units:
            if u not in self.unit_wave:
                continue
            now = self.ahead_minutes(u)
            self.used[self.unit_wave[u]] += now - self.charged.get(u, 0.0)
            self.charged[u] = now

    def _fits(self, wave: int, need: float, with_site: bool) -> bool:
        reserve = 0.0 if with_site or self.sites[wave] else self.options.site_minutes
        return self.used[wave] + need + reserve <= self.capacity + 1e-9

    def _first_fit(self, bound: int, need: float, with_site: bool) -> int:
        for wave in range(bound, len(self.used)):
            if self._fits(wave, need, with_site):
                return wave
        self.used.append(0.0)  # a bound is at most one past the last wave
        self.sites.append([])
        return len(self.used) - 1

    def _place_site(self, site: str) -> None:
        units = self.model.units
        bundle = self._closure(self.units_of_site[site])
        ahead = {u: self.ahead_minutes(u, site) for u in bundle}
        cost = sum(units[u].minutes + ahead[u] for u in bundle) + self.options.site_minutes
        inner = set(bundle)
        strict_inside = any(self.strict(u, d) for u in bundle for d in units[u].deps if d in inner)
        if cost <= self.capacity and not strict_inside:
            wave = self._first_fit(self._lower_bound(bundle, site), cost, with_site=True)
            for u in bundle:
                self.unit_wave[u] = wave
                self.charged[u] = ahead[u]
            self.used[wave] += cost
        else:
            late = self._with_site(bundle, site)
            for u in bundle:
                if u in late:
                    continue
                self.charged[u] = self.ahead_minutes(u)
                need = units[u].minutes + self.charged[u]
                wave = self._first_fit(self._lower_bound([u], None), need, with_site=False)
                self.unit_wave[u] = wave
                self.used[wave] += need
            if late:
                ahead = {u: self.ahead_minutes(u, site) for u in late}
                need = sum(units[u].minutes + ahead[u] for u in late) + self.options.site_minutes
                wave = self._first_fit(self._lower_bound(sorted(late), site), need, with_site=True)
                for u in late:
                    self.unit_wave[u] = wave
                    self.charged[u] = ahead[u]
                self.used[wave] += need
            else:
                wave = self._site_fit(site, bundle)
                self.used[wave] += self.options.site_minutes
        self.site_wave[site] = wave
        self.sites[wave].append(site)
        self._settle([*bundle, *self.units_of_site[site]])

    def _with_site(self, bundle: Sequence[int], site: str) -> set[int]:
        """The units of a site too big for one window that cannot move ahead of it (their moves and
        their own cutover leave no room for a site in any wave), and those that depend on them: they
        move with the site's cutover. PlanningImpossible when together they do not fit one window."""
        units = self.model.units
        late: set[int] = set()
        for u in bundle:  # rank order: what a unit depends on comes first
            alone = units[u].minutes + self.ahead_minutes(u) + self.options.site_minutes
            if alone > self.capacity + 1e-9 or units[u].deps & late:
                late.add(u)
        need = sum(units[u].minutes + self.ahead_minutes(u, site) for u in late) + self.options.site_minutes
        if need > self.capacity + 1e-9:
            names = [self.model.estate.vms[i].name for u in sorted(late) for i in units[u].vms]
            raise PlanningImpossible(
                f"site {site}: {name_list(names, 5)} cannot move ahead of it (a subnet moved ahead is a cutover "
                f"of its own) and together with its cutover need {need / 60:.1f} h, more than a window; "
                "raise --window-hours or --bandwidth-mbps"
            )
        return late

    def _site_fit(self, site: str, bundle: Sequence[int]) -> int:
        """The earliest wave a site whose units were placed one by one may be cut over in: its units
        in that wave then move with it, not ahead, and give their ahead overhead back."""
        for wave in range(self._lower_bound([], site), len(self.used)):
            self.site_wave[site] = wave
            back = sum(self.charged.get(u, 0.0) - self.ahead_minutes(u) for u in bundle if self.unit_wave[u] == wave)
            del self.site_wave[site]
            if self.used[wave] - back + self.options.site_minutes <= self.capacity + 1e-9:
                return wave
        return self._first_fit(len(self.used), self.options.site_minutes, with_site=True)

    def _give_every_wave_a_site(self) -> None:
        """A wave cuts over at least one site. A wave that only moves VMs ahead of their site gets a
        site from a wave that has several: one without VMs of its own first, from the latest wave."""
        for wave, sites in enumerate(self.sites):
            if sites:
                continue
            candidates = [
                (not self.units_of_site[s], w, k, s)
                for w, others in enumerate(self.sites)
                if len(others) > 1
                for k, s in enumerate(others)
                if all(self.unit_wave[u] <= wave for u in self.units_of_site[s])
            ]
            if not candidates:
                stuck = sorted({u for u, w in self.unit_wave.items() if w == wave}, key=lambda u: u)
                names = [self.model.estate.vms[i].name for u in stuck for i in self.model.units[u].vms]
                raise PlanningImpossible(
                    f"wave {wave + 1} would move only VMs ahead of their site ({name_list(names, 5)}) and no other "
                    "site is left to cut over in it; raise --window-hours or --bandwidth-mbps"
                )
            _, source, _, site = max(candidates)
            self.sites[source].remove(site)
            self.used[source] -= self.options.site_minutes
            self.sites[wave].append(site)
            self.used[wave] += self.options.site_minutes
            self.site_wave[site] = wave
            self._settle(self.units_of_site[site])
