"""Idle shutdown: power off nodes idle for a while, wake them when queued jobs need the capacity.

The policy only decides; the governor (engine/power_nodes.py) keeps each node's state, draws its
off or wake-up power and makes a waking node usable after the wake latency. Nothing is stranded: a
queued job's demand that free and waking accelerators cannot cover wakes enough off nodes, and no
node is powered off while queued demand on its model needs it.
"""

from __future__ import annotations

import math

from dcsim.policies.power.base import NodeDecision, NodesView, PowerPolicyBase, parse_quantity
from dcsim.policies.registry import register


@register("power", "idle_shutdown")
class IdleShutdown(PowerPolicyBase):
    """Power off nodes idle for `idle_after`; wake them (after `wake_latency`) when jobs wait for them."""

    def __init__(self, *, idle_after: float | str = 600.0, wake_latency: float | str = 300.0,
                 off_power: float | str = 15.0, wake_power: float | str | None = None, keep_on: int = 0) -> None:
        self.idle_after = idle_after
        self.wake_latency = wake_latency
        self.off_power = off_power
        self.wake_power = wake_power
        self.keep_on = keep_on
        self.idle_after_s = parse_quantity(idle_after, "duration", "idle_after")
        if isinstance(wake_latency, int | float) and not isinstance(wake_latency, bool) and wake_latency < 0:
            raise ValueError(f"wake_latency: expected a duration >= 0, got {wake_latency!r}")
        self.wake_latency_s = parse_quantity(wake_latency, "duration", "wake_latency")
        self.off_w = parse_quantity(off_power, "power", "off_power")
        self.wake_w = None if wake_power is None else parse_quantity(wake_power, "power", "wake_power")
        if keep_on < 0:
            raise ValueError(f"keep_on: expected nodes >= 0 kept powered per accelerator model, got {keep_on}")

    @property
    def shuts_down(self) -> bool:
        return True

    def nodes(self, view: NodesView) -> NodeDecision:
        now = view.now
        nodes = view.nodes
        spare: dict[str, int] = {}  # free and waking accelerators per model, less what queued jobs take
        off_nodes: dict[str, list[int]] = {}
        powered: dict[str, int] = {}
        for node in nodes:  # by id: deterministic
            model = node.accelerator
            spare.setdefault(model, view.free(model))
            if node.state == "waking":
                spare[model] += node.size
            if node.state == "off":
                off_nodes.setdefault(model, []).append(node.id)
            else:
                powered[model] = powered.get(model, 0) + 1
        idle_at = [node.idle_since + self.idle_after_s for node in nodes
                   if node.state == "on" and node.idle_since is not None]
        if not off_nodes and not any(at <= now for at in idle_at):
            # nothing to wake and nothing to power off: skip the queue (it can be long)
            return NodeDecision(check_at=min(idle_at, default=math.inf))
        sizes = {node.id: node.size for node in nodes}
        # reach: spare plus off accelerators per model. Waking moves accelerators from off to spare, and
        # a placed job takes from spare, so reach never grows along the walk: once a job's demand
        # exceeds the reach of every model it may use, no later job with the same models and at least
        # that demand fits (skipped at once), and once no reach is left the walk can stop.
        reach = {m: spare[m] + sum(sizes[n] for n in off_nodes.get(m, ())) for m in spare}
        reach_left = sum(reach.values())
        hopeless: dict[tuple[str, ...], int] = {}  # usable models -> smallest demand known not to fit
        usable_of: dict[tuple[str, ...], list[str]] = {}
        wake: list[int] = []
        for demand, candidates in view.waiting_jobs() if reach_left > 0 else ():
            if demand >= hopeless.get(candidates, demand + 1):
                continue
            usable = usable_of.get(candidates)
            if usable is None:
                usable = usable_of[candidates] = [m for m in candidates if m in spare]
            fit = next((m for m in usable if spare[m] >= demand), None)
            if fit is None:  # wake nodes of the first model whose off nodes make the job fit
                fit = next((m for m in usable if reach[m] >= demand), None)
                if fit is None:
                    hopeless[candidates] = demand  # it waits for running work to end, as with every node on
                    continue
                while spare[fit] < demand:
                    node_id = off_nodes[fit].pop(0)
                    wake.append(node_id)
                    spare[fit] += sizes[node_id]
            spare[fit] -= demand
            reach[fit] -= demand
            reach_left -= demand
            if reach_left <= 0:
                break  # nothing left to place or wake: the rest of the queue changes nothing
        kept = self._serve(view, off_nodes, wake)
        off: list[int] = []
        check_at = math.inf
        for node in nodes:
            if node.state != "on" or node.idle_since is None or node.id in kept:
                continue
            due = node.idle_since + self.idle_after_s
            if due > now:
                check_at = min(check_at, due)
                continue
            model = node.accelerator
            if spare[model] < node.size or powered.get(model, 0) <= self.keep_on:
                continue  # queued jobs need it, or it is one of the nodes kept on
            off.append(node.id)
            spare[model] -= node.size
            powered[model] -= 1
        return NodeDecision(power_off=tuple(off), wake=tuple(wake), check_at=check_at)

    @staticmethod
    def _serve(view: NodesView, off_nodes: dict[str, list[int]], wake: list[int]) -> set[int]:
        """Room for the replicas services want (each on one node): an idle powered node is kept on, else
        a waking node is counted, else an off node wakes (appended to `wake`). Returns the nodes kept
        on or claimed. Training takes woken nodes too; a service left without room says so again."""
        wants = view.serving_wants()
        claimed: set[int] = set()
        if not wants:
            return claimed
        nodes = view.nodes
        for model, size in wants:
            fit = [n for n in nodes if n.accelerator == model and n.size >= size and n.id not in claimed]
            node = next((n for n in fit if n.state == "on" and n.idle_since is not None), None) \
                or next((n for n in fit if n.state == "waking"), None)
            if node is not None:
                claimed.add(node.id)
                continue
            sizes = {n.id: n.size for n in fit}
            woken = next((i for i in off_nodes.get(model, ()) if i in sizes), None)
            if woken is not None:  # (else it waits for room, as with every node on)
                off_nodes[model].remove(woken)
                wake.append(woken)
                claimed.add(woken)
        return claimed
